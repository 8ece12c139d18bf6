"""``kptrack score``: keypoint accuracy of an ONNX model on a labelled split (PCK@2/5px, mean px in the crop)."""

from __future__ import annotations

import argparse

HELP = "keypoint accuracy of an ONNX model on a labelled split (PCK@2/5px, mean px in the crop)"


def add_arguments(p: argparse.ArgumentParser) -> None:
    p.add_argument("--model", default="models/default/model.onnx")
    p.add_argument("--data", required=True, help="BOP dataset root / split / scene, or a COCO keypoints JSON")
    p.add_argument("--split", default=None, help="BOP split (e.g. test_synth)")
    p.add_argument("--object", default="default")
    p.add_argument("--max-images", type=int, default=None)
    p.add_argument("--batch", type=int, default=16)
    p.add_argument("--device", default="auto", choices=["auto", "cpu", "cuda"])
    p.add_argument("--threads", type=int, default=None)
    p.add_argument("--json", default=None, help="also write the scores as JSON here")


def run(args: argparse.Namespace) -> int:
    from train.score import run_score_from_args

    return run_score_from_args(args) or 0
