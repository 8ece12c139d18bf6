"""``kptrack pretrain``: pretrain a network backbone on procedural objects (dense pretext targets)."""

from __future__ import annotations

import argparse

from train.distributed import PRECISIONS
from train.pretrain.loop import PretrainConfig, pretrain

HELP = "pretrain a network backbone on procedural objects (mask, edges, normals, corners)"


def add_arguments(p: argparse.ArgumentParser) -> None:
    d = PretrainConfig(out="")
    p.add_argument("--out", required=True, help="run folder (last.pt, log.csv, backbone.pt)")
    p.add_argument("--backbone", default=None, help="backbone file to write (default OUT/backbone.pt); "
                   "models/backbone/<preset>.pt is what kptrack train uses by default")
    p.add_argument("--iters", type=int, default=d.iters, help=f"iterations (default {d.iters})")
    p.add_argument("--batch", type=int, default=d.batch, help=f"batch size (default {d.batch})")
    p.add_argument("--lr", type=float, default=d.lr, help=f"Adam learning rate (default {d.lr})")
    p.add_argument("--seed", type=int, default=d.seed, help="random seed of the objects and samples")
    p.add_argument("--pool", type=int, default=d.pool, help=f"procedural objects to draw from (default {d.pool})")
    p.add_argument("--preset", default=d.preset, help="network preset (lite)")
    p.add_argument("--save-every", type=int, default=d.save_every, help="write last.pt and the backbone every N iterations")
    p.add_argument("--workers", type=int, default=None, help="data processes (default: cores - 1)")
    p.add_argument("--threads", type=int, default=None, help="torch intra-op threads (default: all cores)")
    p.add_argument("--resume", action="store_true", help="continue the run in --out from its last.pt")
    p.add_argument("--init", default=None, help="a backbone file a new run starts from (a further pretraining stage; "
                   "the head starts as built); not with --resume")
    p.add_argument("--precision", choices=PRECISIONS, default=d.precision,
                   help="fp32, or bf16: the forward and backward under bfloat16 autocast, weights and optimizer float32; "
                   "faster only on a CPU with bf16 units (AMX, AVX-512 BF16) (default fp32)")


def run(args: argparse.Namespace) -> int:
    cfg = PretrainConfig(out=args.out, backbone=args.backbone, iters=args.iters, batch=args.batch, lr=args.lr, seed=args.seed,
                         pool=args.pool, preset=args.preset, save_every=args.save_every, workers=args.workers,
                         threads=args.threads, resume=args.resume, init=args.init,
                         precision=args.precision)
    print(f"wrote the backbone {pretrain(cfg)}")
    return 0
