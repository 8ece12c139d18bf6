"""Backbones: saved without the head, loaded into every preset that supports one, used by
`kptrack train` by default, refused with one clear error when they do not fit."""

import logging

import pytest
import torch

from kp_tinydata import write_tiny_bop
from tracker.errors import KptrackError
from tracker.objects import load_object
from train import start
from train.backbone import HEADS, fits, grown_options, load_backbone, load_grown, load_into, save_backbone
from train.checkpoint import load_checkpoint, model_from_checkpoint
from train.config import TrainConfig
from train.loop import train
from train.models import build_model, model_kwargs

FAST = dict(batch=2, workers=0, threads=1, width=0.25, val_every=2, log_every=1, warmup=0)


@pytest.fixture(scope="module")
def data(tmp_path_factory):
    return write_tiny_bop(tmp_path_factory.mktemp("tiny"), load_object("default"), n=6, size=96)


@pytest.mark.parametrize("preset", sorted(HEADS))
def test_backbone_loads_into_every_supported_preset(preset, tmp_path):
    kw = model_kwargs(preset, width=0.25) if preset == "lite" else model_kwargs(preset)
    torch.manual_seed(1)
    src = build_model(preset, 6, **kw)
    path = save_backbone(tmp_path / "b.pt", src, preset, kw, {"summary": "test"})
    doc = load_backbone(path)
    assert not any(k.startswith(HEADS[preset]) for k in doc["state_dict"]) and fits(doc, preset, kw)
    torch.manual_seed(2)
    dst = build_model(preset, 9, **kw)  # another keypoint count: only the head differs
    head_before = {k: v.clone() for k, v in dst.state_dict().items() if k.startswith(HEADS[preset])}
    load_into(dst, doc, preset, kw)
    s, d = src.state_dict(), dst.state_dict()
    for k, v in d.items():
        if k.startswith(HEADS[preset]):
            assert torch.equal(v, head_before[k]), k  # the new head stays as built
        else:
            assert torch.equal(v, s[k]), k


def test_a_backbone_that_does_not_fit_is_refused(tmp_path):
    kw = model_kwargs("lite", width=0.25)
    doc = load_backbone(save_backbone(tmp_path / "b.pt", build_model("lite", 6, **kw), "lite", kw, {}))
    with pytest.raises(KptrackError, match=r"pretrained for the 'lite' network .*--init none"):
        load_into(build_model("lite", 9, width=0.5), doc, "lite", model_kwargs("lite", width=0.5))
    with pytest.raises(KptrackError, match=r"this run builds 'hourglass'"):
        load_into(build_model("hourglass", 9), doc, "hourglass", model_kwargs("hourglass"))
    (tmp_path / "junk.pt").write_bytes(b"not a backbone")
    with pytest.raises(KptrackError, match="not a readable backbone"):
        load_backbone(tmp_path / "junk.pt")


def test_train_starts_from_the_shipped_backbone_by_default(data, tmp_path, monkeypatch, caplog):
    kw = model_kwargs("lite", width=0.25)
    torch.manual_seed(3)
    src = build_model("lite", 6, **kw)
    shipped = save_backbone(tmp_path / "models" / "lite.pt", src, "lite", kw, {"summary": "test"})
    monkeypatch.setattr(start, "default_backbone_path", lambda preset: shipped)
    run = tmp_path / "run"
    with caplog.at_level(logging.INFO, logger="train.backbone"):
        train(TrainConfig(data=str(data), out=str(run), iters=1, optimizer="adam", lr=1e-12, **FAST))
    assert any("pretrained backbone" in r.getMessage() for r in caplog.records)
    trained = model_from_checkpoint(load_checkpoint(run / "last.pt")).state_dict()
    for k, v in src.state_dict().items():
        if not k.startswith("head.") and v.is_floating_point() and "running" not in k:
            assert torch.allclose(trained[k], v, atol=1e-6), k  # lr ~ 0: the weights are the backbone's
    # --init none trains from scratch: the backbone is not used
    scratch = tmp_path / "scratch"
    train(TrainConfig(data=str(data), out=str(scratch), iters=1, optimizer="adam", lr=1e-12, init="none", **FAST))
    w = model_from_checkpoint(load_checkpoint(scratch / "last.pt")).state_dict()["stem.0.0.weight"]
    assert not torch.allclose(w, src.state_dict()["stem.0.0.weight"])
    # an explicit backbone file works like the shipped one
    explicit = tmp_path / "explicit"
    train(TrainConfig(data=str(data), out=str(explicit), iters=1, optimizer="adam", lr=1e-12, init=str(shipped), **FAST))
    w = model_from_checkpoint(load_checkpoint(explicit / "last.pt")).state_dict()["stem.0.0.weight"]
    assert torch.allclose(w, src.state_dict()["stem.0.0.weight"], atol=1e-6)


def test_init_none_with_resume_is_one_clear_error(data, tmp_path):
    run = tmp_path / "run"
    train(TrainConfig(data=str(data), out=str(run), iters=1, init="none", **FAST))
    with pytest.raises(KptrackError, match="--init none and --resume"):
        train(TrainConfig(data=str(data), out=str(run), iters=2, init="none", resume=str(run / "last.pt"), **FAST))


def test_a_backbone_without_context_blocks_fits_a_network_with_them(tmp_path):
    kw = model_kwargs("lite", width=0.25)
    src = build_model("lite", 6, **kw)
    doc = load_backbone(save_backbone(tmp_path / "b.pt", src, "lite", kw, {}))
    kw_ctx = model_kwargs("lite", width=0.25, context=2)
    assert fits(doc, "lite", kw_ctx)
    dst = build_model("lite", 6, **kw_ctx)
    load_into(dst, doc, "lite", kw_ctx)
    assert torch.equal(dst.state_dict()["s8.0.body.0.0.weight"], src.state_dict()["s8.0.body.0.0.weight"])
    # the other way round the context weights would be dropped: refused with the fix
    doc_ctx = load_backbone(save_backbone(tmp_path / "c.pt", dst, "lite", kw_ctx, {}))
    assert not fits(doc_ctx, "lite", kw)
    with pytest.raises(KptrackError, match=r"this run builds 'lite' with .*'context': 0"):
        load_into(build_model("lite", 6, **kw), doc_ctx, "lite", kw)


def test_init_from_a_checkpoint_grows_it_by_context_blocks_that_start_as_the_identity(data, tmp_path):
    run = tmp_path / "run"
    train(TrainConfig(data=str(data), out=str(run), iters=1, init="none", **FAST))
    ckpt = load_checkpoint(run / "last.pt")
    assert ckpt["model_kwargs"]["context"] == 0
    before = model_from_checkpoint(ckpt)
    grown = build_model("lite", len(ckpt["keypoint_names"]), **grown_options("lite", ckpt["model_kwargs"], {"context": 2}))
    added = load_grown(grown, ckpt["model"], "lite", "run/last.pt")
    assert added and all(k.startswith("context.") for k in added)
    x = torch.randn(2, 3, 96, 96)
    with torch.no_grad():
        assert torch.allclose(grown.eval()(x), before(x), atol=1e-5)  # the new blocks change nothing yet
    # through `kptrack train`: the run's network has the blocks, and trains them from there
    big = tmp_path / "big"
    train(TrainConfig(data=str(data), out=str(big), iters=1, init=str(run / "last.pt"), **dict(FAST, context=2)))
    assert load_checkpoint(big / "last.pt")["model_kwargs"]["context"] == 2
    # a checkpoint that has blocks is neither cut nor grown to another count
    with pytest.raises(KptrackError, match="--context 1: the --init checkpoint's network already has context=2"):
        train(TrainConfig(data=str(data), out=str(tmp_path / "c"), iters=1, init=str(big / "last.pt"), **dict(FAST, context=1)))
    train(TrainConfig(data=str(data), out=str(tmp_path / "same"), iters=1, init=str(big / "last.pt"), **FAST))
