"""The one command-line entry point: ``kptrack <command> ...`` (also ``python -m tracker``).

The library never reads argv. This module parses arguments and calls one library function
per command, importing that command's module only when it runs (so ``kptrack track`` never
imports torch). User errors (:class:`tracker.errors.KptrackError`) print one line and exit 2.

Each command has a section below: ``_add_<command>(sub)`` declares its arguments and
``_run_<command>(args)`` calls the library.
"""

from __future__ import annotations

import argparse
import logging
import sys
from typing import Callable

from tracker.errors import KptrackError

log = logging.getLogger("kptrack")

_COMMANDS: dict[str, Callable[[argparse.Namespace], int | None]] = {}


def _command(name: str):
    def deco(fn):
        _COMMANDS[name] = fn
        return fn

    return deco


# ---------------------------------------------------------------- object
def _add_object(sub) -> None:
    p = sub.add_parser("object", help="make an object directory (mesh + keypoints.json + models_info.json)")
    osub = p.add_subparsers(dest="object_cmd", required=True)
    pi = osub.add_parser("init", help="write an object directory from a mesh file")
    pi.add_argument("mesh", help="mesh file: PLY, OBJ, STL or GLB")
    pi.add_argument("--keypoints", default="auto", help="'auto' (farthest-point sampling + centroid) or a keypoints.json")
    pi.add_argument("--num-keypoints", type=int, default=8, help="with --keypoints auto: surface keypoints (the centroid is added)")
    pi.add_argument("--units", choices=["mm", "m"], default="mm", help="units of the mesh file")
    pi.add_argument("--out", required=True, help="output object directory")


@_command("object")
def _run_object(args) -> int:
    from tracker.objects import init_object

    out = init_object(args.mesh, keypoints=args.keypoints, out_dir=args.out, units=args.units, num_keypoints=args.num_keypoints)
    print(f"wrote object directory {out}")
    return 0


# ---------------------------------------------------------------- synth
def _add_synth(sub) -> None:
    p = sub.add_parser("synth", help="render a synthetic BOP-format dataset of an object")
    p.add_argument("--object", default="default", help="'default' or an object directory")
    p.add_argument("--out", required=True, help="dataset root (BOP layout)")
    p.add_argument("--num", type=int, default=1000, help="training images (split train_synth)")
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--sequence", action="store_true", help="write a test sequence (split test_seq) instead")
    p.add_argument("--frames", type=int, default=300, help="with --sequence: number of frames")
    p.add_argument("--width", type=int, default=None, help="image width (default 256 for training images, 640 for sequences)")
    p.add_argument("--height", type=int, default=None, help="image height (default 256 for training images, 480 for sequences)")
    p.add_argument("--backgrounds", default=None, help="folder of background images (default: procedural)")
    p.add_argument("--workers", type=int, default=None, help="processes (default: all cores)")
    p.add_argument("--split", default=None, help="split name (default train_synth / test_seq)")
    p.add_argument("--rot-range", type=float, default=180.0, help="max rotation from the canonical view, degrees (180 = whole sphere)")
    p.add_argument("--scene-size", type=int, default=1000, help="training images per BOP scene folder")
    p.add_argument("--overwrite", action="store_true", help="replace an existing split folder (and models/) in --out")


@_command("synth")
def _run_synth(args) -> int:
    from train.synth import SynthConfig, run_synth

    cfg = SynthConfig(
        object=args.object, out=args.out, num=args.num, seed=args.seed, sequence=args.sequence,
        frames=args.frames, width=args.width, height=args.height, backgrounds=args.backgrounds,
        workers=args.workers, split=args.split, rot_range_deg=args.rot_range,
        scene_size=args.scene_size, overwrite=args.overwrite,
    )
    path = run_synth(cfg)
    print(f"wrote {path}")
    return 0


# ---------------------------------------------------------------- train
def _add_train(sub) -> None:
    p = sub.add_parser("train", help="train a heatmap keypoint network (PyTorch)")
    p.add_argument("--data", required=True, help="BOP dataset root, or a COCO keypoints JSON")
    p.add_argument("--object", default="default", help="'default' or an object directory")
    p.add_argument("--preset", default=None, help="network preset: lite | hourglass (default lite; when resuming, the checkpoint's)")
    p.add_argument("--out", required=True, help="run directory (checkpoints, logs)")
    p.add_argument("--iters", type=int, default=None, help="training iterations")
    p.add_argument("--batch", type=int, default=None, help="batch size (seed: 8)")
    p.add_argument("--lr", type=float, default=None, help="learning rate (seed: 2.5e-4)")
    p.add_argument("--optimizer", choices=["rmsprop", "adam"], default=None, help="optimizer (seed: rmsprop)")
    p.add_argument("--workers", type=int, default=None, help="DataLoader workers")
    p.add_argument("--seed", type=int, default=None, help="random seed (default 0; when resuming, the checkpoint's)")
    p.add_argument("--resume", default=None, help="checkpoint to resume from")
    p.add_argument("--init", default=None,
                   help="fine-tune: start a new run from this checkpoint's network weights (fresh optimizer and schedule)")
    p.add_argument("--val-split", default=None, help="BOP split for validation (default: held-out part of the data)")
    p.add_argument("--device", default="auto", help="auto | cpu | cuda")
    p.add_argument("--val-every", dest="val_every", type=int, default=None, help="validate and save last.pt every N iterations (default 1000)")
    p.add_argument("--log-every", dest="log_every", type=int, default=None, help="CSV/progress log every N iterations (default 50)")
    p.add_argument("--sigma", type=float, default=None, help="target Gaussian sigma, heatmap cells (default 2)")
    p.add_argument("--rot-range", dest="rotation_deg", type=float, default=None, help="in-plane rotation augmentation, +-degrees, up to 180 (default 30)")
    p.add_argument("--width", type=float, default=None, help="lite preset: channel width multiplier (default 1.0)")
    p.add_argument("--threads", type=int, default=None, help="torch intra-op threads (default: all cores)")


@_command("train")
def _run_train(args) -> int:
    from train.loop import run_training_from_args

    return run_training_from_args(args) or 0


# ---------------------------------------------------------------- export
def _add_export(sub) -> None:
    p = sub.add_parser("export", help="export a checkpoint to ONNX with metadata, and check parity")
    p.add_argument("--checkpoint", required=True)
    p.add_argument("--out", required=True, help="output .onnx path")
    p.add_argument("--fp16", action="store_true", help="also write an fp16 model beside it")
    p.add_argument("--opset", type=int, default=17)
    p.add_argument("--data", default=None, help="BOP dataset root for real-crop parity (optional)")


@_command("export")
def _run_export(args) -> int:
    from export.onnx_export import run_export_from_args

    return run_export_from_args(args) or 0


# ---------------------------------------------------------------- score
def _add_score(sub) -> None:
    p = sub.add_parser("score", help="keypoint accuracy of an ONNX model on a labelled split (PCK@2/5px, mean px in the crop)")
    p.add_argument("--model", default="models/default/model.onnx")
    p.add_argument("--data", required=True, help="BOP dataset root / split / scene, or a COCO keypoints JSON")
    p.add_argument("--split", default=None, help="BOP split (e.g. test_synth)")
    p.add_argument("--object", default="default")
    p.add_argument("--max-images", type=int, default=None)
    p.add_argument("--batch", type=int, default=16)
    p.add_argument("--device", default="auto", choices=["auto", "cpu", "cuda"])
    p.add_argument("--threads", type=int, default=None)
    p.add_argument("--json", default=None, help="also write the scores as JSON here")


@_command("score")
def _run_score(args) -> int:
    from train.score import run_score_from_args

    return run_score_from_args(args) or 0


# ---------------------------------------------------------------- viz
def _add_viz(sub) -> None:
    p = sub.add_parser("viz", help="write the seed figures (GT keypoints, heatmaps, predicted keypoints, projected CAD) for an image")
    p.add_argument("--image", required=True)
    p.add_argument("--model", default="models/default/model.onnx", help="ONNX model or .pt checkpoint")
    p.add_argument("--object", default="default")
    p.add_argument("--camera", default=None, help="OpenCV YAML; default: from --dataset, else a 60 deg FOV guess")
    p.add_argument("--dataset", default=None, help="BOP dataset root to take GT and camera from (image must be inside it)")
    p.add_argument("--out", required=True, help="output folder for the PNGs")


@_command("viz")
def _run_viz(args) -> int:
    from tracker.eval.viz import run_viz_from_args

    return run_viz_from_args(args) or 0


# ---------------------------------------------------------------- track
def _add_track(sub) -> None:
    p = sub.add_parser("track", help="track an object in a webcam, video, image folder or URL")
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


@_command("track")
def _run_track(args) -> int:
    from tracker.pipeline.app import run_track_from_args

    return run_track_from_args(args) or 0


# ---------------------------------------------------------------- demo
def _add_demo(sub) -> None:
    p = sub.add_parser("demo", help="track the built-in default object on a synthetic sequence; print accuracy and speed")
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


@_command("demo")
def _run_demo(args) -> int:
    from tracker.pipeline.app import run_demo_from_args

    return run_demo_from_args(args) or 0


# ---------------------------------------------------------------- eval
def _add_eval(sub) -> None:
    p = sub.add_parser("eval", help="score poses (BOP results CSV) against a BOP dataset")
    p.add_argument("--poses", required=True)
    p.add_argument("--dataset", required=True, help="BOP dataset root or scene folder")
    p.add_argument("--object", default="default")
    p.add_argument("--out", default=None, help="folder for metrics JSON and error plot PNG")
    p.add_argument("--obj-id", type=int, default=1, help="BOP obj_id of the object in the dataset and CSV")


@_command("eval")
def _run_eval(args) -> int:
    from tracker.eval.evaluate import run_eval_from_args

    return run_eval_from_args(args) or 0


# ---------------------------------------------------------------- bench
def _add_bench(sub) -> None:
    p = sub.add_parser("bench", help="end-to-end latency and accuracy on a test sequence, with peer baselines")
    p.add_argument("--frames", type=int, default=300)
    p.add_argument("--model", default=None)
    p.add_argument("--device", default="auto", choices=["auto", "cpu", "cuda"])
    p.add_argument("--out", default="benchmarks/out", help="folder for the JSON")
    p.add_argument("--results", default="benchmarks/RESULTS.md", help="markdown file to append the table to")
    p.add_argument("--no-peers", action="store_true")
    p.add_argument("--sequence", default=None, help="a BOP scene folder to run on (default: the demo's cached synthetic sequence)")
    p.add_argument("--cache", default=None, help="where the default synthetic sequence is cached")
    p.add_argument("--threads", type=int, default=None, help="ONNX Runtime intra-op threads")
    p.add_argument("--preset", default="fast", help="tracker preset: fast | accurate")
    p.add_argument("--no-cold-start", action="store_true", help="skip the time-to-first-frame subprocess runs")
    p.add_argument("--object", default="default", help="'default' or an object directory (with --sequence)")


@_command("bench")
def _run_bench(args) -> int:
    from benchmarks.e2e import run_bench_from_args

    return run_bench_from_args(args) or 0


# ---------------------------------------------------------------- calibrate
def _add_calibrate(sub) -> None:
    p = sub.add_parser("calibrate", help="calibrate a camera from chessboard views; writes OpenCV YAML")
    p.add_argument("--source", required=True, help="camera index, video file or image folder")
    p.add_argument("--board", default="9x6", help="inner corners, COLSxROWS")
    p.add_argument("--square", type=float, default=25.0, help="square side, mm")
    p.add_argument("--out", required=True, help="output camera YAML")
    p.add_argument("--max-views", type=int, default=40, help="views kept for calibration (at least 5)")
    p.add_argument("--show", action="store_true", help="show detections in a window (q finishes early)")
    p.add_argument("--k3", action="store_true", help="also estimate the k3 distortion term (wide-angle lenses)")


@_command("calibrate")
def _run_calibrate(args) -> int:
    from tracker.camera.calibration import run_calibrate_from_args

    return run_calibrate_from_args(args) or 0


def build_parser() -> argparse.ArgumentParser:
    ap = argparse.ArgumentParser(prog="kptrack", description="Real-time 6-DoF object pose tracking from heatmap keypoints.")
    ap.add_argument("-v", "--verbose", action="store_true", help="debug logging")
    sub = ap.add_subparsers(dest="command", required=True)
    for add in (_add_object, _add_synth, _add_train, _add_export, _add_score, _add_viz, _add_track, _add_demo, _add_eval, _add_bench, _add_calibrate):
        add(sub)
    return ap


def main(argv: list[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    logging.basicConfig(level=logging.DEBUG if args.verbose else logging.INFO, format="%(levelname)s %(name)s: %(message)s")
    try:
        return int(_COMMANDS[args.command](args) or 0)
    except KptrackError as e:
        print(f"kptrack {args.command}: error: {e}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        print(f"kptrack {args.command}: interrupted", file=sys.stderr)
        return 130


if __name__ == "__main__":
    raise SystemExit(main())
