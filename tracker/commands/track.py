"""``kptrack track``: track an object in a webcam, video, image folder or URL."""

from __future__ import annotations

import argparse

from tracker.errors import KptrackError
from tracker.pipeline.session import TrackConfig, track
from tracker.pipeline.streams import StreamsConfig, track_streams

HELP = "track an object in a webcam, video, image folder or URL"


def add_arguments(p: argparse.ArgumentParser) -> None:
    p.add_argument("--source", required=True, action="append",
                   help="camera index | video file | image folder | URL; repeat it to track several streams in one process "
                        "(one tracker state per stream, their crops batched into one inference call)")
    p.add_argument("--model", default=None, help="exported ONNX model (default: the shipped models/default/model.onnx)")
    p.add_argument("--object", default="default", help="'default' (the built-in drill) or an object directory")
    p.add_argument("--camera", default=None, help="camera calibration, OpenCV YAML (kptrack calibrate); fov:DEG guesses one; "
                   "default: camera.yaml beside a video/folder")
    p.add_argument("--out", action="append", default=None,
                   help="annotated video, Motion-JPEG .avi (stays playable if the run is killed); with several --source: "
                        "once per source, or once as a pattern with {i} or {name}")
    p.add_argument("--poses", action="append", default=None,
                   help="poses, BOP results CSV (a .jsonl beside it holds timings); with several --source: once per source, "
                        "or once as a pattern with {i} or {name}")
    p.add_argument("--overwrite", action="store_true", help="replace --out / --poses files that already exist")
    p.add_argument("--show", action="store_true", help="show a window (q quits, space pauses, r resets)")
    p.add_argument("--device", default="auto", choices=["auto", "cpu", "cuda"], help="where the network runs (auto: CUDA if it loads)")
    p.add_argument("--threads", type=int, default=None, help="ONNX Runtime intra-op threads")
    p.add_argument("--preset", default="fast",
                   help="tracker preset: fast (the default) | accurate (each pose refined on image edges: about 3x lower median error, about 2 ms a frame more)")
    p.add_argument("--no-smoothing", action="store_true", help="report the unsmoothed per-frame poses")
    p.add_argument("--max-frames", type=int, default=None, help="stop after this many frames")
    p.add_argument("--loop", default="pipelined", choices=["pipelined", "sequential"],
                   help="frame loop: pipelined (reading, tracking, drawing and writing overlap on threads) or sequential "
                        "(one stage after another); both give the same poses")
    p.add_argument("--precision", default="fp32", choices=["fp32", "fp16", "int8"],
                   help="model file to load: fp32 is --model itself, fp16 / int8 the <stem>.fp16.onnx / <stem>.int8.onnx beside "
                        "it (written by `kptrack export --fp16` / `--int8`)")
    p.add_argument("--backend", default="onnxruntime",
                   help="where the network runs: onnxruntime (a local session) or triton://HOST:PORT/MODEL (a Triton server's "
                        "gRPC port, repository from `kptrack export --triton-repo`; needs `pip install 'kptrack[triton]'`)")


def run(args: argparse.Namespace) -> int:
    sources, outs, poses = list(args.source), list(args.out or ()), list(args.poses or ())
    if len(sources) == 1 and (len(outs) > 1 or len(poses) > 1):
        raise KptrackError("--out / --poses: given more than once for one --source. Give each once.")
    cfg = TrackConfig(
        source=sources[0], model=args.model, object=args.object, camera=args.camera, out=(outs or [None])[0],
        poses=(poses or [None])[0],
        show=args.show, device=args.device, threads=args.threads, preset=args.preset, smoothing=not args.no_smoothing,
        max_frames=args.max_frames, overwrite=args.overwrite, loop=args.loop,
        precision=args.precision, backend=args.backend,
    )
    report = track(cfg) if len(sources) == 1 else track_streams(StreamsConfig(cfg, tuple(sources), tuple(outs), tuple(poses)))
    print(report.summary)
    for what, path in report.outputs.items():
        print(f"{what}: {path}")
    return 130 if report.stats.interrupted else 0
