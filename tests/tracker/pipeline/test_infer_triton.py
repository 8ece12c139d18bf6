"""Heatmaps through a REAL Triton Inference Server equal the local ONNX Runtime session's, and a
server model that is not the metadata's gives one clear error.

The server is the tritonserver bundled with the nvidia-pytriton wheel, started on 127.0.0.1 by
:func:`export.triton_serve.local_triton_server` (its Python backend runs the repository's
model.onnx with ONNX Runtime). nvidia-pytriton pins numpy < 2, so it usually lives in its own
environment, named by KPTRACK_TRITON_PYTHON (`.ci/run` makes one). The test is skipped, with
the reason, only where that server cannot start; nothing here is mocked.
"""

import numpy as np
import pytest

pytest.importorskip("tritonclient.grpc", reason="the `triton` extra (pip install 'kptrack[triton]') is not installed")
pytest.importorskip("onnx")

from benchmarks.tiny_model import write_tiny_onnx  # noqa: E402
from export.triton_repo import TritonRepoConfig, write_triton_repo  # noqa: E402
from export.triton_serve import find_triton_python, local_triton_server  # noqa: E402
from tracker.errors import KptrackError  # noqa: E402
from tracker.pipeline.backend import open_heatmap_backend  # noqa: E402
from tracker.pipeline.infer import OnnxHeatmapModel  # noqa: E402
from tracker.pipeline.infer_triton import TritonHeatmapModel  # noqa: E402

NAMES = tuple(f"kp{i}" for i in range(5))


@pytest.fixture(scope="module")
def server(tmp_path_factory):
    python = find_triton_python()
    if python is None:
        pytest.skip("no Python with nvidia-pytriton to run a Triton server: `python -m venv V && V/bin/pip install "
                    "nvidia-pytriton onnxruntime`, then KPTRACK_TRITON_PYTHON=V/bin/python")
    root = tmp_path_factory.mktemp("triton")
    model = write_tiny_onnx(root / "model.onnx", NAMES)
    repo = root / "repo"
    write_triton_repo(TritonRepoConfig(model=str(model), repo=str(repo), name="kp"))
    other = write_tiny_onnx(root / "other.onnx", NAMES[:3])  # 3 keypoints: not model.onnx's metadata
    write_triton_repo(TritonRepoConfig(model=str(other), repo=str(repo), name="other"))
    try:
        with local_triton_server(repo, "kp", python) as url:
            yield model, url
    except RuntimeError as e:
        if "did not become ready" in str(e):
            pytest.skip(f"the Triton server could not start here: {str(e)[-300:]}")
        raise


def test_triton_heatmaps_equal_the_local_session(server):
    model, url = server
    remote = open_heatmap_backend(model, backend=url)
    local = OnnxHeatmapModel(model, device="cpu", threads=1)
    assert isinstance(remote, TritonHeatmapModel) and remote.provider.startswith("triton 127.0.0.1:")
    assert remote.meta == local.meta
    crops = np.random.default_rng(0).integers(0, 256, (3, 256, 256, 3), dtype=np.uint8)
    for batch in (crops[:1], crops):  # batch 1 and 3: the batch axis is dynamic
        y = remote(batch)
        assert y.shape == (len(batch), 5, 64, 64) and y.dtype == np.float32
        np.testing.assert_allclose(y, local(batch), rtol=0, atol=1e-6)
    remote.close()


def test_server_model_that_differs_from_the_metadata_is_refused(server):
    model, url = server
    meta = OnnxHeatmapModel(model, device="cpu", threads=1).meta
    base = url.rsplit("/", 1)[0]
    with pytest.raises(KptrackError, match=r"server's output is 'heatmaps' FP32 \[-1, 3, 64, 64\].*\[-1, 5, 64, 64\]"):
        TritonHeatmapModel(base + "/other", meta)
    with pytest.raises(KptrackError, match=r"server's input is 'input'.*metadata says 'image'"):
        TritonHeatmapModel(url, meta, input_name="image")
    with pytest.raises(KptrackError, match="no ready model 'nope'"):
        TritonHeatmapModel(base + "/nope", meta)
