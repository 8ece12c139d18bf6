"""Stage benchmark: the network through a Triton Inference Server (gRPC on 127.0.0.1) against the
local ONNX Runtime session, batch 1, same crop, same process: the latency Triton adds per frame.

The server is the tritonserver of the nvidia-pytriton wheel (CPU, its Python backend running
ONNX Runtime), started by :func:`export.triton_serve.local_triton_server` on the repository that
``kptrack export --triton-repo`` writes; skipped, with the reason, where it cannot start
(KPTRACK_TRITON_PYTHON names a Python with nvidia-pytriton). Model: models/default/model.onnx, else
the tiny stand-in. ``extra_info``: ``added_ms`` (Triton minus local, per call) and the ratio.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from benchmarks.benchutil import QUICK, median_s, record
from benchmarks.tiny_model import write_tiny_onnx
from export.triton_repo import TritonRepoConfig, write_triton_repo
from export.triton_serve import find_triton_python, local_triton_server
from tracker.pipeline.backend import open_heatmap_backend

pytest.importorskip("tritonclient.grpc", reason="the `triton` extra is not installed")

ROUNDS = 5 if QUICK else 40
REPO = Path(__file__).resolve().parents[1]
DEFAULT_MODEL = REPO / "models" / "default" / "model.onnx"


@pytest.mark.benchmark(group="infer")
def test_bench_infer_triton(benchmark, tmp_path):
    python = find_triton_python()
    if python is None:
        pytest.skip("no Python with nvidia-pytriton (set KPTRACK_TRITON_PYTHON)")
    model = DEFAULT_MODEL
    if not model.is_file():
        model = write_tiny_onnx(tmp_path / "tiny.onnx", [f"kp{i}" for i in range(9)])
    write_triton_repo(TritonRepoConfig(model=str(model), repo=str(tmp_path / "repo"), name="kp"))
    with local_triton_server(tmp_path / "repo", "kp", python) as url:
        remote = open_heatmap_backend(model, backend=url)
        local = open_heatmap_backend(model, device="cpu")
        crop = np.random.default_rng(0).integers(0, 256, (1, 256, 256, 3), dtype=np.uint8)
        remote.warmup(5)
        local.warmup(5)
        before = median_s(lambda: local(crop), ROUNDS)
        out = benchmark.pedantic(remote, args=(crop,), rounds=ROUNDS * 2, warmup_rounds=2)
        baseline = 0.5 * (before + median_s(lambda: local(crop), ROUNDS))
        np.testing.assert_allclose(out, local(crop), rtol=0, atol=1e-5)
        med = record(benchmark, baseline, "the local ONNX Runtime session, same crop", also_ms=True, model=model.name,
                     provider=remote.provider)
        if med:
            benchmark.extra_info["added_ms"] = 1e3 * (med - baseline)
        remote.close()
