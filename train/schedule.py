"""The optimizer and its learning-rate schedule, and restoring both on resume.

RMSprop (the seed's, after Newell et al., ECCV 2016) or Adam. The learning rate follows a
linear warm-up then a cosine decay (Loshchilov and Hutter, "SGDR: Stochastic Gradient Descent
with Warm Restarts", ICLR 2017) to ``min_lr_frac`` of its peak; ``schedule='step'`` divides it
by 10 at 75 % and 90 %, as Newell et al. drop it when validation stalls.
"""

from __future__ import annotations

import math

import torch
import torch.nn as nn

from tracker.errors import KptrackError
from train.config import TrainConfig


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


class LrLambda:
    """:func:`lr_factor` of a config as LambdaLR's callable (not saved: the config rebuilds it on resume)."""

    def __init__(self, cfg: TrainConfig):
        self.cfg = cfg

    def __call__(self, step: int) -> float:
        return lr_factor(self.cfg, step)


def build_optimizer(cfg: TrainConfig, model: nn.Module) -> tuple[torch.optim.Optimizer, torch.optim.lr_scheduler.LambdaLR]:
    """(optimizer over the trainable parameters, its LambdaLR schedule) per cfg."""
    params = [p for p in model.parameters() if p.requires_grad]
    if cfg.optimizer == "rmsprop":
        opt = torch.optim.RMSprop(params, lr=cfg.lr, weight_decay=cfg.weight_decay)
    else:
        opt = adam(params, cfg.lr, cfg.weight_decay)
    return opt, torch.optim.lr_scheduler.LambdaLR(opt, LrLambda(cfg))


def adam(params, lr: float, weight_decay: float = 0.0) -> torch.optim.Adam:
    """Adam with its fused kernel (one pass over all parameters: 0.8 ms a step for the lite network
    on 2 CPU cores against 2.9 ms for the per-tensor loop, benchmarks/RESULTS.md, "The training
    step's own work"); the per-tensor loop where this torch has no fused kernel for the device.
    Both keep the same state, so a checkpoint resumes under either."""
    params = list(params)
    try:
        return torch.optim.Adam(params, lr=lr, weight_decay=weight_decay, fused=True)
    except (RuntimeError, TypeError):
        return torch.optim.Adam(params, lr=lr, weight_decay=weight_decay)


def check_resumable_optimizer(ckpt: dict, cfg: TrainConfig) -> None:
    """A resumed run keeps its optimizer: mixing RMSprop and Adam states is refused."""
    was = ckpt.get("config", {}).get("optimizer", "rmsprop")
    if was != cfg.optimizer:
        raise KptrackError(
            f"{ckpt['path']}: trained with --optimizer {was}; resuming with {cfg.optimizer} would mix their states. "
            f"Resume with --optimizer {was}, or start a new run without --resume."
        )


def restore_optimizer(opt: torch.optim.Optimizer, sched: torch.optim.lr_scheduler.LambdaLR, ckpt: dict, cfg: TrainConfig) -> None:
    """Load a checkpoint's optimizer and scheduler state; the schedule then follows cfg (a resumed
    run may change --lr: the schedule multiplies the new peak)."""
    try:
        opt.load_state_dict(ckpt["optimizer"])
        sched.load_state_dict(ckpt["scheduler"])
    except (ValueError, KeyError) as e:
        raise KptrackError(f"{ckpt['path']}: optimizer state does not match ({e}). Start a new run without --resume.") from None
    for g in opt.param_groups:
        g["initial_lr"] = cfg.lr
    sched.base_lrs = [cfg.lr for _ in opt.param_groups]
    sched.lr_lambdas = [LrLambda(cfg) for _ in opt.param_groups]
    for g in opt.param_groups:
        g["lr"] = cfg.lr * lr_factor(cfg, sched.last_epoch)
