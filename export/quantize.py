"""fp32 ONNX -> int8 ONNX: ``kptrack export --int8``.

ONNX Runtime's static post-training quantization (``quantize_static``): QDQ format (QuantizeLinear /
DequantizeLinear pairs around each quantized tensor, which ONNX Runtime fuses into integer kernels
such as QLinearConv), weights int8 symmetric per output channel, activations uint8 asymmetric per
tensor with ranges calibrated (MinMax) on crops of the object's synthetic data. The crops are the
training crops (:class:`train.dataset.CropDataset` with the training augmentation, search views
included), so the calibrated ranges cover what the tracker feeds the network. See Jacob et al.,
"Quantization and Training of Neural Networks for Efficient Integer-Arithmetic-Only Inference"
(CVPR 2018) for the affine int8 scheme.

Before it writes ``<model stem>.int8.onnx`` beside the fp32 file, the same run checks it against the
fp32 model: keypoint PCK@5px with :func:`train.score.score_crops` on a labelled split, and the demo's
ADD(-S) fraction with :func:`benchmarks.demo.run_demo` on the demo sequence; each may drop by at
most ``max_drop_points`` percentage points, else nothing is written and a KptrackError gives the
figures. Inference latency of both at batch 1 is measured in the same run.

The written model carries the fp32 model's kptrack metadata with ``precision`` "int8".
"""

from __future__ import annotations

import dataclasses
import logging
import tempfile
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import onnx

from benchmarks.demo import ensure_demo_sequence, run_demo
from export.onnx_export import cpu_session, session_latency_ms, set_metadata
from tracker.atomic import atomic_write
from tracker.camera import Camera
from tracker.errors import KptrackError
from tracker.formats.modelmeta import ModelMeta
from tracker.objects import load_object
from tracker.paths import default_cache_dir
from tracker.pipeline.infer import OnnxHeatmapModel, check_model_matches_object
from train.augment import AugmentConfig
from train.dataset import CropDataset
from train.records import load_records
from train.score import score_crops

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class QuantizeConfig:
    """What ``kptrack export --int8`` does.

    model: the fp32 .onnx (kptrack metadata). calib_data: BOP dataset (root or split folder) of the
    model's object; calib_split: its split (None: the dataset's training split). crops: how many
    calibration crops. eval_data / eval_split: labelled data for the PCK check (None: calib_data's
    ``test_synth`` split if it has one, else the calibration split; images never used for
    calibration are preferred, see :func:`quantize_int8`). eval_images: at most this many.
    demo_frames: frames of the demo sequence for the ADD check (0: skip). cache: where the demo
    sequence is kept (None: kptrack's cache). max_drop_points: largest allowed accuracy drop,
    percentage points. threads: ONNX Runtime intra-op threads for the checks. seed: crop draws.
    out: the int8 file (None: ``<model stem>.int8.onnx`` beside the model).
    """

    model: str
    calib_data: str
    calib_split: str | None = None
    crops: int = 128
    eval_data: str | None = None
    eval_split: str | None = None
    eval_images: int = 200
    demo_frames: int = 300
    cache: str | None = None
    max_drop_points: float = 1.0
    threads: int | None = None
    seed: int = 0
    out: str | None = None


@dataclass
class QuantizeReport:
    """path: the int8 file (written only when ``passed``). accuracy: {metric: (fp32, int8)} in %.
    latency_ms: {'fp32'|'int8': median ms at batch 1}; speedup: fp32 / int8 latency."""

    path: Path
    crops: int
    accuracy: dict[str, tuple[float, float]] = field(default_factory=dict)
    latency_ms: dict[str, float] = field(default_factory=dict)
    max_drop_points: float = 1.0

    @property
    def speedup(self) -> float:
        return self.latency_ms["fp32"] / self.latency_ms["int8"]

    @property
    def passed(self) -> bool:
        return all(a - b <= self.max_drop_points for a, b in self.accuracy.values())


def int8_path(model: str | Path) -> Path:
    """``dir/model.onnx`` -> ``dir/model.int8.onnx`` (where ``kptrack track --precision int8`` looks)."""
    p = Path(model)
    return p.with_name(p.stem + ".int8.onnx")


class _CropReader:
    """onnxruntime CalibrationDataReader over normalised crops: one (1, 3, S, S) float32 feed per call."""

    def __init__(self, input_name: str, x: np.ndarray):
        self.input_name, self.x, self.i = input_name, x, 0

    def get_next(self):
        if self.i >= len(self.x):
            return None
        self.i += 1
        return {self.input_name: self.x[self.i - 1 : self.i]}

    def rewind(self) -> None:
        self.i = 0


def calibration_crops(records, meta: ModelMeta, n: int, seed: int) -> np.ndarray:
    """(n, S, S, 3) uint8 BGR training crops (augmented, search views included) of ``records``, one
    per record drawn without replacement where there are enough, each from its own seed."""
    if not records:
        raise KptrackError("the calibration data holds no labelled images. Pass a BOP dataset written by `kptrack synth`.")
    ds = CropDataset(records, augment=AugmentConfig(), input_size=meta.input_size, heatmap_size=meta.heatmap_size)
    rng = np.random.default_rng(seed)
    pick = rng.permutation(len(ds))[:n] if n <= len(ds) else rng.integers(0, len(ds), n)
    return np.stack([ds[(int(i), seed * 100003 + k)]["image"] for k, i in enumerate(pick)])


def _quantize(model: Path, out: Path, x: np.ndarray, input_name: str) -> None:
    # lazily: onnxruntime.quantization pulls in onnx tooling that only export needs
    from onnxruntime.quantization import CalibrationMethod, QuantFormat, QuantType, quantize_static
    from onnxruntime.quantization.shape_inference import quant_pre_process

    with tempfile.TemporaryDirectory(prefix="kptrack-int8-") as tmp:
        pre = Path(tmp) / "pre.onnx"
        quant_pre_process(str(model), str(pre), skip_symbolic_shape=True)
        quantize_static(str(pre), str(out), _CropReader(input_name, x), quant_format=QuantFormat.QDQ, per_channel=True,
                        activation_type=QuantType.QUInt8, weight_type=QuantType.QInt8,
                        calibrate_method=CalibrationMethod.MinMax)


def _pck(model_path: Path, records, meta: ModelMeta, threads: int | None) -> float:
    m = OnnxHeatmapModel(model_path, device="cpu", threads=threads)
    ds = CropDataset(records, augment=None, input_size=meta.input_size, heatmap_size=meta.heatmap_size)
    return 100.0 * score_crops(m, ds)["pck5"]


def _demo_add(model_path: Path, obj, frames: int, cache: Path, threads: int | None) -> float:
    scene = ensure_demo_sequence(cache, frames)
    m = OnnxHeatmapModel(model_path, device="cpu", threads=threads)
    rep = run_demo(m, obj, Camera.from_yaml(scene / "camera.yaml"), scene)
    return 100.0 * rep.accuracy["frac_add"]


def _eval_records(cfg: QuantizeConfig, obj, calib_records) -> list:
    if cfg.eval_data:
        recs = load_records(cfg.eval_data, obj, split=cfg.eval_split)
    else:
        try:
            recs = load_records(cfg.calib_data, obj, split=cfg.eval_split or "test_synth")
        except KptrackError:
            log.warning("no test_synth split in %s: checking PCK on calibration images", cfg.calib_data)
            recs = calib_records
    if len(recs) > cfg.eval_images:
        recs = [recs[i] for i in np.linspace(0, len(recs) - 1, cfg.eval_images).round().astype(int)]
    return recs


def quantize_int8(cfg: QuantizeConfig) -> QuantizeReport:
    """Quantize ``cfg.model`` to int8, check accuracy and speed against it, write it if it passes."""
    src = Path(cfg.model)
    out = Path(cfg.out) if cfg.out else int8_path(src)
    if cfg.crops < 8:
        raise KptrackError(f"--calib-crops {cfg.crops}: use at least 8 calibration crops (64-200 is typical).")
    fp32 = OnnxHeatmapModel(src, device="cpu", threads=cfg.threads)  # checks the file and reads its metadata
    meta = fp32.meta
    if meta.precision != "fp32":
        raise KptrackError(f"--model {src}: its metadata says precision {meta.precision}; quantize the fp32 model.")
    obj = load_object(meta.object_id if meta.object_id and meta.object_id != "default" and Path(meta.object_id).is_dir() else "default")
    check_model_matches_object(meta, obj, str(src))
    calib_records = load_records(cfg.calib_data, obj, split=cfg.calib_split)
    x = meta.normalise(calibration_crops(calib_records, meta, cfg.crops, cfg.seed))
    rep = QuantizeReport(path=out, crops=len(x), max_drop_points=cfg.max_drop_points)

    with tempfile.TemporaryDirectory(prefix="kptrack-int8-", dir=str(out.parent) if out.parent.is_dir() else None) as tmp:
        q = Path(tmp) / "model.int8.onnx"
        log.info("calibrating on %d crops and quantizing %s", len(x), src)
        _quantize(src, q, x, fp32.input_name)
        proto = onnx.load(str(q))
        set_metadata(proto, dataclasses.replace(meta, precision="int8"))
        onnx.save(proto, str(q))

        eval_records = _eval_records(cfg, obj, calib_records)
        rep.accuracy["pck5"] = (_pck(src, eval_records, meta, cfg.threads), _pck(q, eval_records, meta, cfg.threads))
        if cfg.demo_frames > 0:
            cache = Path(cfg.cache) if cfg.cache else default_cache_dir()
            rep.accuracy["demo_add"] = (_demo_add(src, obj, cfg.demo_frames, cache, cfg.threads),
                                        _demo_add(q, obj, cfg.demo_frames, cache, cfg.threads))
        size = meta.input_size
        rep.latency_ms = {"fp32": session_latency_ms(cpu_session(src, cfg.threads), size)["median"],
                          "int8": session_latency_ms(cpu_session(q, cfg.threads), size)["median"]}
        log.info("int8 accuracy %s, latency %s", rep.accuracy, rep.latency_ms)
        if not rep.passed:
            figures = ", ".join(f"{k} fp32 {a:.2f} % -> int8 {b:.2f} %" for k, (a, b) in rep.accuracy.items())
            raise KptrackError(
                f"{out}: not written: the int8 model loses more than {cfg.max_drop_points:g} points ({figures}). "
                "Calibrate on more or more typical crops (--calib-crops, --calib-data of the object's own data), or ship fp32/fp16."
            )
        try:
            with atomic_write(out) as f:
                f.write(q.read_bytes())
        except OSError as e:
            raise KptrackError(f"{out}: cannot write the int8 model ({e.strerror or e}). Choose a writable folder.") from None
    return rep
