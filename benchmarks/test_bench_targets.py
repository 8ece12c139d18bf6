"""Stage benchmark: a training batch's target heatmaps redrawn by the training loop's own process.

While the sigma schedule (``--sigma-start``) or the half-resolution phase (``--low-res``) runs,
the workers' targets are wrong and the loop redraws every batch's (:func:`train.loop._targets`).
On the GPU that redraw sat between the data and the step: the box's first half ran about 30 %
fewer images/s than its second (benchmarks/RESULTS.md, "Training on one GPU").

Timed: :func:`train.heatmaps.batch_targets_torch` (vectorised, hidden peaks included) for a batch
of 8 and of 32 crops of 10 keypoints on the CPU. Baseline in the same run: the per-crop numpy
reference, :func:`train.heatmaps.batch_targets` then :func:`train.heatmaps.scale_hidden`, as the loop
drew them before. ``extra_info`` holds ``us`` and ``ratio_vs_numpy_per_crop`` = ours / baseline
(< 1 is faster). Quick mode: ``KPTRACK_BENCH_QUICK=1``.
"""

from __future__ import annotations

import numpy as np
import pytest

from benchmarks.benchutil import QUICK, median_s, record_vs

torch = pytest.importorskip("torch")
from train.heatmaps import batch_targets, batch_targets_torch, scale_hidden  # noqa: E402

ROUNDS = 10 if QUICK else 100


@pytest.mark.benchmark(group="targets")
@pytest.mark.parametrize("batch", [8, 32])
def test_bench_batch_targets_torch(benchmark, batch):
    rng = np.random.default_rng(batch)
    q = rng.uniform(-20, 276, (batch, 10, 2))
    v = rng.integers(0, 3, (batch, 10))
    qt, vt = torch.from_numpy(q), torch.from_numpy(v)
    ref = lambda: scale_hidden(batch_targets(q, v, 3.1), v, 0.25)  # noqa: E731
    base = {"numpy_per_crop": median_s(ref, ROUNDS, warmup=True)}
    got = benchmark(batch_targets_torch, qt, vt, 3.1, 0.25)
    np.testing.assert_allclose(got.numpy(), ref(), rtol=0, atol=1e-6)
    record_vs(benchmark, base, batch=batch, keypoints=10, sigma_cells=3.1)
