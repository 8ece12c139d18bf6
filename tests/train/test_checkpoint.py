"""Checkpoints: atomic saves on a full disk, checkpoints that do not fit the run, files that are not checkpoints."""

import errno

import pytest
import torch

from kp_tinydata import write_tiny_bop
from tracker.errors import KptrackError
from tracker.objects import load_object
from train import checkpoint
from train.checkpoint import load_checkpoint
from train.config import TrainConfig
from train.loop import train

FAST = dict(batch=2, workers=0, threads=1, width=0.25, val_every=2, log_every=1, warmup=0)


@pytest.fixture(scope="module")
def data(tmp_path_factory):
    return write_tiny_bop(tmp_path_factory.mktemp("tiny"), load_object("default"), n=6, size=96, corrupt=(2,))


def test_full_disk_keeps_previous_checkpoint(data, tmp_path, monkeypatch):
    run = tmp_path / "run"
    train(TrainConfig(data=str(data), out=str(run), iters=2, **FAST))
    before = (run / "last.pt").read_bytes()

    def no_space(*a, **k):
        raise OSError(errno.ENOSPC, "No space left on device")

    monkeypatch.setattr(checkpoint.torch, "save", no_space)
    with pytest.raises(KptrackError, match="disk is full.*previous last.pt is intact"):
        train(TrainConfig(data=str(data), out=str(run), iters=4, resume=str(run / "last.pt"), **FAST))
    monkeypatch.undo()
    assert (run / "last.pt").read_bytes() == before and load_checkpoint(run)["iteration"] == 2
    assert not list(run.glob("*.tmp"))


def test_bad_checkpoints(data, tmp_path):
    run = tmp_path / "run"
    train(TrainConfig(data=str(data), out=str(run), iters=1, **FAST))
    with pytest.raises(KptrackError, match="'lite' network, not 'hourglass'"):
        train(TrainConfig(data=str(data), out=str(tmp_path / "r2"), iters=2, preset="hourglass", resume=str(run / "last.pt"),
                          **{k: v for k, v in FAST.items() if k != "width"}))
    with pytest.raises(KptrackError, match="--optimizer rmsprop"):
        train(TrainConfig(data=str(data), out=str(tmp_path / "r3"), iters=2, optimizer="adam", resume=str(run), **FAST))
    junk = tmp_path / "junk.pt"
    junk.write_bytes(b"garbage")
    with pytest.raises(KptrackError, match="not a readable kptrack checkpoint"):
        load_checkpoint(junk)
    torch.save({"weights": torch.zeros(2)}, tmp_path / "other.pt")
    with pytest.raises(KptrackError, match="not a kptrack checkpoint"):
        load_checkpoint(tmp_path / "other.pt")
    with pytest.raises(KptrackError, match="not found"):
        load_checkpoint(tmp_path / "missing.pt")
