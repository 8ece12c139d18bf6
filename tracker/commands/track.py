"""``kptrack track``: track an object in a webcam, video, image folder or URL."""

from __future__ import annotations

import argparse

HELP = "track an object in a webcam, video, image folder or URL"


def add_arguments(p: argparse.ArgumentParser) -> None:
    p.add_argument("--source", required=True, help="camera index | video file | image folder | URL")
    p.add_argument("--model", default="models/default/model.onnx")
    p.add_argument("--object", default="default")
    p.add_argument("--camera", default=None, help="camera calibration, OpenCV YAML (kptrack calibrate); fov:DEG guesses one; "
                   "default: camera.yaml beside a video/folder")
    p.add_argument("--out", default=None, help="annotated video, Motion-JPEG .avi (stays playable if the run is killed)")
    p.add_argument("--poses", default=None, help="poses, BOP results CSV (a .jsonl beside it holds timings)")
    p.add_argument("--show", action="store_true", help="show a window (q quits, space pauses, r resets)")
    p.add_argument("--device", default="auto", choices=["auto", "cpu", "cuda"])
    p.add_argument("--threads", type=int, default=None, help="ONNX Runtime intra-op threads")
    p.add_argument("--preset", default="fast", help="tracker preset: fast | accurate")
    p.add_argument("--no-smoothing", action="store_true")
    p.add_argument("--max-frames", type=int, default=None)


def run(args: argparse.Namespace) -> int:
    from tracker.pipeline.app import run_track_from_args

    return run_track_from_args(args) or 0
