"""kptrack visibility: an exported lite network read back exactly, the head's labels, and a
two-output model whose heatmaps are the given model's, gated by the tracker's backend."""

import json

import cv2
import numpy as np
import onnx
import pytest
import torch

from kp_tinydata import write_tiny_bop

from export.onnx_export import ExportConfig, cpu_session, export_onnx
from tracker.cli import main
from tracker.errors import KptrackError
from tracker.objects import load_object
from tracker.pipeline.infer import OnnxHeatmapModel
from train.config import TrainConfig
from train.loop import train
from train.onnx_weights import network_from_onnx
from train.visibility import VisibilityConfig, keypoint_labels, train_visibility

FAST = dict(batch=2, workers=0, threads=1, val_every=1, log_every=1, warmup=0)


@pytest.fixture(scope="module")
def exported(tmp_path_factory):
    """A tiny lite model and data whose visible masks cover only the right half of each image."""
    root = tmp_path_factory.mktemp("vis")
    data = write_tiny_bop(root / "data", load_object("default"), n=12, size=96)
    scene = data / "train_synth" / "000000"
    (scene / "mask_visib").mkdir()
    for im in range(12):
        m = np.zeros((96, 96), np.uint8)
        m[:, 48:] = 255
        cv2.imwrite(str(scene / "mask_visib" / f"{im:06d}_000000.png"), m)
    run = train(TrainConfig(data=str(data), out=str(root / "lite"), iters=2, width=0.25, **FAST)).run_dir
    model = export_onnx(ExportConfig(checkpoint=str(run / "last.pt"), out=str(root / "model.onnx"))).path
    return data, model


def test_network_read_back_computes_what_the_file_does(exported):
    _, model = exported
    net, meta = network_from_onnx(model)
    x = np.random.default_rng(0).normal(size=(2, 3, meta.input_size, meta.input_size)).astype(np.float32)
    with torch.no_grad():
        got = net(torch.from_numpy(x)).numpy()
    want = cpu_session(model).run(None, {"input": x})[-1]
    np.testing.assert_allclose(got, want, atol=1e-5)


def test_labels_say_where_the_mask_covers_the_keypoint():
    item = {"keypoints": np.array([[10.0, 10.0], [40.0, 10.0], [np.nan, np.nan], [300.0, 5.0]], np.float32),
            "visibility": np.array([2, 2, 0, 2], np.int8), "image": np.zeros((64, 64, 3), np.uint8),
            "affine": np.array([[0.5, 0.0, 0.0], [0.0, 0.5, 0.0]])}  # frame px = 2 x crop px
    mask = np.zeros((200, 200), np.uint8)
    mask[:, 60:] = 1
    label, labelled = keypoint_labels(item, mask)
    assert labelled.tolist() == [True, True, False, False]
    assert label[:2].tolist() == [0.0, 1.0]  # (20, 20) outside the mask, (80, 20) inside
    flags, flagged = keypoint_labels({**item, "visibility": np.array([1, 2, 2, 2], np.int8)}, None)
    assert flags[:2].tolist() == [0.0, 1.0] and flagged.tolist() == [True, True, False, False]


def test_two_output_model_keeps_the_heatmaps_and_is_gated(exported, tmp_path, capsys):
    data, model = exported
    out = tmp_path / "model_vis.onnx"
    rc = main(["visibility", "--model", str(model), "--data", str(data), "--out", str(out), "--iters", "3", "--batch", "4",
               "--threads", "1"])
    assert rc == 0 and "visibility AUC" in capsys.readouterr().out
    proto = onnx.load(str(out))
    assert [o.name for o in proto.graph.output] == ["visibility", "heatmaps"]
    spec = json.loads({p.key: p.value for p in proto.metadata_props}["visibility"])
    assert spec["output"] == "visibility" and spec["iters"] == 3 and 0.0 <= spec["val_auc"] <= 1.0
    gated, plain = OnnxHeatmapModel(out, device="cpu", threads=1), OnnxHeatmapModel(model, device="cpu", threads=1)
    crops = np.random.default_rng(1).integers(0, 255, (4, 256, 256, 3), dtype=np.uint8)
    vis = cpu_session(out).run(["visibility"], {"input": gated.meta.normalise(crops)})[0]
    got, want = gated(crops), plain(crops)
    assert vis.shape == (4, gated.meta.num_keypoints) and np.all((vis >= 0) & (vis <= 1))
    for b in range(4):  # every channel is the plain model's, or zero where the gate dropped it
        same = np.all(np.isclose(got[b], want[b], atol=1e-4), axis=(1, 2))
        dropped = np.all(got[b] == 0.0, axis=(1, 2))
        assert np.all(same | dropped)
        assert not dropped.any() or np.all(vis[b][dropped] < 0.5)


def test_bad_input_is_refused_before_anything_is_written(exported, tmp_path):
    data, model = exported
    before = model.read_bytes()
    with pytest.raises(KptrackError, match="--out .*that is --model"):
        train_visibility(VisibilityConfig(model=str(model), data=(str(data),), out=str(model), iters=1))
    assert model.read_bytes() == before
    with pytest.raises(KptrackError, match="--model .*no such file"):
        train_visibility(VisibilityConfig(model=str(tmp_path / "none.onnx"), data=(str(data),), out=str(tmp_path / "o.onnx")))
    with pytest.raises(KptrackError, match="--object bottle"):
        train_visibility(VisibilityConfig(model=str(model), data=(str(data),), out=str(tmp_path / "o.onnx"), object="bottle"))
    assert not (tmp_path / "o.onnx").exists()


def test_only_an_fp32_lite_export_is_read_back(tmp_path):
    from kptrack_testing import make_conv_model

    path, _, _ = make_conv_model(tmp_path / "hg.onnx", meta_overrides={"preset": "hourglass"})
    with pytest.raises(KptrackError, match="only fp32 lite networks"):
        network_from_onnx(path)


def test_data_without_hidden_keypoints_is_refused_before_training(exported, tmp_path):
    _, model = exported
    plain = write_tiny_bop(tmp_path / "plain", load_object("default"), n=6, size=96)  # no masks: every keypoint seen
    with pytest.raises(KptrackError, match="no hidden"):
        train_visibility(VisibilityConfig(model=str(model), data=(str(plain),), out=str(tmp_path / "o.onnx"), iters=1))
    assert not (tmp_path / "o.onnx").exists()
