"""``kptrack object``: make an object directory (mesh + keypoints.json + models_info.json)."""

from __future__ import annotations

import argparse
from pathlib import Path

from tracker.errors import KptrackError
from tracker.objects import init_object
from tracker.objects.primitives import box_mesh, cylinder_mesh, parse_dims
from tracker.objects.texture import read_image_bgr

HELP = "make an object directory (mesh + keypoints.json + models_info.json)"


def add_arguments(p: argparse.ArgumentParser) -> None:
    osub = p.add_subparsers(dest="object_cmd", required=True, help="what to do")
    pi = osub.add_parser("init", help="write an object directory from a mesh file, or a box or cylinder")
    pi.add_argument("mesh", nargs="?", default=None, help="mesh file: PLY, OBJ, STL or GLB (or use --box / --cylinder)")
    pi.add_argument("--box", default=None, metavar="XxYxZ", help="no mesh: a box of these sides, mm, e.g. 80x60x40")
    pi.add_argument("--cylinder", default=None, metavar="RxH", help="no mesh: a cylinder of this radius and height, mm, e.g. 30x100")
    pi.add_argument("--texture", default=None, help="with --box/--cylinder: an image for the faces (see tracker/objects/primitives.py)")
    pi.add_argument("--keypoints", default="auto", help="'auto' (farthest-point sampling + centroid) or a keypoints.json")
    pi.add_argument("--num-keypoints", type=int, default=8, help="with --keypoints auto: surface keypoints (the centroid is added)")
    pi.add_argument("--units", choices=["mm", "m"], default="mm", help="units of the mesh file")
    pi.add_argument("--name", default=None, help="object name (default: the mesh file's name, or box / cylinder)")
    pi.add_argument("--out", required=True, help="output object directory")


def _mesh(args: argparse.Namespace):
    """The mesh argument of init_object: a file path, or a built box or cylinder."""
    given = [flag for flag, v in (("mesh", args.mesh), ("--box", args.box), ("--cylinder", args.cylinder)) if v]
    if len(given) != 1:
        raise KptrackError("kptrack object init: give exactly one of a mesh file, --box XxYxZ or --cylinder RxH "
                           f"(got {', '.join(given) or 'none'}).")
    if args.mesh:
        if args.texture:
            raise KptrackError("--texture: only with --box or --cylinder (a mesh file carries its own texture).")
        return args.mesh
    texture = None
    if args.texture:
        texture = read_image_bgr(Path(args.texture))
        if texture is None:
            raise KptrackError(f"--texture {args.texture}: not a readable image. Pass a PNG or JPEG file.")
    if args.box:
        return box_mesh(parse_dims(args.box, 3, "--box"), texture)
    r, h = parse_dims(args.cylinder, 2, "--cylinder")
    return cylinder_mesh(r, h, texture)


def run(args: argparse.Namespace) -> int:
    mesh = _mesh(args)
    name = args.name or (None if args.mesh else "box" if args.box else "cylinder")
    out = init_object(mesh, keypoints=args.keypoints, out_dir=args.out, units=args.units, num_keypoints=args.num_keypoints,
                      name=name)
    print(f"wrote object directory {out}")
    return 0
