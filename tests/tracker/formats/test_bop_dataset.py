"""The BopDataset reader on tiny hand-made BOP folders, and the keypoint projection it uses."""

from __future__ import annotations

import math

import numpy as np
import pytest
from kp_bopfiles import intrinsics, make_bop

from tracker.errors import KptrackError
from tracker.formats import bop_dataset
from tracker.geometry import project


@pytest.mark.parametrize("ext", [".png", ".jpg"])
def test_bop_dataset_yields_object_instances(tmp_path, ext):
    truth = make_bop(tmp_path, ext=ext)
    kps = np.array([[0, 0, 0], [50.0, -20, 10], [-30, 40, 25]])
    ds = bop_dataset.BopDataset(tmp_path, "test", obj_id=1, keypoints_mm=kps)
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
    assert len(bop_dataset.BopDataset(tmp_path, "test", obj_id=5)) == 6
    assert len(bop_dataset.BopDataset(tmp_path, "test", obj_id=3)) == 0
    assert len(bop_dataset.BopDataset(tmp_path, "test", obj_id=1, min_visib_fract=0.15)) == 2
    assert bop_dataset.BopDataset(tmp_path, "test", obj_id=1)[0].keypoints_uv.shape == (0, 2)


def test_bop_dataset_accepts_split_or_scene_folder(tmp_path):
    make_bop(tmp_path)
    assert len(bop_dataset.BopDataset(tmp_path)) == 6  # one split: found
    assert len(bop_dataset.BopDataset(tmp_path / "test")) == 6
    one = bop_dataset.BopDataset(tmp_path / "test" / "000001")
    assert len(one) == 3 and {s.scene_id for s in one} == {1}


def test_bop_dataset_object_keypoints_and_behind_camera(tmp_path):
    make_bop(tmp_path, n_scenes=1, n_im=1)

    class Obj:
        keypoints = np.array([[0.0, 0.0, -10000.0], [0.0, 0.0, 0.0]])

    s = bop_dataset.BopDataset(tmp_path, "test", object=Obj())[0]
    # the first keypoint is far behind the object: NaN only if behind the camera
    c = s.R_m2c @ Obj.keypoints[0] + s.t_m2c
    assert np.isnan(s.keypoints_uv[0]).all() == (c[2] <= 1e-6)
    assert np.isfinite(s.keypoints_uv[1]).all()


def test_bop_dataset_errors_name_the_folder(tmp_path):
    make_bop(tmp_path, n_scenes=1)
    sd = tmp_path / "test" / "000000"
    with pytest.raises(KptrackError, match="train.*split folder not found"):
        bop_dataset.BopDataset(tmp_path, "train")
    (sd / "scene_gt.json").unlink()
    with pytest.raises(KptrackError, match=r"000000: no scene_gt\.json") as e:
        bop_dataset.BopDataset(tmp_path, "test")
    assert "write scene_gt.json" in str(e.value) or "Use a BOP split" in str(e.value)
    with pytest.raises(KptrackError, match="not found"):
        bop_dataset.BopDataset(tmp_path / "missing")
    empty = tmp_path / "empty"
    empty.mkdir()
    with pytest.raises(KptrackError, match="no BOP scene folders"):
        bop_dataset.BopDataset(empty)


def test_bop_dataset_missing_image_and_corrupt_image(tmp_path):
    make_bop(tmp_path, n_scenes=1, n_im=2)
    sd = tmp_path / "test" / "000000"
    (sd / "rgb" / "000001.png").write_bytes(b"not a png")
    ds = bop_dataset.BopDataset(tmp_path, "test")
    assert ds.load_image(ds[1]) is None
    (sd / "rgb" / "000001.png").unlink()
    with pytest.raises(KptrackError, match="rgb: no image 000001"):
        bop_dataset.BopDataset(tmp_path, "test")


def test_keypoints_project_with_the_one_pinhole_nan_behind_camera():
    # BopDataset projects keypoints with tracker.geometry.project (BOP images are undistorted)
    uv = project(np.array([[0, 0, 0], [0, 0, -2000.0]]), np.eye(3), np.array([0, 0, 1000.0]), intrinsics())
    assert uv[0] == pytest.approx([319.5, 239.5]) and math.isnan(uv[1, 0])
