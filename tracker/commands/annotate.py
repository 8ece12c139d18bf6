"""``kptrack annotate``: label named keypoints on real frames (window or headless import), with a pose per frame."""

from __future__ import annotations

import argparse

from tracker.labels.annotate import AnnotateConfig, run_annotate

HELP = "label named keypoints on frames of a video or image folder (COCO JSON + BOP poses)"


def add_arguments(p: argparse.ArgumentParser) -> None:
    p.add_argument("--source", required=True, help="video file or image folder (frame indices count from 0, as kptrack track counts them)")
    p.add_argument("--object", required=True, help="object directory whose keypoints are labelled (or 'default')")
    p.add_argument("--camera", default=None, help="camera calibration, OpenCV YAML (default: camera.yaml beside the source)")
    p.add_argument("--out", required=True,
                   help="labels folder: keypoints_coco.json, rgb/, scene_gt.json, scene_camera.json, labels_report.json, "
                        "check/ (an existing one is resumed)")
    p.add_argument("--every", type=int, default=None, help="label every N-th frame (0, N, 2N, ...)")
    p.add_argument("--frames", default=None, help="frames to label: indices and ranges, e.g. 0,10,20-40:10")
    p.add_argument("--points", default=None,
                   help="headless: import labels from a CSV (header frame,name,x,y) or JSON list of {frame,name,x,y}")
    p.add_argument("--obj-id", type=int, default=1, help="BOP obj_id written in scene_gt.json")
    p.add_argument("--no-check-pictures", action="store_true", help="skip the check pictures (projected CAD over each frame)")


def run(args: argparse.Namespace) -> int:
    rep = run_annotate(AnnotateConfig(
        source=args.source, out=args.out, object=args.object, camera=args.camera, every=args.every, frames=args.frames,
        points=args.points, obj_id=args.obj_id, check_pictures=not args.no_check_pictures,
    ))
    print(rep.summary())
    print(f"wrote {rep.labels_file}, {rep.out}/scene_gt.json, scene_camera.json, labels_report.json"
          + (f", {len(rep.check_pictures)} check picture(s) in {rep.out}/check" if rep.check_pictures else ""))
    return 0
