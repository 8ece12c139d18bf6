"""``kptrack calibrate``: calibrate a camera from chessboard views; writes OpenCV YAML."""

from __future__ import annotations

import argparse

HELP = "calibrate a camera from chessboard views; writes OpenCV YAML"


def add_arguments(p: argparse.ArgumentParser) -> None:
    p.add_argument("--source", required=True, help="camera index, video file or image folder")
    p.add_argument("--board", default="9x6", help="inner corners, COLSxROWS")
    p.add_argument("--square", type=float, default=25.0, help="square side, mm")
    p.add_argument("--out", required=True, help="output camera YAML")
    p.add_argument("--max-views", type=int, default=40, help="views kept for calibration (at least 5)")
    p.add_argument("--show", action="store_true", help="show detections in a window (q finishes early)")
    p.add_argument("--k3", action="store_true", help="also estimate the k3 distortion term (wide-angle lenses)")


def run(args: argparse.Namespace) -> int:
    from tracker.camera.calibration import run_calibrate_from_args

    return run_calibrate_from_args(args) or 0
