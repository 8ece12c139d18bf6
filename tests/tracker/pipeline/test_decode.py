"""tracker/decode.py: numba DARK vs its numpy twin, accuracy on training-style Gaussian targets,
invalid heatmaps, border peaks, and the frame -> crop -> heatmap -> decode -> frame round trip."""

from __future__ import annotations

import numpy as np
import pytest

from tracker.geometry.crop import crop_affine, frame_to_heatmap
from tracker.pipeline.decode import decode_argmax, decode_dark, decode_dark_ref, decode_to_frame
from tracker.errors import KptrackError

SIGMA = 2.0  # the training target's sigma, heatmap cells


def gaussian_maps(centres: np.ndarray, size: int = 64, sigma: float = SIGMA) -> np.ndarray:
    """(K, size, size) float32 targets exp(-d^2 / (2 sigma^2)) at centres (K, 2) = (x, y) cells."""
    yy, xx = np.mgrid[0:size, 0:size].astype(np.float64)
    d2 = (xx[None] - centres[:, 0, None, None]) ** 2 + (yy[None] - centres[:, 1, None, None]) ** 2
    return np.exp(-d2 / (2.0 * sigma * sigma)).astype(np.float32)


def rms(a: np.ndarray, b: np.ndarray) -> float:
    """Root mean square Euclidean distance between (K, 2) point sets."""
    return float(np.sqrt(np.mean(np.sum((a - b) ** 2, axis=1))))


@pytest.mark.parametrize("blur", [0, 3, 5])
def test_numba_matches_numpy_reference_on_random_and_gaussian_maps(blur):
    rng = np.random.default_rng(blur)
    maps = [
        rng.random((12, 64, 64), dtype=np.float32),
        (rng.standard_normal((12, 48, 40)) * 0.3).astype(np.float32),  # negatives, non-square
        gaussian_maps(rng.uniform(-1.0, 64.0, (24, 2))),  # includes peaks on and near the border
        gaussian_maps(rng.uniform(5, 58, (8, 2))) + 0.05 * rng.random((8, 64, 64), dtype=np.float32),
    ]
    for h in maps:
        xy, conf = decode_dark(h, blur)
        xy_ref, conf_ref = decode_dark_ref(h, blur)
        np.testing.assert_allclose(xy, xy_ref, atol=1e-9, rtol=0)
        np.testing.assert_allclose(conf, conf_ref, atol=1e-12, rtol=0)
        assert xy.shape == (h.shape[0], 2) and xy.dtype == np.float64 and conf.dtype == np.float64


def test_confidence_is_the_raw_peak_and_argmax_matches_numpy():
    rng = np.random.default_rng(3)
    h = rng.random((9, 64, 64), dtype=np.float32) * 0.5
    h[4, 10, 20] = 0.9  # a known peak
    h[5, :, :] = -rng.random((64, 64), dtype=np.float32)  # all negative except one cell
    h[5, 33, 7] = 1e-20
    xy, conf = decode_dark(h)
    flat = h.reshape(9, -1)
    idx = flat.argmax(axis=1)
    np.testing.assert_array_equal(conf, flat[np.arange(9), idx].astype(np.float64))
    assert np.all(np.abs(xy[:, 0] - idx % 64) <= 1.0) and np.all(np.abs(xy[:, 1] - idx // 64) <= 1.0)
    assert conf[4] == pytest.approx(0.9, abs=1e-7)
    assert conf[5] == pytest.approx(1e-20, rel=1e-6) and np.isfinite(xy[5]).all()
    xa, ca = decode_argmax(h)
    np.testing.assert_array_equal(xa, np.stack([idx % 64, idx // 64], 1).astype(np.float64))
    np.testing.assert_array_equal(ca, conf)


def test_ties_resolve_to_the_first_cell_like_numpy():
    h = np.zeros((1, 64, 64), np.float32)
    h[0, 40, 5] = 1.0
    h[0, 50, 60] = 1.0
    h[0, 12, 30] = 1.0  # first in row-major order
    xy, conf = decode_argmax(h)
    assert tuple(xy[0]) == (30.0, 12.0)
    xy, conf = decode_dark(h, 0)
    assert abs(xy[0, 0] - 30.0) <= 0.25 and abs(xy[0, 1] - 12.0) <= 0.25 and conf[0] == 1.0


def test_dark_accuracy_on_subpixel_gaussians_beats_argmax():
    rng = np.random.default_rng(7)
    centres = rng.uniform(3.0, 60.0, (300, 2))
    h = gaussian_maps(centres)
    xy_arg, _ = decode_argmax(h)
    for blur in (0, 3):
        xy, conf = decode_dark(h, blur)
        assert rms(xy, centres) <= 0.05, blur
        assert np.all(conf > 0.5)
    # integer argmax is off by a uniform quarter... half cell per axis: RMS sqrt(2/12) = 0.41
    assert rms(xy_arg, centres) >= 0.3


def test_invalid_maps_give_zero_confidence_and_nan_without_raising():
    h = np.random.default_rng(0).random((7, 32, 32), dtype=np.float32)
    h[0] = 0.0  # all zero
    h[1] = -1.0  # all negative
    h[2, 5, 5] = np.nan
    h[3, 31, 0] = np.inf
    h[4, 0, 31] = -np.inf
    h[5, 17, 3] = -np.nan
    for fn in (decode_dark, decode_dark_ref, decode_argmax):
        xy, conf = fn(h)
        np.testing.assert_array_equal(conf[:6], 0.0)
        assert np.isnan(xy[:6]).all()
        assert conf[6] > 0 and np.isfinite(xy[6]).all()


def test_empty_and_bad_inputs():
    xy, conf = decode_dark(np.zeros((0, 64, 64), np.float32))
    assert xy.shape == (0, 2) and conf.shape == (0,)
    xy, conf = decode_dark(np.ones((2, 1, 1), np.float32))  # single-cell maps: border fallback
    np.testing.assert_array_equal(xy, 0.0)
    with pytest.raises(KptrackError, match="heatmaps"):
        decode_dark(np.zeros((64, 64), np.float32))
    with pytest.raises(KptrackError, match="blur_ksize"):
        decode_dark(np.zeros((1, 8, 8), np.float32), blur_ksize=4)


def test_other_dtypes_and_non_contiguous_inputs_are_converted():
    rng = np.random.default_rng(5)
    h = gaussian_maps(rng.uniform(5, 58, (6, 2)))
    xy, conf = decode_dark(h)
    xy64, conf64 = decode_dark(h.astype(np.float64))
    np.testing.assert_array_equal(xy, xy64)
    big = np.zeros((6, 64, 128), np.float32)
    big[:, :, ::2] = h
    xy_nc, _ = decode_dark(big[:, :, ::2])
    np.testing.assert_array_equal(xy, xy_nc)


@pytest.mark.parametrize("centre", [(0.2, 30.0), (63.0, 10.4), (20.3, 0.0), (63.0, 63.0), (0.0, 0.0), (1.0, 62.2)])
def test_peak_on_or_next_to_the_border(centre):
    c = np.array([centre])
    for blur in (0, 3):
        xy, conf = decode_dark(gaussian_maps(c), blur)
        assert np.isfinite(xy).all() and conf[0] > 0.9
        assert np.all(np.abs(xy - c) <= 0.3), (blur, xy)
        assert np.all((xy >= 0) & (xy <= 63))


def test_quarter_cell_fallback_where_the_log_is_not_concave():
    # a saddle: strong diagonal ridge makes det(Hessian of log) < 0 -> classic quarter shift
    h = np.full((1, 16, 16), 0.01, np.float32)
    h[0, 7, 7] = 1.0
    h[0, 7, 6], h[0, 7, 8] = 0.9, 0.95  # right neighbour higher -> +0.25 in x
    h[0, 6, 7], h[0, 8, 7] = 0.9, 0.9  # equal -> no shift in y
    h[0, 6, 6], h[0, 8, 8] = 0.99, 0.99
    xy, conf = decode_dark(h, 0)
    xy_ref, _ = decode_dark_ref(h, 0)
    np.testing.assert_array_equal(xy, [[7.25, 7.0]])
    np.testing.assert_array_equal(xy_ref, xy)
    assert conf[0] == 1.0


def test_round_trip_frame_to_heatmap_and_back():
    rng = np.random.default_rng(11)
    for _ in range(5):
        centre = rng.uniform(200, 400, 2)
        side = rng.uniform(150, 300)
        A = crop_affine(centre, side, rotation_rad=rng.uniform(-0.8, 0.8))
        ang = rng.uniform(0, 2 * np.pi, 9)
        rad = rng.uniform(0.0, 0.45, 9) * side  # inside the crop whatever its rotation
        uv = centre + np.stack([np.cos(ang), np.sin(ang)], 1) * rad[:, None]
        cells = frame_to_heatmap(uv, A)
        h = gaussian_maps(cells)
        uv_back, conf = decode_to_frame(h, A)
        px_per_cell = side / 256.0 * 255.0 / 63.0
        err = np.linalg.norm(uv_back - uv, axis=1)
        assert np.all(err <= 0.05 * px_per_cell), err.max()
        assert np.all(conf > 0.9)
