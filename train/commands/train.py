"""``kptrack train``: train a heatmap keypoint network (PyTorch)."""

from __future__ import annotations

import argparse

HELP = "train a heatmap keypoint network (PyTorch)"


def add_arguments(p: argparse.ArgumentParser) -> None:
    p.add_argument("--data", required=True, help="BOP dataset root, or a COCO keypoints JSON")
    p.add_argument("--object", default="default", help="'default' or an object directory")
    p.add_argument("--preset", default=None, help="network preset: lite | hourglass (default lite; when resuming, the checkpoint's)")
    p.add_argument("--out", required=True, help="run directory (checkpoints, logs)")
    p.add_argument("--iters", type=int, default=None, help="training iterations")
    p.add_argument("--batch", type=int, default=None, help="batch size (seed: 8)")
    p.add_argument("--lr", type=float, default=None, help="learning rate (seed: 2.5e-4)")
    p.add_argument("--optimizer", choices=["rmsprop", "adam"], default=None, help="optimizer (seed: rmsprop)")
    p.add_argument("--workers", type=int, default=None, help="DataLoader workers")
    p.add_argument("--seed", type=int, default=None, help="random seed (default 0; when resuming, the checkpoint's)")
    p.add_argument("--resume", default=None, help="checkpoint to resume from")
    p.add_argument("--init", default=None,
                   help="fine-tune: start a new run from this checkpoint's network weights (fresh optimizer and schedule)")
    p.add_argument("--val-split", default=None, help="BOP split for validation (default: held-out part of the data)")
    p.add_argument("--device", default="auto", help="auto | cpu | cuda")
    p.add_argument("--val-every", dest="val_every", type=int, default=None, help="validate and save last.pt every N iterations (default 1000)")
    p.add_argument("--log-every", dest="log_every", type=int, default=None, help="CSV/progress log every N iterations (default 50)")
    p.add_argument("--sigma", type=float, default=None, help="target Gaussian sigma, heatmap cells (default 2)")
    p.add_argument("--rot-range", dest="rotation_deg", type=float, default=None, help="in-plane rotation augmentation, +-degrees, up to 180 (default 30)")
    p.add_argument("--width", type=float, default=None, help="lite preset: channel width multiplier (default 1.0)")
    p.add_argument("--threads", type=int, default=None, help="torch intra-op threads (default: all cores)")


def run(args: argparse.Namespace) -> int:
    from train.loop import run_training_from_args

    return run_training_from_args(args) or 0
