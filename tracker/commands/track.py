"""``kptrack track``: track an object in a webcam, video, image folder or URL."""

from __future__ import annotations

import argparse

from tracker.pipeline.session import TrackConfig, track

HELP = "track an object in a webcam, video, image folder or URL"


def add_arguments(p: argparse.ArgumentParser) -> None:
    p.add_argument("--source", required=True, help="camera index | video file | image folder | URL")
    p.add_argument("--model", default=None, help="exported ONNX model (default: the shipped models/default/model.onnx)")
    p.add_argument("--object", default="default", help="'default' (the built-in drill) or an object directory")
    p.add_argument("--camera", default=None, help="camera calibration, OpenCV YAML (kptrack calibrate); fov:DEG guesses one; "
                   "default: camera.yaml beside a video/folder")
    p.add_argument("--out", default=None, help="annotated video, Motion-JPEG .avi (stays playable if the run is killed)")
    p.add_argument("--poses", default=None, help="poses, BOP results CSV (a .jsonl beside it holds timings)")
    p.add_argument("--overwrite", action="store_true", help="replace --out / --poses files that already exist")
    p.add_argument("--show", action="store_true", help="show a window (q quits, space pauses, r resets)")
    p.add_argument("--device", default="auto", choices=["auto", "cpu", "cuda"], help="where the network runs (auto: CUDA if it loads)")
    p.add_argument("--threads", type=int, default=None, help="ONNX Runtime intra-op threads")
    p.add_argument("--preset", default="fast", help="tracker preset: fast | accurate")
    p.add_argument("--no-smoothing", action="store_true", help="report the unsmoothed per-frame poses")
    p.add_argument("--max-frames", type=int, default=None, help="stop after this many frames")


def run(args: argparse.Namespace) -> int:
    report = track(TrackConfig(
        source=args.source, model=args.model, object=args.object, camera=args.camera, out=args.out, poses=args.poses,
        show=args.show, device=args.device, threads=args.threads, preset=args.preset, smoothing=not args.no_smoothing,
        max_frames=args.max_frames, overwrite=args.overwrite,
    ))
    print(report.summary)
    for what, path in report.outputs.items():
        print(f"{what}: {path}")
    return 130 if report.stats.interrupted else 0
