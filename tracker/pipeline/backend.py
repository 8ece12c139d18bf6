"""Choose the heatmap backend once, at start-up: a local ONNX Runtime session of the model file
of the asked precision, or a Triton Inference Server (``--backend triton://HOST:PORT/MODEL``).

Both give the :class:`~tracker.pipeline.infer.HeatmapBackend` interface, so the tracker never asks
which one it has. With Triton, the local model file still provides the metadata (keypoint names,
sizes, normalisation, tensor names) that the server's model is checked against.
"""

from __future__ import annotations

from pathlib import Path

from tracker.errors import KptrackError
from tracker.pipeline.infer import HeatmapBackend, OnnxHeatmapModel, precision_model_path
from tracker.pipeline.infer_triton import SCHEME, TritonHeatmapModel

LOCAL = "onnxruntime"


def open_heatmap_backend(model: str | Path, *, precision: str = "fp32", backend: str = LOCAL, device: str = "auto",
                         threads: int | None = None) -> HeatmapBackend:
    """The heatmap backend for ``model`` (the fp32 .onnx path; fp16/int8 files sit beside it).

    precision: fp32 | fp16 | int8 (the file's metadata must agree). backend: 'onnxruntime' (local
    session on ``device`` with ``threads``) or ``triton://HOST:PORT/MODEL``.
    """
    path = precision_model_path(model, precision)
    if backend == LOCAL:
        return OnnxHeatmapModel(path, device=device, threads=threads, precision=precision)
    if backend.startswith(SCHEME):
        local = OnnxHeatmapModel(path, device="cpu", threads=1, precision=precision)  # for its metadata and tensor names
        return TritonHeatmapModel(backend, local.meta, local.input_name, local.output_name)
    raise KptrackError(f"--backend {backend}: unknown backend. Use onnxruntime (local) or triton://HOST:PORT/MODEL.")
