"""kptrack export --triton-repo: the repository layout, a config.pbtxt Triton parses, names and dims
from the model, dynamic batch and batching, nothing overwritten without --overwrite."""

import re

import pytest

from benchmarks.tiny_model import write_tiny_onnx
from export.triton_repo import TritonRepoConfig, default_model_name, write_triton_repo
from tracker.cli import main
from tracker.errors import KptrackError

pytest.importorskip("onnx")


def test_repository_layout_and_config(tmp_path):
    model = write_tiny_onnx(tmp_path / "model.onnx", ("a", "b", "c"))
    folder = write_triton_repo(TritonRepoConfig(model=str(model), repo=str(tmp_path / "repo"), max_batch=16))
    assert folder == tmp_path / "repo" / "kptrack_tiny" == tmp_path / "repo" / default_model_name("tiny")
    assert (folder / "1" / "model.onnx").read_bytes() == model.read_bytes()
    text = (folder / "config.pbtxt").read_text()
    try:
        from google.protobuf import text_format
        from tritonclient.grpc import model_config_pb2
    except ImportError:  # without the triton extra: check the text itself
        assert 'backend: "onnxruntime"' in text and "max_batch_size: 16" in text and "dynamic_batching" in text
        assert re.search(r'name: "input" data_type: TYPE_FP32 dims: \[ 3, 256, 256 \]', text)
        assert re.search(r'name: "heatmaps" data_type: TYPE_FP32 dims: \[ 3, 64, 64 \]', text)
        return
    cfg = text_format.Parse(text, model_config_pb2.ModelConfig())
    assert cfg.name == "kptrack_tiny" and cfg.backend == "onnxruntime" and cfg.max_batch_size == 16
    assert [(t.name, list(t.dims)) for t in cfg.input] == [("input", [3, 256, 256])]
    assert [(t.name, list(t.dims)) for t in cfg.output] == [("heatmaps", [3, 64, 64])]
    assert cfg.input[0].data_type == model_config_pb2.TYPE_FP32 and cfg.HasField("dynamic_batching")
    assert cfg.parameters["kptrack.keypoint_names"].string_value == '["a", "b", "c"]'
    assert cfg.parameters["kptrack.precision"].string_value == "fp32"


def test_existing_model_folder_is_kept_unless_overwrite(tmp_path, capsys):
    model = write_tiny_onnx(tmp_path / "model.onnx", ("a", "b", "c"))
    repo = tmp_path / "repo"
    args = ["export", "--model", str(model), "--triton-repo", str(repo), "--triton-name", "drill"]
    assert main(args) == 0 and "wrote Triton model drill" in capsys.readouterr().out
    (repo / "drill" / "note.txt").write_text("mine")
    assert main(args) != 0
    assert "exists. Pass --overwrite" in capsys.readouterr().err and (repo / "drill" / "note.txt").exists()
    assert main(args + ["--overwrite"]) == 0 and not (repo / "drill" / "note.txt").exists()
    with pytest.raises(KptrackError, match="--triton-name"):
        write_triton_repo(TritonRepoConfig(model=str(model), repo=str(repo), name="../up"))
