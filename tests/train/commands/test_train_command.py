"""``kptrack train``: one-line errors, and resuming takes the preset and options from the checkpoint."""

import pytest

from kp_tinydata import write_tiny_bop
from tracker.cli import main
from tracker.objects import load_object
from train.checkpoint import load_checkpoint
from train.commands.train import config_from_args

@pytest.fixture(scope="module")
def data(tmp_path_factory):
    return write_tiny_bop(tmp_path_factory.mktemp("tiny"), load_object("default"), n=6, size=96, corrupt=(2,))


def test_cli_errors_are_one_line(data, tmp_path, capsys):
    assert main(["train", "--data", str(tmp_path / "nothing"), "--out", str(tmp_path / "r")]) == 2
    err = capsys.readouterr().err
    assert "--data" in err and "Traceback" not in err
    assert main(["train", "--data", str(data), "--out", str(tmp_path / "r"), "--preset", "resnet"]) == 2
    assert "unknown network preset" in capsys.readouterr().err


def test_cli_resume_takes_preset_and_options_from_checkpoint(data, tmp_path):
    run = tmp_path / "run"
    args = ["train", "--data", str(data), "--out", str(run), "--iters", "1", "--batch", "2", "--workers", "0",
            "--width", "0.25", "--val-every", "1", "--log-every", "1", "--seed", "3", "--threads", "1", "--optimizer", "adam"]
    assert main(args) == 0
    import argparse

    from tracker.cli import build_parser

    ns = build_parser().parse_args(["train", "--data", str(data), "--out", str(run), "--resume", str(run), "--iters", "3"])
    cfg = config_from_args(ns)
    assert isinstance(ns, argparse.Namespace)
    assert cfg.preset == "lite" and cfg.width == 0.25 and cfg.batch == 2 and cfg.iters == 3 and cfg.resume == str(run)
    assert cfg.seed == 3  # the resumed run draws the batches the first one would have
    assert cfg.optimizer == "adam" and load_checkpoint(run)["optimizer"]["param_groups"][0].get("betas") is not None


def test_cli_resume_of_a_fine_tuning_run(data, tmp_path):
    base = [str(x) for x in ("train", "--data", data, "--iters", "1", "--batch", "2", "--workers", "0", "--width", "0.25",
                             "--val-every", "1", "--log-every", "1", "--threads", "1")]
    assert main(base + ["--out", str(tmp_path / "a")]) == 0
    assert main(base + ["--out", str(tmp_path / "ft"), "--init", str(tmp_path / "a" / "last.pt")]) == 0
    # resuming it must not read the recorded --init as a second request
    assert main(["train", "--data", str(data), "--out", str(tmp_path / "ft"), "--resume", str(tmp_path / "ft"), "--iters", "2"]) == 0
    ck = load_checkpoint(tmp_path / "ft" / "last.pt")
    assert ck["iteration"] == 2
