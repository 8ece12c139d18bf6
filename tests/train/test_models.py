"""Network presets: shared I/O, intermediate supervision, registry errors, size budget."""

import pytest
import torch

from tracker.errors import KptrackError
from train.models import PRESETS, build_model, count_flops, model_kwargs


@pytest.mark.parametrize("preset,kw", [("lite", {}), ("lite", {"width": 0.5}), ("hourglass", {"stacks": 2, "features": 32})])
def test_presets_share_io(preset, kw):
    torch.manual_seed(0)
    m = build_model(preset, 7, **kw)
    x = torch.randn(2, 3, 256, 256)
    m.eval()
    with torch.no_grad():
        y = m(x)
    assert isinstance(y, torch.Tensor) and y.shape == (2, 7, 64, 64) and torch.isfinite(y).all()
    m.train()
    outs = m(x)
    assert isinstance(outs, list) and all(o.shape == (2, 7, 64, 64) for o in outs)
    assert len(outs) == kw.get("stacks", 1)


def test_hourglass_intermediate_outputs_feed_the_next_stack():
    torch.manual_seed(0)
    m = build_model("hourglass", 3, stacks=3, features=16).train()
    outs = m(torch.randn(1, 3, 256, 256))
    assert len(outs) == 3
    # every stack's head gets a gradient from its own loss term (intermediate supervision)
    outs[0].sum().backward()
    assert m.heads[0].weight.grad is not None and m.heads[2].weight.grad is None


def test_lite_is_within_its_compute_budget():
    flops = count_flops(build_model("lite", 10))
    assert 0.2e9 < flops < 0.6e9, flops
    assert count_flops(build_model("hourglass", 10)) > 20 * flops


def test_registry_errors():
    assert set(PRESETS) >= {"lite", "hourglass"}
    with pytest.raises(KptrackError, match="unknown network preset"):
        build_model("resnet", 5)
    with pytest.raises(KptrackError, match="no such option"):
        model_kwargs("lite", stacks=4)
    with pytest.raises(KptrackError, match="at least one keypoint"):
        build_model("lite", 0)
    assert model_kwargs("hourglass", stacks=None)["stacks"] == 2


def test_lite_context_blocks_start_as_the_identity_and_widen_the_view():
    torch.manual_seed(0)
    plain = build_model("lite", 4).eval()
    ctx = build_model("lite", 4, context=2).eval()
    missing, unexpected = ctx.load_state_dict(plain.state_dict(), strict=False)
    assert not unexpected and missing and all(k.startswith("context.") for k in missing)
    x = torch.randn(1, 3, 256, 256)
    with torch.no_grad():
        assert torch.equal(plain(x), ctx(x))  # zero BN scale: the blocks add nothing until trained
    # once trained, a corner of the crop reaches the opposite corner's heatmap cell: the view is global
    for blk in ctx.context:
        torch.nn.init.ones_(blk.body[1][1].weight)
    x = torch.randn(1, 3, 256, 256, requires_grad=True)
    ctx(x)[0, :, 60, 60].sum().backward()
    assert x.grad[0, :, :32, :32].abs().sum() > 0
    x.grad = None
    plain(x)[0, :, 60, 60].sum().backward()
    assert x.grad[0, :, :32, :32].abs().sum() == 0  # without them the far corner is out of view
    with pytest.raises(KptrackError, match="--context -1"):
        build_model("lite", 4, context=-1)
