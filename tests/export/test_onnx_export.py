"""ONNX export: parity with PyTorch, dynamic batch, metadata the tracker reads, fp16, bad input."""


import numpy as np
import onnx
import pytest
import torch

from kp_tinydata import write_tiny_bop  # noqa: E402

from export.onnx_export import ExportConfig, export_onnx  # noqa: E402
from tracker.cli import main  # noqa: E402
from tracker.errors import KptrackError  # noqa: E402
from tracker.pipeline.backend import open_heatmap_backend  # noqa: E402
from tracker.pipeline.infer import OnnxHeatmapModel  # noqa: E402
from tracker.formats.modelmeta import META_KEYS, ModelMeta  # noqa: E402
from tracker.objects import load_object  # noqa: E402
from train.checkpoint import load_checkpoint, model_from_checkpoint  # noqa: E402
from train.config import TrainConfig  # noqa: E402
from train.loop import train  # noqa: E402

FAST = dict(batch=2, workers=0, threads=1, val_every=1, log_every=1, warmup=0)


@pytest.fixture(scope="module")
def runs(tmp_path_factory):
    root = tmp_path_factory.mktemp("exp")
    data = write_tiny_bop(root / "data", load_object("default"), n=4, size=96)
    lite = train(TrainConfig(data=str(data), out=str(root / "lite"), iters=2, width=0.25, **FAST)).run_dir
    hg = train(TrainConfig(data=str(data), out=str(root / "hg"), iters=1, preset="hourglass", stacks=2, features=16, **FAST)).run_dir
    return data, lite, hg


def _torch(ckpt_path, x):
    with torch.no_grad():
        return model_from_checkpoint(load_checkpoint(ckpt_path))(torch.from_numpy(x)).numpy()


def test_export_parity_dynamic_batch_and_metadata(runs, tmp_path):
    data, lite, _ = runs
    out = tmp_path / "m.onnx"
    rep = export_onnx(ExportConfig(checkpoint=str(lite / "best.pt"), out=str(out), data=str(data)))
    assert set(rep.parity) == {"random_b1", "random_b3", "real"} and max(rep.parity.values()) <= 1e-4
    proto = onnx.load(str(out))
    onnx.checker.check_model(proto, full_check=True)
    assert proto.opset_import[0].version >= 17
    assert [p.key for p in proto.metadata_props] == list(META_KEYS)
    meta = ModelMeta.from_dict({p.key: p.value for p in proto.metadata_props})
    ck = load_checkpoint(lite / "best.pt")
    assert meta.keypoint_names == tuple(ck["keypoint_names"]) and meta.preset == "lite" and meta.input_size == 256
    assert meta.config["iters"] == 2 and "pck5" in meta.scores and meta.object_id == ck["object_id"]
    # the tracker's loader reads it, at batch 1 and 3, and agrees with torch
    model = OnnxHeatmapModel(out, device="cpu", threads=1)
    for n in (1, 3):
        crops = np.random.default_rng(n).integers(0, 256, (n, 256, 256, 3), dtype=np.uint8)
        y = model(crops)
        assert y.shape == (n, 10, 64, 64)
        np.testing.assert_allclose(y, _torch(lite / "best.pt", meta.normalise(crops)), atol=1e-4, rtol=0)


def test_hourglass_exports_last_stack_only(runs, tmp_path):
    _, _, hg = runs
    out = tmp_path / "hg.onnx"
    export_onnx(ExportConfig(checkpoint=str(hg / "last.pt"), out=str(out)))
    proto = onnx.load(str(out))
    assert len(proto.graph.output) == 1
    import onnxruntime as ort

    x = np.random.default_rng(0).standard_normal((2, 3, 256, 256)).astype(np.float32)
    y = ort.InferenceSession(str(out), providers=["CPUExecutionProvider"]).run(None, {"input": x})[0]
    m = model_from_checkpoint(load_checkpoint(hg / "last.pt"))
    m.train()
    for mod in m.modules():  # BN statistics as in eval, but the training-mode list of stacks
        if isinstance(mod, torch.nn.BatchNorm2d):
            mod.eval()
    with torch.no_grad():
        stacks = m(torch.from_numpy(x))
    assert len(stacks) == 2
    np.testing.assert_allclose(y, stacks[-1].numpy(), rtol=1e-3, atol=1e-6)
    assert not np.allclose(y, stacks[0].numpy(), rtol=1e-3, atol=1e-6)


def test_fp16_model_beside_it(runs, tmp_path):
    _, lite, _ = runs
    out = tmp_path / "m.onnx"
    rep = export_onnx(ExportConfig(checkpoint=str(lite / "best.pt"), out=str(out), fp16=True))
    p16 = tmp_path / "m.fp16.onnx"
    assert rep.fp16_path == p16 and p16.is_file() and p16.stat().st_size < 0.7 * out.stat().st_size
    m16 = OnnxHeatmapModel(p16, device="cpu")
    crops = np.random.default_rng(0).integers(0, 256, (2, 256, 256, 3), dtype=np.uint8)
    y16, y32 = m16(crops), OnnxHeatmapModel(out, device="cpu")(crops)
    assert y16.dtype == np.float32
    assert np.max(np.abs(y16 - y32)) <= 2e-2 * np.abs(y32).max()
    assert rep.parity["fp16_rel"] <= 2e-2
    # the metadata says which is which, and --precision fp16 finds the file beside the fp32 one
    assert m16.meta.precision == "fp16" and OnnxHeatmapModel(out, device="cpu").meta.precision == "fp32"
    assert open_heatmap_backend(out, precision="fp16", device="cpu").meta.precision == "fp16"


def test_bad_input(runs, tmp_path, capsys):
    _, lite, _ = runs
    with pytest.raises(KptrackError, match="opset"):
        export_onnx(ExportConfig(checkpoint=str(lite / "best.pt"), out=str(tmp_path / "a.onnx"), opset=13))
    with pytest.raises(KptrackError, match=r"\.onnx"):
        export_onnx(ExportConfig(checkpoint=str(lite / "best.pt"), out=str(tmp_path / "a.pt")))
    with pytest.raises(KptrackError, match="not found"):
        export_onnx(ExportConfig(checkpoint=str(tmp_path / "none.pt"), out=str(tmp_path / "a.onnx")))
    assert main(["export", "--checkpoint", str(tmp_path / "none.pt"), "--out", str(tmp_path / "a.onnx")]) == 2
    assert "Traceback" not in capsys.readouterr().err


def test_cli_export_prints_parity(runs, tmp_path, capsys):
    _, lite, _ = runs
    assert main(["export", "--checkpoint", str(lite / "best.pt"), "--out", str(tmp_path / "c.onnx")]) == 0
    out = capsys.readouterr().out
    assert "parity" in out and "random_b3" in out and (tmp_path / "c.onnx").is_file()
