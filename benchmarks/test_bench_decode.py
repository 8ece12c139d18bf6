"""Stage benchmark: heatmap decoding, K heatmaps of 64x64 -> subpixel keypoints + confidences.

Timed: :func:`tracker.pipeline.decode.decode_dark` (numba DARK, blur 3) for K = 9 and K = 16. Baselines in
the same run: its numpy twin :func:`tracker.pipeline.decode.decode_dark_ref` and plain numpy argmax
(:func:`tracker.pipeline.decode.decode_argmax`). ``extra_info`` holds ``us``, ``target_us`` (20) and
``ratio_vs_<baseline>`` = ours / baseline (< 1 is faster). Quick mode: ``KPTRACK_BENCH_QUICK=1``.
"""

from __future__ import annotations

import numpy as np
import pytest

from benchmarks.benchutil import QUICK, median_s, record_vs
from tracker.pipeline.decode import decode_argmax, decode_dark, decode_dark_ref

ROUNDS = 30 if QUICK else 200
TARGET_US = 20.0


def _heatmaps(k: int, seed: int = 0) -> np.ndarray:
    """Network-like heatmaps: sigma-2 Gaussians at subpixel positions, a weak second bump, noise."""
    rng = np.random.default_rng(seed)
    yy, xx = np.mgrid[0:64, 0:64].astype(np.float32)
    c = rng.uniform(4, 60, (k, 2)).astype(np.float32)
    c2 = rng.uniform(4, 60, (k, 2)).astype(np.float32)
    g = lambda c, s: np.exp(-((xx - c[:, 0, None, None]) ** 2 + (yy - c[:, 1, None, None]) ** 2) / (2 * s * s))  # noqa: E731
    h = rng.uniform(0.6, 1.0, (k, 1, 1)) * g(c, 2.0) + 0.3 * g(c2, 3.0) + 0.02 * rng.standard_normal((k, 64, 64))
    return np.ascontiguousarray(h, dtype=np.float32)


@pytest.mark.benchmark(group="decode")
@pytest.mark.parametrize("k", [9, 16])
def test_bench_decode_dark_numba(benchmark, k):
    h = _heatmaps(k)
    decode_dark(h)  # compile / load the cache outside the timing
    base = {
        "numpy_dark_ref": median_s(lambda: decode_dark_ref(h), ROUNDS // 4, warmup=True),
        "numpy_argmax": median_s(lambda: decode_argmax(h), ROUNDS, warmup=True),
    }
    xy, conf = benchmark(decode_dark, h)
    xy_ref, _ = decode_dark_ref(h)
    assert np.allclose(xy, xy_ref, atol=1e-9) and np.all(conf > 0)
    record_vs(benchmark, base, k=k, size=64, target_us=TARGET_US)
