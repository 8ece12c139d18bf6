"""The training loop: ``kptrack train``.

Recipe of the seed (Newell et al., "Stacked Hourglass Networks for Human Pose Estimation",
ECCV 2016): RMSprop at learning rate 2.5e-4, batch 8, MSE between predicted and Gaussian
target heatmaps, with scale and 2D-rotation augmentation. Here the MSE is weighted per
keypoint (weight 0 for unlabelled keypoints, see :mod:`train.heatmaps`) and summed over all
supervised outputs (every hourglass stack: intermediate supervision). The learning rate
follows a linear warm-up then a cosine decay (Loshchilov and Hutter, "SGDR", ICLR 2017) to
``min_lr_frac`` of its peak; ``schedule='step'`` divides it by 10 at 75 % and 90 %, as
Newell et al. drop it when validation stalls.

Validation runs on held-out images (see :mod:`train.dataset`) every ``val_every`` iterations
and at the end: the last output's heatmaps are decoded with the tracker's DARK decoder and
compared in the 256x256 crop: PCK@2px and PCK@5px and the mean error over visible keypoints
(v=2, inside the crop), PCK@5px over all labelled keypoints (hidden ones too), and the
weighted validation loss.

Run directory: ``last.pt`` (every validation and at the end), ``best.pt`` (best PCK@5px, then
lowest mean error), ``log.csv`` (iter, loss, lr, images/s, validation metrics), ``config.json``,
and TensorBoard events when ``torch.utils.tensorboard`` is importable. Checkpoints are plain
dicts of tensors and primitives (loadable with ``torch.load(weights_only=True)``), written to a
temporary file and renamed into place, so a full disk leaves the previous one intact.

Resume (``--resume RUN/last.pt`` or ``--resume RUN``) restores model, optimizer and scheduler
state and the iteration counter; batches are a pure function of (seed, iteration) (see
:class:`train.dataset.InfiniteBatchSampler`), so a resumed run draws the batches an
uninterrupted one would have.

Multi-GPU / multi-node: launch with ``torchrun --nproc_per_node N -m tracker train ...``.
Each process trains on its own shard of every global batch (``batch`` per process) under
DistributedDataParallel (NCCL on GPUs, gloo on CPUs); only rank 0 validates and writes files.
"""

from __future__ import annotations

import csv
import dataclasses
import errno
import json
import logging
import math
import os
import signal
import sys
import threading
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import torch
import torch.nn as nn

from tracker.geometry.crop import HEATMAP_SIZE, INPUT_SIZE
from tracker.atomic import atomic_write
from tracker.errors import KptrackError
from tracker.formats.modelmeta import ModelMeta
from train.augment import AugmentConfig
from train.dataset import (
    CropDataset,
    InfiniteBatchSampler,
    collate,
    crop_pixel_errors,
    load_records,
    normalise_batch,
    split_holdout,
)
from train.heatmaps import decode_heatmaps
from train.models import build_model, get_preset, model_kwargs

log = logging.getLogger(__name__)

CHECKPOINT_FORMAT = "kptrack-checkpoint"
CHECKPOINT_VERSION = 1
CSV_FIELDS = ("iter", "loss", "lr", "images_per_s", "val_loss", "pck2", "pck5", "mean_px", "pck5_labelled", "bad_images", "time_s")
_DEFAULT_META = ModelMeta(keypoint_names=("k",))


@dataclass(frozen=True)
class TrainConfig:
    """Everything that defines a training run; saved (as a dict) in every checkpoint.

    data: BOP dataset root/split/scene folder or COCO keypoints JSON. out: run directory.
    object: 'default' or an object directory. preset: network preset (train.models.PRESETS).
    iters: total iterations (a resumed run continues to this count). batch: per process.
    lr: peak learning rate; optimizer 'rmsprop' (seed) | 'adam'; schedule 'cosine' | 'step' | 'constant';
    warmup: linear warm-up iterations. val_every / log_every: iterations. val_fraction / val_max:
    the held-out part of --data; val_split: a BOP split to validate on instead. init: a checkpoint
    whose network weights start a new run (fine-tuning): optimizer, schedule and iteration count
    start fresh, unlike ``resume``.
    sigma: target Gaussian std in heatmap cells. rotation_deg, scale_jitter, search_prob: see
    train.augment.AugmentConfig. width (lite), stacks and features (hourglass): model options
    (None = preset default). workers: DataLoader processes (None = auto). threads: torch
    intra-op threads (None = all cores of this process's share). device: auto | cpu | cuda.
    """

    data: str
    out: str
    object: str = "default"
    preset: str = "lite"
    iters: int = 20000
    batch: int = 8
    lr: float = 2.5e-4
    optimizer: str = "rmsprop"
    schedule: str = "cosine"
    warmup: int = 200
    min_lr_frac: float = 0.02
    weight_decay: float = 0.0
    seed: int = 0
    resume: str | None = None
    init: str | None = None
    split: str | None = None
    val_split: str | None = None
    val_fraction: float = 0.05
    val_max: int = 500
    val_every: int = 1000
    log_every: int = 50
    sigma: float = 2.0
    rotation_deg: float = 30.0
    scale_jitter: float = 0.25
    search_prob: float = 0.15
    width: float | None = None
    stacks: int | None = None
    features: int | None = None
    workers: int | None = None
    threads: int | None = None
    device: str = "auto"
    obj_id: int = 1
    channels_last: bool = True

    def model_options(self) -> dict:
        given = {"width": self.width, "stacks": self.stacks, "features": self.features}
        return model_kwargs(self.preset, **{k: v for k, v in given.items() if v is not None})

    def augment(self) -> AugmentConfig:
        return AugmentConfig(rotation_deg=self.rotation_deg, scale_jitter=self.scale_jitter, search_prob=self.search_prob)


@dataclass
class TrainResult:
    run_dir: Path
    iteration: int
    scores: dict
    best_scores: dict
    bad_images: int
    model: nn.Module | None = field(default=None, repr=False)


# ---------------------------------------------------------------------------- config checks
def _check_config(cfg: TrainConfig) -> None:
    get_preset(cfg.preset)
    problems = [
        (cfg.iters >= 1, f"--iters {cfg.iters}: must be >= 1"),
        (cfg.batch >= 1, f"--batch {cfg.batch}: must be >= 1"),
        (cfg.lr > 0 and math.isfinite(cfg.lr), f"--lr {cfg.lr}: must be a positive number"),
        (cfg.optimizer in ("rmsprop", "adam"), f"optimizer {cfg.optimizer!r}: use rmsprop or adam"),
        (cfg.schedule in ("cosine", "step", "constant"), f"schedule {cfg.schedule!r}: use cosine, step or constant"),
        (cfg.workers is None or cfg.workers >= 0, f"--workers {cfg.workers}: must be >= 0"),
        (cfg.threads is None or cfg.threads >= 1, f"--threads {cfg.threads}: must be >= 1"),
        (cfg.val_every >= 1 and cfg.log_every >= 1, "val_every and log_every must be >= 1"),
        (cfg.sigma > 0, f"--sigma {cfg.sigma}: must be > 0 heatmap cells"),
        (0 <= cfg.rotation_deg <= 180, f"--rot-range {cfg.rotation_deg}: must be within 0..180 degrees"),
        (0 <= cfg.scale_jitter < 1, f"scale_jitter {cfg.scale_jitter}: must be within [0, 1)"),
        (0 <= cfg.search_prob <= 1, f"search_prob {cfg.search_prob}: must be within [0, 1]"),
        (0 < cfg.val_fraction < 1 and cfg.val_max >= 1, "val_fraction must be in (0, 1) and val_max >= 1"),
        (cfg.device in ("auto", "cpu", "cuda") or cfg.device.startswith("cuda:"), f"--device {cfg.device}: use auto, cpu or cuda"),
    ]
    for ok, msg in problems:
        if not ok:
            raise KptrackError(msg + ".")


# ---------------------------------------------------------------------------- checkpoints
def save_checkpoint(obj: dict, path: Path) -> None:
    """Write ``obj`` with torch.save to ``path`` atomically (temporary file, fsync, rename).

    Any OSError (full disk, read-only folder) leaves the previous file intact and raises a
    KptrackError that says so.
    """
    path = Path(path)
    try:
        with atomic_write(path) as f:
            torch.save(obj, f)
    except OSError as e:
        why = "the disk is full" if getattr(e, "errno", None) == errno.ENOSPC else (e.strerror or str(e))
        kept = f"the previous {path.name} is intact" if path.exists() else f"no {path.name} was written"
        raise KptrackError(
            f"{path}: could not save the checkpoint ({why}); {kept}. Free space or choose another --out, "
            f"then continue with --resume {path.parent / 'last.pt'}."
        ) from None


def load_checkpoint(path: str | Path) -> dict:
    """Load a kptrack checkpoint with ``torch.load(weights_only=True)``; a run folder means its last.pt.

    Raises KptrackError for a missing file or something that is not a kptrack checkpoint.
    """
    path = Path(path)
    if path.is_dir():
        path = path / "last.pt"
    if not path.is_file():
        raise KptrackError(f"{path}: checkpoint not found. Pass RUN/last.pt or RUN/best.pt written by `kptrack train`.")
    try:
        ckpt = torch.load(path, map_location="cpu", weights_only=True)
    except Exception as e:  # pickle/zip errors come in many types
        raise KptrackError(
            f"{path}: not a readable kptrack checkpoint ({type(e).__name__}: {str(e).splitlines()[0][:200] if str(e) else ''}). "
            "Pass a .pt written by `kptrack train`."
        ) from None
    if not isinstance(ckpt, dict) or ckpt.get("format") != CHECKPOINT_FORMAT:
        raise KptrackError(f"{path}: not a kptrack checkpoint (no '{CHECKPOINT_FORMAT}' marker). Pass a .pt written by `kptrack train`.")
    if ckpt.get("version", 0) > CHECKPOINT_VERSION:
        raise KptrackError(f"{path}: checkpoint version {ckpt.get('version')} is newer than this kptrack reads. Upgrade kptrack.")
    ckpt["path"] = str(path)
    return ckpt


def model_from_checkpoint(ckpt: dict) -> nn.Module:
    """Rebuild the network of a loaded checkpoint (eval mode)."""
    src = ckpt.get("path", "checkpoint")
    model = build_model(ckpt["preset"], len(ckpt["keypoint_names"]), **ckpt["model_kwargs"])
    try:
        model.load_state_dict(ckpt["model"])
    except RuntimeError as e:
        raise KptrackError(f"{src}: weights do not fit the {ckpt['preset']!r} network ({str(e).splitlines()[0]}). The file is damaged or from another kptrack version.") from None
    return model.eval()


def meta_from_checkpoint(ckpt: dict) -> ModelMeta:
    """The ONNX metadata a checkpoint's exported model carries."""
    norm = ckpt["normalisation"]
    return ModelMeta(
        keypoint_names=tuple(ckpt["keypoint_names"]),
        input_size=int(ckpt.get("input_size", INPUT_SIZE)),
        heatmap_size=int(ckpt.get("heatmap_size", HEATMAP_SIZE)),
        mean=tuple(norm["mean"]),
        std=tuple(norm["std"]),
        channel_order=norm["channel_order"],
        object_id=str(ckpt.get("object_id", "")),
        preset=ckpt["preset"],
        config=dict(ckpt.get("config", {}), model_kwargs=ckpt["model_kwargs"], iteration=int(ckpt.get("iteration", 0))),
        scores=dict(ckpt.get("scores", {})),
    )


# ---------------------------------------------------------------------------- helpers
def heatmap_loss(outputs, target: torch.Tensor, weight: torch.Tensor) -> torch.Tensor:
    """Visibility-weighted squared error, summed over heatmap cells, averaged over crops and
    keypoints, summed over the supervised outputs (stacks). outputs: tensor or list of (N, K, H, W)."""
    outs = outputs if isinstance(outputs, (list, tuple)) else [outputs]
    w = weight[:, :, None, None]
    n = target.shape[0] * target.shape[1]
    return sum(((o - target) ** 2 * w).sum() / n for o in outs)


def lr_factor(cfg: TrainConfig, it: int) -> float:
    """Learning-rate multiplier at iteration ``it`` (0-based, the step about to be taken)."""
    warm = min(cfg.warmup, cfg.iters // 10)
    if warm > 0 and it < warm:
        return (it + 1) / warm
    if cfg.schedule == "constant":
        return 1.0
    if cfg.schedule == "step":
        return 1.0 if it < 0.75 * cfg.iters else (0.1 if it < 0.9 * cfg.iters else 0.01)
    p = min(1.0, (it - warm) / max(1, cfg.iters - warm))
    return cfg.min_lr_frac + (1 - cfg.min_lr_frac) * 0.5 * (1 + math.cos(math.pi * p))


class _LrLambda:
    """Picklable-free callable for LambdaLR (not saved: the config rebuilds it on resume)."""

    def __init__(self, cfg: TrainConfig):
        self.cfg = cfg

    def __call__(self, step: int) -> float:
        return lr_factor(self.cfg, step)


def _cores() -> int:
    try:
        return len(os.sched_getaffinity(0))
    except AttributeError:  # pragma: no cover - not Linux
        return os.cpu_count() or 1


def _worker_init(_):
    import cv2

    cv2.setNumThreads(1)
    torch.set_num_threads(1)


@dataclass
class _Dist:
    rank: int = 0
    world: int = 1
    local_rank: int = 0

    @property
    def main(self) -> bool:
        return self.rank == 0


def _init_distributed(device_arg: str) -> tuple[_Dist, torch.device]:
    world = int(os.environ.get("WORLD_SIZE", "1"))
    use_cuda = device_arg.startswith("cuda") or (device_arg == "auto" and torch.cuda.is_available())
    if device_arg.startswith("cuda") and not torch.cuda.is_available():
        raise KptrackError(f"--device {device_arg}: this torch has no usable CUDA GPU. Use --device cpu (or auto).")
    if world <= 1:
        dev = torch.device(device_arg if device_arg.startswith("cuda") else ("cuda" if use_cuda else "cpu"))
        return _Dist(), dev
    import torch.distributed as tdist

    rank, local = int(os.environ["RANK"]), int(os.environ.get("LOCAL_RANK", "0"))
    if use_cuda:
        torch.cuda.set_device(local)
        dev = torch.device("cuda", local)
    else:
        dev = torch.device("cpu")
    if not tdist.is_initialized():
        tdist.init_process_group(backend="nccl" if use_cuda else "gloo")
    return _Dist(rank, world, local), dev


def _open_csv(path: Path, start: int) -> tuple[Any, Any]:
    """Append to log.csv, dropping rows past ``start`` (written after the checkpoint we resume from)."""
    rows = []
    if start > 0 and path.is_file():
        with open(path, newline="", encoding="utf-8") as f:
            rows = [r for r in csv.DictReader(f) if r.get("iter") and int(r["iter"]) <= start]
    f = open(path, "w", newline="", encoding="utf-8")
    w = csv.DictWriter(f, fieldnames=CSV_FIELDS)
    w.writeheader()
    for r in rows:
        w.writerow({k: r.get(k, "") for k in CSV_FIELDS})
    f.flush()
    return f, w


def _fmt(x) -> str:
    if x is None:
        return ""
    if isinstance(x, float):
        return f"{x:.6g}"
    return str(x)


@torch.no_grad()
def evaluate(model: nn.Module, loader, device: torch.device, meta: ModelMeta = _DEFAULT_META,
             memory_format=torch.contiguous_format) -> dict:
    """Validation metrics of ``model`` (its last output) over ``loader``'s batches.

    Returns {'val_loss', 'pck2', 'pck5', 'mean_px', 'pck5_labelled', 'n_visible', 'n_images'};
    errors are in 256x256 crop pixels after DARK decoding; a keypoint with no positive peak
    counts as a miss (its error as the crop diagonal in the mean).
    """
    was = model.training
    model.eval()
    errs, vis, lab = [], [], []
    loss_sum, n_img = 0.0, 0
    for batch in loader:
        x = normalise_batch(batch["image"].to(device), meta.mean, meta.std, meta.channel_order)
        hm = model(x.contiguous(memory_format=memory_format))
        if isinstance(hm, (list, tuple)):
            hm = hm[-1]
        t, w = batch["target"].to(device), batch["weight"].to(device)
        loss_sum += float(heatmap_loss(hm, t, w)) * x.shape[0]
        n_img += x.shape[0]
        hm_np = hm.float().cpu().numpy()
        xy = np.stack([decode_heatmaps(h)[0] for h in hm_np])
        e, v, lb = crop_pixel_errors(xy, batch["keypoints"].numpy(), batch["visibility"].numpy(), INPUT_SIZE, hm_np.shape[-1])
        errs.append(e)
        vis.append(v)
        lab.append(lb)
    model.train(was)
    if n_img == 0:
        return {}
    e, v, lb = np.concatenate(errs), np.concatenate(vis), np.concatenate(lab)
    ev = np.minimum(e[v], INPUT_SIZE * math.sqrt(2.0))
    el = e[lb]
    return {
        "val_loss": loss_sum / n_img,
        "pck2": float(np.mean(ev <= 2.0)) if ev.size else float("nan"),
        "pck5": float(np.mean(ev <= 5.0)) if ev.size else float("nan"),
        "mean_px": float(np.mean(ev)) if ev.size else float("nan"),
        "pck5_labelled": float(np.mean(el <= 5.0)) if el.size else float("nan"),
        "n_visible": int(ev.size),
        "n_images": int(n_img),
    }


def _better(a: dict, b: dict | None) -> bool:
    if not a:
        return False
    if not b:
        return True
    ka = (a.get("pck5", -1.0), -a.get("mean_px", math.inf))
    kb = (b.get("pck5", -1.0), -b.get("mean_px", math.inf))
    ka = tuple(-math.inf if (isinstance(x, float) and math.isnan(x)) else x for x in ka)
    kb = tuple(-math.inf if (isinstance(x, float) and math.isnan(x)) else x for x in kb)
    return ka > kb


# ---------------------------------------------------------------------------- the loop
def train(cfg: TrainConfig) -> TrainResult:
    """Train (or resume) a heatmap network per ``cfg``. Returns the final state (rank 0 has the files)."""
    from tracker.objects import load_object

    _check_config(cfg)
    # DataLoader workers are forked; a child forked while OpenCV's thread pool is alive can hang
    # forever on its first cv2 call (seen in synth with gdb). The training process itself needs
    # no OpenCV threads, so stop the pool before any worker exists.
    import cv2

    cv2.setNumThreads(1)
    dist, device = _init_distributed(cfg.device)
    try:
        return _train(cfg, dist, device, load_object(cfg.object))
    finally:
        if dist.world > 1:
            import torch.distributed as tdist

            if tdist.is_initialized():
                tdist.destroy_process_group()


def _val_records(cfg: TrainConfig, obj):
    data = Path(cfg.data)
    base = data if (data / cfg.val_split).is_dir() or data.is_file() else data.parent
    if not (base / cfg.val_split).is_dir():
        raise KptrackError(f"--val-split {cfg.val_split}: no such split folder next to --data ({data / cfg.val_split}). Pass an existing split name.")
    recs = load_records(base, obj, split=cfg.val_split)
    if len(recs) > cfg.val_max:
        keep = np.linspace(0, len(recs) - 1, cfg.val_max).round().astype(int)
        recs = [recs[i] for i in keep]
    return recs


def _check_checkpoint_fits(ckpt: dict, cfg: TrainConfig, obj, flag: str) -> None:
    """A checkpoint given with ``flag`` (--resume | --init) must hold this run's network preset
    and the object's keypoints."""
    if ckpt["preset"] != cfg.preset:
        keep = " (or leave --preset out)" if flag == "--resume" else ""
        raise KptrackError(
            f"{ckpt['path']}: this checkpoint is a {ckpt['preset']!r} network, not {cfg.preset!r}. "
            f"Use --preset {ckpt['preset']}{keep}, or start a new run without {flag}."
        )
    if list(ckpt["keypoint_names"]) != list(obj.keypoint_names):
        raise KptrackError(
            f"{ckpt['path']}: trained for keypoints {list(ckpt['keypoint_names'])}, but --object {cfg.object} has "
            f"{list(obj.keypoint_names)}. Use a checkpoint of that object with {flag}, or start a new run without it."
        )


def _train(cfg: TrainConfig, dist: _Dist, device: torch.device, obj) -> TrainResult:
    from torch.utils.data import DataLoader

    run = Path(cfg.out)
    ckpt = load_checkpoint(cfg.resume) if cfg.resume else None
    kw = cfg.model_options()
    if ckpt is not None:
        _check_checkpoint_fits(ckpt, cfg, obj, "--resume")
        kw = dict(ckpt["model_kwargs"])
        was = ckpt.get("config", {}).get("optimizer", "rmsprop")
        if was != cfg.optimizer:
            raise KptrackError(
                f"{ckpt['path']}: trained with --optimizer {was}; resuming with {cfg.optimizer} would mix their states. "
                f"Resume with --optimizer {was}, or start a new run without --resume."
            )

    init = None
    if cfg.init:
        if ckpt is not None:
            raise KptrackError("--init and --resume both given: --resume continues a run, --init starts a new one "
                               "from a checkpoint's weights. Give one of them.")
        init = load_checkpoint(cfg.init)
        _check_checkpoint_fits(init, cfg, obj, "--init")
        kw = dict(init["model_kwargs"])

    # data
    records = load_records(cfg.data, obj, split=cfg.split)
    if cfg.val_split:
        val_recs = _val_records(cfg, obj)
        train_idx = np.arange(len(records))
        val_ds = CropDataset(val_recs, augment=None, sigma=cfg.sigma)
    else:
        train_idx, val_idx = split_holdout(len(records), cfg.val_fraction, cfg.val_max)
        val_ds = CropDataset(records, val_idx, augment=None, sigma=cfg.sigma)
    train_ds = CropDataset(records, train_idx, augment=cfg.augment(), sigma=cfg.sigma)

    threads = cfg.threads or max(1, _cores() // dist.world)
    torch.set_num_threads(threads)
    workers = cfg.workers if cfg.workers is not None else min(8, max(1, _cores() // (2 * dist.world)))
    torch.manual_seed(cfg.seed)
    np.random.seed(cfg.seed % 2**32)

    model = build_model(cfg.preset, obj.num_keypoints, **kw).to(device)
    # NHWC: 1.3-1.5x faster convolutions on CPU (oneDNN) and on GPUs' tensor cores.
    mem = torch.channels_last if cfg.channels_last else torch.contiguous_format
    model = model.to(memory_format=mem)
    params = [p for p in model.parameters() if p.requires_grad]
    if cfg.optimizer == "rmsprop":
        opt = torch.optim.RMSprop(params, lr=cfg.lr, weight_decay=cfg.weight_decay)
    else:
        opt = torch.optim.Adam(params, lr=cfg.lr, weight_decay=cfg.weight_decay)
    sched = torch.optim.lr_scheduler.LambdaLR(opt, _LrLambda(cfg))
    start = 0
    best: dict | None = None
    if init is not None:
        model.load_state_dict(init["model"])
        log.info("network weights from %s (iteration %d); optimizer and schedule start fresh", init["path"], int(init["iteration"]))
    if ckpt is not None:
        model.load_state_dict(ckpt["model"])
        try:
            opt.load_state_dict(ckpt["optimizer"])
            sched.load_state_dict(ckpt["scheduler"])
        except (ValueError, KeyError) as e:
            raise KptrackError(f"{ckpt['path']}: optimizer state does not match ({e}). Start a new run without --resume.") from None
        for g in opt.param_groups:  # a resumed run may change --lr; the schedule multiplies the new peak
            g["initial_lr"] = cfg.lr
        sched.base_lrs = [cfg.lr for _ in opt.param_groups]
        sched.lr_lambdas = [_LrLambda(cfg) for _ in opt.param_groups]
        for g in opt.param_groups:
            g["lr"] = cfg.lr * lr_factor(cfg, sched.last_epoch)
        start = int(ckpt["iteration"])
        best = ckpt.get("best_scores") or None
        if start >= cfg.iters:
            log.warning("checkpoint is at iteration %d >= --iters %d: nothing to train", start, cfg.iters)

    net: nn.Module = model
    if dist.world > 1:
        from torch.nn.parallel import DistributedDataParallel as DDP

        net = DDP(model, device_ids=[device.index] if device.type == "cuda" else None)

    sampler = InfiniteBatchSampler(len(train_ds), cfg.batch, cfg.seed, start=start, stop=cfg.iters, rank=dist.rank, world=dist.world)
    pin = device.type == "cuda"
    loader = DataLoader(
        train_ds, batch_sampler=sampler, num_workers=workers, collate_fn=collate, pin_memory=pin,
        worker_init_fn=_worker_init if workers > 0 else None, persistent_workers=False,
    )
    val_loader = DataLoader(
        val_ds, batch_size=max(8, cfg.batch), shuffle=False, num_workers=min(workers, 2), collate_fn=collate,
        worker_init_fn=_worker_init if workers > 0 else None,
    )
    meta = _DEFAULT_META
    norm = {"mean": list(meta.mean), "std": list(meta.std), "channel_order": meta.channel_order}

    csv_f = csv_w = tb = pbar = None
    if dist.main:
        try:
            run.mkdir(parents=True, exist_ok=True)
            (run / "config.json").write_text(json.dumps(dataclasses.asdict(cfg), indent=2, sort_keys=True) + "\n")
            csv_f, csv_w = _open_csv(run / "log.csv", start)
        except OSError as e:
            raise KptrackError(f"--out {run}: cannot write the run folder ({e.strerror or e}). Choose a writable folder.") from None
        try:
            from torch.utils.tensorboard import SummaryWriter

            tb = SummaryWriter(str(run / "tb"), purge_step=start if start > 0 else None)
        except ImportError:
            log.debug("tensorboard not installed; logging to log.csv only")
        from tqdm import tqdm

        pbar = tqdm(total=cfg.iters, initial=start, desc=f"train {cfg.preset}", unit="it", dynamic_ncols=True,
                    mininterval=1.0, file=sys.stderr)
        log.info(
            "training %s (%s) on %d images (%d held out for validation), %d keypoints, batch %d x %d process(es), "
            "iterations %d..%d, device %s, %d threads, %d workers -> %s",
            cfg.preset, ", ".join(f"{k}={v}" for k, v in kw.items()), len(train_ds), len(val_ds), obj.num_keypoints,
            cfg.batch, dist.world, start, cfg.iters, device, threads, workers, run,
        )

    bad: set[int] = set()
    scores: dict = dict(ckpt.get("scores", {})) if ckpt else {}
    it = start
    t0 = time.perf_counter()
    win_t, win_n, win_loss = time.perf_counter(), 0, 0.0

    def checkpoint(iteration: int, kind: str = "last") -> dict:
        return {
            "format": CHECKPOINT_FORMAT,
            "version": CHECKPOINT_VERSION,
            "model": {k: v.detach().cpu().contiguous() for k, v in model.state_dict().items()},
            "optimizer": opt.state_dict(),
            "scheduler": dict(sched.state_dict(), lr_lambdas=[None] * len(opt.param_groups)),  # rebuilt from config
            "iteration": int(iteration),
            "config": dataclasses.asdict(cfg),
            "preset": cfg.preset,
            "model_kwargs": dict(kw),
            "keypoint_names": list(obj.keypoint_names),
            "object_id": obj.name,
            "normalisation": norm,
            "input_size": INPUT_SIZE,
            "heatmap_size": HEATMAP_SIZE,
            "scores": dict(scores),
            "best_scores": dict(best or {}),
            "bad_images": len(bad),
            "torch_version": str(torch.__version__),
        }

    def gather_bad() -> None:
        if dist.world > 1:
            import torch.distributed as tdist

            allbad: list = [None] * dist.world
            tdist.all_gather_object(allbad, sorted(bad))
            for b in allbad:
                bad.update(b or [])

    def validate_and_save(iteration: int) -> None:
        nonlocal scores, best
        gather_bad()
        if dist.main:
            scores = evaluate(model, val_loader, device, meta, mem)
            scores["iteration"] = iteration
            row = {"iter": iteration, "lr": _fmt(opt.param_groups[0]["lr"]), "bad_images": len(bad),
                   "time_s": _fmt(time.perf_counter() - t0)}
            row.update({k: _fmt(scores.get(k)) for k in ("val_loss", "pck2", "pck5", "mean_px", "pck5_labelled")})
            csv_w.writerow(row)
            csv_f.flush()
            if tb is not None:
                for k in ("val_loss", "pck2", "pck5", "mean_px", "pck5_labelled"):
                    tb.add_scalar(f"val/{k}", scores[k], iteration)
            improved = _better(scores, best)
            if improved:
                best = dict(scores)
            state = checkpoint(iteration)
            save_checkpoint(state, run / "last.pt")
            if improved:
                save_checkpoint(state, run / "best.pt")
            msg = (f"iter {iteration}: PCK@2px {scores['pck2']:.3f}  PCK@5px {scores['pck5']:.3f}  mean {scores['mean_px']:.2f} px  "
                   f"(all labelled PCK@5px {scores['pck5_labelled']:.3f}, {scores['n_visible']} visible keypoints)"
                   + ("  * best" if improved else "") + (f"  [{len(bad)} unreadable images skipped]" if bad else ""))
            (pbar.write(msg) if pbar is not None else log.info(msg))
        if dist.world > 1:
            import torch.distributed as tdist

            tdist.barrier()

    net.train()
    old_term = None
    if threading.current_thread() is threading.main_thread():
        # SIGTERM (a scheduler's preemption, `kill`) ends the run like Ctrl-C: last.pt is saved first.
        def _term(signum, frame):
            raise KeyboardInterrupt

        old_term = signal.signal(signal.SIGTERM, _term)
    try:
        for batch in loader:
            x = normalise_batch(batch["image"].to(device, non_blocking=pin), meta.mean, meta.std, meta.channel_order)
            x = x.contiguous(memory_format=mem)
            target = batch["target"].to(device, non_blocking=pin)
            weight = batch["weight"].to(device, non_blocking=pin)
            outs = net(x)
            loss = heatmap_loss(outs, target, weight)
            opt.zero_grad(set_to_none=True)
            loss.backward()
            opt.step()
            sched.step()
            if batch["bad"]:
                new = set(batch["bad"]) - bad
                bad.update(batch["bad"])
                for b in sorted(new):
                    log.warning("unreadable image skipped: %s", train_ds.records[b].image_path)
            it += 1
            lv = float(loss.detach())
            if not math.isfinite(lv):
                raise KptrackError(
                    f"training diverged at iteration {it} (loss {lv}). Lower --lr (now {cfg.lr}) or resume from {run / 'last.pt'}."
                )
            win_n += x.shape[0]
            win_loss += lv
            if dist.main:
                pbar.update(1)
                if it % cfg.log_every == 0 or it == cfg.iters:
                    dt = time.perf_counter() - win_t
                    ips = win_n * dist.world / max(dt, 1e-9)
                    avg = win_loss / max(1, win_n / x.shape[0])
                    lr_now = opt.param_groups[0]["lr"]
                    pbar.set_postfix(loss=f"{avg:.4f}", lr=f"{lr_now:.2e}", img_s=f"{ips:.1f}")
                    csv_w.writerow({"iter": it, "loss": _fmt(avg), "lr": _fmt(lr_now), "images_per_s": _fmt(ips),
                                    "bad_images": len(bad), "time_s": _fmt(time.perf_counter() - t0)})
                    csv_f.flush()
                    if tb is not None:
                        tb.add_scalar("train/loss", avg, it)
                        tb.add_scalar("train/lr", lr_now, it)
                        tb.add_scalar("train/images_per_s", ips, it)
                    win_t, win_n, win_loss = time.perf_counter(), 0, 0.0
            if it % cfg.val_every == 0 and it < cfg.iters:
                validate_and_save(it)
        validate_and_save(it)
    except KeyboardInterrupt:
        if dist.main and it > start:
            save_checkpoint(checkpoint(it), run / "last.pt")
            log.warning("interrupted at iteration %d; saved %s (continue with --resume %s)", it, run / "last.pt", run / "last.pt")
        raise
    finally:
        if old_term is not None:
            signal.signal(signal.SIGTERM, old_term)
        if pbar is not None:
            pbar.close()
        if csv_f is not None:
            csv_f.close()
        if tb is not None:
            tb.close()
    if dist.main and bad:
        log.warning("%d unreadable image(s) were skipped during training", len(bad))
    return TrainResult(run, it, scores, dict(best or {}), len(bad), model)


# ---------------------------------------------------------------------------- CLI glue
def config_from_args(args) -> TrainConfig:
    """TrainConfig from ``kptrack train`` arguments. Unset options come from the checkpoint when
    resuming (so ``--resume RUN/last.pt --iters N`` continues the same run), else the defaults."""
    base: dict[str, Any] = {}
    if getattr(args, "resume", None):
        base = dict(load_checkpoint(args.resume).get("config", {}))
    names = {f.name for f in dataclasses.fields(TrainConfig)}
    cli = {
        "data": args.data, "out": args.out, "object": args.object, "preset": args.preset, "iters": args.iters,
        "batch": args.batch, "lr": args.lr, "workers": args.workers, "seed": args.seed, "resume": args.resume,
        "val_split": args.val_split, "device": args.device,
    }
    for opt in ("val_every", "sigma", "rotation_deg", "width", "log_every", "threads", "optimizer"):
        if getattr(args, opt, None) is not None:
            cli[opt] = getattr(args, opt)
    merged = {k: v for k, v in base.items() if k in names}
    merged.update({k: v for k, v in cli.items() if v is not None})
    if not getattr(args, "resume", None):
        merged.setdefault("preset", "lite")
    merged["resume"] = args.resume
    # a resumed fine-tuning run has its weights in the checkpoint: its --init is history, not a request
    merged["init"] = getattr(args, "init", None)
    return TrainConfig(**merged)


def run_training_from_args(args) -> int:
    """``kptrack train``: parse into a TrainConfig, train, print where the checkpoints are."""
    cfg = config_from_args(args)
    res = train(cfg)
    if int(os.environ.get("RANK", "0")) == 0:
        s = res.best_scores
        print(f"trained {cfg.preset} to iteration {res.iteration}: best PCK@5px {s.get('pck5', float('nan')):.3f}, "
              f"mean {s.get('mean_px', float('nan')):.2f} px; checkpoints in {res.run_dir} (best.pt, last.pt), log {res.run_dir / 'log.csv'}")
        if res.bad_images:
            print(f"skipped {res.bad_images} unreadable image(s)")
    return 0
