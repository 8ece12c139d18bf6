"""``kptrack score``: keypoint accuracy of an ONNX model on a labelled split (PCK@2/5px, mean px in the crop)."""

from __future__ import annotations

import argparse

import numpy as np

from tracker.paths import resolve_model
from train.score import MISPLACED_PX, ScoreConfig, run_score

HELP = "keypoint accuracy of an ONNX model on a labelled split (PCK@2/5px, mean px in the crop)"


def add_arguments(p: argparse.ArgumentParser) -> None:
    p.add_argument("--model", default=None, help="ONNX model to score (default: the shipped models/default/model.onnx)")
    p.add_argument("--data", required=True, help="BOP dataset root / split / scene, or a COCO keypoints JSON")
    p.add_argument("--split", default=None, help="BOP split (e.g. test_synth)")
    p.add_argument("--object", default="default", help="'default' or an object directory: the object the model was trained for")
    p.add_argument("--max-images", type=int, default=None, help="score at most N images, evenly spaced (default: all)")
    p.add_argument("--batch", type=int, default=16, help="crops per inference call")
    p.add_argument("--device", default="auto", choices=["auto", "cpu", "cuda"], help="ONNX Runtime device (auto: CUDA when available)")
    p.add_argument("--threads", type=int, default=None, help="ONNX Runtime intra-op threads (default: onnxruntime's, all cores)")
    p.add_argument("--json", default=None, help="also write the scores as JSON here")


def run(args: argparse.Namespace) -> int:
    cfg = ScoreConfig(
        model=str(resolve_model(args.model)), data=args.data, split=args.split, object=args.object,
        max_images=args.max_images, batch=args.batch, device=args.device, threads=args.threads, json_out=args.json,
    )
    s = run_score(cfg)
    print(
        f"{s['n_images']} images, {s['n_visible']} visible keypoints: PCK@2px {s['pck2']:.3f}  PCK@5px {s['pck5']:.3f}  "
        f"mean {s['mean_px']:.2f} px  median {s['median_px']:.2f} px (256x256 crop; provider {s['provider']})"
    )
    worst = sorted(s["pck5_per_keypoint"].items(), key=lambda kv: (kv[1] == kv[1], kv[1]))  # NaN (never visible) first
    print("PCK@5px per keypoint, weakest first: " + ", ".join(f"{k} {v:.3f}" for k, v in worst))
    print(f"confidence: visible {s['conf_visible']:.2f}, hidden {s['conf_hidden']:.2f} (hidden PCK@5px {s['pck5_hidden']:.3f}); "
          f"AUC of confidence, keypoints within {MISPLACED_PX:.0f} px against the rest: {s['conf_auc']:.3f}")
    print(swap_summary(s))
    return 0


def swap_summary(s: dict, top: int = 4) -> str:
    """One line: how many visible keypoints are misplaced, how many of them sit on another keypoint's
    spot and the commonest such swaps, with what to try when those dominate."""
    names = list(s["pck5_per_keypoint"])
    counts = np.asarray(s["swaps"])
    pairs = sorted(((int(counts[i, j]), names[i], names[j]) for i, j in zip(*np.nonzero(counts))), reverse=True)[:top]
    line = (f"misplaced (> {MISPLACED_PX:.0f} px): {100 * s['misplaced']:.1f} % of visible keypoints; on another keypoint's "
            f"spot: {100 * s['swapped']:.1f} %")
    if pairs:
        line += " (" + ", ".join(f"{a} on {b} {c}x" for c, a, b in pairs) + ")"
    if s["swapped"] > 0.5 * s["misplaced"] > 0.02:
        line += ". Mostly mistaken identity: train longer, or with --coord-weight or --context 2"
    return line
