"""``kptrack synth``: render a synthetic BOP-format dataset of an object."""

from __future__ import annotations

import argparse

from train.synth import SynthConfig, run_synth

HELP = "render a synthetic BOP-format dataset of an object"


def add_arguments(p: argparse.ArgumentParser) -> None:
    p.add_argument("--object", default="default", help="'default' or an object directory")
    p.add_argument("--out", required=True, help="dataset root (BOP layout)")
    p.add_argument("--num", type=int, default=1000, help="training images (split train_synth)")
    p.add_argument("--seed", type=int, default=0, help="random seed: the same seed writes the same dataset, for any --workers")
    p.add_argument("--sequence", action="store_true", help="write a test sequence (split test_seq) instead")
    p.add_argument("--frames", type=int, default=300, help="with --sequence: number of frames")
    p.add_argument("--width", type=int, default=None, help="image width (default 256 for training images, 640 for sequences)")
    p.add_argument("--height", type=int, default=None, help="image height (default 256 for training images, 480 for sequences)")
    p.add_argument("--backgrounds", default=None, help="folder of background images, or a video of your scene without the object "
                   "(100 frames sampled evenly; the best backgrounds) (default: procedural)")
    p.add_argument("--workers", type=int, default=None, help="processes (default: all cores)")
    p.add_argument("--split", default=None, help="split name (default train_synth / test_seq)")
    p.add_argument("--rot-range", type=float, default=180.0, help="max rotation from the canonical view, degrees (180 = whole sphere)")
    p.add_argument("--axis-views", type=float, default=0.0,
                   help="fraction of training images seen within 30 degrees of the object's continuous symmetry axis, "
                        "either end (uniform views put 13 %% there, and they are the weakest) (default 0)")
    p.add_argument("--end-occlusion", type=float, default=0.0,
                   help="fraction of training images with an occluder over one end of the object, hiding that end's "
                        "keypoints (a hand at the end of a bottle); random occluders do so rarely (default 0)")
    p.add_argument("--axis-occlusion", type=float, default=0.0,
                   help="fraction of training images with a bar lying along the object over one end, narrower than "
                        "the object, hiding the keypoints on its axis to past the middle (a bar along a bottle over "
                        "its neck and cap); with --end-occlusion at most 1 in all (default 0)")
    p.add_argument("--scene-size", type=int, default=1000, help="training images per BOP scene folder")
    p.add_argument("--overwrite", action="store_true", help="replace an existing split folder (and models/) in --out")


def run(args: argparse.Namespace) -> int:
    cfg = SynthConfig(
        object=args.object, out=args.out, num=args.num, seed=args.seed, sequence=args.sequence,
        frames=args.frames, width=args.width, height=args.height, backgrounds=args.backgrounds,
        workers=args.workers, split=args.split, rot_range_deg=args.rot_range, axis_views=args.axis_views,
        end_occlusion=args.end_occlusion, axis_occlusion=args.axis_occlusion, scene_size=args.scene_size, overwrite=args.overwrite,
    )
    path = run_synth(cfg)
    print(f"wrote {path}")
    return 0
