"""A tiny untrained heatmap network as ONNX (:func:`write_tiny_onnx`), for tests and benchmarks.

It has the real model's interface (kptrack's metadata, NCHW float32 in, (N, K, S/4, S/4) heatmaps
out) and a realistic-but-small cost, so the inference path, the time to first frame and the
model/object checks can run where no trained model exists; its heatmaps are meaningless.
"""

from __future__ import annotations

from pathlib import Path
from typing import Sequence

import numpy as np

from tracker.errors import KptrackError
from tracker.formats.modelmeta import ModelMeta


def write_tiny_onnx(path: str | Path, keypoint_names: Sequence[str], *, input_size: int = 256, heatmap_size: int = 64,
                    width: int = 8, seed: int = 0) -> Path:
    """Write a tiny untrained heatmap network as ONNX, carrying kptrack's metadata (tracker.formats.modelmeta).

    Two strided 3x3 convolutions: (N, 3, S, S) float32 -> (N, K, S/4, S/4) float32 in (0, 1) (sigmoid).
    It is a stand-in with the real model's interface and a realistic-but-small cost, for tests and
    benchmarks when no trained model exists; its heatmaps are meaningless. Needs the ``onnx`` package
    (a dev dependency).
    """
    try:
        # imported here: onnx is an optional (dev) dependency, needed only to write this stand-in
        import onnx
        from onnx import TensorProto, helper, numpy_helper
    except ImportError:
        raise KptrackError("write_tiny_onnx: the 'onnx' package is missing. pip install onnx (or pip install -e '.[dev]').") from None

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
