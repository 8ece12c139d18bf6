"""``--precision bf16``: the forward under bfloat16 autocast, float32 weights and loss, one clear
error where the GPU cannot, and the option kept on resume."""

import csv
import logging
import math
from pathlib import Path

import pytest
import torch

from kp_tinydata import write_tiny_bop
from tracker.cli import build_parser, main
from tracker.errors import KptrackError
from tracker.objects import load_object
from train import distributed
from train.commands.train import config_from_args
from train.config import TrainConfig
from train.distributed import check_precision, precision_context
from train.loop import train

FAST_LR = 1e-3
FAST = dict(batch=2, workers=0, threads=1, width=0.25, val_every=2, log_every=1, warmup=0, lr=FAST_LR, optimizer="adam")


@pytest.fixture(scope="module")
def data(tmp_path_factory):
    return write_tiny_bop(tmp_path_factory.mktemp("tiny"), load_object("default"), n=6, size=96)


def _first_loss(run: Path) -> float:
    with open(run / "log.csv", newline="") as f:
        return float(next(csv.DictReader(f))["loss"])


def test_the_bf16_context_runs_a_convolution_in_bfloat16_and_fp32_leaves_it():
    conv, x = torch.nn.Conv2d(3, 4, 3), torch.randn(1, 3, 8, 8)
    with precision_context("bf16", torch.device("cpu")):
        assert conv(x).dtype == torch.bfloat16
    with precision_context("fp32", torch.device("cpu")):
        assert conv(x).dtype == torch.float32


def test_a_bf16_run_trains_float32_weights_on_a_bf16_forward(data, tmp_path):
    fp32 = train(TrainConfig(data=str(data), out=str(tmp_path / "fp32"), iters=2, **FAST))
    bf16 = train(TrainConfig(data=str(data), out=str(tmp_path / "bf16"), iters=2, precision="bf16", **FAST))
    ck = torch.load(bf16.run_dir / "last.pt", weights_only=True)
    assert ck["config"]["precision"] == "bf16"
    assert all(v.dtype == torch.float32 for v in ck["model"].values() if v.is_floating_point())
    # same start and batches: the bf16 run's loss stays within bfloat16's rounding of the fp32 run's,
    # and its weights differ from them (the gradients were computed in bfloat16), but not by more
    # than the two steps could move them (Adam moves a weight by about lr a step)
    a, b = _first_loss(fp32.run_dir), _first_loss(bf16.run_dir)
    assert math.isfinite(b) and abs(b - a) < 0.05 * a
    w32 = torch.load(fp32.run_dir / "last.pt", weights_only=True)["model"]
    w16 = ck["model"]
    steps = [(w16[k] - w32[k]).abs().max().item() for k in w32 if k.endswith("weight") and w32[k].dim() == 4]
    assert 0 < max(steps) <= 2 * 2 * FAST_LR * 1.01


def test_an_unknown_precision_is_refused(data, tmp_path):
    with pytest.raises(KptrackError, match="--precision 'fp16': use fp32 or bf16"):
        train(TrainConfig(data=str(data), out=str(tmp_path / "r"), iters=1, precision="fp16"))
    assert not (tmp_path / "r").exists()


def test_bf16_is_refused_on_a_gpu_without_it_and_warned_about_on_a_cpu_without_it(monkeypatch, caplog):
    monkeypatch.setattr(distributed, "bf16_native", lambda device: False)
    monkeypatch.setattr(torch.cuda, "get_device_name", lambda device=None: "Tesla T4")
    with pytest.raises(KptrackError, match="Tesla T4 has no bfloat16.*Use --precision fp32"):
        check_precision("bf16", torch.device("cuda"))
    with caplog.at_level(logging.WARNING, logger="train.distributed"):
        check_precision("bf16", torch.device("cpu"))
        check_precision("fp32", torch.device("cuda"))
    assert len(caplog.records) == 1 and "slower than fp32" in caplog.records[0].getMessage()


def test_the_cli_takes_precision_and_a_resumed_run_keeps_it(data, tmp_path):
    run = tmp_path / "run"
    args = ["train", "--data", str(data), "--out", str(run), "--iters", "1", "--batch", "2", "--workers", "0",
            "--width", "0.25", "--val-every", "1", "--log-every", "1", "--threads", "1", "--precision", "bf16"]
    assert main(args) == 0
    ns = build_parser().parse_args(["train", "--data", str(data), "--out", str(run), "--resume", str(run), "--iters", "2"])
    assert config_from_args(ns).precision == "bf16"
    ns = build_parser().parse_args(["train", "--data", str(data), "--out", str(tmp_path / "new")])
    assert config_from_args(ns).precision == "fp32"
