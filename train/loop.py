"""The training loop: ``kptrack train``.

Recipe of the seed (Newell et al., "Stacked Hourglass Networks for Human Pose Estimation",
ECCV 2016): RMSprop at learning rate 2.5e-4, batch 8, MSE between predicted and Gaussian
target heatmaps, with scale and 2D-rotation augmentation. The loss and the validation metrics
are in :mod:`train.validation`, the optimizer and learning-rate schedule in
:mod:`train.schedule`, the checkpoint format in :mod:`train.checkpoint`, the run folder's logs
in :mod:`train.runlog`, multi-process plumbing in :mod:`train.distributed`, what a run starts
from (``--init``, ``--resume``, the shipped backbone) in :mod:`train.start`.

:func:`train` reads top to bottom: the checkpoints to start from, the data, the model and
optimizer (restored on resume), the loaders, then the iterations; every ``val_every``
iterations and at the end, rank 0 validates on held-out images (see :mod:`train.dataset`) and
saves ``last.pt`` (and ``best.pt`` when PCK@5px, then mean error, improved).

Resume (``--resume RUN/last.pt`` or ``--resume RUN``) restores model, optimizer and scheduler
state and the iteration counter; batches are a pure function of (seed, iteration) (see
:class:`train.dataset.InfiniteBatchSampler`), so a resumed run draws the batches an
uninterrupted one would have. Ctrl-C or SIGTERM saves ``last.pt`` before leaving.

Multi-GPU / multi-node: launch with ``torchrun --nproc_per_node N -m tracker train ...``.
Each process trains on its own shard of every global batch (``batch`` per process) under
DistributedDataParallel (NCCL on GPUs, gloo on CPUs); only rank 0 validates and writes files.
"""

from __future__ import annotations

import contextlib
import logging
import math
import signal
import threading
from dataclasses import dataclass, field, replace
from pathlib import Path

import cv2
import numpy as np
import torch
import torch.nn as nn
import torch.nn.functional as F
from torch.utils.data import DataLoader

from tracker.errors import KptrackError
from tracker.formats.modelmeta import ModelMeta
from tracker.geometry.crop import HEATMAP_SIZE, INPUT_SIZE
from tracker.objects import ObjectModel, load_object
from tracker.objects.symmetry import symmetry_group
from tracker.objects.symmetry_keypoints import keypoint_permutations
from train.checkpoint import make_checkpoint, save_checkpoint
from train.config import TrainConfig, check_config
from train.coords import CoordHead, CoordTargets, WithCoords, coord_loss, resolve_weight
from train.dataset import CropDataset, collate, normalise_batch
from train.distributed import (
    Dist,
    barrier,
    check_precision,
    close_distributed,
    cpu_share,
    gather_bad_images,
    init_distributed,
    precision_context,
    wrap_model,
)
from train.heatmaps import batch_targets_torch, half_resolution_keypoints, scale_hidden, sigma_at
from train.models import build_model
from train.records import load_records
from train.runlog import RunLog
from train.sources import batch_sampler, data_sources, source_datasets, validation_groups
from train.schedule import build_optimizer
from train.start import restore, start_checkpoints
from train.validation import DEFAULT_META, evaluate, heatmap_loss, is_better

log = logging.getLogger(__name__)


@dataclass
class TrainResult:
    run_dir: Path
    iteration: int
    scores: dict
    best_scores: dict
    bad_images: int
    model: nn.Module | None = field(default=None, repr=False)


@dataclass
class _Run:
    """The state of a run in progress, shared by the steps below."""

    cfg: TrainConfig
    dist: Dist
    device: torch.device
    obj: ObjectModel
    model_kwargs: dict
    model: nn.Module
    opt: torch.optim.Optimizer
    sched: torch.optim.lr_scheduler.LambdaLR
    memory_format: torch.memory_format
    val_loader: DataLoader
    log: RunLog | None  # rank 0 only
    start: int
    it: int
    scores: dict
    best: dict | None
    bad: set[int] = field(default_factory=set)
    meta: ModelMeta = DEFAULT_META
    perms: np.ndarray | None = None  # a discrete symmetry's keypoint permutations (M, K), see TrainConfig.symmetric_loss
    train_perms: torch.Tensor | None = None  # the same on the device when the loss takes the minimum over them
    coord_head: nn.Module | None = None  # the training-only model-coordinate head (--coord-weight)
    coord_weight: float = 0.0  # its loss weight, resolved (train.coords.resolve_weight)

    @property
    def dir(self) -> Path:
        return Path(self.cfg.out)


def train(cfg: TrainConfig) -> TrainResult:
    """Train (or resume) a heatmap network per ``cfg``. Returns the final state (rank 0 has the files)."""
    check_config(cfg)
    # DataLoader workers are forked; a child forked while OpenCV's thread pool is alive can hang
    # forever on its first cv2 call (seen in synth with gdb). The training process itself needs
    # no OpenCV threads, so stop the pool before any worker exists.
    cv2.setNumThreads(1)
    dist, device = init_distributed(cfg.device)
    try:
        return _train(cfg, dist, device, load_object(cfg.object))
    finally:
        close_distributed(dist)


def _train(cfg: TrainConfig, dist: Dist, device: torch.device, obj: ObjectModel) -> TrainResult:
    # 1. the checkpoints this run starts from (--resume continues one, --init takes its weights)
    resume, init, kw = start_checkpoints(cfg, obj)
    coord_weight = resolve_weight(cfg.coord_weight, not symmetry_group(obj).is_trivial, resume,
                                   min_loss=cfg.symmetric_loss == "min")

    # 2. data: the training crops and the held-out ones
    train_ds, val_ds = _datasets(cfg, obj, coord_weight > 0)
    threads, workers = cpu_share(cfg.threads, cfg.workers, dist, device)
    check_precision(cfg.precision, device)
    torch.set_num_threads(threads)
    torch.manual_seed(cfg.seed)
    np.random.seed(cfg.seed % 2**32)

    # 3. model, optimizer and schedule, then the weights and state to start from
    model = build_model(cfg.preset, obj.num_keypoints, **kw).to(device)
    # NHWC: 1.3-1.5x faster convolutions on CPU (oneDNN) and on GPUs' tensor cores.
    mem = torch.channels_last if cfg.channels_last else torch.contiguous_format
    model = model.to(memory_format=mem)
    # the coordinate head trains beside the network: one module for the optimizer and for DDP
    coord_head = CoordHead(model).to(device, memory_format=mem) if coord_weight > 0 else None
    trained = WithCoords(model, coord_head) if coord_head is not None else model
    opt, sched = build_optimizer(cfg, trained)
    start, best = restore(cfg, model, opt, sched, resume, init, coord_head)
    net = wrap_model(trained, dist, device)

    # 4. loaders: batches are a pure function of (seed, iteration), from `start` on
    loader, val_loader = _loaders(cfg, dist, device, train_ds, val_ds, start, workers)

    # 5. rank 0 records the run
    runlog = None
    if dist.main:
        runlog = RunLog(Path(cfg.out), replace(cfg, coord_weight=coord_weight), start, dist.world)  # the weight as resolved
        log.info(
            "training %s (%s) on %d images (%d held out for validation), %d keypoints, batch %d x %d process(es), "
            "iterations %d..%d, device %s, %d threads, %d workers -> %s",
            cfg.preset, ", ".join(f"{k}={v}" for k, v in kw.items()), len(train_ds), len(val_ds), obj.num_keypoints,
            cfg.batch, dist.world, start, cfg.iters, device, threads, workers, Path(cfg.out),
        )
    r = _Run(cfg, dist, device, obj, kw, model, opt, sched, mem, val_loader, runlog, start, start,
             scores=dict(resume.get("scores", {})) if resume else {}, best=best, coord_head=coord_head,
             coord_weight=coord_weight)
    r.perms = keypoint_permutations(symmetry_group(obj), obj.keypoints)
    if r.perms is not None and cfg.symmetric_loss == "min":
        r.train_perms = torch.as_tensor(r.perms, dtype=torch.long, device=device)
        if dist.main:
            log.info("symmetric object: the loss takes the best of %d equivalents per crop (--symmetric-loss min)", len(r.perms))

    # 6. iterate; validate and save every val_every iterations and at the end
    net.train()
    with _sigterm_as_interrupt():
        try:
            for batch in loader:
                loss, batch_size = _step(r, net, batch)
                _count_bad_images(r, train_ds, batch["bad"])
                r.it += 1
                lv = float(loss.detach())
                if not math.isfinite(lv):
                    raise KptrackError(
                        f"training diverged at iteration {r.it} (loss {lv}). Lower --lr (now {cfg.lr}) or resume from {r.dir / 'last.pt'}."
                    )
                if r.log is not None:
                    write_row = r.it % cfg.log_every == 0 or r.it == cfg.iters
                    r.log.iteration(r.it, lv, batch_size, opt.param_groups[0]["lr"], len(r.bad), write_row)
                if r.it % cfg.val_every == 0 and r.it < cfg.iters:
                    _validate_and_save(r)
            _validate_and_save(r)
        except KeyboardInterrupt:
            _save_on_interrupt(r)
            raise
        finally:
            if r.log is not None:
                r.log.close()
    if dist.main and r.bad:
        log.warning("%d unreadable image(s) were skipped during training", len(r.bad))
    return TrainResult(r.dir, r.it, r.scores, dict(r.best or {}), len(r.bad), model)


# ---------------------------------------------------------------------------- data
def _datasets(cfg: TrainConfig, obj: ObjectModel, coords: bool) -> tuple[CropDataset, CropDataset]:
    """(training crops with augmentation, and with model-coordinate targets when ``coords``;
    validation crops without) over every --data source (:mod:`train.sources`): a held-out part of
    each, or the --val-split."""
    val = _val_records(cfg, obj) if cfg.val_split else None
    return source_datasets(cfg.data, obj, cfg.augment(), cfg.sigma, split=cfg.split, val_fraction=cfg.val_fraction,
                           val_max=cfg.val_max, val_records=val,
                           coords=CoordTargets(obj) if coords else None)


def _val_records(cfg: TrainConfig, obj: ObjectModel):
    """The --val-split's records beside the first --data, at most val_max of them (evenly spaced)."""
    data = Path(data_sources(cfg.data)[0].path)
    base = data if (data / cfg.val_split).is_dir() or data.is_file() else data.parent
    if not (base / cfg.val_split).is_dir():
        raise KptrackError(f"--val-split {cfg.val_split}: no such split folder next to --data ({data / cfg.val_split}). Pass an existing split name.")
    recs = load_records(base, obj, split=cfg.val_split)
    if len(recs) > cfg.val_max:
        keep = np.linspace(0, len(recs) - 1, cfg.val_max).round().astype(int)
        recs = [recs[i] for i in keep]
    return recs


# ---------------------------------------------------------------------------- loaders
def _worker_init(_):
    cv2.setNumThreads(1)
    torch.set_num_threads(1)


def _loaders(cfg: TrainConfig, dist: Dist, device: torch.device, train_ds: CropDataset, val_ds: CropDataset,
             start: int, workers: int) -> tuple[DataLoader, DataLoader]:
    """(training batches from iteration ``start`` to cfg.iters, this process's shard; validation batches)."""
    sampler = batch_sampler(train_ds, cfg.batch, cfg.seed, start=start, stop=cfg.iters, rank=dist.rank, world=dist.world)
    loader = DataLoader(
        train_ds, batch_sampler=sampler, num_workers=workers, collate_fn=collate, pin_memory=device.type == "cuda",
        worker_init_fn=_worker_init if workers > 0 else None, persistent_workers=False,
    )
    val_loader = DataLoader(
        val_ds, batch_size=max(8, cfg.batch), shuffle=False, num_workers=min(workers, 2), collate_fn=collate,
        worker_init_fn=_worker_init if workers > 0 else None,
    )
    return loader, val_loader


# ---------------------------------------------------------------------------- iterations
@contextlib.contextmanager
def _sigterm_as_interrupt():
    """SIGTERM (a scheduler's preemption, `kill`) ends the run like Ctrl-C: last.pt is saved first.
    Signal handlers can only be set from the main thread; elsewhere nothing changes."""
    old = None
    if threading.current_thread() is threading.main_thread():
        def _term(signum, frame):
            raise KeyboardInterrupt

        old = signal.signal(signal.SIGTERM, _term)
    try:
        yield
    finally:
        if old is not None:
            signal.signal(signal.SIGTERM, old)


def _step(r: _Run, net: nn.Module, batch: dict) -> tuple[torch.Tensor, int]:
    """One optimizer step on a batch. Returns (the loss, the batch size)."""
    pin = r.device.type == "cuda"
    x = normalise_batch(batch["image"].to(r.device, non_blocking=pin), r.meta.mean, r.meta.std, r.meta.channel_order,
                        r.memory_format)
    cfg = r.cfg
    low = r.it < cfg.low_res * cfg.iters
    if low:
        x = F.avg_pool2d(x, 2).contiguous(memory_format=r.memory_format)
    target = _targets(r, batch, low)
    weight = batch["weight"].to(r.device, non_blocking=pin)
    with precision_context(cfg.precision, r.device):  # --precision bf16: the forward (and so the backward) in bfloat16
        outs, coords = net(x) if r.coord_head is not None else (net(x), None)
    outs, coords = _float32(outs), _float32(coords)  # the loss in float32 either way
    loss = heatmap_loss(outs, target, weight, cfg.peak_weight, r.train_perms)
    if coords is not None:  # the target is pooled to the coordinate head's grid
        loss = loss + r.coord_weight * coord_loss(coords, batch["coords"].to(r.device, non_blocking=pin), batch["has_coords"])
    r.opt.zero_grad(set_to_none=True)
    loss.backward()
    r.opt.step()
    r.sched.step()
    return loss, x.shape[0]


def _float32(out):
    """A network output (a tensor, a list of them, or None) in float32."""
    if isinstance(out, (list, tuple)):
        return [o.float() for o in out]
    return None if out is None else out.float()


def _targets(r: _Run, batch: dict, low_res: bool) -> torch.Tensor:
    """The batch's target heatmaps at this iteration, on the run's device: the workers' (drawn at
    the final sigma), redrawn there (:func:`train.heatmaps.batch_targets_torch`) when the sigma
    schedule widens them or the input is at half resolution; hidden keypoints' peaks lowered to
    ``hidden_peak`` (:func:`train.heatmaps.scale_hidden`).

    Half resolution (:func:`train.heatmaps.half_resolution_keypoints`): the heatmap is half as
    large; sigma stays in cells (twice as wide in the crop, which suits the coarse early phase).
    """
    cfg = r.cfg
    dev = r.device
    pin = dev.type == "cuda"
    sigma = sigma_at(r.it, cfg.iters, cfg.sigma, cfg.sigma_start, cfg.sigma_decay)
    v = batch["visibility"].to(dev, non_blocking=pin)
    if sigma == cfg.sigma and not low_res:  # no schedule, or past its decay: the workers' targets are these
        return scale_hidden(batch["target"].to(dev, non_blocking=pin), v, cfg.hidden_peak)
    q = batch["keypoints"].to(dev, non_blocking=pin)
    if low_res:
        return batch_targets_torch(half_resolution_keypoints(q), v, sigma, cfg.hidden_peak, INPUT_SIZE // 2, HEATMAP_SIZE // 2)
    return batch_targets_torch(q, v, sigma, cfg.hidden_peak)


def _count_bad_images(r: _Run, train_ds: CropDataset, bad: list[int]) -> None:
    """Remember the batch's unreadable images; warn once for each."""
    if bad:
        new = set(bad) - r.bad
        r.bad.update(bad)
        for b in sorted(new):
            log.warning("unreadable image skipped: %s", train_ds.records[b].image_path)


def _checkpoint(r: _Run) -> dict:
    return make_checkpoint(r.cfg, r.model, r.opt, r.sched, r.model_kwargs, r.obj, r.meta, r.it, r.scores, r.best, len(r.bad),
                           r.coord_head)


def _validate_and_save(r: _Run) -> None:
    """Rank 0: validate, log, save last.pt (and best.pt when better). Every process waits for it."""
    gather_bad_images(r.bad, r.dist)
    if r.dist.main:
        r.scores = evaluate(r.model, r.val_loader, r.device, r.meta, r.memory_format, validation_groups(r.val_loader.dataset),
                            r.perms)
        r.scores["iteration"] = r.it
        r.log.validation(r.it, r.scores, r.opt.param_groups[0]["lr"], len(r.bad))
        improved = is_better(r.scores, r.best)
        if improved:
            r.best = dict(r.scores)
        state = _checkpoint(r)
        save_checkpoint(state, r.dir / "last.pt")
        if improved:
            save_checkpoint(state, r.dir / "best.pt")
        s = r.scores
        r.log.message(
            f"iter {r.it}: PCK@2px {s['pck2']:.3f}  PCK@5px {s['pck5']:.3f}  mean {s['mean_px']:.2f} px  "
            f"(all labelled PCK@5px {s['pck5_labelled']:.3f}, {s['n_visible']} visible keypoints)"
            + ("  * best" if improved else "") + (f"  [{len(r.bad)} unreadable images skipped]" if r.bad else "")
        )
    barrier(r.dist)


def _save_on_interrupt(r: _Run) -> None:
    """Ctrl-C / SIGTERM: rank 0 saves last.pt if anything was trained since the start."""
    if r.dist.main and r.it > r.start:
        save_checkpoint(_checkpoint(r), r.dir / "last.pt")
        log.warning("interrupted at iteration %d; saved %s (continue with --resume %s)", r.it, r.dir / "last.pt", r.dir / "last.pt")
