"""``kptrack viz``: write the seed figures (GT keypoints, heatmaps, predicted keypoints, projected CAD) for an image."""

from __future__ import annotations

import argparse

from tracker.eval.viz import VizConfig, run_viz

HELP = "write the seed figures (GT keypoints, heatmaps, predicted keypoints, projected CAD) for an image"


def add_arguments(p: argparse.ArgumentParser) -> None:
    p.add_argument("--image", required=True, help="the image (PNG/JPEG) to run the network on")
    p.add_argument("--model", default=None, help="exported ONNX model (default: the shipped models/default/model.onnx)")
    p.add_argument("--object", default="default", help="'default' (the built-in drill) or an object directory")
    p.add_argument("--camera", default=None, help="OpenCV YAML; default: from --dataset, else a 60 deg FOV guess")
    p.add_argument("--dataset", default=None, help="BOP dataset root or COCO keypoints JSON the image belongs to (ground truth)")
    p.add_argument("--out", required=True, help="output folder for the PNGs")
    p.add_argument("--preset", default="fast",
                   help="tracker preset whose keypoint pass the figures show: fast (the default) | accurate (the pose refined on image edges)")


def run(args: argparse.Namespace) -> int:
    res = run_viz(VizConfig(image=args.image, out=args.out, model=args.model, object=args.object,
                            camera=args.camera, dataset=args.dataset, preset=args.preset))
    for p in res.paths.values():
        print(f"wrote {p}")
    return 0
