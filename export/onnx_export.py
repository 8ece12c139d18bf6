"""Checkpoint -> ONNX: ``kptrack export``.

The network of a ``kptrack train`` checkpoint is exported with ``torch.onnx.export`` (the
TorchScript-based exporter: for these plain conv nets it is fast, deterministic and exact; the
dynamo exporter is the fallback), at opset >= 17 with a dynamic batch dimension. The graph has
one input ``input`` ``(N, 3, S, S)`` float32 (normalised as the metadata says) and one output
``heatmaps`` ``(N, K, H, H)`` float32, the last stack of a hourglass: the heatmaps are the
model's last output, as :class:`tracker.pipeline.infer.OnnxHeatmapModel` expects.

The file is validated with ``onnx.checker`` (full check, with shape inference) and carries
:class:`tracker.formats.modelmeta.ModelMeta` in its custom metadata map, exactly the keys of
``META_KEYS``, so a model file explains itself (keypoint names, sizes, normalisation, object,
preset, training config and validation scores).

Parity: ONNX Runtime (CPU, all graph optimisations, as the tracker runs it) against PyTorch on
random crops at batch 1 and 3 (the dynamic batch) and, with ``--data``, on real crops of that
dataset; the fp32 model must agree to ``tolerance`` (1e-4) in max absolute difference.

``--fp16`` also writes ``<out stem>.fp16.onnx``: weights and compute in float16 with float32
input and output (ONNX Runtime's float16 converter with ``keep_io_types``; if that converter is
missing, the weights alone are stored in float16 and cast back to float32 on load, which halves
the file but not the compute). Its parity is reported against the fp32 network, relative to the
heatmap peak. Its metadata says ``precision`` fp16 (the fp32 file's says fp32); ``--int8`` is
:mod:`export.quantize`.
"""

from __future__ import annotations

import copy
import dataclasses
import logging
import time
import warnings
from dataclasses import dataclass, field
from pathlib import Path

import cv2
import numpy as np
import onnxruntime as ort
import torch

from tracker.atomic import atomic_write
from tracker.errors import KptrackError
from tracker.formats.modelmeta import META_KEYS, ModelMeta
from tracker.geometry.crop import letterbox_affine
from tracker.objects import load_object
from train.augment import box_affine, warp
from train.checkpoint import load_checkpoint, meta_from_checkpoint, model_from_checkpoint
from train.records import load_records

log = logging.getLogger(__name__)

MIN_OPSET = 17
FP16_REL_TOL = 2e-2


@dataclass(frozen=True)
class ExportConfig:
    """What ``kptrack export`` writes.

    checkpoint: a ``kptrack train`` checkpoint (or run folder: its last.pt). out: the .onnx path.
    fp16: also write ``<out stem>.fp16.onnx``. opset: ONNX opset (>= 17). data: a dataset whose
    crops join the parity check (None: random crops only). tolerance: the largest fp32 difference
    allowed. real_crops: how many dataset crops. seed: of the random crops.
    """

    checkpoint: str
    out: str
    fp16: bool = False
    opset: int = 17
    data: str | None = None
    tolerance: float = 1e-4
    real_crops: int = 8
    seed: int = 0


@dataclass
class ExportReport:
    path: Path
    meta: ModelMeta
    parity: dict[str, float] = field(default_factory=dict)
    fp16_path: Path | None = None
    fp16_method: str = ""
    latency_ms: dict[str, float] = field(default_factory=dict)


def cpu_session(model_bytes_or_path, threads: int | None = None):
    """An ONNX Runtime CPU session (all graph optimisations) on a model path or serialized bytes."""
    so = ort.SessionOptions()
    so.graph_optimization_level = ort.GraphOptimizationLevel.ORT_ENABLE_ALL
    if threads:
        so.intra_op_num_threads = threads
    src = str(model_bytes_or_path) if isinstance(model_bytes_or_path, Path) else model_bytes_or_path
    return ort.InferenceSession(src, sess_options=so, providers=["CPUExecutionProvider"])


def torch_export(model, path: Path, size: int, opset: int, outputs: tuple[str, ...] = ("heatmaps",)) -> str:
    """Export with the TorchScript exporter, else the dynamo one, one dynamic batch axis on the
    input and every output (``outputs``: their names). Returns which exporter worked."""
    x = torch.zeros(1, 3, size, size)
    common = dict(input_names=["input"], output_names=list(outputs), opset_version=opset)
    errors = []
    try:
        with torch.no_grad(), warnings.catch_warnings():
            warnings.simplefilter("ignore")
            torch.onnx.export(model, (x,), str(path), dynamic_axes={"input": {0: "batch"}, **{o: {0: "batch"} for o in outputs}},
                              do_constant_folding=True, dynamo=False, **common)
        return "torchscript"
    except Exception as e:  # the legacy exporter may be gone in a future torch
        errors.append(f"torchscript exporter: {type(e).__name__}: {e}")
    try:
        batch = torch.export.Dim("batch", min=1, max=1024)
        with torch.no_grad(), warnings.catch_warnings():
            warnings.simplefilter("ignore")
            torch.onnx.export(model, (x,), str(path), dynamic_shapes=({0: batch},), dynamo=True, external_data=False, **common)
        return "dynamo"
    except Exception as e:
        errors.append(f"dynamo exporter: {type(e).__name__}: {e}")
    raise RuntimeError("ONNX export failed:\n" + "\n".join(errors))


def set_metadata(model_proto, meta: ModelMeta) -> None:
    """Replace the ModelProto's custom metadata map with ``meta``'s keys (in META_KEYS order)."""
    del model_proto.metadata_props[:]
    for k, v in meta.to_dict().items():
        e = model_proto.metadata_props.add()
        e.key, e.value = k, v


def _save_atomic(model_proto, path: Path) -> None:
    import onnx  # lazily: onnx is an optional dependency (the dev extra), needed only to export

    try:
        with atomic_write(path) as f:
            onnx.save(model_proto, f)
    except OSError as e:
        raise KptrackError(f"--out {path}: cannot write the model ({e.strerror or e}). Choose a writable path with free space.") from None


def _real_crops(data: str, ckpt: dict, n: int, size: int) -> np.ndarray:
    """Up to n deterministic crops (n, S, S, 3) uint8 BGR from a dataset: box crops of its labelled
    instances, or (when its object cannot be loaded here) letterboxed whole images."""
    crops = []
    try:
        obj = load_object(ckpt.get("config", {}).get("object", "default"))
        recs = load_records(data, obj)
        pick = np.linspace(0, len(recs) - 1, min(n, len(recs))).round().astype(int)
        for i in pick:
            img = cv2.imread(str(recs[i].image_path), cv2.IMREAD_COLOR)
            if img is not None:
                crops.append(warp(img, box_affine(np.asarray(recs[i].box)), size))
    except KptrackError as e:
        log.info("real crops: %s; using letterboxed whole images instead", e)
        p = Path(data)
        files = sorted(f for f in (p.rglob("*") if p.is_dir() else []) if f.suffix.lower() in (".png", ".jpg", ".jpeg"))
        files = [f for f in files if "mask" not in f.parent.name and "depth" not in f.parent.name]
        for f in files[: n * 2]:
            img = cv2.imread(str(f), cv2.IMREAD_COLOR)
            if img is not None:
                crops.append(warp(img, letterbox_affine(img.shape[1], img.shape[0], size), size))
            if len(crops) >= n:
                break
    if not crops:
        raise KptrackError(f"--data {data}: no readable images found for the real-crop parity check. Pass a BOP dataset folder or leave --data out.")
    return np.stack(crops)


def _fp16_convert(model_proto):
    """(fp16 ModelProto, method). Float16 compute with float32 IO, or float16 weights only."""
    try:
        # lazily: onnxruntime's transformers tools are not in every onnxruntime build
        from onnxruntime.transformers.float16 import convert_float_to_float16

        m = convert_float_to_float16(copy.deepcopy(model_proto), keep_io_types=True)
        return m, "float16 weights and compute, float32 IO (onnxruntime float16 converter)"
    except ImportError:
        pass
    import onnx  # lazily, as in _save_atomic
    from onnx import TensorProto, helper, numpy_helper

    m = copy.deepcopy(model_proto)
    g = m.graph
    new_inits, casts = [], []
    for init in g.initializer:
        if init.data_type == TensorProto.FLOAT and numpy_helper.to_array(init).size > 16:
            arr = numpy_helper.to_array(init).astype(np.float16)
            half_name = init.name + "_fp16"
            new_inits.append(numpy_helper.from_array(arr, half_name))
            casts.append(helper.make_node("Cast", [half_name], [init.name], to=TensorProto.FLOAT, name=init.name + "_cast"))
        else:
            new_inits.append(init)
    del g.initializer[:]
    g.initializer.extend(new_inits)
    nodes = casts + list(g.node)
    del g.node[:]
    g.node.extend(nodes)
    onnx.checker.check_model(m)
    return m, "float16 weights cast to float32 on load (compute float32)"


def _parity(sess, model, x: np.ndarray) -> float:
    with torch.no_grad():
        ref = model(torch.from_numpy(x)).numpy()
    out = sess.run(None, {"input": x})[-1]
    if out.shape != ref.shape:
        raise RuntimeError(f"ONNX output shape {out.shape} != PyTorch {ref.shape}")
    return float(np.max(np.abs(out - ref)))


def session_latency_ms(sess, size: int, runs: int = 30) -> dict[str, float]:
    """{'min', 'median'} ms of ``sess`` on one zero (1, 3, size, size) input, after 5 warm-up runs."""
    x = np.zeros((1, 3, size, size), np.float32)
    for _ in range(5):
        sess.run(None, {"input": x})
    ts = []
    for _ in range(runs):
        t = time.perf_counter()
        sess.run(None, {"input": x})
        ts.append((time.perf_counter() - t) * 1e3)
    return {"min": float(np.min(ts)), "median": float(np.median(ts))}


def export_onnx(cfg: ExportConfig) -> ExportReport:
    """Export a checkpoint to ONNX with metadata, check it, report parity (and write fp16 if asked)."""
    import onnx  # lazily, as in _save_atomic

    if cfg.opset < MIN_OPSET:
        raise KptrackError(f"--opset {cfg.opset}: kptrack models need opset >= {MIN_OPSET}. Use --opset 17 (default) or newer.")
    out = Path(cfg.out)
    if out.suffix.lower() != ".onnx":
        raise KptrackError(f"--out {out}: the model file name must end in .onnx (e.g. {out.with_suffix('.onnx')}).")
    try:
        out.parent.mkdir(parents=True, exist_ok=True)
    except OSError as e:
        raise KptrackError(f"--out {out}: cannot create its folder ({e.strerror or e}). Choose a writable path.") from None
    ckpt = load_checkpoint(cfg.checkpoint)
    model = model_from_checkpoint(ckpt)
    meta = meta_from_checkpoint(ckpt)
    s, k, h = meta.input_size, meta.num_keypoints, meta.heatmap_size

    tmp = out.with_name(out.name + ".export.tmp")
    try:
        exporter = torch_export(model, tmp, s, cfg.opset)
        proto = onnx.load(str(tmp))
    finally:
        if tmp.exists():
            tmp.unlink()
    try:
        onnx.checker.check_model(proto, full_check=True)
    except Exception as e:
        raise RuntimeError(f"the exported graph fails onnx.checker: {e}") from e
    outs = proto.graph.output
    if len(proto.graph.input) != 1 or len(outs) != 1:
        raise RuntimeError(f"expected one input and one output, got {len(proto.graph.input)} and {len(outs)}")
    set_metadata(proto, meta)
    assert [p.key for p in proto.metadata_props] == list(META_KEYS)
    _save_atomic(proto, out)
    log.info("wrote %s (%s exporter, opset %d, %.1f MB)", out, exporter, cfg.opset, out.stat().st_size / 1e6)

    rep = ExportReport(path=out, meta=meta)
    sess = cpu_session(out)
    rng = np.random.default_rng(cfg.seed)
    for n in (1, 3):
        crops = rng.integers(0, 256, size=(n, s, s, 3), dtype=np.uint8)
        rep.parity[f"random_b{n}"] = _parity(sess, model, meta.normalise(crops))
    oshape = sess.get_outputs()[-1].shape
    if not (isinstance(oshape[0], str) and list(oshape[1:]) == [k, h, h]):
        raise RuntimeError(f"exported output shape {oshape} is not (batch, {k}, {h}, {h})")
    if cfg.data:
        real = _real_crops(cfg.data, ckpt, cfg.real_crops, s)
        rep.parity["real"] = _parity(sess, model, meta.normalise(real))
    worst = max(rep.parity.values())
    rep.latency_ms = session_latency_ms(cpu_session(out, threads=2), s)

    if cfg.fp16:
        p16 = out.with_name(out.stem + ".fp16.onnx")
        m16, rep.fp16_method = _fp16_convert(proto)
        set_metadata(m16, dataclasses.replace(meta, precision="fp16"))
        _save_atomic(m16, p16)
        rep.fp16_path = p16
        x = meta.normalise(rng.integers(0, 256, size=(2, s, s, 3), dtype=np.uint8))
        with torch.no_grad():
            ref = model(torch.from_numpy(x)).numpy()
        y16 = cpu_session(p16).run(None, {"input": x})[-1]
        if y16.dtype != np.float32:
            raise RuntimeError(f"fp16 model output is {y16.dtype}, expected float32 IO")
        scale = max(float(np.abs(ref).max()), 1e-6)
        rep.parity["fp16_rel"] = float(np.max(np.abs(y16 - ref)) / scale)
        if rep.parity["fp16_rel"] > FP16_REL_TOL:
            log.warning("fp16 model differs from fp32 by %.3g of the heatmap peak (> %.3g)", rep.parity["fp16_rel"], FP16_REL_TOL)
    if worst > cfg.tolerance:
        raise KptrackError(
            f"{out}: ONNX Runtime differs from PyTorch by {worst:.3g} (> {cfg.tolerance:g}) "
            f"({', '.join(f'{a} {b:.2g}' for a, b in rep.parity.items())}). Do not ship this file; "
            "report it with your torch/onnxruntime versions."
        )
    return rep

