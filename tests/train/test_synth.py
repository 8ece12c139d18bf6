"""train/synth: BOP layout, exact labels, masks against fresh renders, sequences, determinism."""

from __future__ import annotations

import dataclasses
import filecmp
import json
import math
from pathlib import Path

import cv2
import numpy as np
import pytest

from tracker.formats.bop import BopDataset, mask_bbox, read_scene_camera, read_scene_gt, read_scene_gt_info
from tracker.camera import Camera
from tracker.formats.coco import read_coco
from tracker.errors import KptrackError
from tracker.geometry import rotation_error_deg
from tracker.objects import load_object, write_object_dir
from tracker.render import Renderer, keypoint_visibility
from train import synth
from train.synth import SynthConfig, run_synth

OBJ = load_object("default")


def _cfg(out, **kw):
    kw.setdefault("progress", False)
    return SynthConfig(out=str(out), **kw)


@pytest.fixture(scope="module")
def train_ds(tmp_path_factory):
    out = tmp_path_factory.mktemp("train_ds")
    split = run_synth(_cfg(out, num=30, seed=0, scene_size=12, workers=2, occluder_prob=0.8))
    return out, split


def _iou(a, b):
    u = np.count_nonzero(a | b)
    return 1.0 if u == 0 else np.count_nonzero(a & b) / u


def test_training_layout(train_ds):
    out, split = train_ds
    assert split == out / "train_synth"
    models = out / "models"
    assert {p.name for p in models.iterdir()} >= {"obj_000001.ply", "models_info.json", "keypoints.json"}
    info = json.loads((models / "models_info.json").read_text())
    assert info["1"]["diameter"] == pytest.approx(OBJ.diameter)
    # the models folder is itself a loadable object directory, in mm
    back = load_object(models)
    assert np.allclose(back.vertices, OBJ.vertices, atol=1e-3) and back.keypoint_names == OBJ.keypoint_names
    scenes = sorted(p.name for p in split.iterdir())
    assert scenes == ["000000", "000001", "000002"]  # 12 + 12 + 6
    for s, n in zip(scenes, (12, 12, 6)):
        sd = split / s
        assert sorted(p.name for p in (sd / "rgb").iterdir()) == [f"{i:06d}.jpg" for i in range(n)]
        assert sorted(p.name for p in (sd / "mask_visib").iterdir()) == [f"{i:06d}_000000.png" for i in range(n)]
        for f in ("scene_camera.json", "scene_gt.json", "scene_gt_info.json", "keypoints_coco.json"):
            assert (sd / f).is_file()
        assert cv2.imread(str(sd / "rgb" / "000000.jpg")).shape == (256, 256, 3)


def test_training_labels_are_exact(train_ds):
    out, split = train_ds
    for sd in sorted(split.iterdir()):
        cams = read_scene_camera(sd / "scene_camera.json")
        gts = read_scene_gt(sd / "scene_gt.json")
        coco = read_coco(sd / "keypoints_coco.json")
        assert coco.keypoint_names == OBJ.keypoint_names
        assert [im.id for im in coco.images] == sorted(gts)
        n_lab = 0
        for s in coco.samples:
            assert s.image_path == sd / "rgb" / f"{s.image_id:06d}.jpg" and s.image_path.is_file()
            K, g = cams[s.image_id].K, gts[s.image_id][0]
            assert g.obj_id == 1
            # an independent float64 projection of the stored pose
            X = OBJ.keypoints @ g.R_m2c.T + g.t_m2c
            uv = np.stack([K[0, 0] * X[:, 0] / X[:, 2] + K[0, 2], K[1, 1] * X[:, 1] / X[:, 2] + K[1, 2]], 1)
            lab = s.v > 0
            assert np.abs(uv[lab] - s.uv[lab]).max() < 0.01
            n_lab += lab.sum()
            # v = 0 exactly for keypoints whose pixel is outside the image
            r = np.floor(uv + 0.5)
            inside = (r[:, 0] >= 0) & (r[:, 0] < 256) & (r[:, 1] >= 0) & (r[:, 1] < 256)
            assert np.array_equal(lab, inside)
        assert n_lab > 0


def test_masks_match_fresh_render_and_visibility_flags(train_ds):
    out, split = train_ds
    rend = Renderer(OBJ)
    n_clear = n_occluded = n_occ_kp = 0
    for sd in sorted(split.iterdir()):
        cams = read_scene_camera(sd / "scene_camera.json")
        gts = read_scene_gt(sd / "scene_gt.json")
        infos = read_scene_gt_info(sd / "scene_gt_info.json")
        coco = {s.image_id: s for s in read_coco(sd / "keypoints_coco.json").samples}
        for im_id, (g,) in gts.items():
            cam = Camera(cams[im_id].K, None, 256, 256)
            o = rend.render(cam, g.R_m2c, g.t_m2c)
            stored = cv2.imread(str(sd / "mask_visib" / f"{im_id:06d}_000000.png"), cv2.IMREAD_GRAYSCALE) > 127
            info = infos[im_id][0]
            assert info.px_count_visib == np.count_nonzero(stored) and info.bbox_visib == mask_bbox(stored)
            assert not np.any(stored & ~o.mask)  # visible mask never leaves the object
            occ = o.mask & ~stored  # object pixels covered by an occluder
            if not occ.any():
                assert _iou(stored, o.mask) >= 0.99
                n_clear += 1
            else:
                n_occluded += 1
                # occluders cover at most 40 % of the silhouette
                assert np.count_nonzero(occ) <= 0.4 * np.count_nonzero(o.mask) + 1
            v_self = keypoint_visibility(OBJ.keypoints, cam, g.R_m2c, g.t_m2c, o.depth)
            s = coco[im_id]
            assert np.array_equal(s.v == 0, v_self == 0)
            assert np.all(v_self[s.v == 2] == 2)  # v=2 needs "not self-occluded"
            # visible to the renderer but labelled hidden: an occluder sits on the keypoint's pixel
            # (the masks show the occluder only over the object, so silhouette-edge keypoints
            # whose pixel is background cannot be checked this way)
            for k in np.nonzero((v_self == 2) & (s.v == 1))[0]:
                c, r = (int(math.floor(x + 0.5)) for x in s.uv[k])
                if o.mask[r, c]:
                    assert occ[r, c]
                    n_occ_kp += 1
            # and a keypoint on a visible object pixel is never labelled hidden by an occluder
            for k in np.nonzero(v_self == 2)[0]:
                c, r = (int(math.floor(x + 0.5)) for x in s.uv[k])
                if stored[r, c]:
                    assert s.v[k] == 2
            # as in BOP, visib_fract = visible / all silhouette pixels
            if info.px_count_all == np.count_nonzero(o.mask):
                assert info.visib_fract == pytest.approx(np.count_nonzero(stored) / max(np.count_nonzero(o.mask), 1))
    assert n_clear > 0 and n_occluded > 0 and n_occ_kp > 0


def test_training_poses_fill_the_image(train_ds):
    out, split = train_ds
    fills = []
    for sd in sorted(split.iterdir()):
        cams = read_scene_camera(sd / "scene_camera.json")
        for im_id, (g,) in read_scene_gt(sd / "scene_gt.json").items():
            K = cams[im_id].K
            centre = OBJ.bbox_min + OBJ.bbox_size / 2
            c = g.R_m2c @ centre + g.t_m2c
            fills.append(K[0, 0] * OBJ.diameter / c[2] / 256)
            fov = math.degrees(2 * math.atan(256 / (2 * K[0, 0])))
            assert 35 - 1e-6 <= fov <= 60 + 1e-6
    assert 0.2 - 1e-9 <= min(fills) and max(fills) <= 0.9 + 1e-9 and max(fills) - min(fills) > 0.3


def test_bop_dataset_reads_synth_output(train_ds):
    out, _ = train_ds
    ds = BopDataset(out, "train_synth", obj_id=1, object=OBJ)
    assert len(ds) == 30
    s = ds[13]
    assert (s.scene_id, s.im_id) == (1, 1)
    coco = {c.image_id: c for c in read_coco(s.image_path.parent.parent / "keypoints_coco.json").samples}[1]
    lab = coco.v > 0
    assert np.abs(s.keypoints_uv[lab] - coco.uv[lab]).max() < 1e-9
    assert ds.load_image(s).shape == (256, 256, 3) and ds.load_mask(s) is not None


def _tree(d: Path) -> list[Path]:
    return sorted(p.relative_to(d) for p in d.rglob("*") if p.is_file())


def test_deterministic_for_seed_and_worker_count(tmp_path):
    a = run_synth(_cfg(tmp_path / "a", num=10, seed=7, scene_size=4, workers=1, width=96, height=80))
    b = run_synth(_cfg(tmp_path / "b", num=10, seed=7, scene_size=4, workers=2, width=96, height=80))
    c = run_synth(_cfg(tmp_path / "c", num=10, seed=8, scene_size=4, workers=2, width=96, height=80))
    files = _tree(a)
    assert files == _tree(b) and len(files) == 10 * 2 + 3 * 4
    for f in files:
        assert filecmp.cmp(a / f, b / f, shallow=False), f
    assert not filecmp.cmp(a / "000000" / "scene_gt.json", c / "000000" / "scene_gt.json", shallow=False)
    assert cv2.imread(str(a / "000000" / "rgb" / "000000.jpg")).shape == (80, 96, 3)


def test_rot_range_limits_rotations(tmp_path):
    split = run_synth(_cfg(tmp_path, num=8, seed=1, rot_range_deg=15.0, workers=1, width=64, height=64))
    R0 = synth.canonical_rotation()
    angles = [rotation_error_deg(g[0].R_m2c, R0) for g in read_scene_gt(split / "000000" / "scene_gt.json").values()]
    assert max(angles) <= 15.0 + 1e-9 and max(angles) > 3.0


def test_sample_rotation_ball_is_not_concentrated():
    rng = np.random.default_rng(0)
    R0 = synth.canonical_rotation()
    a = np.array([rotation_error_deg(synth.sample_rotation(rng, 30.0), R0) for _ in range(2000)])
    # Haar density in a ball of radius A grows like (1 - cos a): the median is near 0.79 A
    assert a.max() <= 30.0 and 0.72 * 30 < np.median(a) < 0.86 * 30


def test_uncoloured_mesh_gets_random_colours(tmp_path):
    plain = dataclasses.replace(OBJ, vertex_colors=None)
    objdir = write_object_dir(plain, tmp_path / "plain_obj")
    split = run_synth(_cfg(tmp_path / "ds", object=str(objdir), num=6, seed=0, workers=1, occluder_prob=0.0, width=128, height=128))
    sats = []
    for i in range(6):
        img = cv2.imread(str(split / "000000" / "rgb" / f"{i:06d}.jpg"))
        m = cv2.imread(str(split / "000000" / "mask_visib" / f"{i:06d}_000000.png"), 0) > 0
        m = cv2.erode(m.astype(np.uint8), np.ones((3, 3), np.uint8)) > 0
        if m.sum() > 50:
            sats.append(np.median(cv2.cvtColor(img, cv2.COLOR_BGR2HSV)[..., 1][m]))
    assert sats and max(sats) > 40  # the renderer alone would draw the plain mesh grey


def test_background_folder_is_used(tmp_path):
    bgs = tmp_path / "bgs"
    (bgs / "sub").mkdir(parents=True)
    cv2.imwrite(str(bgs / "red.png"), np.full((300, 400, 3), (0, 0, 255), np.uint8))
    cv2.imwrite(str(bgs / "sub" / "red2.jpg"), np.full((120, 90, 3), (0, 0, 250), np.uint8))
    split = run_synth(_cfg(tmp_path / "ds", num=6, seed=0, workers=1, backgrounds=str(bgs), occluder_prob=0.0, width=96, height=96))
    for i in range(6):
        img = cv2.imread(str(split / "000000" / "rgb" / f"{i:06d}.jpg")).astype(int)
        m = cv2.imread(str(split / "000000" / "mask_visib" / f"{i:06d}_000000.png"), 0) > 0
        m = cv2.dilate(m.astype(np.uint8), np.ones((15, 15), np.uint8)) > 0
        b, g, r = (np.median(img[..., c][~m]) for c in range(3))
        assert r > g + 40 and r > b + 40


def test_episode_plan():
    rng = np.random.default_rng(0)
    eps = synth.plan_episodes(rng, 300)
    assert {e.kind for e in eps} == {"exit", "fast", "full_occlusion", "partial_occlusion"}
    assert eps[0].start >= 30 and eps[-1].end <= 300
    assert all(a.end <= b.start for a, b in zip(eps, eps[1:]))
    assert len(synth.plan_episodes(np.random.default_rng(0), 60)) <= 1
    assert synth.plan_episodes(np.random.default_rng(0), 20) == []
    assert len(synth.plan_episodes(np.random.default_rng(0), 900)) > 4


def test_blob_occluder_min_radius():
    rng = np.random.default_rng(3)
    m, col = synth.occluder_sprite(rng, 10, "blob", min_radius_px=40)
    c = (m.shape[0] - 1) / 2
    yy, xx = np.mgrid[: m.shape[0], : m.shape[1]]
    disk = (yy - c) ** 2 + (xx - c) ** 2 <= 39.0**2
    assert m[disk].all() and col.shape == m.shape + (3,)
    for kind in ("hand", "bar"):
        m, _ = synth.occluder_sprite(rng, 60, kind)
        assert 0.05 < m.mean() < 0.8


@pytest.fixture(scope="module")
def seq_ds(tmp_path_factory):
    out = tmp_path_factory.mktemp("seq_ds")
    sd = run_synth(_cfg(out, sequence=True, frames=280, seed=2, workers=2, width=256, height=192))
    return out, sd


def test_sequence_files(seq_ds):
    out, sd = seq_ds
    assert sd == out / "test_seq" / "000000"
    cap = cv2.VideoCapture(str(sd / "video.mp4"))
    assert cap.isOpened() and int(cap.get(cv2.CAP_PROP_FRAME_COUNT)) == 280
    ok, frame = cap.read()
    assert ok and frame.shape == (192, 256, 3)
    n_read = 1
    while cap.read()[0]:
        n_read += 1
    assert n_read == 280
    cam = Camera.from_yaml(sd / "camera.yaml")
    cams = read_scene_camera(sd / "scene_camera.json")
    assert (cam.width, cam.height) == (256, 192) and np.allclose(cam.K, cams[0].K, atol=1e-9)
    gts = read_scene_gt(sd / "scene_gt.json")
    assert sorted(gts) == list(range(280))  # im_id = frame index, a pose for every frame
    assert sorted(int(p.stem) for p in (sd / "rgb").iterdir()) == list(range(280))
    coco = read_coco(sd / "keypoints_coco.json")
    for s in coco.samples:
        g = gts[s.image_id][0]
        X = OBJ.keypoints @ g.R_m2c.T + g.t_m2c
        uv = X[:, :2] / X[:, 2:] * [cam.fx, cam.fy] + [cam.cx, cam.cy]
        lab = s.v > 0
        if lab.any():
            assert np.abs(uv[lab] - s.uv[lab]).max() < 0.01


def test_sequence_motion_and_events(seq_ds):
    out, sd = seq_ds
    gts = read_scene_gt(sd / "scene_gt.json")
    infos = read_scene_gt_info(sd / "scene_gt_info.json")
    R = np.array([gts[i][0].R_m2c for i in range(280)])
    t = np.array([gts[i][0].t_m2c for i in range(280)])
    vf = np.array([infos[i][0].visib_fract for i in range(280)])
    boxes = np.array([infos[i][0].bbox_obj for i in range(280)])  # x, y, w, h; may pass the border
    inside = (boxes[:, 0] >= 0) & (boxes[:, 0] + boxes[:, 2] <= 256)
    in_view = (boxes[:, 0] + boxes[:, 2] > 0) & (boxes[:, 0] < 256)
    step_deg = np.array([rotation_error_deg(R[i], R[i + 1]) for i in range(279)])
    step_mm = np.linalg.norm(np.diff(t, axis=0), axis=1)
    assert step_deg.max() < 12 and np.median(step_deg) > 0.3  # smooth but moving
    assert step_mm.max() < 60
    episodes = json.loads((sd / "sequence_info.json").read_text())["episodes"]
    ev = {}
    for e in episodes:
        ev.setdefault(e["kind"], e)
    assert set(ev) == {"fast", "partial_occlusion", "full_occlusion", "exit"}
    f = ev["fast"]
    assert np.median(step_deg[f["start"]:f["end"] - 1]) > 1.8 * np.median(step_deg)
    # full occlusion: >= 30 frames with nothing visible while the object is inside the image
    e = ev["full_occlusion"]
    hidden = (vf[e["start"]:e["end"]] == 0) & inside[e["start"]:e["end"]]
    assert hidden.sum() >= 30
    # partial occlusion: partly visible frames
    p = ev["partial_occlusion"]
    assert np.any((vf[p["start"]:p["end"]] > 0.2) & (vf[p["start"]:p["end"]] < 0.95))
    # exit: the whole silhouette leaves the image and comes back
    x = ev["exit"]
    assert in_view[: x["start"]].all() and not in_view[x["start"]:x["end"]].all() and in_view[x["end"]:].all()
    gone = np.nonzero(~in_view)[0]
    assert vf[gone].max() == 0.0 and np.all((gone >= x["start"]) & (gone < x["end"]))
    assert all(infos[i][0].px_count_all > 0 for i in range(280))  # silhouette counted past the border
    assert vf[: min(ev_["start"] for ev_ in ev.values())].min() == 1.0  # clean start


def test_existing_split_needs_overwrite(tmp_path):
    run_synth(_cfg(tmp_path, num=2, seed=0, workers=1, width=64, height=64))
    with pytest.raises(KptrackError, match="train_synth: already holds data.*--overwrite"):
        run_synth(_cfg(tmp_path, num=2, seed=0, workers=1, width=64, height=64))
    split = run_synth(_cfg(tmp_path, num=3, seed=1, workers=1, width=64, height=64, overwrite=True))
    assert len(list((split / "000000" / "rgb").iterdir())) == 3
    # a second split beside the first shares models/
    run_synth(_cfg(tmp_path, num=2, seed=0, workers=1, width=64, height=64, split="val_synth"))
    assert (tmp_path / "val_synth" / "000000" / "scene_gt.json").is_file()


@pytest.mark.parametrize(
    "kw, msg",
    [
        (dict(num=0), "--num"),
        (dict(backgrounds="/nonexistent/bgs"), "--backgrounds"),
        (dict(rot_range_deg=0.0), "--rot-range"),
        (dict(width=8), "--width"),
        (dict(object="/nonexistent/object"), "object"),
        (dict(split="a/b"), "--split"),
    ],
)
def test_bad_input(tmp_path, kw, msg):
    with pytest.raises(KptrackError, match=msg):
        run_synth(_cfg(tmp_path, **kw))


def test_empty_background_folder(tmp_path):
    (tmp_path / "bgs").mkdir()
    with pytest.raises(KptrackError, match="holds no images"):
        run_synth(_cfg(tmp_path / "o", num=1, backgrounds=str(tmp_path / "bgs")))


def test_cli_synth(tmp_path, capsys):
    from tracker.cli import main

    rc = main(["synth", "--object", "default", "--out", str(tmp_path / "d"), "--num", "3", "--seed", "0", "--workers", "1", "--width", "64", "--height", "64"])
    assert rc == 0 and len(list((tmp_path / "d" / "train_synth" / "000000" / "rgb").iterdir())) == 3
    rc = main(["synth", "--out", str(tmp_path / "d"), "--num", "3"])
    assert rc == 2 and "--overwrite" in capsys.readouterr().err


def test_forked_workers_survive_a_busy_opencv_pool_in_the_parent(tmp_path):
    """Regression: a worker forked while OpenCV's thread pool was alive hung on its first
    cv2 threading call. Run in a subprocess so a regression fails by timeout, not a stuck suite."""
    import subprocess
    import sys

    code = f"""
import cv2, numpy as np
from train.synth import SynthConfig, run_synth
big = np.random.rand(1200, 1200, 3).astype(np.float32)
before = cv2.getNumThreads()
for k in range(3):
    cv2.GaussianBlur(big, (0, 0), 2)
    run_synth(SynthConfig(out=r"{tmp_path}/o{{}}".format(k), num=8, seed=k, workers=2, progress=False, width=64, height=64))
assert cv2.getNumThreads() == before
print("done")
"""
    res = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=120)
    assert res.returncode == 0 and "done" in res.stdout, res.stderr[-2000:]
