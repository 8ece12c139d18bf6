"""``kptrack export``: export a checkpoint to ONNX with metadata, and check parity."""

from __future__ import annotations

import argparse

HELP = "export a checkpoint to ONNX with metadata, and check parity"


def add_arguments(p: argparse.ArgumentParser) -> None:
    p.add_argument("--checkpoint", required=True)
    p.add_argument("--out", required=True, help="output .onnx path")
    p.add_argument("--fp16", action="store_true", help="also write an fp16 model beside it")
    p.add_argument("--opset", type=int, default=17)
    p.add_argument("--data", default=None, help="BOP dataset root for real-crop parity (optional)")


def run(args: argparse.Namespace) -> int:
    from export.onnx_export import run_export_from_args

    return run_export_from_args(args) or 0
