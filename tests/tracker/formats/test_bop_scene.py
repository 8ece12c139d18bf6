"""BOP scene JSON round trips, gt info from masks, bad scene files, and the one scene reader
that load_scene_gt and BopDataset share."""

from __future__ import annotations

import json

import numpy as np
import pytest
from kp_bopfiles import intrinsics, make_bop, random_rot

from tracker.errors import KptrackError
from tracker.formats import bop_scene
from tracker.formats.bop_dataset import BopDataset


def test_scene_json_round_trip_is_bit_exact(tmp_path):
    rng = np.random.default_rng(0)
    cams = {i: bop_scene.BopCamera(K=intrinsics(500 + rng.random()), depth_scale=0.1) for i in range(3)}
    gts = {i: [bop_scene.BopGt(obj_id=1, R_m2c=random_rot(rng), t_m2c=rng.normal(size=3) * 100), bop_scene.BopGt(2, random_rot(rng), rng.normal(size=3))] for i in range(3)}
    infos = {i: [bop_scene.BopGtInfo((1, 2, 3, 4), (2, 3, 1, 1), 12, 5, 5 / 12), bop_scene.BopGtInfo(bop_scene.EMPTY_BOX, bop_scene.EMPTY_BOX, 0, 0, 0.0)] for i in range(3)}
    bop_scene.write_scene_camera(tmp_path / "scene_camera.json", cams)
    bop_scene.write_scene_gt(tmp_path / "scene_gt.json", gts)
    bop_scene.write_scene_gt_info(tmp_path / "scene_gt_info.json", infos)

    # the files are standard BOP JSON: string keys, flat row-major lists
    raw = json.loads((tmp_path / "scene_gt.json").read_text())
    assert set(raw) == {"0", "1", "2"} and len(raw["1"][0]["cam_R_m2c"]) == 9 and raw["1"][1]["obj_id"] == 2
    assert raw["0"][0]["cam_R_m2c"][1] == gts[0][0].R_m2c[0, 1]  # row-major

    c2 = bop_scene.read_scene_camera(tmp_path / "scene_camera.json")
    g2 = bop_scene.read_scene_gt(tmp_path / "scene_gt.json")
    i2 = bop_scene.read_scene_gt_info(tmp_path / "scene_gt_info.json")
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
    info = bop_scene.gt_info_from_masks(m_all, m_vis)
    assert info.bbox_obj == (3, 2, 6, 4)
    assert info.bbox_visib == (3, 2, 3, 4)
    assert info.px_count_all == 24 and info.px_count_visib == 12 and info.visib_fract == 0.5
    empty = bop_scene.gt_info_from_masks(np.zeros((4, 4), bool), np.zeros((4, 4), bool))
    assert empty.bbox_obj == bop_scene.EMPTY_BOX and empty.visib_fract == 0.0


def test_bad_scene_json_names_file(tmp_path):
    p = tmp_path / "scene_gt.json"
    p.write_text("{not json")
    with pytest.raises(KptrackError, match="scene_gt.json.*JSON"):
        bop_scene.read_scene_gt(p)
    p.write_text(json.dumps({"0": [{"cam_R_m2c": [1, 0, 0], "cam_t_m2c": [0, 0, 1], "obj_id": 1}]}))
    with pytest.raises(KptrackError, match="cam_R_m2c.*9"):
        bop_scene.read_scene_gt(p)
    p2 = tmp_path / "scene_camera.json"
    p2.write_text(json.dumps({"0": {"depth_scale": 1.0}}))
    with pytest.raises(KptrackError, match="cam_K"):
        bop_scene.read_scene_camera(p2)
    d = tmp_path / "sub" / "scene_camera.json"
    d.mkdir(parents=True)  # a folder where the file should be: one clear error, no IsADirectoryError
    with pytest.raises(KptrackError, match="scene_camera.json: not a readable JSON file"):
        bop_scene.read_scene_camera(d)


def test_read_scene_and_load_scene_gt(tmp_path):
    truth = make_bop(tmp_path, n_scenes=1, n_im=3)
    sd = tmp_path / "test" / "000000"
    scene = bop_scene.read_scene(sd)
    assert scene.scene_id == 0 and sorted(scene.gt) == [0, 1, 2] and scene.gt_info is not None
    gt = bop_scene.load_scene_gt(sd, obj_id=1)
    assert gt.im_ids.tolist() == [0, 1, 2] and gt.scene_id == 0
    for i in range(3):
        K, R, t = truth[(0, i)]
        assert np.array_equal(gt.K[i], K) and np.array_equal(gt.R_m2c[i], R) and np.array_equal(gt.t_m2c[i], t)
        assert gt.visib_fract[i] == pytest.approx(0.1 * i)
    (sd / "scene_gt_info.json").unlink()
    assert bop_scene.read_scene(sd).gt_info is None
    assert np.isnan(bop_scene.load_scene_gt(sd, obj_id=1).visib_fract).all()
    with pytest.raises(KptrackError, match="no instance of obj_id 3"):
        bop_scene.load_scene_gt(sd, obj_id=3)


def test_scene_errors_are_the_same_for_every_reader(tmp_path):
    """load_scene_gt (eval, demo, bench) and BopDataset (train, viz) read a scene through one
    function, so a broken scene gives one message whichever command reads it."""
    make_bop(tmp_path, n_scenes=1, n_im=2)
    sd = tmp_path / "test" / "000000"
    cams = json.loads((sd / "scene_camera.json").read_text())
    del cams["1"]
    (sd / "scene_camera.json").write_text(json.dumps(cams))
    msgs = []
    for read in (lambda: bop_scene.load_scene_gt(sd), lambda: BopDataset(sd)):
        with pytest.raises(KptrackError, match=r"scene_camera\.json: no cam_K for image 1") as e:
            read()
        msgs.append(str(e.value))
    (sd / "scene_camera.json").unlink()
    for read in (lambda: bop_scene.load_scene_gt(sd), lambda: BopDataset(sd)):
        with pytest.raises(KptrackError, match=r"000000: no scene_camera\.json") as e:
            read()
        msgs.append(str(e.value))
    (sd / "scene_gt.json").unlink()
    for read in (lambda: bop_scene.load_scene_gt(sd), lambda: BopDataset(sd)):
        with pytest.raises(KptrackError, match=r"000000: no scene_gt\.json") as e:
            read()
        msgs.append(str(e.value))
    assert msgs[0] == msgs[1] and msgs[2] == msgs[3] and msgs[4] == msgs[5]
