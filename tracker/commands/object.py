"""``kptrack object``: make an object directory (mesh + keypoints.json + models_info.json)."""

from __future__ import annotations

import argparse

from tracker.objects import init_object

HELP = "make an object directory (mesh + keypoints.json + models_info.json)"


def add_arguments(p: argparse.ArgumentParser) -> None:
    osub = p.add_subparsers(dest="object_cmd", required=True)
    pi = osub.add_parser("init", help="write an object directory from a mesh file")
    pi.add_argument("mesh", help="mesh file: PLY, OBJ, STL or GLB")
    pi.add_argument("--keypoints", default="auto", help="'auto' (farthest-point sampling + centroid) or a keypoints.json")
    pi.add_argument("--num-keypoints", type=int, default=8, help="with --keypoints auto: surface keypoints (the centroid is added)")
    pi.add_argument("--units", choices=["mm", "m"], default="mm", help="units of the mesh file")
    pi.add_argument("--out", required=True, help="output object directory")


def run(args: argparse.Namespace) -> int:
    out = init_object(args.mesh, keypoints=args.keypoints, out_dir=args.out, units=args.units, num_keypoints=args.num_keypoints)
    print(f"wrote object directory {out}")
    return 0
