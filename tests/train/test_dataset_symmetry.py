"""Training labels of a symmetric object: BOP records carry the canonical equivalent's keypoints,
and every augmented crop is labelled with the equivalent canonical for the crop as rotated."""

import math

import numpy as np
import pytest
from kp_tinydata import write_tiny_bop

from kp_meshes import box_object
from tracker.geometry.crop import apply_affine
from tracker.objects.symmetry_keypoints import canonical_keypoint_labels
from train.augment import AugmentConfig
from train.dataset import CropDataset
from train.records import load_records


@pytest.fixture(scope="module")
def box():
    return box_object("box", "box")


def test_records_and_rotated_crops_get_canonical_labels(tmp_path, box):
    root = write_tiny_bop(tmp_path / "d", box, n=12)
    recs = load_records(root, box)
    assert all(r.symmetric is not None for r in recs)
    raw_differs = 0
    for r in recs:
        s = r.symmetric
        uv, _ = canonical_keypoint_labels(s.R_m2c, s.t_m2c, s.K, box.keypoints, s.group)
        assert np.allclose(r.keypoints_uv, uv, equal_nan=True)
        raw = (s.R_m2c @ box.keypoints.T).T + s.t_m2c
        raw_uv = (s.K @ raw.T).T
        raw_differs += np.abs(raw_uv[:, :2] / raw_uv[:, 2:] - uv).max() > 1.0
    assert raw_differs >= 1  # the canonical equivalent is not always the stored one
    ds = CropDataset(recs, augment=AugmentConfig(rotation_deg=180.0, search_prob=0.0))
    relabelled = 0
    for i in range(24):
        item = ds[(i % len(recs), i)]
        r = recs[i % len(recs)]
        A = item["affine"]
        want = apply_affine(A, r.symmetric(math.atan2(A[1, 0], A[0, 0]))[0])
        assert np.allclose(item["keypoints"], want, atol=1e-3, equal_nan=True)
        relabelled += np.abs(apply_affine(A, r.keypoints_uv) - want).max() > 1.0
    assert relabelled >= 1  # the crop's rotation changed the choice at least once
