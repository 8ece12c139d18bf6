"""Object directories: load one (or the built-in drill), write one, make one from a mesh file.

An *object directory* is what ``kptrack object init`` writes and what every ``--object``
argument reads (besides ``default``, the built-in procedural drill in
:mod:`tracker.objects.drill`, and ``bottle``, the built-in bottle in :mod:`tracker.objects.bottle`):

``model.ply``
    The mesh in millimetres, binary little-endian PLY (see :mod:`tracker.objects.mesh_io`):
    ``x y z``, vertex colours and, for textured meshes, ``texture_u texture_v`` with a
    ``comment TextureFile texture.png`` header line, as in the BOP datasets' textured models.
    Textured meshes keep both: the vertex colours are sampled from the texture, so a consumer
    that ignores textures still sees the right colours.
``texture.png``
    Only for textured meshes.
``keypoints.json``
    ``{"names": [...], "points_mm": [[x, y, z], ...], "object_name": "..."}``
    (see :mod:`tracker.objects.keypoints`).
``models_info.json``
    BOP model info for object id 1: ``diameter``, ``min_x/y/z``, ``size_x/y/z`` (mm) and,
    only when given, ``symmetries_discrete`` (row-major 4x4, 16 numbers, translation in mm)
    and ``symmetries_continuous`` (``{"axis": [..], "offset": [..]}``).

:func:`load_object` also reads a BOP ``models`` folder written by ``kptrack synth``
(``obj_000001.ply`` instead of ``model.ply``).
"""

from __future__ import annotations

import json
import logging
from pathlib import Path
from typing import Any

import cv2
import numpy as np

from tracker.errors import KptrackError
from tracker.formats.models_info import read_models_info
from tracker.objects.bottle import bottle_object
from tracker.objects.drill import default_object
from tracker.objects.keypoints import MIN_KEYPOINTS, auto_keypoints, check_keypoints_on_object, read_keypoints_json
from tracker.objects.mesh_io import MESH_SUFFIXES, MeshData, read_mesh, write_ply
from tracker.objects.model import ObjectModel, mesh_diameter
from tracker.objects.symmetry import check_symmetries, parse_symmetry, read_models_info_symmetries
from tracker.objects.symmetry_keypoints import axis_keypoints

log = logging.getLogger(__name__)


_RECREATE = "Recreate the object directory with `kptrack object init MESH --out DIR`."


def load_object(spec: str | Path) -> ObjectModel:
    """Load an object: ``'default'`` (the built-in procedural drill), ``'bottle'`` (the built-in
    bottle) or an object directory.

    The directory holds a mesh in mm (``model.ply``, or ``obj_000001.ply`` in a BOP
    ``models`` folder), ``keypoints.json`` and ``models_info.json``; see the module docstring.
    Raises KptrackError naming the missing or bad file.
    """
    if str(spec) == "default":
        return default_object()
    if str(spec) == "bottle":
        return bottle_object()
    d = Path(spec)
    if not d.exists():
        raise KptrackError(f"{d}: no such object directory. Use --object default (or bottle), or create one with `kptrack object init MESH --out {d}`.")
    if d.is_file():
        if d.suffix.lower() in MESH_SUFFIXES:
            raise KptrackError(f"{d}: is a mesh file, not an object directory. Run `kptrack object init {d} --out DIR` and pass DIR.")
        d = d.parent if d.name in ("keypoints.json", "models_info.json") else d
        if d.is_file():
            raise KptrackError(f"{d}: not an object directory. Pass the folder made by `kptrack object init`.")
    kp_path = d / "keypoints.json"
    if not kp_path.is_file():
        raise KptrackError(
            f"{kp_path}: keypoints.json not found in the object directory. Create it with "
            f"`kptrack object init MESH --keypoints auto --out {d}`."
        )
    info = read_models_info(d / "models_info.json", _RECREATE)
    mesh = read_mesh(_find_mesh_file(d))
    names, pts, obj_name = read_keypoints_json(kp_path)
    diameter = float(info.get("diameter", 0.0)) or mesh_diameter(mesh.vertices)
    check_keypoints_on_object(kp_path, mesh.vertices, mesh.faces, names, pts, diameter)
    sym_d, sym_c = read_models_info_symmetries(d / "models_info.json") if info.get("symmetries_discrete") or \
        info.get("symmetries_continuous") else ([], [])
    lo, hi = mesh.vertices.min(axis=0), mesh.vertices.max(axis=0)
    return ObjectModel(
        name=obj_name or d.resolve().name, vertices=mesh.vertices, faces=mesh.faces, vertex_colors=mesh.vertex_colors,
        uv=mesh.uv, texture=mesh.texture, keypoint_names=names, keypoints=pts, diameter=diameter,
        bbox_min=lo, bbox_size=hi - lo, symmetries_discrete=sym_d, symmetries_continuous=sym_c, path=d,
    )


def _find_mesh_file(d: Path) -> Path:
    for name in ("model.ply", "obj_000001.ply"):
        if (d / name).is_file():
            return d / name
    cands = sorted(p for p in d.iterdir() if p.suffix.lower() in MESH_SUFFIXES and p.is_file())
    if len(cands) == 1:
        return cands[0]
    if not cands:
        raise KptrackError(
            f"{d}: no mesh file (model.ply) in the object directory. Create the directory with "
            "`kptrack object init MESH --out DIR`."
        )
    raise KptrackError(f"{d}: several mesh files ({', '.join(p.name for p in cands)}) and no model.ply. Keep one, or name it model.ply.")


def models_info_dict(obj: ObjectModel, obj_id: int = 1) -> dict[str, Any]:
    """BOP models_info.json content, the object under id ``obj_id``."""
    info: dict[str, Any] = {"diameter": obj.diameter}
    for i, ax in enumerate("xyz"):
        info[f"min_{ax}"] = float(obj.bbox_min[i])
    for i, ax in enumerate("xyz"):
        info[f"size_{ax}"] = float(obj.bbox_size[i])
    if obj.symmetries_discrete:
        info["symmetries_discrete"] = [np.asarray(T).reshape(-1).tolist() for T in obj.symmetries_discrete]
    if obj.symmetries_continuous:
        info["symmetries_continuous"] = [
            {"axis": np.asarray(c["axis"]).tolist(), "offset": np.asarray(c["offset"]).tolist()} for c in obj.symmetries_continuous
        ]
    return {str(obj_id): info}


def keypoints_dict(obj: ObjectModel) -> dict[str, Any]:
    """keypoints.json content (see the module docstring): object name, names, points in mm."""
    return {"object_name": obj.name, "names": list(obj.keypoint_names), "points_mm": np.asarray(obj.keypoints).tolist()}


def write_object_dir(obj: ObjectModel, out_dir: str | Path, *, mesh_name: str = "model.ply",
                     texture_name: str = "texture.png", obj_id: int = 1) -> Path:
    """Write ``obj`` as an object directory (model.ply [+ texture.png], keypoints.json,
    models_info.json); returns the directory. A BOP dataset's ``models/`` folder is the same
    with ``mesh_name='obj_000001.ply'``, ``texture_name='obj_000001.png'`` and its object id."""
    d = Path(out_dir)
    try:
        d.mkdir(parents=True, exist_ok=True)
    except OSError as e:
        raise KptrackError(f"{d}: cannot create the output directory ({e.strerror or e}). Choose a writable --out.") from None
    tex_name = None
    if obj.texture is not None:
        tex_name = texture_name
        if not cv2.imwrite(str(d / tex_name), np.ascontiguousarray(obj.texture)):
            raise KptrackError(f"{d / tex_name}: could not write the texture. Choose a writable --out.")
    write_ply(d / mesh_name, obj.vertices, obj.faces, obj.vertex_colors, obj.uv, tex_name)
    (d / "keypoints.json").write_text(json.dumps(keypoints_dict(obj), indent=1) + "\n")
    (d / "models_info.json").write_text(json.dumps(models_info_dict(obj, obj_id), indent=1) + "\n")
    return d


def init_object(
    mesh: str | Path | MeshData,
    keypoints: str | Path | tuple = "auto",
    out_dir: str | Path = "object",
    units: str = "mm",
    num_keypoints: int = 8,
    name: str | None = None,
    symmetries_discrete=(),
    symmetries_continuous=(),
    symmetry: str | None = None,
) -> Path:
    """Make an object directory from a mesh file or a built mesh; returns the directory.

    mesh: PLY/OBJ/STL/GLB path, or a :class:`~tracker.objects.mesh_io.MeshData` (e.g. from
    :mod:`tracker.objects.primitives`, then ``name`` is required), in ``units`` ('mm' or 'm';
    metres are scaled by 1000).
    keypoints: 'auto' (farthest-point sampling + centroid, see :func:`auto_keypoints`), a
    keypoints.json ({"names", "points_mm"}, always mm, in the mesh's frame), or a tuple
    (names, points (K, 3) float64 in ``units``), e.g. a primitive's corners. Symmetries
    (BOP form, translation mm, in the scaled mesh's frame) are checked against the mesh
    (:func:`~tracker.objects.symmetry.check_symmetries`) and stored in models_info.json only when
    given; ``symmetry`` is a ``--symmetry`` preset or models_info.json
    (:func:`~tracker.objects.symmetry.parse_symmetry`, preset axes through the scaled mesh's box
    centre) and replaces them when given. With a continuous symmetry, 'auto' keypoints lie on its
    axis and rims (:func:`~tracker.objects.symmetry_keypoints.axis_keypoints`).
    """
    if units not in ("mm", "m"):
        raise KptrackError(f"--units {units!r}: unknown unit. Use mm or m.")
    if str(keypoints) == "auto" and (not isinstance(num_keypoints, (int, np.integer)) or num_keypoints + 1 < MIN_KEYPOINTS):
        raise KptrackError(f"--num-keypoints {num_keypoints}: need at least {MIN_KEYPOINTS - 1} (the centroid is added). Use e.g. 8.")
    if isinstance(mesh, MeshData):
        if not name:
            raise KptrackError("init_object: a built mesh needs a name. Pass name=...")
        m, mesh_path = mesh, Path(name)
    else:
        mesh_path = Path(mesh)
        m = read_mesh(mesh_path)
    scale = 1000.0 if units == "m" else 1.0
    v = m.vertices * scale
    diameter = mesh_diameter(v)
    if units == "mm" and diameter < 2.0:
        log.warning("%s: the mesh is only %.3g mm across; if it is in metres pass --units m", mesh_path, diameter)
    if units == "m" and diameter > 20_000:
        log.warning("%s: the mesh is %.3g m across; if it is in millimetres pass --units mm", mesh_path, diameter / 1000)
    if symmetry is not None:
        symmetries_discrete, symmetries_continuous = parse_symmetry(symmetry, v)
    if len(symmetries_discrete) or len(symmetries_continuous):
        check_symmetries(v, m.faces, list(symmetries_discrete), list(symmetries_continuous), diameter)
    if str(keypoints) == "auto" and len(symmetries_continuous):
        c = symmetries_continuous[0]
        names, pts = axis_keypoints(v, np.asarray(c["axis"]) / np.linalg.norm(c["axis"]), np.asarray(c["offset"]),
                                    per_rim=max(2, min(8, (int(num_keypoints) - 2) // 2)))
    elif isinstance(keypoints, tuple):
        names, pts = tuple(keypoints[0]), np.asarray(keypoints[1], dtype=np.float64) * scale
        check_keypoints_on_object(Path(name or mesh_path.stem), v, m.faces, names, pts, diameter)
    elif str(keypoints) == "auto":
        names, pts = auto_keypoints(v, m.faces, int(num_keypoints))
    else:
        kp_path = Path(keypoints)
        names, pts, _ = read_keypoints_json(kp_path)
        check_keypoints_on_object(kp_path, v, m.faces, names, pts, diameter)
    obj = ObjectModel.from_mesh(
        name=name or mesh_path.stem, vertices=v, faces=m.faces, keypoint_names=names, keypoints=pts,
        vertex_colors=m.vertex_colors, uv=m.uv, texture=m.texture,
        symmetries_discrete=symmetries_discrete, symmetries_continuous=symmetries_continuous, diameter=diameter,
    )
    out = write_object_dir(obj, out_dir)
    log.info("wrote %s: %d vertices, %d faces, diameter %.1f mm, %d keypoints%s", out, len(v), len(m.faces),
             obj.diameter, len(names), ", textured" if obj.is_textured else "")
    return out
