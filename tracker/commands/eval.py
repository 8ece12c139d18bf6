"""``kptrack eval``: score poses (BOP results CSV) against a BOP dataset."""

from __future__ import annotations

import argparse

HELP = "score poses (BOP results CSV) against a BOP dataset"


def add_arguments(p: argparse.ArgumentParser) -> None:
    p.add_argument("--poses", required=True)
    p.add_argument("--dataset", required=True, help="BOP dataset root or scene folder")
    p.add_argument("--object", default="default")
    p.add_argument("--out", default=None, help="folder for metrics JSON and error plot PNG")
    p.add_argument("--obj-id", type=int, default=1, help="BOP obj_id of the object in the dataset and CSV")


def run(args: argparse.Namespace) -> int:
    from tracker.eval.evaluate import run_eval_from_args

    return run_eval_from_args(args) or 0
