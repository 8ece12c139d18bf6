"""int8 export: static QDQ per-channel quantization, metadata says int8, the accuracy gate, --precision."""

import numpy as np
import onnx
import pytest

from kp_tinydata import write_tiny_bop  # noqa: E402

from benchmarks.tiny_model import write_tiny_onnx  # noqa: E402
from export.quantize import QuantizeConfig, int8_path, quantize_int8  # noqa: E402
from tracker.cli import main  # noqa: E402
from tracker.errors import KptrackError  # noqa: E402
from tracker.formats.modelmeta import META_KEYS, ModelMeta  # noqa: E402
from tracker.objects import load_object  # noqa: E402
from tracker.pipeline.backend import open_heatmap_backend  # noqa: E402
from tracker.pipeline.infer import OnnxHeatmapModel  # noqa: E402


@pytest.fixture(scope="module")
def fp32_and_data(tmp_path_factory):
    root = tmp_path_factory.mktemp("q")
    obj = load_object("default")
    model = write_tiny_onnx(root / "m" / "model.onnx", obj.keypoint_names, width=8)
    data = write_tiny_bop(root / "data", obj, n=12, size=96)
    return model, data


def _meta(path) -> ModelMeta:
    return ModelMeta.from_dict({p.key: p.value for p in onnx.load(str(path)).metadata_props})


def test_int8_written_beside_with_metadata_qdq_and_close_outputs(fp32_and_data):
    model, data = fp32_and_data
    rep = quantize_int8(QuantizeConfig(model=str(model), calib_data=str(data), crops=16, demo_frames=0, threads=1))
    out = model.with_name("model.int8.onnx")
    assert rep.path == out == int8_path(model) and out.is_file() and rep.crops == 16
    assert set(rep.accuracy) == {"pck5"} and rep.passed and rep.latency_ms["fp32"] > 0 and rep.latency_ms["int8"] > 0
    proto = onnx.load(str(out))
    assert [p.key for p in proto.metadata_props] == list(META_KEYS)
    m8, m32 = _meta(out), _meta(model)
    assert m8.precision == "int8" and m32.precision == "fp32"
    assert m8.keypoint_names == m32.keypoint_names and m8.mean == m32.mean and m8.object_id == m32.object_id
    ops = [n.op_type for n in proto.graph.node]
    assert "QuantizeLinear" in ops and "DequantizeLinear" in ops
    inits = {i.name: i for i in proto.graph.initializer}
    # per-channel weights: each conv's int8 weight has one scale per output channel (8 and K = 10)
    scale_sizes = [onnx.numpy_helper.to_array(inits[n.input[1]]).size for n in proto.graph.node
                   if n.op_type == "DequantizeLinear" and n.input[0] in inits and inits[n.input[0]].data_type == onnx.TensorProto.INT8]
    assert sorted(scale_sizes) == [8, 10]
    crops = np.random.default_rng(0).integers(0, 256, (2, 256, 256, 3), dtype=np.uint8)
    y32 = OnnxHeatmapModel(model, device="cpu", threads=1)(crops)
    y8 = open_heatmap_backend(model, precision="int8", device="cpu", threads=1)(crops)
    assert y8.shape == y32.shape and y8.dtype == np.float32
    assert np.abs(y8 - y32).max() < 0.05 * np.abs(y32).max()


def test_failed_accuracy_gate_writes_nothing(fp32_and_data, tmp_path):
    model, data = fp32_and_data
    out = tmp_path / "never.int8.onnx"
    with pytest.raises(KptrackError, match="not written.*pck5"):
        quantize_int8(QuantizeConfig(model=str(model), calib_data=str(data), crops=8, demo_frames=0, max_drop_points=-1.0,
                                     out=str(out)))
    assert not out.exists() and not list(tmp_path.iterdir())


def test_export_command_int8_needs_calibration_data(fp32_and_data, capsys):
    model, _ = fp32_and_data
    assert main(["export", "--model", str(model), "--int8"]) != 0
    assert "--int8 needs --calib-data" in capsys.readouterr().err
    assert main(["export", "--model", str(model)]) != 0
    assert "--model needs --int8 or --triton-repo" in capsys.readouterr().err
