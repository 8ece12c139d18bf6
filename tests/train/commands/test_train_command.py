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


def test_cli_resume_keeps_the_checkpoints_object(tmp_path):
    """A run of the bottle resumed without --object stays the bottle's (it used to become the drill's
    and be refused for its keypoints); a new run without --object is the drill's."""
    import torch

    from train.checkpoint import CHECKPOINT_FORMAT, CHECKPOINT_VERSION

    ck = tmp_path / "last.pt"
    torch.save({"format": CHECKPOINT_FORMAT, "version": CHECKPOINT_VERSION,
                "config": {"data": "d", "out": "o", "object": "bottle", "iters": 10}}, ck)
    assert _cfg("--resume", str(ck)).object == "bottle"
    assert _cfg("--resume", str(ck), "--object", "default").object == "default"
    assert _cfg().object == "default"


def _cfg(*extra):
    from tracker.cli import build_parser

    return config_from_args(build_parser().parse_args(["train", "--data", "d", "--out", "o", *extra]))


def test_recipes_fill_the_options_left_out(data, tmp_path):
    fast = _cfg()  # a new object: the recipe that measured best on a CPU budget
    assert (fast.recipe, fast.optimizer, fast.lr, fast.peak_weight, fast.sigma_start, fast.low_res) == ("fast", "adam", 1e-3, 5.0, 4.0, 0.5)
    seed = _cfg("--recipe", "seed")  # the seed's: TrainConfig's own defaults
    assert (seed.recipe, seed.optimizer, seed.lr, seed.peak_weight, seed.sigma_start, seed.low_res) == ("seed", "rmsprop", 2.5e-4, 1.0, None, 0.0)
    given = _cfg("--lr", "2e-3", "--low-res", "0", "--optimizer", "rmsprop")  # what the user gives wins
    assert (given.optimizer, given.lr, given.low_res, given.peak_weight) == ("rmsprop", 2e-3, 0.0, 5.0)
    # a fine-tune from a training checkpoint: a lower rate at full resolution; a backbone is a new run
    run = tmp_path / "a"
    assert main(["train", "--data", str(data), "--out", str(run), "--iters", "1", "--batch", "2", "--workers", "0",
                 "--width", "0.25", "--val-every", "1", "--threads", "1"]) == 0
    ft = _cfg("--init", str(run / "last.pt"))
    assert (ft.optimizer, ft.lr, ft.peak_weight, ft.sigma_start, ft.low_res) == ("adam", 3e-4, 5.0, None, 0.0)
    assert _cfg("--init", "models/backbone/lite.pt").low_res == 0.5 and _cfg("--init", "none").lr == 1e-3
    assert load_checkpoint(run)["config"]["recipe"] == "fast"  # the run records it


def test_recipe_refused_on_resume(data, tmp_path, capsys):
    assert main(["train", "--data", str(data), "--out", str(tmp_path / "r"), "--resume", str(tmp_path / "r"), "--recipe", "seed"]) == 2
    err = capsys.readouterr().err
    assert "--recipe seed and --resume both given" in err and "Traceback" not in err
