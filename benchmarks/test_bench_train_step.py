"""Stage benchmark: one training step of the lite network with ``--freeze``'s stages frozen.

On a CPU the step (forward, backward, Adam) is what a new object's training waits on; the data
does not starve it (benchmarks/RESULTS.md, "Training speed of a new object"). ``--freeze``
(:mod:`train.freeze`) takes the encoder's stem, 64x64 and 32x32 stages out of the backward pass.

Timed: one step, batch 8 at 256 px (channels last, Adam, the heatmap loss with peak weight 5)
with :class:`train.freeze.StageFreeze` holding the stages frozen. Baseline in the same run: the
same step with every stage trained. ``extra_info`` holds ``us`` and ``ratio_vs_full_step`` = ours /
baseline (< 1 is faster), and the torch threads used. Quick mode: ``KPTRACK_BENCH_QUICK=1``
(batch 2 at 128 px, a smoke check).
"""

from __future__ import annotations

import pytest

from benchmarks.benchutil import QUICK, median_s, record_vs

torch = pytest.importorskip("torch")
from train.freeze import StageFreeze  # noqa: E402
from train.models import build_model  # noqa: E402
from train.validation import heatmap_loss  # noqa: E402

ROUNDS = 2 if QUICK else 15
BATCH, SIZE = (2, 128) if QUICK else (8, 256)


def _step_fn(freeze: bool):
    torch.manual_seed(0)
    model = build_model("lite", 10).to(memory_format=torch.channels_last)
    model.train()
    frozen = StageFreeze(model, "lite", until=1 if freeze else 0)
    opt = torch.optim.Adam(model.parameters(), 1e-3)
    x = torch.randn(BATCH, 3, SIZE, SIZE).contiguous(memory_format=torch.channels_last)
    target = torch.rand(BATCH, 10, SIZE // 4, SIZE // 4)
    weight = torch.ones(BATCH, 10)

    def step():
        frozen.update(0)
        loss = heatmap_loss(model(x), target, weight, 5.0)
        opt.zero_grad(set_to_none=True)
        loss.backward()
        opt.step()
    return model, step


@pytest.mark.benchmark(group="train_step")
def test_bench_train_step_frozen(benchmark):
    _, full = _step_fn(False)
    base = {"full_step": median_s(full, ROUNDS, warmup=True)}
    model, step = _step_fn(True)
    step()
    before = model.stem[0][0].weight.detach().clone()
    benchmark.pedantic(step, rounds=ROUNDS, iterations=1, warmup_rounds=1)
    assert torch.equal(model.stem[0][0].weight, before)  # frozen: the step did not move the stem
    record_vs(benchmark, base, batch=BATCH, input_px=SIZE, threads=torch.get_num_threads())
