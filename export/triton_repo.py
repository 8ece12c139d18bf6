"""An exported kptrack model as an NVIDIA Triton Inference Server model repository:
``kptrack export --triton-repo DIR``.

Layout (Triton's model repository convention)::

    DIR/<name>/config.pbtxt      backend "onnxruntime", max_batch_size, one input, one output,
                                 dynamic_batching, the kptrack metadata as parameters
    DIR/<name>/1/model.onnx      the model, version 1, byte-identical to the exported file

Tensor names come from the model's graph (``input`` / ``heatmaps`` for ``kptrack export``), dims
(without the batch axis, which ``max_batch_size`` > 0 makes dynamic) from its metadata:
input ``(3, S, S)`` FP32, output ``(K, H, H)`` FP32. Dynamic batching lets the server merge the
crops of many cameras (many ``kptrack track --backend triton://...`` clients) into one call.
The client, :class:`tracker.pipeline.infer_triton.TritonHeatmapModel`, checks these names and
shapes against the metadata of its local model file.
"""

from __future__ import annotations

import json
import logging
import re
import shutil
from dataclasses import dataclass
from pathlib import Path

from tracker.atomic import atomic_write
from tracker.errors import KptrackError
from tracker.pipeline.infer import OnnxHeatmapModel

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class TritonRepoConfig:
    """model: an exported .onnx (kptrack metadata). repo: the repository folder (created if missing).
    name: the model's name on the server (None: ``kptrack_<object>``). max_batch: Triton's
    max_batch_size. queue_delay_us: how long the dynamic batcher waits to fill a batch.
    instances: model instances (KIND_AUTO: on GPUs when the server has them, else CPU).
    overwrite: replace an existing ``repo/name`` folder."""

    model: str
    repo: str
    name: str | None = None
    max_batch: int = 32
    queue_delay_us: int = 200
    instances: int = 1
    overwrite: bool = False


def default_model_name(object_id: str) -> str:
    """``kptrack_<object>`` with anything outside [A-Za-z0-9_-] replaced by '_'."""
    return "kptrack_" + re.sub(r"[^A-Za-z0-9_-]", "_", Path(object_id or "model").name or "model")


def config_pbtxt(name: str, input_name: str, output_name: str, input_dims: tuple[int, ...], output_dims: tuple[int, ...],
                 max_batch: int, queue_delay_us: int, instances: int, metadata: dict[str, str]) -> str:
    """Triton's model configuration (protobuf text format) for the onnxruntime backend."""
    params = "".join(f'parameters {{ key: {json.dumps("kptrack." + k)} value: {{ string_value: {json.dumps(v)} }} }}\n'
                     for k, v in metadata.items() if k not in ("config", "scores"))
    return (
        f"name: {json.dumps(name)}\n"
        'backend: "onnxruntime"\n'
        f"max_batch_size: {int(max_batch)}\n"
        f'input [ {{ name: {json.dumps(input_name)} data_type: TYPE_FP32 dims: [ {", ".join(map(str, input_dims))} ] }} ]\n'
        f'output [ {{ name: {json.dumps(output_name)} data_type: TYPE_FP32 dims: [ {", ".join(map(str, output_dims))} ] }} ]\n'
        f"dynamic_batching {{ max_queue_delay_microseconds: {int(queue_delay_us)} }}\n"
        f"instance_group [ {{ kind: KIND_AUTO count: {int(instances)} }} ]\n"
        + params
    )


def write_triton_repo(cfg: TritonRepoConfig) -> Path:
    """Write ``cfg.repo/<name>/{config.pbtxt, 1/model.onnx}``; returns the model folder."""
    model = OnnxHeatmapModel(cfg.model, device="cpu", threads=1)  # checks the file, reads names and metadata
    meta = model.meta
    if cfg.max_batch < 1:
        raise KptrackError(f"max batch {cfg.max_batch}: must be >= 1 (the repository's batch axis is dynamic).")
    name = cfg.name or default_model_name(meta.object_id)
    if not re.fullmatch(r"[A-Za-z0-9_][A-Za-z0-9_.-]*", name):
        raise KptrackError(f"--triton-name {name!r}: use letters, digits, '_', '-' and '.' (it becomes a folder and a URL part).")
    folder = Path(cfg.repo) / name
    if folder.exists() and any(folder.iterdir()):
        if not cfg.overwrite:
            raise KptrackError(f"--triton-repo {cfg.repo}: {folder} exists. Pass --overwrite to replace it, or choose "
                               "another --triton-name.")
        shutil.rmtree(folder)
    try:
        (folder / "1").mkdir(parents=True, exist_ok=True)
        with atomic_write(folder / "1" / "model.onnx") as f:
            f.write(Path(cfg.model).read_bytes())
        text = config_pbtxt(name, model.input_name, model.output_name, (3, meta.input_size, meta.input_size),
                            (meta.num_keypoints, meta.heatmap_size, meta.heatmap_size), cfg.max_batch, cfg.queue_delay_us,
                            cfg.instances, meta.to_dict())
        with atomic_write(folder / "config.pbtxt") as f:
            f.write(text.encode())
    except OSError as e:
        raise KptrackError(f"--triton-repo {cfg.repo}: cannot write {folder} ({e.strerror or e}). Choose a writable folder.") from None
    log.info("wrote Triton model %s in %s", name, cfg.repo)
    return folder
