"""Training loop: smoke run, exact resume, atomic saves on a full disk, bad checkpoints, CLI, DDP."""

import csv
import errno
import os
import signal
import socket
import sys
import time
from pathlib import Path

import numpy as np
import pytest
import torch

from kp_tinydata import write_tiny_bop
from tracker.cli import main
from tracker.errors import KptrackError
from tracker.objects import load_object
from train import loop
from train.loop import TrainConfig, load_checkpoint, model_from_checkpoint, train

FAST = dict(batch=2, workers=0, threads=1, width=0.25, val_every=2, log_every=1, warmup=0)


@pytest.fixture(scope="module")
def data(tmp_path_factory):
    return write_tiny_bop(tmp_path_factory.mktemp("tiny"), load_object("default"), n=6, size=96, corrupt=(2,))


def _rows(run: Path) -> list[dict]:
    with open(run / "log.csv", newline="") as f:
        return list(csv.DictReader(f))


def test_smoke_training_writes_checkpoints_and_log(data, tmp_path):
    run = tmp_path / "run"
    res = train(TrainConfig(data=str(data), out=str(run), iters=4, **FAST))
    assert res.iteration == 4 and (run / "last.pt").is_file() and (run / "best.pt").is_file()
    assert res.bad_images == 1  # the corrupt image was met, skipped and counted
    rows = _rows(run)
    assert [int(r["iter"]) for r in rows if r["loss"]] == [1, 2, 3, 4]
    val_rows = [r for r in rows if r["pck5"]]
    assert [int(r["iter"]) for r in val_rows] == [2, 4] and all(0 <= float(r["pck5"]) <= 1 for r in val_rows)
    assert all(float(r["images_per_s"]) > 0 for r in rows if r["loss"])
    # weights-only loading; the config travels as a plain dict
    ck = torch.load(run / "last.pt", weights_only=True)
    assert ck["iteration"] == 4 and ck["preset"] == "lite" and ck["config"]["iters"] == 4
    assert ck["keypoint_names"] == list(load_object("default").keypoint_names) and ck["object_id"]
    assert set(ck["normalisation"]) == {"mean", "std", "channel_order"} and "pck5" in ck["scores"]
    m = model_from_checkpoint(load_checkpoint(run / "best.pt"))
    assert m(torch.zeros(1, 3, 256, 256)).shape == (1, 10, 64, 64)


def test_resume_continues_counter_and_log(data, tmp_path):
    b = tmp_path / "b"
    train(TrainConfig(data=str(data), out=str(b), iters=2, **FAST))
    res = train(TrainConfig(data=str(data), out=str(b), iters=4, resume=str(b / "last.pt"), **FAST))
    assert res.iteration == 4
    rows = _rows(b)
    assert [int(r["iter"]) for r in rows if r["loss"]] == [1, 2, 3, 4]  # the log continues, no repeats
    assert [int(r["iter"]) for r in rows if r["pck5"]] == [2, 4]
    ck = load_checkpoint(b / "last.pt")
    assert ck["iteration"] == 4 and ck["scheduler"]["last_epoch"] == 4


def test_init_fine_tunes_from_weights_with_fresh_optimizer(data, tmp_path):
    a = tmp_path / "a"
    train(TrainConfig(data=str(data), out=str(a), iters=3, **FAST))
    src = load_checkpoint(a / "last.pt")
    b = tmp_path / "b"
    # another optimizer is fine (unlike --resume): only the network weights travel
    res = train(TrainConfig(data=str(data), out=str(b), iters=1, optimizer="adam", lr=1e-12, init=str(a / "last.pt"), **FAST))
    assert res.iteration == 1  # the counter starts again
    ck = load_checkpoint(b / "last.pt")
    assert ck["scheduler"]["last_epoch"] == 1 and ck["config"]["init"] == str(a / "last.pt")
    trained = dict(model_from_checkpoint(ck).named_parameters())
    for name, p in model_from_checkpoint(src).named_parameters():
        assert torch.allclose(trained[name], p, atol=1e-6), name  # lr ~ 0: the weights are the init's
    with pytest.raises(KptrackError, match="--init and --resume"):
        train(TrainConfig(data=str(data), out=str(tmp_path / "c"), iters=4, init=str(a / "last.pt"), resume=str(a / "last.pt"), **FAST))
    with pytest.raises(KptrackError, match="--preset lite"):
        train(TrainConfig(data=str(data), out=str(tmp_path / "d"), iters=1, preset="hourglass", init=str(a / "last.pt"),
                          **{k: v for k, v in FAST.items() if k != "width"}))


def test_interrupted_run_resumes_exactly(data, tmp_path, monkeypatch):
    full = train(TrainConfig(data=str(data), out=str(tmp_path / "full"), iters=4, **FAST))
    run = tmp_path / "cut"

    def interrupt(*a, **k):
        os.kill(os.getpid(), signal.SIGTERM)  # as a job scheduler would; the loop turns it into Ctrl-C
        time.sleep(1.0)
        raise AssertionError("SIGTERM did not stop training")

    monkeypatch.setattr(loop, "evaluate", interrupt)  # killed at iteration 2
    with pytest.raises(KeyboardInterrupt):
        train(TrainConfig(data=str(data), out=str(run), iters=4, **FAST))
    monkeypatch.undo()
    assert load_checkpoint(run)["iteration"] == 2  # saved on the way out
    res = train(TrainConfig(data=str(data), out=str(run), iters=4, resume=str(run), **FAST))
    # same batches, same optimizer and schedule state: the resumed run matches the uninterrupted one
    for k, v in full.model.state_dict().items():
        torch.testing.assert_close(res.model.state_dict()[k], v, rtol=1e-5, atol=1e-6, msg=k)


def test_full_disk_keeps_previous_checkpoint(data, tmp_path, monkeypatch):
    run = tmp_path / "run"
    train(TrainConfig(data=str(data), out=str(run), iters=2, **FAST))
    before = (run / "last.pt").read_bytes()

    def no_space(*a, **k):
        raise OSError(errno.ENOSPC, "No space left on device")

    monkeypatch.setattr(loop.torch, "save", no_space)
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


def test_bad_options(data, tmp_path):
    with pytest.raises(KptrackError, match="--width.*'hourglass'"):
        train(TrainConfig(data=str(data), out=str(tmp_path / "r"), iters=1, preset="hourglass", width=0.5))
    with pytest.raises(KptrackError, match="--rot-range"):
        train(TrainConfig(data=str(data), out=str(tmp_path / "r"), iters=1, rotation_deg=200))
    with pytest.raises(KptrackError, match="--iters"):
        train(TrainConfig(data=str(data), out=str(tmp_path / "r"), iters=0))


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
    cfg = loop.config_from_args(ns)
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


def test_coco_data_and_val_split(data, tmp_path):
    from tracker.formats.bop import BopDataset
    from tracker.formats.coco import CocoAnnotation, CocoImage, write_coco

    obj = load_object("default")
    # a COCO keypoints file over the tiny images (labels from the BOP poses)
    samples = list(BopDataset(data, "train_synth", object=obj))
    imgs = [CocoImage(i, str(s.image_path), 96, 96) for i, s in enumerate(samples)]
    anns = [CocoAnnotation(i, s.keypoints_uv, np.full(obj.num_keypoints, 2, np.int8), tuple(float(x) for x in s.bbox_obj), 1.0)
            for i, s in enumerate(samples)]
    coco = write_coco(tmp_path / "kp.json", imgs, anns, obj.keypoint_names)
    res = train(TrainConfig(data=str(coco), out=str(tmp_path / "c"), iters=2, **FAST))
    assert res.iteration == 2 and res.scores["n_images"] == 1  # 5 % of 6, at least one, held out
    # a dataset root with a training split and a validation split: train on one, validate on the other
    root = write_tiny_bop(tmp_path / "two", obj, n=4, size=96, split="train_synth")
    write_tiny_bop(root, obj, n=3, size=96, split="val_synth", seed=5)
    res = train(TrainConfig(data=str(root), out=str(tmp_path / "v"), iters=2, val_split="val_synth", **FAST))
    assert res.scores["n_images"] == 3
    with pytest.raises(KptrackError, match="--val-split"):
        train(TrainConfig(data=str(root), out=str(tmp_path / "w"), iters=1, val_split="nope", **FAST))


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def _ddp_worker(rank: int, world: int, port: int, data: str, out: str, sums: str) -> None:
    os.environ.update(MASTER_ADDR="127.0.0.1", MASTER_PORT=str(port), RANK=str(rank), WORLD_SIZE=str(world), LOCAL_RANK=str(rank))
    res = train(TrainConfig(data=data, out=out, iters=2, device="cpu", **FAST))
    vec = torch.cat([p.detach().flatten() for p in res.model.parameters()])
    np.save(Path(sums) / f"rank{rank}.npy", vec.numpy())


def test_ddp_two_cpu_processes_gloo(data, tmp_path):
    import torch.multiprocessing as mp

    out, sums = tmp_path / "run", tmp_path / "sums"
    sums.mkdir()
    mp.spawn(_ddp_worker, args=(2, _free_port(), str(data), str(out), str(sums)), nprocs=2, join=True)
    p0, p1 = np.load(sums / "rank0.npy"), np.load(sums / "rank1.npy")
    np.testing.assert_array_equal(p0, p1)  # gradients were all-reduced: the replicas stayed identical
    assert load_checkpoint(out)["iteration"] == 2
    assert sorted(p.name for p in out.iterdir() if p.is_file()) == ["best.pt", "config.json", "last.pt", "log.csv"]
    single = TrainConfig(data=str(data), out=str(tmp_path / "single"), iters=2, device="cpu", **FAST)
    ref = train(single)
    # two processes each took their own shard of a 2 x batch global batch: not the single-process run
    assert not np.array_equal(p0, torch.cat([p.detach().flatten() for p in ref.model.parameters()]).numpy())
