"""ONNX Runtime heatmap inference: parity with the torch net, metadata, providers, bad models."""

import logging

import numpy as np
import onnxruntime as ort
import pytest

torch = pytest.importorskip("torch")

from kptrack_testing import make_color_dot_model, make_conv_model  # noqa: E402

from tracker.errors import KptrackError  # noqa: E402
from tracker.pipeline.infer import OnnxHeatmapModel, nvidia_driver_present  # noqa: E402


@pytest.fixture(scope="module")
def conv_model(tmp_path_factory):
    return make_conv_model(tmp_path_factory.mktemp("m") / "m.onnx", names=("tip", "base", "left", "right"))


def _torch_reference(net, crops_bgr, mean, std, rgb=True):
    x = crops_bgr[..., ::-1] if rgb else crops_bgr
    x = (x.astype(np.float32) - np.float32(mean)) / np.float32(std)
    with torch.no_grad():
        return net(torch.from_numpy(np.ascontiguousarray(x.transpose(0, 3, 1, 2)))).numpy()


def test_onnx_matches_torch_and_reads_metadata(conv_model):
    path, net, meta = conv_model
    m = OnnxHeatmapModel(path, device="cpu", threads=1)
    assert m.meta.keypoint_names == ("tip", "base", "left", "right")
    assert m.provider == "CPUExecutionProvider"
    crops = np.random.default_rng(0).integers(0, 256, (2, 256, 256, 3), dtype=np.uint8)
    out = m(crops)
    assert out.shape == (2, 4, 64, 64) and out.dtype == np.float32
    ref = _torch_reference(net, crops, meta.mean, meta.std, rgb=True)
    np.testing.assert_allclose(out, ref, atol=1e-4, rtol=1e-4)


def test_channel_order_bgr_is_honoured(tmp_path):
    # Same weights exported twice: with BGR metadata the network must see the raw BGR crop.
    path, net, meta = make_conv_model(tmp_path / "bgr.onnx", meta_overrides={"channel_order": "BGR"})
    crops = np.random.default_rng(1).integers(0, 256, (1, 256, 256, 3), dtype=np.uint8)
    out = OnnxHeatmapModel(path, device="cpu")(crops)
    np.testing.assert_allclose(out, _torch_reference(net, crops, meta.mean, meta.std, rgb=False), atol=1e-4, rtol=1e-4)
    assert not np.allclose(out, _torch_reference(net, crops, meta.mean, meta.std, rgb=True), atol=1e-3)


def test_last_output_is_the_heatmaps(tmp_path):
    path, net, meta = make_conv_model(tmp_path / "two.onnx", two_outputs=True)
    m = OnnxHeatmapModel(path, device="cpu")
    crops = np.full((1, 256, 256, 3), 90, np.uint8)
    x = m.meta.normalise(crops)
    with torch.no_grad():
        _, ref = net(torch.from_numpy(x))
    np.testing.assert_allclose(m(crops), ref.numpy(), atol=1e-4, rtol=1e-4)


def test_color_dot_model_peaks_at_dot(tmp_path):
    import cv2

    m = OnnxHeatmapModel(make_color_dot_model(tmp_path / "dots.onnx", [(0, 0, 255), (0, 255, 0)], ("r", "g")), device="cpu")
    crop = np.zeros((1, 256, 256, 3), np.uint8)
    cv2.circle(crop[0], (100, 60), 5, (0, 0, 255), -1)
    cv2.circle(crop[0], (30, 200), 5, (0, 255, 0), -1)
    hm = m(crop)[0]
    peaks = [np.unravel_index(np.argmax(h), h.shape)[::-1] for h in hm]
    # crop px -> heatmap cells: * 63/255
    np.testing.assert_allclose(peaks[0], np.array([100, 60]) * 63 / 255, atol=1.5)
    np.testing.assert_allclose(peaks[1], np.array([30, 200]) * 63 / 255, atol=1.5)


def test_auto_device_logs_provider(conv_model, caplog):
    with caplog.at_level(logging.INFO, logger="tracker.pipeline.infer"):
        m = OnnxHeatmapModel(conv_model[0], device="auto")
    assert m.provider in ort.get_available_providers()
    assert any(m.provider in r.getMessage() for r in caplog.records)
    m.warmup(2)


@pytest.mark.skipif(nvidia_driver_present(), reason="a GPU is present: CUDA may really load")
def test_cuda_requested_without_gpu_fails_loudly(conv_model):
    with pytest.raises(KptrackError, match=r"--device cuda: .*(NVIDIA driver|CUDA provider).*--device cpu"):
        OnnxHeatmapModel(conv_model[0], device="cuda")


def test_cuda_on_gpu_uses_io_binding(conv_model):
    if not nvidia_driver_present() or "CUDAExecutionProvider" not in ort.get_available_providers():
        pytest.skip("no GPU here")
    path, net, meta = conv_model
    try:
        m = OnnxHeatmapModel(path, device="cuda")
    except KptrackError as e:  # driver present but CUDA libraries missing: the error must say so
        assert "CUDA" in str(e)
        pytest.skip(str(e))
    assert m.provider == "CUDAExecutionProvider" and m._io is not None
    crops = np.random.default_rng(0).integers(0, 256, (1, 256, 256, 3), dtype=np.uint8)
    np.testing.assert_allclose(m(crops), _torch_reference(net, crops, meta.mean, meta.std), atol=1e-3, rtol=1e-3)


def test_missing_model_file(tmp_path):
    with pytest.raises(KptrackError, match=r"nope\.onnx: model file not found.*kptrack export"):
        OnnxHeatmapModel(tmp_path / "nope.onnx")


def test_garbage_model_file(tmp_path):
    p = tmp_path / "bad.onnx"
    p.write_bytes(b"this is not protobuf" * 10)
    with pytest.raises(KptrackError, match=r"bad\.onnx: not a loadable ONNX model"):
        OnnxHeatmapModel(p, device="cpu")


def test_model_without_metadata(tmp_path):
    import onnx

    path, _, _ = make_conv_model(tmp_path / "nometa.onnx")
    m = onnx.load(str(path))
    del m.metadata_props[:]
    onnx.save(m, str(path))
    with pytest.raises(KptrackError, match=r"nometa\.onnx: ONNX metadata lacks"):
        OnnxHeatmapModel(path, device="cpu")


def test_output_channels_disagree_with_metadata(tmp_path):
    path, _, _ = make_conv_model(tmp_path / "k.onnx", names=("a", "b", "c"), out_channels=5)
    with pytest.raises(KptrackError, match=r"heatmap output shape .*\(3 keypoints"):
        OnnxHeatmapModel(path, device="cpu")


def test_bad_arguments(conv_model):
    with pytest.raises(KptrackError, match="--device tpu"):
        OnnxHeatmapModel(conv_model[0], device="tpu")
    with pytest.raises(KptrackError, match="--threads 0"):
        OnnxHeatmapModel(conv_model[0], threads=0)
    m = OnnxHeatmapModel(conv_model[0], device="cpu")
    with pytest.raises(ValueError, match="uint8"):
        m(np.zeros((1, 128, 128, 3), np.uint8))
