"""``kptrack object``: make an object directory (mesh + keypoints.json + models_info.json)
(``init``), or texture one from labelled photos (``texture``)."""

from __future__ import annotations

import argparse
import json
from pathlib import Path

from tracker.errors import KptrackError
from tracker.objects import init_object
from tracker.objects.mesh_io import MeshData, read_mesh
from tracker.objects.symmetry import PRESETS_HELP
from tracker.objects.symmetry_detect import detect_symmetries, proposal_models_info
from tracker.objects.primitives import box_keypoints, box_mesh, cylinder_keypoints, cylinder_mesh, parse_dims
from tracker.labels.frames import parse_frame_list
from tracker.objects.texture import read_image_bgr
from tracker.objects.texture_from_photos import TextureConfig, texture_object

HELP = "make an object directory (mesh + keypoints.json + models_info.json), or texture one from photos"


def add_arguments(p: argparse.ArgumentParser) -> None:
    osub = p.add_subparsers(dest="object_cmd", required=True, help="what to do")
    pi = osub.add_parser("init", help="write an object directory from a mesh file, or a box or cylinder")
    pi.add_argument("mesh", nargs="?", default=None, help="mesh file: PLY, OBJ, STL or GLB (or use --box / --cylinder)")
    pi.add_argument("--box", default=None, metavar="XxYxZ", help="no mesh: a box of these sides, mm, e.g. 80x60x40")
    pi.add_argument("--cylinder", default=None, metavar="DxH", help="no mesh: a cylinder of this diameter and height, mm, e.g. 60x100")
    pi.add_argument("--texture", default=None, help="with --box/--cylinder: an image for the faces (see tracker/objects/primitives.py)")
    pi.add_argument("--keypoints", default="auto", help="'auto' or a keypoints.json. auto: a box's 8 corners; a cylinder's axis "
                    "ends and 4 points on each rim; a mesh file's farthest-point-sampled vertices + centroid")
    pi.add_argument("--num-keypoints", type=int, default=8, help="with a mesh file and --keypoints auto: surface keypoints (the centroid is added)")
    pi.add_argument("--units", choices=["mm", "m"], default="mm", help="units of the mesh file")
    pi.add_argument("--name", default=None, help="object name (default: the mesh file's name, or box / cylinder)")
    pi.add_argument("--out", required=True, help="output object directory")
    pi.add_argument("--symmetry", default=None, metavar="PRESET",
                    help=f"the object's symmetries, written to models_info.json and checked against the mesh: {PRESETS_HELP}")
    pi.add_argument("--detect-symmetry", action="store_true",
                    help="test candidate symmetries against the mesh (and its colours), print them with their residuals and "
                         "write the accepted ones to OUT/symmetries_proposed.json (accept with --symmetry that file); "
                         "writes no object directory")
    _add_texture_arguments(osub)


def _add_texture_arguments(osub) -> None:
    pt = osub.add_parser("texture", help="texture an object from labelled photos or video frames (writes a new object directory)")
    pt.add_argument("object", help="the object directory to texture (left as it is)")
    pt.add_argument("--labels", required=True, help="keypoint labels: kptrack annotate's keypoints_coco.json (or its folder), "
                    "or a points file (CSV frame,name,x,y) with --frames-from")
    pt.add_argument("--camera", required=True, help="OpenCV YAML calibration of the camera that took the photos")
    pt.add_argument("--out", required=True, help="new object directory to write (must not exist)")
    pt.add_argument("--frames-from", default=None, help="with a points file: the video or image folder its frame numbers index")
    pt.add_argument("--frames", default=None, help="use only these labelled frames, e.g. 0,120,300 (default: all with >= 4 labels)")
    pt.add_argument("--masks", default=None, help="folder of masks named like the photos (e.g. 000120.png); non-zero pixels "
                    "(hands, other objects) are not used")
    pt.add_argument("--size", type=int, default=None, help="texture size, texels (longer side; default: the mesh's texture "
                    "size, or 1024 for a new atlas)")
    pt.add_argument("--max-rms", type=float, default=4.0, help="refuse a photo whose labels fit the object with a larger "
                    "reprojection RMS, px")
    pt.add_argument("--unseen", choices=["mesh", "median"], default="mesh", help="colour of texels no photo saw: the mesh's "
                    "own colour (median of the seen texels when it has none), or the median of the seen texels")


def _mesh(args: argparse.Namespace):
    """The mesh and keypoints arguments of init_object: a file path and --keypoints, or a
    built box or cylinder and (with --keypoints auto) its own keypoints (names, points mm)."""
    given = [flag for flag, v in (("mesh", args.mesh), ("--box", args.box), ("--cylinder", args.cylinder)) if v]
    if len(given) != 1:
        raise KptrackError("kptrack object init: give exactly one of a mesh file, --box XxYxZ or --cylinder DIAMETERxHEIGHT "
                           f"(got {', '.join(given) or 'none'}).")
    if args.mesh:
        if args.texture:
            raise KptrackError("--texture: only with --box or --cylinder (a mesh file carries its own texture).")
        return args.mesh, args.keypoints
    texture = None
    if args.texture:
        texture = read_image_bgr(Path(args.texture))
        if texture is None:
            raise KptrackError(f"--texture {args.texture}: not a readable image. Pass a PNG or JPEG file.")
    auto = str(args.keypoints) == "auto"
    if args.box:
        size = parse_dims(args.box, 3, "--box")
        return box_mesh(size, texture), box_keypoints(size) if auto else args.keypoints
    d, h = parse_dims(args.cylinder, 2, "--cylinder")
    return cylinder_mesh(d / 2.0, h, texture), cylinder_keypoints(d / 2.0, h) if auto else args.keypoints


def _detect(mesh, args: argparse.Namespace) -> int:
    """--detect-symmetry: print the candidates and write the accepted ones as a models_info.json."""
    m = mesh if isinstance(mesh, MeshData) else read_mesh(Path(mesh))
    scale = 1000.0 if args.units == "m" else 1.0
    cands = detect_symmetries(m.vertices * scale, m.faces, m.vertex_colors, m.uv, m.texture)
    print("candidate symmetries (accepted: geometry residual <= 1% of the diameter and colour residual <= 20):")
    for c in cands:
        print(f"  [{'accept' if c.accepted else 'reject'}] {c.describe()}")
    out = Path(args.out) / "symmetries_proposed.json"
    if out.exists():
        raise KptrackError(f"{out}: exists; not overwritten. Remove it or choose another --out.")
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text(json.dumps(proposal_models_info(cands), indent=1) + "\n")
    print(f"wrote {out}; to accept, run the same command with --symmetry {out} instead of --detect-symmetry "
          "(edit the file to drop any you do not want)")
    return 0


def _texture(args: argparse.Namespace) -> int:
    cfg = TextureConfig(object=args.object, labels=args.labels, camera=args.camera, out=args.out, frames_from=args.frames_from,
                        frames=None if args.frames is None else tuple(parse_frame_list(args.frames)), masks=args.masks,
                        size=args.size, max_rms_px=args.max_rms, unseen=args.unseen)
    res = texture_object(cfg)
    for name, rms, worst, seen in res.photos:
        print(f"  {name}: RMS {rms:.2f} px (worst keypoint {worst}), sees {100 * seen:.1f} % of the surface")
    print(f"wrote textured object directory {res.out}: {100 * res.coverage:.1f} % of the surface seen"
          f"{' (uv atlas by xatlas)' if res.unwrapped else ''}; check picture {res.picture}")
    return 0


def run(args: argparse.Namespace) -> int:
    if args.object_cmd == "texture":
        return _texture(args)
    mesh, keypoints = _mesh(args)
    if args.detect_symmetry:
        return _detect(mesh, args)
    name = args.name or (None if args.mesh else "box" if args.box else "cylinder")
    out = init_object(mesh, keypoints=keypoints, out_dir=args.out, units=args.units, num_keypoints=args.num_keypoints,
                      name=name, symmetry=args.symmetry)
    print(f"wrote object directory {out}")
    return 0
