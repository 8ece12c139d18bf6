"""``kptrack bench``: end-to-end latency and accuracy on the default synthetic sequence, with peers.

(work in progress: the runner lands with the tracker; the helpers below are used by the stage
benchmarks and tests already.)
"""

from __future__ import annotations

import json
import logging
import os
import platform
import sys
from pathlib import Path
from typing import Any, Sequence

import numpy as np

from tracker.errors import KptrackError

log = logging.getLogger(__name__)


def write_tiny_onnx(path: str | Path, keypoint_names: Sequence[str], *, input_size: int = 256, heatmap_size: int = 64,
                    width: int = 8, seed: int = 0) -> Path:
    """Write a tiny untrained heatmap network as ONNX, carrying kptrack's metadata (tracker.modelmeta).

    Two strided 3x3 convolutions: (N, 3, S, S) float32 -> (N, K, S/4, S/4) float32 in (0, 1) (sigmoid).
    It is a stand-in with the real model's interface and a realistic-but-small cost, for tests and
    benchmarks when no trained model exists; its heatmaps are meaningless. Needs the ``onnx`` package
    (a dev dependency).
    """
    try:
        import onnx
        from onnx import TensorProto, helper, numpy_helper
    except ImportError:
        raise KptrackError("write_tiny_onnx: the 'onnx' package is missing. pip install onnx (or pip install -e '.[dev]').") from None
    from tracker.modelmeta import ModelMeta

    if input_size != 4 * heatmap_size:
        raise KptrackError(f"write_tiny_onnx: input_size {input_size} must be 4 x heatmap_size {heatmap_size}.")
    k = len(keypoint_names)
    rng = np.random.default_rng(seed)
    w1 = (rng.standard_normal((width, 3, 3, 3)) * 0.2).astype(np.float32)
    b1 = np.zeros(width, np.float32)
    w2 = (rng.standard_normal((k, width, 3, 3)) * 0.2).astype(np.float32)
    b2 = np.zeros(k, np.float32)
    conv = dict(kernel_shape=[3, 3], strides=[2, 2], pads=[1, 1, 1, 1])
    nodes = [
        helper.make_node("Conv", ["input", "w1", "b1"], ["c1"], **conv),
        helper.make_node("Relu", ["c1"], ["r1"]),
        helper.make_node("Conv", ["r1", "w2", "b2"], ["c2"], **conv),
        helper.make_node("Sigmoid", ["c2"], ["heatmaps"]),
    ]
    graph = helper.make_graph(
        nodes,
        "kptrack_tiny",
        [helper.make_tensor_value_info("input", TensorProto.FLOAT, ["N", 3, input_size, input_size])],
        [helper.make_tensor_value_info("heatmaps", TensorProto.FLOAT, ["N", k, heatmap_size, heatmap_size])],
        initializer=[numpy_helper.from_array(a, n) for a, n in ((w1, "w1"), (b1, "b1"), (w2, "w2"), (b2, "b2"))],
    )
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 17)], producer_name="kptrack-tiny")
    model.ir_version = 8  # readable by any onnxruntime >= 1.10
    meta = ModelMeta(keypoint_names=tuple(keypoint_names), input_size=input_size, heatmap_size=heatmap_size,
                     object_id="tiny", preset="tiny-untrained")
    helper.set_model_props(model, meta.to_dict())
    onnx.checker.check_model(model)
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    onnx.save(model, str(path))
    return path


def machine_info() -> dict[str, Any]:
    """Describe this machine for the results table: CPU model, cores, RAM, OS, python, onnxruntime."""
    cpu = platform.processor() or platform.machine()
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.lower().startswith("model name"):
                cpu = line.split(":", 1)[1].strip()
                break
    except OSError:
        pass
    ram_gb = None
    try:
        for line in Path("/proc/meminfo").read_text().splitlines():
            if line.startswith("MemTotal:"):
                ram_gb = round(int(line.split()[1]) / 1024**2, 1)
                break
    except OSError:
        pass
    os_name = platform.platform()
    try:
        for line in Path("/etc/os-release").read_text().splitlines():
            if line.startswith("PRETTY_NAME="):
                os_name = line.split("=", 1)[1].strip().strip('"') + f" ({platform.release()})"
                break
    except OSError:
        pass
    try:
        import onnxruntime as ort

        ort_version, providers = ort.__version__, list(ort.get_available_providers())
    except ImportError:
        ort_version, providers = None, []
    cores = len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else os.cpu_count()
    return {
        "cpu": cpu,
        "cores": cores,
        "ram_gb": ram_gb,
        "os": os_name,
        "python": platform.python_version(),
        "onnxruntime": ort_version,
        "ort_providers_available": providers,
        "gpu": _gpu_name(),
        "argv": " ".join(sys.argv),
    }


def _gpu_name() -> str | None:
    try:
        import subprocess

        out = subprocess.run(["nvidia-smi", "--query-gpu=name", "--format=csv,noheader"], capture_output=True, text=True, timeout=10)
        name = out.stdout.strip().splitlines()
        return name[0] if out.returncode == 0 and name else None
    except (OSError, subprocess.SubprocessError):
        return None


def percentiles_ms(seconds: Sequence[float]) -> dict[str, float]:
    """p50/p90/p99/mean in milliseconds of a list of durations in seconds (NaN when empty)."""
    a = np.asarray([s for s in seconds if s is not None and np.isfinite(s)], np.float64) * 1e3
    if a.size == 0:
        return {"p50": float("nan"), "p90": float("nan"), "p99": float("nan"), "mean": float("nan"), "n": 0}
    p50, p90, p99 = np.percentile(a, [50, 90, 99])
    return {"p50": float(p50), "p90": float(p90), "p99": float(p99), "mean": float(a.mean()), "n": int(a.size)}


def _json_default(o):
    if isinstance(o, (np.floating, np.integer)):
        return o.item()
    if isinstance(o, np.ndarray):
        return o.tolist()
    if isinstance(o, Path):
        return str(o)
    raise TypeError(f"not JSON serialisable: {type(o)}")


def dump_json(obj: Any, path: str | Path) -> Path:
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps(obj, indent=2, default=_json_default, allow_nan=True))
    return path
