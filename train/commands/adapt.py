"""``kptrack adapt``: rounds of track -> pseudolabel -> fine-tune -> export -> score on held-out labelled frames."""

from __future__ import annotations

import argparse

from train.adapt import AdaptConfig, adapt
from train.pseudolabel import PseudoLabelChecks

HELP = "learn from your own footage: rounds of pseudo-labelling and fine-tuning, scored on held-out labelled frames"


def add_arguments(p: argparse.ArgumentParser) -> None:
    p.add_argument("--video", action="append", required=True, help="footage to learn from; repeat for several (--heldout labels the first)")
    p.add_argument("--out", required=True, help="working folder: round_N/ (pseudo, train, model.onnx), adapt.json, best.onnx")
    p.add_argument("--checkpoint", required=True, help="training checkpoint the starting model was exported from (fine-tuned each round)")
    p.add_argument("--model", default=None, help="the starting ONNX model (default: the shipped models/default/model.onnx)")
    p.add_argument("--object", default="default", help="'default' (the built-in drill) or an object directory")
    p.add_argument("--camera", default=None, help="camera calibration YAML for the videos (default: camera.yaml beside each)")
    p.add_argument("--heldout", default=None,
                   help="COCO file from `kptrack annotate` with held-out frames of the first video: scored each round, never labelled")
    p.add_argument("--synthetic", default=None, help="synthetic training data, PATH[:WEIGHT], mixed in so the model does not forget")
    p.add_argument("--labelled", action="append", default=[], help="hand-labelled training data (not the held-out frames), PATH[:WEIGHT]; repeatable")
    p.add_argument("--pseudo-weight", type=float, default=1.0, help="the pseudo-labels' share of each batch, relative to the other sources (default 1)")
    p.add_argument("--rounds", type=int, default=3, help="at most this many rounds (default 3)")
    p.add_argument("--min-gain", type=float, default=0.005, help="stop when a round raises held-out PCK@5px by no more than this (default 0.005)")
    p.add_argument("--iters", type=int, default=2000, help="fine-tuning iterations per round (default 2000)")
    p.add_argument("--batch", type=int, default=8, help="fine-tuning batch size (default 8)")
    p.add_argument("--lr", type=float, default=1e-4, help="fine-tuning learning rate (default 1e-4: small steps from a trained model)")
    p.add_argument("--optimizer", choices=["rmsprop", "adam"], default="adam", help="fine-tuning optimizer (default adam)")
    p.add_argument("--workers", type=int, default=None, help="DataLoader workers")
    p.add_argument("--threads", type=int, default=None, help="torch and ONNX Runtime threads")
    p.add_argument("--train-device", default="auto", help="where fine-tuning runs: auto | cpu | cuda")
    p.add_argument("--device", default="auto", choices=["auto", "cpu", "cuda"], help="where the tracker's network runs")
    p.add_argument("--max-rms", type=float, default=PseudoLabelChecks().max_rms_px, help="pseudo-labels: largest reprojection RMS, px")
    p.add_argument("--preset", default=AdaptConfig.preset,
                   help="tracker preset for the pseudo-labels and the scores: accurate (the default: poses refined on image edges) | fast")
    p.add_argument("--seq-frames", type=int, default=300, help="length of the synthetic sequence (seed 1, as the demo's) scored each round, so forgetting shows (default 300)")


def run(args: argparse.Namespace) -> int:
    cfg = AdaptConfig(
        videos=tuple(args.video), out=args.out, checkpoint=args.checkpoint, model=args.model, object=args.object,
        camera=args.camera, heldout=args.heldout, synthetic=args.synthetic, labelled=tuple(args.labelled),
        pseudo_weight=args.pseudo_weight, rounds=args.rounds, min_gain=args.min_gain, iters=args.iters, batch=args.batch,
        lr=args.lr, optimizer=args.optimizer, workers=args.workers, threads=args.threads, train_device=args.train_device,
        device=args.device, checks=PseudoLabelChecks(max_rms_px=args.max_rms), seq_frames=args.seq_frames,
        preset=args.preset,
    )
    doc = adapt(cfg, on_round=_print_round)
    print(f"stopped: {doc['stopped']}; best: round {doc['best']} -> {args.out}/best.onnx (all rounds in {args.out}/adapt.json)")
    return 0


def _print_round(r: dict) -> None:
    syn = r["synthetic"]
    line = f"round {r['round']}: synthetic 2D<5px {_pct(syn['frac_proj'])}, ADD<0.1d {_pct(syn['frac_add'])}"
    if "heldout" in r:
        h = r["heldout"]
        med = "n/a" if h["median_px"] is None else f"{h['median_px']:.2f}"
        line += f"; held-out PCK@5px {_pct(h['pck5'])}, frames with a pose {_pct(h['with_pose'])}, median {med} px"
    if "labels" in r:
        line += f"; {r['labels']} pseudo-labels"
    print(line, flush=True)


def _pct(x) -> str:
    return "n/a" if x is None else f"{100 * float(x):.1f} %"
