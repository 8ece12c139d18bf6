"""``kptrack calibrate``: calibrate a camera from chessboard views; writes OpenCV YAML.

Options -> :class:`tracker.camera.calibration.CalibrateConfig` -> one call,
:func:`tracker.camera.calibration.calibrate`; then the result is printed.
"""

from __future__ import annotations

import argparse
from pathlib import Path

from tracker.camera.calibration import (
    CalibrateConfig,
    CalibrationResult,
    calibrate,
    parse_board,
)

HELP = "calibrate a camera from chessboard views; writes OpenCV YAML"


def add_arguments(p: argparse.ArgumentParser) -> None:
    d = CalibrateConfig  # defaults live in the config, once
    p.add_argument("--source", required=True, help="camera index, video file or image folder")
    p.add_argument("--board", default="{}x{}".format(*d.board), help="inner corners, COLSxROWS")
    p.add_argument("--square", type=float, default=d.square_mm, help="square side, mm")
    p.add_argument("--out", required=True, help="output camera YAML")
    p.add_argument("--max-views", type=int, default=d.max_views, help="views kept for calibration (at least 5)")
    p.add_argument("--show", action="store_true", help="show detections in a window (q finishes early)")
    p.add_argument("--k3", action="store_true", help="also estimate the k3 distortion term (wide-angle lenses)")


def config_from_args(args: argparse.Namespace) -> CalibrateConfig:
    """The parsed options as a frozen config (``--board`` checked here: KptrackError if malformed)."""
    return CalibrateConfig(
        source=str(args.source),
        out=Path(args.out),
        board=parse_board(args.board),
        square_mm=float(args.square),
        max_views=int(args.max_views),
        show=bool(args.show),
        k3=bool(args.k3),
    )


def run(args: argparse.Namespace) -> int:
    cfg = config_from_args(args)
    res = calibrate(cfg)
    print_result(res, cfg.out)
    return 0


def print_result(res: CalibrationResult, out: Path) -> None:
    """The summary a user reads after calibrating: views, RMS, intrinsics, distortion, the file."""
    c = res.camera
    print(f"calibrated from {len(res.frame_indices)} views ({res.boards_found} boards in {res.frames_searched} frames searched)")
    print(f"RMS reprojection error: {res.rms:.3f} px (worst view {res.per_view_rms.max():.3f} px)")
    print(f"fx={c.fx:.2f} fy={c.fy:.2f} cx={c.cx:.2f} cy={c.cy:.2f} size={c.width}x{c.height}")
    print("dist=" + " ".join(f"{v:.5f}" for v in c.dist))
    if res.rms > 1.0:
        print("warning: RMS above 1 px; check --square, the board's flatness and focus, or remove blurred views")
    print(f"wrote {out}")
