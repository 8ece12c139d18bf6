"""``kptrack visibility``: add a visibility output to an exported model (see :mod:`train.visibility`)."""

from __future__ import annotations

import argparse

from train.visibility import VisibilityConfig, train_visibility

HELP = "teach an exported lite model to say which keypoints are hidden: a new model whose fit leaves them out"


def add_arguments(p: argparse.ArgumentParser) -> None:
    p.add_argument("--model", required=True, help="the exported fp32 lite model (kptrack export); its heatmaps are kept")
    p.add_argument("--data", required=True, action="append",
                   help="training data, PATH[:WEIGHT] (a BOP dataset or COCO keypoints JSON); repeat to mix sources. "
                        "Images with occluders teach it most (kptrack synth --end-occlusion 1)")
    p.add_argument("--out", required=True, help="the new model (.onnx); never the --model file")
    p.add_argument("--object", default="default", help="'default', 'bottle' or an object directory: what the model tracks")
    p.add_argument("--split", default=None, help="BOP split to read (default: train_synth / all)")
    p.add_argument("--iters", type=int, default=2500, help="training iterations of the head")
    p.add_argument("--batch", type=int, default=16, help="crops per iteration")
    p.add_argument("--lr", type=float, default=1e-3, help="peak learning rate (AdamW, warm-up then cosine)")
    p.add_argument("--seed", type=int, default=0, help="seed of the head's weights and of the crops drawn")
    p.add_argument("--threads", type=int, default=None, help="torch CPU threads (default: torch's)")


def run(args: argparse.Namespace) -> int:
    r = train_visibility(VisibilityConfig(model=args.model, data=tuple(args.data), out=args.out, object=args.object,
                                          split=args.split, iters=args.iters, batch=args.batch, lr=args.lr, seed=args.seed,
                                          threads=args.threads))
    print(f"wrote {r.path}: visibility AUC {r.auc:.3f} on {r.n_val} held-out keypoints ({r.hidden_val} hidden), "
          f"where the heatmap peak gives {r.auc_peak:.3f}; heatmaps equal to --model's within {r.parity:.1e}; "
          f"{r.seconds:.0f} s")
    return 0
