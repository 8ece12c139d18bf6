"""--freeze: the encoder's first stages keep their pretrained weights (and batch-norm statistics)
for the first part of a run, then train; runs that cannot honour it are refused."""

import pytest
import torch

from kp_tinydata import write_tiny_bop
from tracker.errors import KptrackError
from tracker.objects import load_object
from train.checkpoint import load_checkpoint
from train.config import TrainConfig
from train.freeze import FROZEN_STAGES, StageFreeze, check_freeze
from train.loop import train
from train.models import build_model

FAST = dict(batch=2, workers=0, threads=1, width=0.25, val_every=100, log_every=1, warmup=0, optimizer="adam", lr=1e-2)


@pytest.fixture(scope="module")
def start(tmp_path_factory):
    """A tiny dataset and a checkpoint trained on it, to start the frozen runs from."""
    root = tmp_path_factory.mktemp("freeze")
    data = write_tiny_bop(root / "data", load_object("default"), n=6, size=96)
    train(TrainConfig(data=str(data), out=str(root / "init"), iters=2, init="none", **FAST))
    return data, root / "init" / "last.pt"


def _split(state: dict) -> tuple[dict, dict]:
    """(the frozen stages' tensors, the others'), weights and batch-norm statistics alike."""
    frozen = tuple(f"{s}." for s in FROZEN_STAGES["lite"])
    a = {k: v for k, v in state.items() if k.startswith(frozen) and v.is_floating_point()}
    b = {k: v for k, v in state.items() if not k.startswith(frozen) and v.is_floating_point()}
    return a, b


def _changed(before: dict, after: dict) -> set[str]:
    return {k for k in before if not torch.equal(before[k], after[k])}


def test_frozen_stages_keep_weights_and_statistics_while_the_rest_trains(start, tmp_path):
    data, init = start
    res = train(TrainConfig(data=str(data), out=str(tmp_path / "f"), iters=3, init=str(init), freeze=1.0, **FAST))
    frozen0, rest0 = _split(load_checkpoint(init)["model"])
    frozen1, rest1 = _split(load_checkpoint(res.run_dir / "last.pt")["model"])
    assert not _changed(frozen0, frozen1)  # running means and variances included: the stages ran in eval mode
    assert any(k.startswith("head.") for k in _changed(rest0, rest1)) and len(_changed(rest0, rest1)) > 10
    assert load_checkpoint(res.run_dir / "last.pt")["config"]["freeze"] == 1.0


def test_stages_train_after_the_frozen_fraction(start, tmp_path):
    data, init = start
    res = train(TrainConfig(data=str(data), out=str(tmp_path / "h"), iters=4, init=str(init), freeze=0.5, **FAST))
    frozen0, _ = _split(load_checkpoint(init)["model"])
    frozen1, _ = _split(load_checkpoint(res.run_dir / "last.pt")["model"])
    changed = _changed(frozen0, frozen1)
    assert any(k.startswith("stem.") for k in changed) and any(".running_mean" in k for k in changed)


def test_stage_freeze_switches_once_and_restores_training_mode():
    model = build_model("lite", 3, width=0.25)
    f = StageFreeze(model, "lite", until=2)
    assert f.update(0) and not model.stem[0][0].weight.requires_grad and not model.s32.training
    model.train()  # what validation does after it has run
    assert f.update(1) and not model.s64.training
    assert not f.update(2) and model.stem[0][0].weight.requires_grad and model.s32.training
    assert StageFreeze(model, "lite", until=0).update(0) is False


def test_freeze_refused_where_it_cannot_work(start, tmp_path):
    data, _ = start
    with pytest.raises(KptrackError, match=r"--freeze 0.5: this run starts from random weights"):
        train(TrainConfig(data=str(data), out=str(tmp_path / "n"), iters=1, init="none", freeze=0.5, **FAST))
    assert not (tmp_path / "n" / "last.pt").exists()
    with pytest.raises(KptrackError, match=r"--freeze 1.5: must be a fraction"):
        train(TrainConfig(data=str(data), out=str(tmp_path / "o"), iters=1, freeze=1.5, **FAST))
    with pytest.raises(KptrackError, match="'hourglass' network has no stages to freeze"):
        check_freeze(0.5, "hourglass", True, 1)
    with pytest.raises(KptrackError, match="2 training processes"):
        check_freeze(0.5, "lite", True, 2)
    check_freeze(0.0, "hourglass", False, 4)  # off: nothing to refuse
