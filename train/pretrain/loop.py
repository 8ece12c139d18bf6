"""Backbone pretraining: ``kptrack pretrain``.

The lite network learns the nine dense pretext targets of :mod:`train.pretrain.data` (mask,
edges, normals, corners, model coordinates) on procedural objects rendered on the fly, then everything but its head
is written as a backbone (:mod:`train.backbone`) that ``kptrack train`` starts from.

The loss is a per-channel weighted MSE on the 64 x 64 grid: mask 1, edges 2, normals 1 (only on
the object), corners 4 (the rarest and the closest to the keypoint task), model coordinates 1
(only on the object). Adam with a linear
warm-up and a cosine decay to 2 % of the learning rate. Every ``save_every`` iterations the run
folder gets ``last.pt`` (weights, optimizer, iteration: ``--resume`` continues from it exactly)
and the backbone file; ``log.csv`` has the losses and the wall time. ``--init BACKBONE`` starts a
new run from a backbone's weights (a further stage of pretraining, with its own schedule and,
with another ``--seed``, other objects); the head starts as built. ``--precision bf16`` runs the
forward (and so the backward) under bfloat16 autocast as ``kptrack train`` does
(:func:`train.distributed.precision_context`); weights, optimizer and loss stay float32.
"""

from __future__ import annotations

import csv
import logging
import math
import platform
import time
from dataclasses import asdict, dataclass
from pathlib import Path

import torch
from torch.utils.data import DataLoader
from tqdm import tqdm

from tracker.atomic import atomic_write
from tracker.errors import KptrackError
from train.backbone import load_backbone, load_into, save_backbone
from train.dataset import normalise_batch
from train.distributed import PRECISIONS, check_precision, cores, precision_context, unknown_precision
from train.models import build_model, model_kwargs
from train.pretrain.data import CHANNELS, PretextDataset
from train.schedule import adam
from train.validation import DEFAULT_META

log = logging.getLogger(__name__)

CHANNEL_WEIGHTS = (1.0, 2.0, 1.0, 1.0, 1.0, 4.0, 1.0, 1.0, 1.0)
ON_OBJECT = (2, 3, 4, 6, 7, 8)  # normals and model coordinates: scored on the object only
CPU = torch.device("cpu")  # the loop runs on the CPU, its data made by worker processes


@dataclass(frozen=True)
class PretrainConfig:
    """Options of ``kptrack pretrain``: out (run folder), backbone (the backbone file to write;
    default out/backbone.pt), iters, batch, lr, warmup (iterations), seed, pool (procedural objects
    per worker), preset, save_every, log_every, workers (data processes), threads (torch), resume
    (continue from out/last.pt), init (a backbone a new run starts from), precision ('fp32' or
    'bf16': the forward under bfloat16 autocast)."""

    out: str
    backbone: str | None = None
    iters: int = 20000
    batch: int = 16
    lr: float = 1e-3
    warmup: int = 200
    seed: int = 0
    pool: int = 256
    preset: str = "lite"
    save_every: int = 500
    log_every: int = 50
    workers: int | None = None
    threads: int | None = None
    resume: bool = False
    init: str | None = None
    precision: str = "fp32"


def lr_at(cfg: PretrainConfig, it: int) -> float:
    """Learning rate of iteration ``it``: linear warm-up, then cosine down to 2 % of cfg.lr."""
    if it < cfg.warmup:
        return cfg.lr * (it + 1) / cfg.warmup
    p = min(1.0, (it - cfg.warmup) / max(1, cfg.iters - cfg.warmup))
    return cfg.lr * (0.02 + 0.98 * 0.5 * (1.0 + math.cos(math.pi * p)))


def pretext_loss(pred: torch.Tensor, target: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    """(weighted loss, per-channel losses (C,)) of predictions and targets (N, C, 64, 64), C =
    len(CHANNELS); normals and model coordinates count only on the object (target mask > 0.5)."""
    err = (pred - target) ** 2
    on = (target[:, :1] > 0.5).float()
    per = err.mean(dim=(0, 2, 3))
    idx = list(ON_OBJECT)
    per_on = (err[:, idx] * on).sum(dim=(0, 2, 3)) / on.sum().clamp_min(1.0)
    per = per.index_put((torch.tensor(idx, device=per.device),), per_on)
    w = torch.tensor(CHANNEL_WEIGHTS, device=per.device)
    return (per * w).sum() * 1000.0, per.detach()


def _check(cfg: PretrainConfig) -> None:
    for ok, msg in ((cfg.iters >= 1, f"--iters {cfg.iters}: must be >= 1"), (cfg.batch >= 1, f"--batch {cfg.batch}: must be >= 1"),
                    (cfg.lr > 0, f"--lr {cfg.lr}: must be > 0"), (cfg.pool >= 1, f"--pool {cfg.pool}: must be >= 1"),
                    (cfg.precision in PRECISIONS, unknown_precision(cfg.precision))):
        if not ok:
            raise KptrackError(msg + ".")
    if cfg.init and cfg.resume:
        raise KptrackError(f"--init {cfg.init} with --resume: a resumed run continues from {Path(cfg.out) / 'last.pt'}. "
                           "Drop --init to resume, or drop --resume and give a new --out to start from the backbone.")


def pretrain(cfg: PretrainConfig) -> Path:
    """Pretrain a backbone per ``cfg`` (see the module docstring). Returns the backbone file."""
    _check(cfg)
    check_precision(cfg.precision, CPU)
    out = Path(cfg.out)
    out.mkdir(parents=True, exist_ok=True)
    backbone_path = Path(cfg.backbone) if cfg.backbone else out / "backbone.pt"
    torch.set_num_threads(cfg.threads or cores())
    torch.manual_seed(cfg.seed)

    # 1. the network and its optimizer, from last.pt when resuming
    kw = model_kwargs(cfg.preset)
    model = build_model(cfg.preset, len(CHANNELS), **kw).to(memory_format=torch.channels_last)
    opt = adam(model.parameters(), cfg.lr)
    start, wall0 = 0, 0.0
    if cfg.resume:
        if not (out / "last.pt").is_file():
            raise KptrackError(f"--resume: {out / 'last.pt'} does not exist. Start without --resume.")
        ck = torch.load(out / "last.pt", map_location="cpu", weights_only=True)
        had = int(ck["model"]["head.weight"].shape[0]) if "head.weight" in ck["model"] else -1
        if had != len(CHANNELS):
            raise KptrackError(f"--resume: {out / 'last.pt'} was pretrained with {had} pretext channels, this kptrack has "
                               f"{len(CHANNELS)} ({', '.join(CHANNELS)}). Start a further stage from its backbone instead: "
                               f"--init {out / 'backbone.pt'} with a new --out.")
        model.load_state_dict(ck["model"])
        opt.load_state_dict(ck["optimizer"])
        start, wall0 = int(ck["iteration"]), float(ck["wall_s"])
    elif cfg.init:
        load_into(model, load_backbone(cfg.init), cfg.preset, kw)

    # 2. the data: sample i of iteration it is it * batch + i, so a resumed run sees what it would have
    ds = PretextDataset(cfg.iters * cfg.batch, seed=cfg.seed, pool=cfg.pool)
    workers = cfg.workers if cfg.workers is not None else max(1, cores() - 1)
    loader = DataLoader(ds, batch_size=cfg.batch, sampler=range(start * cfg.batch, cfg.iters * cfg.batch),
                        num_workers=workers, persistent_workers=False)

    # 3. iterate; save last.pt and the backbone every save_every iterations and at the end
    log_path = out / "log.csv"
    new_log = not (cfg.resume and log_path.is_file())
    with open(log_path, "a" if not new_log else "w", newline="") as f:
        w = csv.writer(f)
        if new_log:
            w.writerow(["iter", "loss", *[f"loss_{c}" for c in CHANNELS], "lr", "time_s"])
        t0, it = time.perf_counter(), start
        model.train()
        for batch in tqdm(loader, total=cfg.iters - start, desc="pretrain", initial=0):
            for g in opt.param_groups:
                g["lr"] = lr_at(cfg, it)
            x = normalise_batch(batch["image"], DEFAULT_META.mean, DEFAULT_META.std, DEFAULT_META.channel_order, torch.channels_last)
            with precision_context(cfg.precision, CPU):
                pred = model(x)[-1]
            loss, per = pretext_loss(pred.float(), batch["target"])
            opt.zero_grad(set_to_none=True)
            loss.backward()
            opt.step()
            it += 1
            lv = float(loss.detach())
            if not math.isfinite(lv):
                raise KptrackError(f"pretraining diverged at iteration {it}. Lower --lr (now {cfg.lr}).")
            wall = wall0 + time.perf_counter() - t0
            if it % cfg.log_every == 0 or it == cfg.iters:
                w.writerow([it, f"{lv:.5f}", *[f"{float(v):.6f}" for v in per], f"{lr_at(cfg, it - 1):.3g}", f"{wall:.1f}"])
                f.flush()
            if it % cfg.save_every == 0 or it == cfg.iters:
                _save(cfg, out, backbone_path, model, opt, it, wall, kw)
    return backbone_path


def _save(cfg: PretrainConfig, out: Path, backbone_path: Path, model, opt, it: int, wall: float, kw: dict) -> None:
    with atomic_write(out / "last.pt") as f:
        torch.save({"model": model.state_dict(), "optimizer": opt.state_dict(), "iteration": it, "wall_s": wall,
                    "config": asdict(cfg)}, f)
    info = {
        "summary": f"pretext {'/'.join(CHANNELS)} on procedural objects, {it} iterations x batch {cfg.batch}",
        "pretext": list(CHANNELS), "channel_weights": list(CHANNEL_WEIGHTS), "iterations": it, "batch": cfg.batch,
        "images_seen": it * cfg.batch, "wall_s": round(wall, 1), "config": asdict(cfg),
        "machine": f"{platform.processor() or platform.machine()}, {cores()} cores, torch {torch.__version__}",
    }
    save_backbone(backbone_path, model, cfg.preset, kw, info)
