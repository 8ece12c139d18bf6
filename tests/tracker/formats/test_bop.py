"""BOP json / results CSV round trips and the BopDataset reader on tiny hand-made BOP folders."""

from __future__ import annotations

import json
import math

import cv2
import numpy as np
import pytest

from tracker.formats import bop
from tracker.errors import KptrackError


def _rot(rng):
    q, r = np.linalg.qr(rng.normal(size=(3, 3)))
    q = q * np.sign(np.diag(r))
    if np.linalg.det(q) < 0:
        q[:, 0] = -q[:, 0]
    return q


def _K(f=500.0, cx=319.5, cy=239.5):
    return np.array([[f, 0, cx], [0, f * 1.01, cy], [0, 0, 1.0]])


def test_scene_json_round_trip_is_bit_exact(tmp_path):
    rng = np.random.default_rng(0)
    cams = {i: bop.BopCamera(K=_K(500 + rng.random()), depth_scale=0.1) for i in range(3)}
    gts = {i: [bop.BopGt(obj_id=1, R_m2c=_rot(rng), t_m2c=rng.normal(size=3) * 100), bop.BopGt(2, _rot(rng), rng.normal(size=3))] for i in range(3)}
    infos = {i: [bop.BopGtInfo((1, 2, 3, 4), (2, 3, 1, 1), 12, 5, 5 / 12), bop.BopGtInfo(bop.EMPTY_BOX, bop.EMPTY_BOX, 0, 0, 0.0)] for i in range(3)}
    bop.write_scene_camera(tmp_path / "scene_camera.json", cams)
    bop.write_scene_gt(tmp_path / "scene_gt.json", gts)
    bop.write_scene_gt_info(tmp_path / "scene_gt_info.json", infos)

    # the files are standard BOP JSON: string keys, flat row-major lists
    raw = json.loads((tmp_path / "scene_gt.json").read_text())
    assert set(raw) == {"0", "1", "2"} and len(raw["1"][0]["cam_R_m2c"]) == 9 and raw["1"][1]["obj_id"] == 2
    assert raw["0"][0]["cam_R_m2c"][1] == gts[0][0].R_m2c[0, 1]  # row-major

    c2 = bop.read_scene_camera(tmp_path / "scene_camera.json")
    g2 = bop.read_scene_gt(tmp_path / "scene_gt.json")
    i2 = bop.read_scene_gt_info(tmp_path / "scene_gt_info.json")
    for i in range(3):
        assert np.array_equal(c2[i].K, cams[i].K) and c2[i].depth_scale == 0.1
        for a, b in zip(g2[i], gts[i]):
            assert a.obj_id == b.obj_id
            assert np.array_equal(a.R_m2c, b.R_m2c) and np.array_equal(a.t_m2c, b.t_m2c)
        assert i2[i] == infos[i]


def test_mask_bbox_and_gt_info():
    m_all = np.zeros((10, 12), bool)
    m_all[2:6, 3:9] = True
    m_vis = m_all.copy()
    m_vis[:, 6:] = False
    info = bop.gt_info_from_masks(m_all, m_vis)
    assert info.bbox_obj == (3, 2, 6, 4)
    assert info.bbox_visib == (3, 2, 3, 4)
    assert info.px_count_all == 24 and info.px_count_visib == 12 and info.visib_fract == 0.5
    empty = bop.gt_info_from_masks(np.zeros((4, 4), bool), np.zeros((4, 4), bool))
    assert empty.bbox_obj == bop.EMPTY_BOX and empty.visib_fract == 0.0


def test_results_csv_round_trip_and_streaming(tmp_path):
    rng = np.random.default_rng(1)
    rows = [bop.BopResult(48, i, 1, 0.5 + i / 10, _rot(rng), rng.normal(size=3) * 300, 0.0123) for i in range(4)]
    p = tmp_path / "res.csv"
    w = bop.ResultsCsvWriter(p)
    w.write(rows[0])
    # flushed per row: another reader sees the row before close
    assert p.read_text().splitlines()[0] == "scene_id,im_id,obj_id,score,R,t,time"
    assert len(bop.read_results_csv(p)) == 1
    for r in rows[1:]:
        w.write(r)
    w.close()
    back = bop.read_results_csv(p)
    assert len(back) == 4
    for a, b in zip(back, rows):
        assert (a.scene_id, a.im_id, a.obj_id, a.score, a.time) == (b.scene_id, b.im_id, b.obj_id, b.score, b.time)
        assert np.array_equal(a.R_m2c, b.R_m2c) and np.array_equal(a.t_m2c, b.t_m2c)
    line = p.read_text().splitlines()[1].split(",")
    assert len(line[4].split()) == 9 and len(line[5].split()) == 3


def test_results_csv_bad_input(tmp_path):
    with pytest.raises(KptrackError, match="not found"):
        bop.read_results_csv(tmp_path / "none.csv")
    p = tmp_path / "bad.csv"
    p.write_text("a,b,c\n1,2,3\n")
    with pytest.raises(KptrackError, match="bad.csv.*header"):
        bop.read_results_csv(p)
    p.write_text("scene_id,im_id,obj_id,score,R,t,time\n1,2,1,0.9,1 0 0 0 1 0 0 0,0 0 1,0.1\n")
    with pytest.raises(KptrackError, match=r"bad.csv:2"):
        bop.read_results_csv(p)


def test_bad_scene_json_names_file(tmp_path):
    p = tmp_path / "scene_gt.json"
    p.write_text("{not json")
    with pytest.raises(KptrackError, match="scene_gt.json.*JSON"):
        bop.read_scene_gt(p)
    p.write_text(json.dumps({"0": [{"cam_R_m2c": [1, 0, 0], "cam_t_m2c": [0, 0, 1], "obj_id": 1}]}))
    with pytest.raises(KptrackError, match="cam_R_m2c.*9"):
        bop.read_scene_gt(p)
    p2 = tmp_path / "scene_camera.json"
    p2.write_text(json.dumps({"0": {"depth_scale": 1.0}}))
    with pytest.raises(KptrackError, match="cam_K"):
        bop.read_scene_camera(p2)


def _make_bop(root, split="test", n_scenes=2, n_im=3, ext=".png", seed=0):
    """A tiny LINEMOD-style BOP split: two objects per image, obj 1 at gt index 1."""
    rng = np.random.default_rng(seed)
    truth = {}
    for s in range(n_scenes):
        sd = root / split / f"{s:06d}"
        (sd / "rgb").mkdir(parents=True)
        (sd / "mask_visib").mkdir()
        cams, gts, infos = {}, {}, {}
        for im in range(n_im):
            K = _K(480 + 10 * im)
            R = _rot(rng)
            t = np.array([rng.normal() * 20, rng.normal() * 20, 600 + rng.random() * 100])
            cams[im] = bop.BopCamera(K=K, depth_scale=1.0)
            gts[im] = [bop.BopGt(5, _rot(rng), np.array([0, 0, 700.0])), bop.BopGt(1, R, t)]
            infos[im] = [bop.BopGtInfo((0, 0, 5, 5), (0, 0, 5, 5), 25, 25, 1.0), bop.BopGtInfo((1, 1, 4, 4), (1, 1, 4, 2), 16, 8, 0.1 * im)]
            img = np.full((24, 32, 3), 10 * im + s, np.uint8)
            cv2.imwrite(str(sd / "rgb" / f"{im:06d}{ext}"), img)
            m = np.zeros((24, 32), np.uint8)
            m[1:3, 1:5] = 255
            cv2.imwrite(str(sd / "mask_visib" / f"{im:06d}_000001.png"), m)
            truth[(s, im)] = (K, R, t)
        bop.write_scene_camera(sd / "scene_camera.json", cams)
        bop.write_scene_gt(sd / "scene_gt.json", gts)
        bop.write_scene_gt_info(sd / "scene_gt_info.json", infos)
    return truth


@pytest.mark.parametrize("ext", [".png", ".jpg"])
def test_bop_dataset_yields_object_instances(tmp_path, ext):
    truth = _make_bop(tmp_path, ext=ext)
    kps = np.array([[0, 0, 0], [50.0, -20, 10], [-30, 40, 25]])
    ds = bop.BopDataset(tmp_path, "test", obj_id=1, keypoints_mm=kps)
    assert len(ds) == 6
    for s in ds:
        K, R, t = truth[(s.scene_id, s.im_id)]
        assert s.gt_index == 1 and s.obj_id == 1
        assert np.array_equal(s.K, K) and np.array_equal(s.R_m2c, R) and np.array_equal(s.t_m2c, t)
        assert s.image_path.name == f"{s.im_id:06d}{ext}"
        assert s.mask_path is not None and s.mask_path.name == f"{s.im_id:06d}_000001.png"
        # keypoints: an independent projection
        for x, uv in zip(kps, s.keypoints_uv):
            c = R @ x + t
            assert uv == pytest.approx([K[0, 0] * c[0] / c[2] + K[0, 2], K[1, 1] * c[1] / c[2] + K[1, 2]], abs=1e-9)
        assert s.visib_fract == pytest.approx(0.1 * s.im_id)
        assert s.bbox_visib == (1, 1, 4, 2)
        img = ds.load_image(s)
        assert img.shape == (24, 32, 3) and int(img[0, 0, 0]) == pytest.approx(10 * s.im_id + s.scene_id, abs=2)
        assert ds.load_mask(s).sum() == 8
    # other object, visibility filter, no keypoints
    assert len(bop.BopDataset(tmp_path, "test", obj_id=5)) == 6
    assert len(bop.BopDataset(tmp_path, "test", obj_id=3)) == 0
    assert len(bop.BopDataset(tmp_path, "test", obj_id=1, min_visib_fract=0.15)) == 2
    assert bop.BopDataset(tmp_path, "test", obj_id=1)[0].keypoints_uv.shape == (0, 2)


def test_bop_dataset_accepts_split_or_scene_folder(tmp_path):
    _make_bop(tmp_path)
    assert len(bop.BopDataset(tmp_path)) == 6  # one split: found
    assert len(bop.BopDataset(tmp_path / "test")) == 6
    one = bop.BopDataset(tmp_path / "test" / "000001")
    assert len(one) == 3 and {s.scene_id for s in one} == {1}


def test_bop_dataset_object_keypoints_and_behind_camera(tmp_path):
    _make_bop(tmp_path, n_scenes=1, n_im=1)

    class Obj:
        keypoints = np.array([[0.0, 0.0, -10000.0], [0.0, 0.0, 0.0]])

    s = bop.BopDataset(tmp_path, "test", object=Obj())[0]
    # the first keypoint is far behind the object: NaN only if behind the camera
    c = s.R_m2c @ Obj.keypoints[0] + s.t_m2c
    assert np.isnan(s.keypoints_uv[0]).all() == (c[2] <= 1e-6)
    assert np.isfinite(s.keypoints_uv[1]).all()


def test_bop_dataset_errors_name_the_folder(tmp_path):
    _make_bop(tmp_path, n_scenes=1)
    sd = tmp_path / "test" / "000000"
    with pytest.raises(KptrackError, match="train.*split folder not found"):
        bop.BopDataset(tmp_path, "train")
    (sd / "scene_gt.json").unlink()
    with pytest.raises(KptrackError, match=r"000000: no scene_gt\.json") as e:
        bop.BopDataset(tmp_path, "test")
    assert "write scene_gt.json" in str(e.value) or "Use a BOP split" in str(e.value)
    with pytest.raises(KptrackError, match="not found"):
        bop.BopDataset(tmp_path / "missing")
    empty = tmp_path / "empty"
    empty.mkdir()
    with pytest.raises(KptrackError, match="no BOP scene folders"):
        bop.BopDataset(empty)


def test_bop_dataset_missing_image_and_corrupt_image(tmp_path):
    _make_bop(tmp_path, n_scenes=1, n_im=2)
    sd = tmp_path / "test" / "000000"
    (sd / "rgb" / "000001.png").write_bytes(b"not a png")
    ds = bop.BopDataset(tmp_path, "test")
    assert ds.load_image(ds[1]) is None
    (sd / "rgb" / "000001.png").unlink()
    with pytest.raises(KptrackError, match="rgb: no image 000001"):
        bop.BopDataset(tmp_path, "test")


def test_project_points_nan_behind_camera():
    uv = bop.project_points(np.array([[0, 0, 0], [0, 0, -2000.0]]), np.eye(3), np.array([0, 0, 1000.0]), _K())
    assert uv[0] == pytest.approx([319.5, 239.5]) and math.isnan(uv[1, 0])
