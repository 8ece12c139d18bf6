"""Heatmap targets: the frame -> crop -> heatmap -> decode -> frame round trip, visibility rules."""

import numpy as np
import pytest

from tracker.geometry.crop import HEATMAP_SIZE, INPUT_SIZE, apply_affine, crop_affine, heatmap_to_crop, heatmap_to_frame, invert_affine
from tracker.pipeline.decode import decode_dark
from train.heatmaps import batch_targets, decode_heatmaps, gaussian_targets, half_resolution_keypoints, sigma_at


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


def test_sigma_schedule_narrows_from_start_to_final_then_holds():
    s = [sigma_at(i, 1000, 2.0, 5.0, 0.4) for i in range(0, 1001, 50)]
    assert s[0] == pytest.approx(5.0) and s[8] == pytest.approx(2.0) and s[-1] == pytest.approx(2.0)
    assert all(a >= b for a, b in zip(s, s[1:]))  # never widens again
    assert sigma_at(200, 1000, 2.0, 5.0, 0.4) == pytest.approx(3.5)  # half way down at half the decay
    assert sigma_at(0, 1000, 2.0, None) == 2.0


def test_batch_targets_match_per_crop_targets_at_the_given_sigma():
    rng = np.random.default_rng(3)
    q = rng.uniform(-20, INPUT_SIZE + 20, size=(3, 5, 2))
    v = rng.integers(0, 3, size=(3, 5))
    t = batch_targets(q, v, 3.5)
    assert t.shape == (3, 5, HEATMAP_SIZE, HEATMAP_SIZE)
    for i in range(3):
        np.testing.assert_array_equal(t[i], gaussian_targets(q[i], v[i], 3.5)[0])
    assert not np.array_equal(t, batch_targets(q, v, 2.0))


def test_peak_weight_scales_the_error_on_peak_cells_only():
    torch = pytest.importorskip("torch")
    from train.validation import heatmap_loss

    target = torch.zeros(1, 1, 4, 4)
    target[0, 0, 1, 1] = 1.0
    w = torch.ones(1, 1)
    miss_peak = torch.zeros(1, 1, 4, 4)  # error 1 on the peak cell
    miss_bg = target.clone()
    miss_bg[0, 0, 3, 3] = 1.0  # error 1 on a background cell
    assert float(heatmap_loss(miss_peak, target, w)) == float(heatmap_loss(miss_bg, target, w)) == 1.0
    assert float(heatmap_loss(miss_peak, target, w, peak_weight=5.0)) == pytest.approx(5.0)
    assert float(heatmap_loss(miss_bg, target, w, peak_weight=5.0)) == pytest.approx(1.0)


def test_half_resolution_keypoints_follow_a_2x2_average_pool():
    torch = pytest.importorskip("torch")
    img = torch.zeros(1, 1, 64, 64)
    img[0, 0, 20:22, 10:12] = 1.0  # a 2x2 block: centre at crop pixel (x, y) = (10.5, 20.5)
    small = torch.nn.functional.avg_pool2d(img, 2)[0, 0]
    yx = np.argwhere(small.numpy() == 1.0)
    assert yx.tolist() == [[10, 5]]
    np.testing.assert_allclose(half_resolution_keypoints([[10.5, 20.5]]), [[5.0, 10.0]])


def test_hidden_peak_lowers_only_the_hidden_keypoints_targets():
    from train.heatmaps import scale_hidden

    q = np.array([[[60.0, 70.0], [128.3, 100.9], [200.0, 40.0]]])
    v = np.array([[2, 1, 0]])
    t = batch_targets(q, v, 2.0)
    assert scale_hidden(t, v, 1.0) is t
    s = scale_hidden(t, v, 0.4)
    assert np.array_equal(s[0, 0], t[0, 0]) and np.array_equal(s[0, 2], t[0, 2])  # visible, unlabelled
    assert s[0, 1].max() == pytest.approx(0.4 * t[0, 1].max())
    assert t[0, 1].max() > 0.9  # the input is not changed


def test_the_training_loop_draws_hidden_targets_at_hidden_peak():
    import types

    import torch

    from train.config import TrainConfig
    from train.loop import _targets

    q = np.array([[[60.0, 70.0], [128.3, 100.9]]])
    v = np.array([[2, 1]])
    batch = {"keypoints": torch.from_numpy(q), "visibility": torch.from_numpy(v),
             "target": torch.from_numpy(batch_targets(q, v, 2.0))}
    for sigma_start in (None, 4.0):  # the workers' targets, and targets redrawn by the sigma schedule
        cfg = TrainConfig(data="d", out="o", iters=100, hidden_peak=0.5, sigma_start=sigma_start)
        t = _targets(types.SimpleNamespace(cfg=cfg, it=0, device=torch.device("cpu")), batch, low_res=False).numpy()
        assert t[0, 0].max() > 0.9 and 0.45 < t[0, 1].max() <= 0.5


@pytest.mark.parametrize("hidden_peak", [1.0, 0.3])
@pytest.mark.parametrize("sizes", [(INPUT_SIZE, HEATMAP_SIZE), (INPUT_SIZE // 2, HEATMAP_SIZE // 2)])
def test_torch_targets_equal_the_numpy_reference(hidden_peak, sizes):
    """The loop's vectorised targets against the per-crop numpy ones, with every visibility flag,
    unlabelled NaN keypoints and centres off the heatmap among them."""
    import torch

    from train.heatmaps import batch_targets_torch, scale_hidden

    rng = np.random.default_rng(7)
    q = rng.uniform(-30, sizes[0] + 30, size=(6, 9, 2))
    q[0, 0] = np.nan
    q[1, 2] = [sizes[0] + 5.0, 10.0]  # just off the heatmap: all zeros, not a clipped Gaussian
    v = rng.integers(0, 3, size=(6, 9))
    v[1, 2] = 2
    want = scale_hidden(batch_targets(q, v, 3.3, *sizes), v, hidden_peak)
    got = batch_targets_torch(torch.from_numpy(q), torch.from_numpy(v), 3.3, hidden_peak, *sizes)
    assert got.dtype == torch.float32 and got.shape == want.shape
    np.testing.assert_allclose(got.numpy(), want, rtol=0, atol=1e-6)
    assert not got[1, 2].any() and not got[0, 0].any()
    assert (want > 0.1).any()  # the comparison is not between two empty batches


def test_the_training_loop_redraws_half_resolution_targets_at_the_scheduled_sigma():
    import types

    import torch

    from train.config import TrainConfig
    from train.loop import _targets

    q = np.array([[[60.0, 70.0], [128.3, 100.9]]])
    v = np.array([[2, 1]])
    batch = {"keypoints": torch.from_numpy(q), "visibility": torch.from_numpy(v),
             "target": torch.from_numpy(batch_targets(q, v, 2.0))}
    cfg = TrainConfig(data="d", out="o", iters=100, sigma_start=4.0)
    t = _targets(types.SimpleNamespace(cfg=cfg, it=0, device=torch.device("cpu")), batch, low_res=True).numpy()
    want = batch_targets(half_resolution_keypoints(q), v, 4.0, INPUT_SIZE // 2, HEATMAP_SIZE // 2)
    np.testing.assert_allclose(t, want, rtol=0, atol=1e-6)
