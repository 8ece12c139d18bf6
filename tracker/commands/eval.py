"""``kptrack eval``: score poses (BOP results CSV) against a BOP dataset, or against labelled real frames (``--labels``)."""

from __future__ import annotations

import argparse

from tracker.errors import KptrackError
from tracker.eval.evaluate import EvalConfig, run_eval
from tracker.eval.labelled import LabelledEvalConfig, format_labelled_summary, run_labelled_eval
from tracker.eval.reports import format_summary

HELP = "score poses against a BOP dataset, or against keypoints labelled on real frames (--labels)"


def add_arguments(p: argparse.ArgumentParser) -> None:
    p.add_argument("--poses", required=True,
                   help="estimated poses, BOP results CSV (kptrack track --poses; with --labels also its .jsonl)")
    p.add_argument("--dataset", default=None, help="BOP dataset root or scene folder (ground-truth poses)")
    p.add_argument("--labels", default=None,
                   help="instead of --dataset: labelled real frames, a COCO keypoints file or kptrack annotate's --out folder")
    p.add_argument("--camera", default=None,
                   help="with --labels: camera calibration, OpenCV YAML (default: camera.yaml in the labels folder)")
    p.add_argument("--object", default="default",
                   help="object the poses are of: 'default' (the built-in drill) or an object directory")
    p.add_argument("--out", default=None, help="folder for metrics JSON, per-frame CSV and error plot PNG")
    p.add_argument("--obj-id", type=int, default=1, help="BOP obj_id of the object in the dataset and CSV")


def run(args: argparse.Namespace) -> int:
    if (args.dataset is None) == (args.labels is None):
        raise KptrackError("kptrack eval: give one of --dataset (ground-truth poses) or --labels (keypoints labelled with "
                           "kptrack annotate).")
    if args.labels is not None:
        res = run_labelled_eval(LabelledEvalConfig(poses=args.poses, labels=args.labels, object=args.object,
                                                   camera=args.camera, out=args.out, obj_id=args.obj_id))
        print(format_labelled_summary(res))
        print(f"wrote {res['out']}/metrics.json, labelled_per_frame.csv, {len(res['plots'])} plot(s)")
        return 0
    if args.camera is not None:
        raise KptrackError("--camera: only with --labels (a BOP dataset carries its cameras in scene_camera.json).")
    res = run_eval(EvalConfig(poses=args.poses, dataset=args.dataset, object=args.object, out=args.out,
                              obj_id=args.obj_id))
    print(format_summary(res))
    print(f"wrote {res['out']}/metrics.json, errors_per_frame.csv, {len(res['plots'])} plot(s)")
    return 0
