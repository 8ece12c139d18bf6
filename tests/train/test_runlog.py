"""The run folder's logs: TensorBoard events when it is installed."""

import sys

import pytest

from kp_tinydata import write_tiny_bop
from tracker.objects import load_object
from train.config import TrainConfig
from train.loop import train

FAST = dict(batch=2, workers=0, threads=1, width=0.25, val_every=2, log_every=1, warmup=0)


@pytest.fixture(scope="module")
def data(tmp_path_factory):
    return write_tiny_bop(tmp_path_factory.mktemp("tiny"), load_object("default"), n=6, size=96, corrupt=(2,))


def test_tensorboard_when_installed(data, tmp_path, monkeypatch):
    import types

    calls = []

    class FakeWriter:
        def __init__(self, logdir, purge_step=None):
            calls.append(("init", logdir))

        def add_scalar(self, tag, value, step):
            calls.append((tag, float(value), step))

        def close(self):
            calls.append(("close",))

    monkeypatch.setitem(sys.modules, "torch.utils.tensorboard", types.SimpleNamespace(SummaryWriter=FakeWriter))
    train(TrainConfig(data=str(data), out=str(tmp_path / "tb"), iters=2, **FAST))
    tags = {c[0] for c in calls}
    assert {"init", "train/loss", "train/lr", "val/pck5", "val/mean_px", "close"} <= tags
    assert [c[2] for c in calls if c[0] == "train/loss"] == [1, 2]
