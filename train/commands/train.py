"""``kptrack train``: train a heatmap keypoint network (PyTorch).

Options left out come from the checkpoint when resuming (so ``--resume RUN/last.pt --iters N``
continues the same run with the same preset, batch, seed ...), else from ``--recipe``
(:data:`train.config.RECIPES`: ``fast`` by default, ``seed`` for the seed's) and then
:class:`train.config.TrainConfig`'s defaults.
"""

from __future__ import annotations

import argparse
import dataclasses
import os
from typing import Any

from tracker.errors import KptrackError
from train.checkpoint import load_checkpoint
from train.config import DEFAULT_RECIPE, RECIPES, TrainConfig, recipe_defaults
from train.distributed import PRECISIONS
from train.loop import TrainResult, train
from train.start import is_backbone_file

HELP = "train a heatmap keypoint network (PyTorch)"


def add_arguments(p: argparse.ArgumentParser) -> None:
    p.add_argument("--data", required=True, action="append",
                   help="BOP dataset root, or a COCO keypoints JSON; repeat to mix sources, each PATH[:WEIGHT] "
                        "(its share of every batch relative to the others, default 1), e.g. --data synth --data pseudo:2")
    p.add_argument("--object", default=None,
                   help="'default', 'bottle' or an object directory (default 'default'; when resuming, the checkpoint's)")
    p.add_argument("--preset", default=None, help="network preset: lite | hourglass (default lite; when resuming, the checkpoint's)")
    p.add_argument("--out", required=True, help="run directory (checkpoints, logs)")
    p.add_argument("--iters", type=int, default=None, help="training iterations")
    p.add_argument("--batch", type=int, default=None, help="batch size (seed: 8)")
    p.add_argument("--lr", type=float, default=None, help="learning rate (seed: 2.5e-4)")
    p.add_argument("--recipe", choices=list(RECIPES), default=None,
                   help="defaults of the training options left out: fast (the default; for a new run Adam 1e-3, "
                        "--peak-weight 5, --sigma-start 4, --low-res 0.5; for a fine-tune from an --init checkpoint "
                        "Adam 3e-4, --peak-weight 5) or seed (RMSprop 2.5e-4, plain MSE, full resolution: the seed's)")
    p.add_argument("--optimizer", choices=["rmsprop", "adam"], default=None, help="optimizer (seed: rmsprop)")
    p.add_argument("--workers", type=int, default=None,
                   help="data processes (default: on a GPU half the cores, at most 8; on a CPU none with 2 cores or fewer, "
                        "else 1, so they do not compete with torch's threads)")
    p.add_argument("--seed", type=int, default=None, help="random seed (default 0; when resuming, the checkpoint's)")
    p.add_argument("--resume", default=None, help="checkpoint to resume from")
    p.add_argument("--init", default=None,
                   help="weights to start a new run from (fresh optimizer and schedule): a training checkpoint (fine-tune), "
                        "a backbone file, or 'none' for random weights; default: the preset's shipped models/backbone/<preset>.pt")
    p.add_argument("--val-split", default=None, help="BOP split for validation (default: held-out part of the data)")
    p.add_argument("--device", default="auto", help="auto | cpu | cuda")
    p.add_argument("--val-every", dest="val_every", type=int, default=None, help="validate and save last.pt every N iterations (default 1000)")
    p.add_argument("--log-every", dest="log_every", type=int, default=None, help="CSV/progress log every N iterations (default 50)")
    p.add_argument("--sigma", type=float, default=None, help="target Gaussian sigma, heatmap cells (default 2)")
    p.add_argument("--sigma-start", dest="sigma_start", type=float, default=None,
                   help="start the targets this wide (cells) and narrow them to --sigma over the first --sigma-decay of the run (default: constant)")
    p.add_argument("--sigma-decay", dest="sigma_decay", type=float, default=None, help="fraction of the run over which --sigma-start narrows to --sigma (default 0.5)")
    p.add_argument("--peak-weight", dest="peak_weight", type=float, default=None, help="loss weight of a target's peak cells, 1 = plain MSE (default 1)")
    p.add_argument("--hidden-peak", dest="hidden_peak", type=float, default=None,
                   help="peak of a hidden keypoint's target, within (0, 1]: lower keeps the network's confidence "
                        "on keypoints it cannot see below that on visible ones (default 1)")
    p.add_argument("--symmetric-loss", dest="symmetric_loss", choices=["min", "canonical"], default=None,
                   help="an object whose discrete symmetries permute its keypoints: score each crop against the canonical "
                        "labels (canonical, default) or against its best-fitting equivalent (min)")
    p.add_argument("--low-res", dest="low_res", type=float, default=None,
                   help="fraction of the iterations, from the start, at half resolution (128 px crops; about 3x faster steps) (default 0)")
    p.add_argument("--coord-weight", dest="coord_weight", type=float, default=None,
                   help="weight of an auxiliary model-coordinate map loss on crops with a known pose (BOP data), "
                        "which teaches which part of the object each pixel shows; 0 = off "
                        "(default 20 for objects without symmetries, 0 for the others; a symmetric object "
                        "learns the coordinates of the equivalent its labels use)")
    p.add_argument("--schedule", choices=["cosine", "step", "constant"], default=None, help="learning-rate schedule after warm-up (default cosine)")
    p.add_argument("--rot-range", dest="rotation_deg", type=float, default=None, help="in-plane rotation augmentation, +-degrees, up to 180 (default 30)")
    p.add_argument("--occlude-keypoints", dest="occlude_keypoints", type=float, default=None,
                   help="fraction of training crops with a bar laid across one visible keypoint (labels kept), so an end hidden "
                        "behind something is placed from the rest of the object (default 0)")
    p.add_argument("--width", type=float, default=None, help="lite preset: channel width multiplier (default 1.0)")
    p.add_argument("--context", type=int, default=None,
                   help="lite preset: global-context blocks after the encoder (7x7 depthwise at 8x8 cells), so each "
                        "keypoint's channel sees the whole object; for plain or symmetric objects (default 0)")
    p.add_argument("--precision", choices=PRECISIONS, default=None,
                   help="bf16: forward and backward under bfloat16 autocast; on a CPU with AMX a whole training step ran 1.08-1.3x faster "
                        "at 256 px, no faster at 128 px (benchmarks/RESULTS.md); GPUs from Ampere on have it too, untested there (default fp32)")
    p.add_argument("--threads", type=int, default=None, help="torch intra-op threads (default: on a CPU the cores the data processes leave; on a GPU all cores)")


def config_from_args(args: argparse.Namespace) -> TrainConfig:
    """TrainConfig from ``kptrack train`` arguments. Unset options come from the checkpoint when
    resuming (so ``--resume RUN/last.pt --iters N`` continues the same run), else from --recipe's defaults
    (a new run's, or a fine-tune's when --init is a training checkpoint), then TrainConfig's."""
    if args.resume and args.recipe:
        raise KptrackError(f"--recipe {args.recipe} and --resume both given: a resumed run keeps its own options. "
                           "Leave --recipe out when resuming.")
    base: dict[str, Any] = {}
    if args.resume:
        base = dict(load_checkpoint(args.resume).get("config", {}))
    names = {f.name for f in dataclasses.fields(TrainConfig)}
    given = {
        "data": args.data[0] if len(args.data) == 1 else tuple(args.data), "out": args.out, "object": args.object, "preset": args.preset, "iters": args.iters,
        "batch": args.batch, "lr": args.lr, "workers": args.workers, "seed": args.seed, "resume": args.resume,
        "val_split": args.val_split, "device": args.device, "val_every": args.val_every, "sigma": args.sigma,
        "rotation_deg": args.rotation_deg, "width": args.width, "context": args.context, "log_every": args.log_every, "threads": args.threads,
        "optimizer": args.optimizer, "sigma_start": args.sigma_start, "sigma_decay": args.sigma_decay,
        "peak_weight": args.peak_weight, "hidden_peak": args.hidden_peak, "low_res": args.low_res, "schedule": args.schedule,
        "symmetric_loss": args.symmetric_loss, "coord_weight": args.coord_weight, "precision": args.precision,
        "occlude_keypoints": args.occlude_keypoints,
    }
    merged = {} if args.resume else recipe_defaults(args.recipe or DEFAULT_RECIPE, _fine_tune(args.init))
    merged.update({k: v for k, v in base.items() if k in names})
    merged.update({k: v for k, v in given.items() if v is not None})
    if not args.resume:
        merged.setdefault("preset", "lite")
    merged["resume"] = args.resume
    # a resumed fine-tuning run has its weights in the checkpoint: its --init is history, not a request
    merged["init"] = args.init
    return TrainConfig(**merged)


def _fine_tune(init: str | None) -> bool:
    """Whether --init names a training checkpoint (a fine-tune) rather than a backbone or 'none'."""
    return init is not None and init != "none" and not is_backbone_file(init)


def run(args: argparse.Namespace) -> int:
    cfg = config_from_args(args)
    res = train(cfg)
    if int(os.environ.get("RANK", "0")) == 0:
        _print_summary(cfg, res)
    return 0


def _print_summary(cfg: TrainConfig, res: TrainResult) -> None:
    s = res.best_scores
    print(f"trained {cfg.preset} to iteration {res.iteration}: best PCK@5px {s.get('pck5', float('nan')):.3f}, "
          f"mean {s.get('mean_px', float('nan')):.2f} px; checkpoints in {res.run_dir} (best.pt, last.pt), log {res.run_dir / 'log.csv'}")
    if res.bad_images:
        print(f"skipped {res.bad_images} unreadable image(s)")
