"""Backend choice: --precision picks the model file beside --model and checks its metadata;
--backend accepts onnxruntime or triton://HOST:PORT/MODEL, with one clear error for each bad input."""

import shutil
import time

import pytest

from benchmarks.tiny_model import write_tiny_onnx
from tracker.errors import KptrackError
from tracker.formats.modelmeta import ModelMeta
from tracker.pipeline.backend import open_heatmap_backend
from tracker.pipeline.infer import OnnxHeatmapModel, precision_model_path
from tracker.pipeline.infer_triton import TritonHeatmapModel, parse_triton_url
from tracker.pipeline.session import TrackConfig, track

NAMES = ("a", "b", "c")


@pytest.fixture()
def fp32(tmp_path):
    pytest.importorskip("onnx")
    return write_tiny_onnx(tmp_path / "model.onnx", NAMES)


def test_precision_picks_the_file_beside_and_names_the_export_command(fp32):
    assert precision_model_path(fp32, "fp32") == fp32
    with pytest.raises(KptrackError, match=r"model\.int8\.onnx not found.*kptrack export --model .*model\.onnx --int8 --calib-data"):
        precision_model_path(fp32, "int8")
    with pytest.raises(KptrackError, match=r"model\.fp16\.onnx not found.*--fp16"):
        precision_model_path(fp32, "fp16")
    with pytest.raises(KptrackError, match="unknown precision"):
        precision_model_path(fp32, "int4")
    shutil.copy(fp32, fp32.with_name("model.int8.onnx"))
    assert precision_model_path(fp32, "int8") == fp32.with_name("model.int8.onnx")
    # the int8 file given as --model resolves to itself, and the fp32 name from it
    assert precision_model_path(fp32.with_name("model.int8.onnx"), "fp32") == fp32


def test_precision_must_match_the_metadata(fp32):
    shutil.copy(fp32, fp32.with_name("model.int8.onnx"))  # an fp32 file under the int8 name
    with pytest.raises(KptrackError, match="--precision int8: .*metadata says it is fp32"):
        open_heatmap_backend(fp32, precision="int8", device="cpu")
    m = open_heatmap_backend(fp32, device="cpu", threads=1)
    assert isinstance(m, OnnxHeatmapModel) and m.meta.precision == "fp32"


def test_track_with_missing_int8_model_gives_one_clear_error(fp32, tmp_path):
    with pytest.raises(KptrackError, match="--precision int8: .*not found.*kptrack export"):
        track(TrackConfig(source=str(tmp_path), model=str(fp32), precision="int8"))


def test_bad_backend_and_url():
    with pytest.raises(KptrackError, match="unknown backend"):
        open_heatmap_backend(__file__, backend="tensorrt")  # the precision check passes: fp32 is the file itself
    u = parse_triton_url("triton://gpu-box:8001/kptrack_default")
    assert (u.host, u.port, u.model, str(u)) == ("gpu-box", 8001, "kptrack_default", "triton://gpu-box:8001/kptrack_default")
    assert parse_triton_url("triton://h/m").port == 8001
    for bad in ("http://h:1/m", "triton://h:1/", "triton://:1/m", "triton://h:1/a/b", "triton://h:x/m"):
        with pytest.raises(KptrackError, match="expected triton://HOST:PORT/MODEL"):
            parse_triton_url(bad)


def test_triton_url_that_does_not_answer_fails_within_5_s_naming_it():
    pytest.importorskip("tritonclient.grpc", reason="the `triton` extra (tritonclient[grpc]) is not installed")
    from export.triton_serve import free_port

    url = f"triton://127.0.0.1:{free_port()}/kptrack_default"
    t = time.monotonic()
    with pytest.raises(KptrackError, match=f"--backend {url}: no Triton server answers"):
        TritonHeatmapModel(url, ModelMeta(keypoint_names=NAMES))
    assert time.monotonic() - t < 6.0
