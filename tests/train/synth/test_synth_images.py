"""train/synth training images: BOP layout, exact labels, masks against fresh renders, poses, determinism,
colourings and background folders (train.synth.images, labels, job, writer)."""

from __future__ import annotations

import dataclasses
import filecmp
import json
import math
from pathlib import Path

import cv2
import numpy as np
import pytest

from tracker.camera import Camera
from tracker.formats.bop_dataset import BopDataset
from tracker.formats.bop_scene import mask_bbox, read_scene_camera, read_scene_gt, read_scene_gt_info
from tracker.formats.coco import read_coco
from tracker.objects import load_object, write_object_dir
from tracker.render import Renderer, keypoint_visibility
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
