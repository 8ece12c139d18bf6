"""``kptrack eval``: score poses (BOP results CSV) against a BOP dataset."""

from __future__ import annotations

import argparse

from tracker.eval.evaluate import EvalConfig, run_eval
from tracker.eval.reports import format_summary

HELP = "score poses (BOP results CSV) against a BOP dataset"


def add_arguments(p: argparse.ArgumentParser) -> None:
    p.add_argument("--poses", required=True, help="estimated poses, BOP results CSV (kptrack track --poses)")
    p.add_argument("--dataset", required=True, help="BOP dataset root or scene folder")
    p.add_argument("--object", default="default",
                   help="object the poses are of: 'default' (the built-in drill) or an object directory")
    p.add_argument("--out", default=None, help="folder for metrics JSON and error plot PNG")
    p.add_argument("--obj-id", type=int, default=1, help="BOP obj_id of the object in the dataset and CSV")


def run(args: argparse.Namespace) -> int:
    res = run_eval(EvalConfig(poses=args.poses, dataset=args.dataset, object=args.object, out=args.out,
                              obj_id=args.obj_id))
    print(format_summary(res))
    print(f"wrote {res['out']}/metrics.json, errors_per_frame.csv, {len(res['plots'])} plot(s)")
    return 0
