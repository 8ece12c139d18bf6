"""Training loop: smoke run, exact resume, fine-tuning from weights, COCO data and a validation split."""

import csv
import math
import os
import signal
import time
from pathlib import Path

import numpy as np
import pytest
import torch

from kp_tinydata import write_tiny_bop
from kp_meshes import box_object
from tracker.errors import KptrackError
from tracker.objects import load_object, write_object_dir
from train import loop
from train.checkpoint import load_checkpoint, model_from_checkpoint
from train.config import TrainConfig
from train.loop import train

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


def test_sigma_schedule_and_peak_weight_change_the_loss_the_run_sees(data, tmp_path):
    plain = train(TrainConfig(data=str(data), out=str(tmp_path / "p"), iters=2, **FAST))
    wide = train(TrainConfig(data=str(data), out=str(tmp_path / "w"), iters=2, sigma_start=6.0, peak_weight=4.0, **FAST))
    low = train(TrainConfig(data=str(data), out=str(tmp_path / "l"), iters=2, low_res=0.5, **FAST))
    assert wide.iteration == 2 and low.iteration == 2 and math.isfinite(float(_rows(low.run_dir)[1]["loss"]))
    loss = lambda run: float(_rows(run)[0]["loss"])  # first step: same weights, same batch
    # wider targets and a weighted peak make a larger first-step loss on the same untrained net
    assert loss(wide.run_dir) > loss(plain.run_dir) * 1.5
    assert torch.load(wide.run_dir / "last.pt", weights_only=True)["config"]["sigma_start"] == 6.0


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


def test_coco_data_and_val_split(data, tmp_path):
    from tracker.formats.bop_dataset import BopDataset
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


def test_min_over_equivalents_loss_on_a_symmetric_box(tmp_path):
    """A box whose half turns swap its corners: the min loss never exceeds the canonical one on the
    same first batch (the canonical labels are one of the equivalents it takes the minimum over)."""
    box = box_object("box", "box")
    obj_dir = write_object_dir(box, tmp_path / "box")
    data = write_tiny_bop(tmp_path / "d", box, n=6, size=96)
    runs = {how: train(TrainConfig(data=str(data), out=str(tmp_path / how), object=str(obj_dir), iters=2,
                                   symmetric_loss=how, **FAST)) for how in ("canonical", "min")}
    first = {how: float(_rows(r.run_dir)[0]["loss"]) for how, r in runs.items()}
    assert math.isfinite(first["min"]) and first["min"] <= first["canonical"] + 1e-6
    assert all(0.0 <= r.scores["pck5"] <= 1.0 for r in runs.values())
