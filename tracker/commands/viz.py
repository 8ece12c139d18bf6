"""``kptrack viz``: write the seed figures (GT keypoints, heatmaps, predicted keypoints, projected CAD) for an image."""

from __future__ import annotations

import argparse

HELP = "write the seed figures (GT keypoints, heatmaps, predicted keypoints, projected CAD) for an image"


def add_arguments(p: argparse.ArgumentParser) -> None:
    p.add_argument("--image", required=True)
    p.add_argument("--model", default="models/default/model.onnx", help="ONNX model or .pt checkpoint")
    p.add_argument("--object", default="default")
    p.add_argument("--camera", default=None, help="OpenCV YAML; default: from --dataset, else a 60 deg FOV guess")
    p.add_argument("--dataset", default=None, help="BOP dataset root to take GT and camera from (image must be inside it)")
    p.add_argument("--out", required=True, help="output folder for the PNGs")


def run(args: argparse.Namespace) -> int:
    from tracker.eval.viz import run_viz_from_args

    return run_viz_from_args(args) or 0
