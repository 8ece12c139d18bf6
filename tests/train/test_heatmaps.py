"""Heatmap targets: the frame -> crop -> heatmap -> decode -> frame round trip, visibility rules."""

import numpy as np
import pytest

from tracker.geometry.crop import HEATMAP_SIZE, INPUT_SIZE, apply_affine, crop_affine, heatmap_to_crop, heatmap_to_frame, invert_affine
from tracker.pipeline.decode import decode_dark
from train.heatmaps import decode_heatmaps, gaussian_targets


@pytest.mark.parametrize("side,rot_deg", [(120.0, 0.0), (300.0, 25.0), (64.0, -170.0)])
def test_round_trip_frame_to_heatmap_to_frame(side, rot_deg):
    rng = np.random.default_rng(int(side))
    center = np.array([321.7, 240.2])
    A = crop_affine(center, side, np.deg2rad(rot_deg))
    # points well inside the crop, at random subpixel positions
    q = rng.uniform(30, INPUT_SIZE - 31, size=(6, 2))
    p = apply_affine(invert_affine(A), q)  # frame pixels
    t, w = gaussian_targets(apply_affine(A, p), np.full(6, 2), sigma=2.0)
    assert t.shape == (6, HEATMAP_SIZE, HEATMAP_SIZE) and t.dtype == np.float32
    np.testing.assert_array_equal(w, 1.0)
    xy, conf = decode_dark(t)
    back = heatmap_to_frame(xy, A)
    err = np.linalg.norm(back - p, axis=1)
    assert err.max() < 0.1, err
    assert np.all(conf > 0.9)
    # the training-side decoder is the tracker's one
    np.testing.assert_allclose(decode_heatmaps(t)[0], xy)


def test_peak_is_one_at_exact_cell_and_sigma_sets_width():
    q = heatmap_to_crop(np.array([[10.0, 20.0]]))  # exactly on cell (x=10, y=20)
    t, _ = gaussian_targets(q, [2], sigma=3.0)
    y, x = np.unravel_index(np.argmax(t[0]), t[0].shape)
    assert (x, y) == (10, 20) and t[0, y, x] == pytest.approx(1.0)
    assert t[0, y, x + 3] == pytest.approx(np.exp(-0.5), rel=1e-5)  # one sigma away
    t2, _ = gaussian_targets(q, [2], sigma=1.0)
    assert t2[0, y, x + 3] < t[0, y, x + 3]


def test_visibility_rules_hidden_unlabelled_and_outside():
    q = np.array([[100.0, 100.0], [120.0, 80.0], [50.0, 60.0], [300.0, 100.0], [-20.0, 5.0], [np.nan, np.nan]])
    v = np.array([2, 1, 0, 2, 1, 0])
    t, w = gaussian_targets(q, v)
    assert t[0].max() > 0.9 and t[1].max() > 0.9  # visible and hidden both get targets
    np.testing.assert_array_equal(w, [1, 1, 0, 1, 1, 0])
    assert t[2].max() == 0 and t[5].max() == 0  # unlabelled: zero target, zero weight
    assert t[3].max() == 0 and t[4].max() == 0  # outside the crop: zero target, weight kept


def test_bad_arguments():
    with pytest.raises(ValueError):
        gaussian_targets(np.zeros((2, 2)), [2, 2], sigma=0.0)
    with pytest.raises(ValueError):
        gaussian_targets(np.zeros((2, 2)), [2], sigma=2.0)
