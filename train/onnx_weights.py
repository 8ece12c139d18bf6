"""An exported lite network read back from its ONNX file into PyTorch, for training on top of it.

``kptrack export`` folds every batch norm into the convolution before it (constant folding), so
the file holds one weight and one bias per convolution. :func:`network_from_onnx` builds the
network the file's metadata names (preset and constructor options), matches its convolutions to
the graph's Conv nodes in execution order, and loads each: the weight into the convolution, the
bias into the batch norm after it, whose scale is set to 1 and statistics to (0, 1 - eps) so it
passes its input through. The result computes what the file computes (within float rounding;
the shipped bottle: 4e-7 of peaks near 1) in eval mode. Its batch norms no longer hold their
trained statistics, so it is for frozen use (a head trained on its features), not for fine-tuning:
fine-tune from the training checkpoint.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import torch
import torch.nn as nn

from tracker.errors import KptrackError
from tracker.formats.modelmeta import ModelMeta
from train.models import build_model


def network_from_onnx(path: str | Path) -> tuple[nn.Module, ModelMeta]:
    """(the network of an exported lite model, in eval mode, and its metadata). KptrackError when
    the file is not a kptrack export of a lite network."""
    import onnx  # lazily: an optional dependency (the dev extra), as in export.onnx_export
    from onnx import numpy_helper

    path = Path(path)
    if not path.is_file():
        raise KptrackError(f"--model {path}: no such file. Pass an ONNX model written by `kptrack export`.")
    try:
        proto = onnx.load(str(path))
    except Exception as e:  # protobuf's own error types
        raise KptrackError(f"--model {path}: not an ONNX file ({type(e).__name__}). Pass a model written by `kptrack export`.") from None
    meta = ModelMeta.from_dict({p.key: p.value for p in proto.metadata_props}, source=str(path))
    if meta.preset != "lite" or meta.precision != "fp32":
        raise KptrackError(f"--model {path}: a {meta.precision} {meta.preset or 'unknown'} network; only fp32 lite networks "
                           "are read back. Pass the fp32 .onnx of a lite model.")
    if meta.visibility:
        raise KptrackError(f"--model {path}: already has a visibility output. Pass the heatmap-only model it was made from.")
    weights = {i.name: numpy_helper.to_array(i) for i in proto.graph.initializer}
    convs = [n for n in proto.graph.node if n.op_type == "Conv"]
    net = build_model("lite", meta.num_keypoints, **meta.config.get("model_kwargs", {})).eval()
    order: list[nn.Conv2d] = []
    hooks = [m.register_forward_hook(lambda mod, _i, _o: order.append(mod)) for m in net.modules() if isinstance(m, nn.Conv2d)]
    with torch.no_grad():
        net(torch.zeros(1, 3, meta.input_size, meta.input_size))
    for h in hooks:
        h.remove()
    norms = {a: b for seq in net.modules() if isinstance(seq, nn.Sequential)
             for a, b in zip(seq, list(seq)[1:]) if isinstance(a, nn.Conv2d) and isinstance(b, nn.BatchNorm2d)}
    if len(order) != len(convs):
        raise KptrackError(f"--model {path}: {len(convs)} convolutions in the graph, {len(order)} in a lite network with "
                           f"{meta.config.get('model_kwargs', {})}. Re-export it with `kptrack export` from its checkpoint.")
    for conv, node in zip(order, convs):
        w = weights.get(node.input[1])
        b = weights[node.input[2]] if len(node.input) > 2 and node.input[2] in weights else np.zeros(conv.out_channels, np.float32)
        if w is None or tuple(w.shape) != tuple(conv.weight.shape):
            raise KptrackError(f"--model {path}: Conv node {node.name or node.output[0]} does not match the lite network's "
                               f"{tuple(conv.weight.shape)}. Re-export it with `kptrack export` from its checkpoint.")
        conv.weight.data = torch.from_numpy(np.array(w, np.float32))
        bn = norms.get(conv)
        if bn is None and conv.bias is None:
            raise KptrackError(f"--model {path}: a convolution without bias or norm in the lite network; this kptrack cannot read it back.")
        if bn is None:
            conv.bias.data = torch.from_numpy(np.array(b, np.float32))
        else:  # the folded bias; the norm passes its input through
            bn.weight.data.fill_(1.0)
            bn.bias.data = torch.from_numpy(np.array(b, np.float32))
            bn.running_mean.zero_()
            bn.running_var.fill_(1.0 - bn.eps)
    return net, meta
