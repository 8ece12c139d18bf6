"""``kptrack demo``: track the built-in default object on a synthetic sequence; print accuracy and speed."""

from __future__ import annotations

import argparse

HELP = "track the built-in default object on a synthetic sequence; print accuracy and speed"


def add_arguments(p: argparse.ArgumentParser) -> None:
    p.add_argument("--frames", type=int, default=300)
    p.add_argument("--model", default=None, help="default: the shipped models/default/model.onnx")
    p.add_argument("--device", default="auto", choices=["auto", "cpu", "cuda"])
    p.add_argument("--out", default=None, help="annotated video, Motion-JPEG .avi")
    p.add_argument("--cache", default=None, help="where the synthetic sequence is cached (default ~/.cache/kptrack)")
    p.add_argument("--threads", type=int, default=None, help="ONNX Runtime intra-op threads")
    p.add_argument("--preset", default="fast", help="tracker preset: fast | accurate")
    p.add_argument("--no-smoothing", action="store_true", help="score the unsmoothed per-frame poses")
    p.add_argument("--seed", type=int, default=None,
                   help="render another synthetic sequence with this seed (default 1, the demo's own sequence)")


def run(args: argparse.Namespace) -> int:
    from tracker.pipeline.app import run_demo_from_args

    return run_demo_from_args(args) or 0
