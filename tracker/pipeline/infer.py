"""Heatmap inference with ONNX Runtime: one session per model file, metadata read from the file.

:class:`OnnxHeatmapModel` opens an exported kptrack model, reads its :class:`~tracker.formats.modelmeta.ModelMeta`
(keypoint names, input/heatmap sizes, normalisation) from the ONNX custom metadata, and runs it on
crops. Execution providers:

* ``device='auto'``: CUDA first, then CPU. CUDA is tried only where an NVIDIA driver is present
  (``libcuda.so.1`` loads); if the CUDA provider then fails to initialise, the fallback to CPU is
  logged as a warning with the reason, never silent.
* ``device='cuda'``: CUDA or an error. If this onnxruntime build has no CUDA provider, or the
  session comes up on another provider (driver or CUDA/cuDNN libraries missing), it raises
  :class:`~tracker.errors.KptrackError` saying why.
* ``device='cpu'``: CPU only.

The provider actually in use (``session.get_providers()[0]``) is logged and kept in ``.provider``
for the HUD. On CUDA the session runs with IO binding: the normalised crop is bound from host
memory (one upload), the heatmap output is bound to host memory (one download), and any other
outputs (e.g. intermediate supervision heads) are bound to the device and never copied.

A model with a visibility output (``kptrack visibility``; its metadata's ``visibility`` names it)
runs both outputs, and :class:`~tracker.pipeline.visibility.VisibilityGate` zeroes the heatmaps
of the keypoints it says are hidden before they leave :meth:`OnnxHeatmapModel.__call__`, so every
caller (the tracker, the benchmarks, ``kptrack viz``) sees the gated heatmaps.
"""

from __future__ import annotations

import ctypes
import logging
from pathlib import Path
from typing import Protocol

import numpy as np

from tracker.errors import KptrackError
from tracker.formats.modelmeta import ModelMeta
from tracker.pipeline.visibility import VisibilityGate

log = logging.getLogger(__name__)

class HeatmapBackend(Protocol):
    """A heatmap network (or a test double). ``meta`` gives keypoint names and sizes.

    ``__call__(crops (N, S, S, 3) uint8 BGR, affines (N, 2, 3) float64 frame->crop, frame_index)``
    -> (N, K, H, H) float32 heatmaps. ``provider``: a label for the HUD.
    """

    meta: ModelMeta
    provider: str

    def __call__(self, crops: np.ndarray, affines: np.ndarray | None = None, frame_index: int | None = None) -> np.ndarray: ...


def check_model_matches_object(meta: ModelMeta, obj, model_name: str = "model") -> None:
    """Raise KptrackError if the model's keypoints are not the object's (count, then names)."""
    mk, ok = tuple(meta.keypoint_names), tuple(obj.keypoint_names)
    obj_name = str(getattr(obj, "path", None) or getattr(obj, "name", "object"))
    if len(mk) != len(ok):
        raise KptrackError(
            f"{model_name}: the model predicts {len(mk)} keypoints {list(mk)} but object {obj_name} has {len(ok)} "
            f"{list(ok)}. Use the model trained for this object (or pass the --object it was trained with)."
        )
    if mk != ok:
        diff = [f"{i}: model {a!r} vs object {b!r}" for i, (a, b) in enumerate(zip(mk, ok)) if a != b]
        raise KptrackError(
            f"{model_name}: keypoint names differ from object {obj_name} ({'; '.join(diff[:4])}). "
            "Use the model trained for this object (or pass the --object it was trained with)."
        )


PRECISION_SUFFIX = {"fp32": "", "fp16": ".fp16", "int8": ".int8"}


def precision_model_path(model: str | Path, precision: str) -> Path:
    """The model file of ``precision`` beside the fp32 ``model``: ``dir/m.onnx`` -> ``dir/m.fp16.onnx`` /
    ``dir/m.int8.onnx`` (fp32: ``model`` itself). A missing file raises KptrackError naming the
    ``kptrack export`` command that writes it."""
    if precision not in PRECISION_SUFFIX:
        raise KptrackError(f"--precision {precision}: unknown precision. Use fp32, fp16 or int8.")
    model = Path(model)
    stem = model.stem
    for suffix in (".fp16", ".int8"):  # a precision-suffixed file given as --model: start from its fp32 name
        stem = stem[: -len(suffix)] if stem.endswith(suffix) else stem
    fp32 = model.with_name(stem + model.suffix)
    path = model.with_name(stem + PRECISION_SUFFIX[precision] + model.suffix)
    if not path.is_file() and precision != "fp32":
        how = (f"`kptrack export --model {fp32} --int8 --calib-data DATASET` (DATASET: `kptrack synth --object OBJECT "
               "--out DATASET --num 300`)" if precision == "int8"
               else f"`kptrack export --checkpoint RUN/best.pt --out {fp32} --fp16`")
        raise KptrackError(f"--precision {precision}: {path} not found (it sits beside {fp32}). Write it with {how}, "
                           "or run with --precision fp32.")
    return path


CUDA = "CUDAExecutionProvider"
CPU = "CPUExecutionProvider"


def _ort():
    try:
        import onnxruntime as ort
    except ImportError as e:  # pragma: no cover - a broken install
        raise KptrackError(f"onnxruntime is not importable ({e}). Install it: `pip install onnxruntime` (or onnxruntime-gpu).") from None
    return ort


def nvidia_driver_present() -> bool:
    """Whether the NVIDIA driver library loads (without it the CUDA provider cannot start)."""
    try:
        ctypes.CDLL("libcuda.so.1")
        return True
    except OSError:
        return False


def _cuda_failure_reason(ort) -> str:
    """Best explanation of why the CUDA provider did not come up."""
    if CUDA not in ort.get_available_providers():
        return (
            f"this onnxruntime build ({ort.__version__}) has no CUDA provider "
            f"(available: {', '.join(ort.get_available_providers())}); install onnxruntime-gpu"
        )
    if not nvidia_driver_present():
        return "no NVIDIA driver found (libcuda.so.1 does not load): no GPU visible on this machine"
    lib = Path(ort.__file__).parent / "capi" / "libonnxruntime_providers_cuda.so"
    if lib.exists():
        try:
            ctypes.CDLL(str(lib))
        except OSError as e:
            return f"the CUDA provider library does not load: {e} (install the CUDA and cuDNN versions this onnxruntime needs)"
    return "the CUDA provider failed to initialise (onnxruntime logged the cause above)"


class OnnxHeatmapModel:
    """An exported kptrack heatmap network run with ONNX Runtime.

    path: .onnx file carrying kptrack metadata. device: 'auto' | 'cpu' | 'cuda'.
    threads: ONNX Runtime intra-op threads (None: onnxruntime's default, all cores).
    precision: when given ('fp32' | 'fp16' | 'int8'), the metadata must say the same.

    Attributes: meta (ModelMeta), provider (the execution provider in use), path, input_name,
    output_name (the heatmap output: the model's last output), gate (the
    :class:`~tracker.pipeline.visibility.VisibilityGate` of a model with a visibility output, else
    None), gated (crops gated so far).
    """

    def __init__(self, path: str | Path, device: str = "auto", threads: int | None = None, precision: str | None = None):
        ort = _ort()
        self.path = Path(path)
        if device not in ("auto", "cpu", "cuda"):
            raise KptrackError(f"--device {device}: unknown device. Use auto, cpu or cuda.")
        if threads is not None and threads < 1:
            raise KptrackError(f"--threads {threads}: must be >= 1 (or left out for onnxruntime's default).")
        if not self.path.is_file():
            raise KptrackError(
                f"{self.path}: model file not found. Export one with `kptrack export --checkpoint RUN/best.pt --out {self.path}`."
            )
        if device == "cuda" and (CUDA not in ort.get_available_providers() or not nvidia_driver_present()):
            raise KptrackError(f"--device cuda: {_cuda_failure_reason(ort)}. Or run with --device cpu.")

        providers = [CPU]
        if device == "cuda" or (device == "auto" and CUDA in ort.get_available_providers() and nvidia_driver_present()):
            providers = [CUDA, CPU]
        so = ort.SessionOptions()
        so.graph_optimization_level = ort.GraphOptimizationLevel.ORT_ENABLE_ALL
        # Intra-op threads sleep between runs instead of spinning: on a small machine a spinning
        # worker holds the core that the frame reader, drawing and writing threads need (#14,
        # measured on 2 cores: about half the process's CPU time burnt, and slower frames).
        so.add_session_config_entry("session.intra_op.allow_spinning", "0")
        if threads is not None:
            so.intra_op_num_threads = int(threads)
        try:
            self.session = ort.InferenceSession(str(self.path), sess_options=so, providers=providers)
        except Exception as e:  # onnxruntime raises its own types for protobuf/graph errors
            raise KptrackError(f"{self.path}: not a loadable ONNX model ({type(e).__name__}: {str(e).strip()[:300]}). Re-export it with `kptrack export`.") from None

        self.provider = self.session.get_providers()[0]
        if CUDA in providers and self.provider != CUDA:
            reason = _cuda_failure_reason(ort)
            if device == "cuda":
                raise KptrackError(f"--device cuda: CUDA was asked for but the session runs on {self.provider}: {reason}. Or run with --device cpu.")
            log.warning("CUDA provider unavailable (%s); running on %s", reason, self.provider)
        self.device = "cuda" if self.provider == CUDA else "cpu"
        log.info("model %s on %s (threads=%s)", self.path.name, self.provider, threads if threads is not None else "default")

        self.meta = ModelMeta.from_dict(self.session.get_modelmeta().custom_metadata_map, source=str(self.path))
        if precision is not None and self.meta.precision != precision:
            raise KptrackError(f"--precision {precision}: {self.path}'s metadata says it is {self.meta.precision}. "
                               f"Pass --precision {self.meta.precision}, or the fp32 model as --model.")
        inputs, outputs = self.session.get_inputs(), self.session.get_outputs()
        if len(inputs) != 1 or len(inputs[0].shape) != 4:
            raise KptrackError(f"{self.path}: expected one NCHW image input, found {[(i.name, i.shape) for i in inputs]}. Re-export it with `kptrack export`.")
        self.input_name = inputs[0].name
        self.output_name = outputs[-1].name
        self._other_outputs = [o.name for o in outputs[:-1]]
        self.gate, self.gated, self._vis_name = None, 0, None
        if self.meta.visibility:
            self._vis_name = self.meta.visibility["output"]
            vis = next((o for o in outputs[:-1] if o.name == self._vis_name), None)
            if vis is None or len(vis.shape) != 2 or (isinstance(vis.shape[1], int) and vis.shape[1] != self.meta.num_keypoints):
                raise KptrackError(f"{self.path}: its metadata names a visibility output {self._vis_name!r} of shape (N, "
                                   f"{self.meta.num_keypoints}), which the graph lacks. Re-make it with `kptrack visibility`.")
            self.gate = VisibilityGate.from_meta(self.meta.visibility)
            self._other_outputs.remove(self._vis_name)
        s = self.meta.input_size
        shape = inputs[0].shape
        if any(isinstance(d, int) and d != want for d, want in zip(shape[1:], (3, s, s))):
            raise KptrackError(f"{self.path}: input shape {shape} does not match its metadata input_size {s}. Re-export it with `kptrack export`.")
        oshape = outputs[-1].shape
        k, h = self.meta.num_keypoints, self.meta.heatmap_size
        if len(oshape) != 4 or any(isinstance(d, int) and d != want for d, want in zip(oshape[1:], (k, h, h))):
            raise KptrackError(
                f"{self.path}: heatmap output shape {oshape} does not match its metadata ({k} keypoints, {h}x{h}). Re-export it with `kptrack export`."
            )
        self._io = self.session.io_binding() if self.device == "cuda" else None

    @property
    def keypoint_names(self) -> tuple[str, ...]:
        return self.meta.keypoint_names

    def __call__(self, crops: np.ndarray, affines: np.ndarray | None = None, frame_index: int | None = None) -> np.ndarray:
        """Heatmaps for a batch of crops.

        crops: (N, S, S, 3) uint8 BGR, S = meta.input_size. affines, frame_index: the crop
        affines (N, 2, 3) and the frame number; accepted so every heatmap backend has one
        signature (test doubles use them), ignored here.
        Returns (N, K, H, H) float32 heatmaps, H = meta.heatmap_size.
        """
        crops = np.asarray(crops)
        s = self.meta.input_size
        if crops.ndim != 4 or crops.shape[1:] != (s, s, 3) or crops.dtype != np.uint8:
            raise ValueError(f"crops must be (N, {s}, {s}, 3) uint8, got {crops.shape} {crops.dtype}")
        x = self.meta.normalise(crops)
        wanted = [self.output_name] if self._vis_name is None else [self._vis_name, self.output_name]
        if self._io is None:
            outs = self.session.run(wanted, {self.input_name: x})
        else:
            io = self._io
            io.clear_binding_inputs()
            io.clear_binding_outputs()
            io.bind_cpu_input(self.input_name, x)  # the crop goes up once
            for name in self._other_outputs:  # other heads stay on the GPU
                io.bind_output(name, "cuda")
            for name in wanted:  # only the heatmaps (and the visibility) come down
                io.bind_output(name, "cpu")
            self.session.run_with_iobinding(io)
            outs = [o.numpy() for o in io.get_outputs()[-len(wanted):]]
        heatmaps = outs[-1]
        if self.gate is not None:
            self.gated += int(self.gate(heatmaps, outs[0]).sum())
        return heatmaps

    def warmup(self, n: int = 5, batch: int = 1) -> None:
        """Run n inferences on a grey crop so kernels, allocators and caches are ready before timing."""
        s = self.meta.input_size
        crops = np.full((batch, s, s, 3), 127, np.uint8)
        for _ in range(max(0, n)):
            self(crops)

    def __repr__(self) -> str:
        return f"OnnxHeatmapModel({str(self.path)!r}, provider={self.provider}, K={self.meta.num_keypoints})"
