"""``kptrack pseudolabel``: track videos and keep the confidently tracked frames as training labels (BOP + COCO)."""

from __future__ import annotations

import argparse

from train.pseudolabel import PseudoLabelChecks, PseudoLabelConfig, pseudolabel

HELP = "track videos and keep the confidently tracked frames as training labels (BOP scene + COCO keypoints)"

_D = PseudoLabelChecks()


def add_arguments(p: argparse.ArgumentParser) -> None:
    p.add_argument("--video", action="append", required=True, help="video file or image folder to label; repeat for several")
    p.add_argument("--out", required=True, help="new output folder (a BOP dataset: train_pseudo/<scene>/, pseudolabel.json)")
    p.add_argument("--model", default=None, help="exported ONNX model (default: the shipped models/default/model.onnx)")
    p.add_argument("--object", default="default", help="'default' (the built-in drill) or an object directory")
    p.add_argument("--camera", default=None, help="camera calibration YAML (or fov:DEG) for every video; default: camera.yaml beside each")
    p.add_argument("--exclude", action="append", default=[],
                   help="held-out frames never to label: '3,10,40-60', a .txt/.json list, a split.json, or the COCO file of "
                        "`kptrack annotate`; once for every video or once per --video, in order")
    p.add_argument("--exclude-margin", type=int, default=_D.exclude_margin,
                   help=f"also leave out this many frames on each side of a held-out frame (near-duplicates; default {_D.exclude_margin})")
    p.add_argument("--previous", default=None, help="the last round's output: its labels stay only where this model agrees or they pass again")
    p.add_argument("--max-rms", type=float, default=_D.max_rms_px, help=f"largest inlier reprojection RMS, px (default {_D.max_rms_px})")
    p.add_argument("--min-inliers", type=float, default=_D.min_inlier_frac,
                   help=f"smallest fraction of keypoints that are inliers (default {_D.min_inlier_frac})")
    p.add_argument("--min-score", type=float, default=_D.min_score, help=f"smallest tracker score 0..1 (default {_D.min_score})")
    p.add_argument("--window", type=int, default=_D.window, help=f"neighbours searched on each side for the smoothness check, frames (default {_D.window})")
    p.add_argument("--max-motion", type=float, default=_D.max_motion_px,
                   help=f"largest keypoint distance from the neighbours' interpolated pose, px (default {_D.max_motion_px})")
    p.add_argument("--min-visible-found", type=float, default=_D.min_visible_found,
                   help=f"smallest fraction of the render-visible keypoints the network found (default {_D.min_visible_found})")
    p.add_argument("--min-edges", type=float, default=None,
                   help="turn on the silhouette check: smallest fraction of the rendered outline near an image edge (e.g. 0.5)")
    p.add_argument("--device", default="auto", choices=["auto", "cpu", "cuda"], help="where the network runs (auto: CUDA if it loads)")
    p.add_argument("--threads", type=int, default=None, help="ONNX Runtime intra-op threads")
    p.add_argument("--preset", default=PseudoLabelConfig.preset,
                   help="tracker preset: accurate (the default: poses refined on image edges) | fast")
    p.add_argument("--max-frames", type=int, default=None, help="track at most this many frames of each video")
    p.add_argument("--truth", action="append", default=[],
                   help="synthetic footage only: the BOP scene with the video's true poses (once per --video); prints the labels' precision")


def config_from_args(args: argparse.Namespace) -> PseudoLabelConfig:
    checks = PseudoLabelChecks(
        max_rms_px=args.max_rms, min_inlier_frac=args.min_inliers, min_score=args.min_score, window=args.window,
        max_motion_px=args.max_motion, min_visible_found=args.min_visible_found, min_edge_score=args.min_edges,
        exclude_margin=args.exclude_margin,
    )
    return PseudoLabelConfig(
        videos=tuple(args.video), out=args.out, model=args.model, object=args.object, camera=args.camera,
        exclude=tuple(args.exclude), checks=checks, previous=args.previous, preset=args.preset, device=args.device,
        threads=args.threads, max_frames=args.max_frames, truth=tuple(args.truth),
    )


def run(args: argparse.Namespace) -> int:
    report = pseudolabel(config_from_args(args))
    for v in report.videos:
        rejected = ", ".join(f"{k} {n}" for k, n in v["rejected"].items()) or "none"
        print(f"{v['video']}: kept {v['kept']} of {v['frames']} frames (rejected: {rejected})")
        if "precision" in v:
            q = v["precision"]
            print(f"  against the truth: {100 * q['within']:.1f} % of kept frames within {q['px']:g} px (median {q['median_px']:.2f}, "
                  f"max {q['max_px']:.2f} px); least visible kept frame {q['min_visib_fract']:.2f} of the object in view")
    print(f"{report.kept} labelled frames in {report.out} (train with --data {report.out})")
    return 0
