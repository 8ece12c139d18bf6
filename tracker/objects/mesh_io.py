"""Reading and writing mesh files: PLY, OBJ, STL and GLB/glTF in, binary PLY (BOP style) out.

Meshes load through trimesh, always with ``process=False`` so that vertices duplicated for
flat colours or UV seams stay apart (trimesh gives one uv per vertex, splitting vertices at
seams). A glTF scene is flattened into one mesh, each geometry moved by its node transform.
Colours become BGR uint8 per vertex; face colours are turned into vertex colours by giving
every face its own vertices. Textures (see :mod:`tracker.objects.texture`): a single texture
keeps its uv as given; several textured geometries are packed into one atlas; if only some
geometries are textured, or textures repeat (uv outside [0, 1]) across several, the texture is
dropped for vertex colours sampled from it.

PLY written here: binary little-endian, ``x y z`` float32 (mm), ``red green blue`` uchar
(vertex colours, RGB in the file as PLY tools expect) and, for textured meshes,
``texture_u texture_v`` float32 per vertex with a ``comment TextureFile NAME`` header line, as
in the BOP datasets' textured models.

trimesh is imported lazily: it takes ~0.5 s to import, and the built-in object and the
frame loop never read a mesh file.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from tracker.errors import KptrackError
from tracker.objects.texture import material_images, pack_atlas, pil_to_bgr, read_image_bgr, sample_texture

log = logging.getLogger(__name__)

MESH_SUFFIXES = (".ply", ".obj", ".stl", ".glb", ".gltf")


@dataclass
class MeshData:
    """A mesh as read from a file, in the file's units.

    vertices: (N, 3) float64; faces: (M, 3) int32; vertex_colors: (N, 3) uint8 BGR or None;
    uv: (N, 2) float32 or None; texture: (Ht, Wt, 3) uint8 BGR or None.
    """

    vertices: np.ndarray
    faces: np.ndarray
    vertex_colors: np.ndarray | None = None
    uv: np.ndarray | None = None
    texture: np.ndarray | None = None


def read_mesh(path: str | Path) -> MeshData:
    """Read a PLY, OBJ, STL or GLB/glTF mesh (file units) with its colours or texture.

    Raises KptrackError for a missing, unreadable or face-less mesh.
    """
    path = Path(path)
    if not path.is_file():
        raise KptrackError(f"{path}: mesh file not found. Check the path.")
    if path.suffix.lower() not in MESH_SUFFIXES:
        raise KptrackError(f"{path}: unsupported mesh format {path.suffix!r}. Convert it to PLY, OBJ, STL or GLB.")
    try:
        if path.suffix.lower() == ".ply":
            parts = [_read_ply_part(path)]
        else:
            parts = _read_trimesh_parts(path)
    except KptrackError:
        raise
    except Exception as e:  # trimesh raises many types on malformed files; the user needs one message
        raise KptrackError(f"{path}: could not read the mesh ({type(e).__name__}: {e}). Check that it is a valid "
                           "PLY/OBJ/STL/GLB file, e.g. by opening it in MeshLab or Blender and re-exporting.") from None
    parts = [p for p in parts if len(p.faces)]
    if not parts:
        raise KptrackError(f"{path}: the mesh has no faces (empty, a point cloud, or unreadable). "
                           "Export a triangle mesh (PLY, OBJ, STL or GLB).")
    m = _combine_parts(parts, path)
    if not np.all(np.isfinite(m.vertices)):
        raise KptrackError(f"{path}: the mesh has NaN or infinite vertex coordinates. Repair and re-export it.")
    return m


def write_ply(path: str | Path, vertices: np.ndarray, faces: np.ndarray, vertex_colors: np.ndarray | None = None,
              uv: np.ndarray | None = None, texture_file: str | None = None) -> Path:
    """Write a binary little-endian PLY (BOP style).

    vertices: (N, 3) float mm (stored float32); faces: (M, 3) int; vertex_colors: (N, 3)
    uint8 BGR (stored as PLY red green blue) or None; uv: (N, 2) or None (stored as
    texture_u texture_v); texture_file: name written as ``comment TextureFile``.
    """
    path = Path(path)
    v = np.asarray(vertices, dtype=np.float64)
    f = np.asarray(faces, dtype=np.int64)
    fields = [("x", "<f4"), ("y", "<f4"), ("z", "<f4")]
    if vertex_colors is not None:
        fields += [("red", "u1"), ("green", "u1"), ("blue", "u1")]
    if uv is not None:
        fields += [("texture_u", "<f4"), ("texture_v", "<f4")]
    vd = np.empty(len(v), dtype=fields)
    vd["x"], vd["y"], vd["z"] = v[:, 0], v[:, 1], v[:, 2]
    if vertex_colors is not None:
        c = np.asarray(vertex_colors, dtype=np.uint8)
        vd["red"], vd["green"], vd["blue"] = c[:, 2], c[:, 1], c[:, 0]
    if uv is not None:
        u = np.asarray(uv, dtype=np.float32)
        vd["texture_u"], vd["texture_v"] = u[:, 0], u[:, 1]
    fd = np.empty(len(f), dtype=[("n", "u1"), ("i", "<i4", (3,))])
    fd["n"] = 3
    fd["i"] = f
    head = ["ply", "format binary_little_endian 1.0", "comment written by kptrack (units: mm)"]
    if texture_file:
        head.append(f"comment TextureFile {texture_file}")
    head.append(f"element vertex {len(v)}")
    ply_t = {"<f4": "float", "u1": "uchar"}
    head += [f"property {ply_t[t]} {n}" for n, t in fields]
    head += [f"element face {len(f)}", "property list uchar int vertex_indices", "end_header"]
    with open(path, "wb") as fh:
        fh.write(("\n".join(head) + "\n").encode("ascii"))
        fh.write(vd.tobytes())
        fh.write(fd.tobytes())
    return path


def _bgr_from_colors(c: np.ndarray) -> np.ndarray:
    """(n, 3|4) RGB(A), uint8 or float in [0, 1] -> (n, 3) uint8 BGR."""
    c = np.asarray(c)
    if c.dtype.kind == "f":
        c = c * 255.0 if (c.size and c.max() <= 1.0) else c
        c = np.clip(np.rint(c), 0, 255)
    return np.ascontiguousarray(c[:, :3][:, ::-1].astype(np.uint8))


@dataclass
class _Part:
    vertices: np.ndarray
    faces: np.ndarray
    colors: np.ndarray | None = None  # (n, 3) uint8 BGR
    uv: np.ndarray | None = None
    texture: np.ndarray | None = None


def _ply_texture_name(path: Path) -> str | None:
    """The ``comment TextureFile NAME`` of a PLY header (BOP textured models), if any."""
    with open(path, "rb") as fh:
        for _ in range(200):
            line = fh.readline()
            if not line or line.strip() == b"end_header":
                break
            low = line.lower()
            if b"texturefile" in low:
                return line[low.index(b"texturefile") + len(b"texturefile"):].decode("utf-8", "replace").strip() or None
    return None


def _read_ply_part(path: Path) -> _Part:
    # trimesh's own PLY path would re-split vertices by uv and drop the per-vertex colours;
    # we keep the file's vertices as they are (fix_texture=False) and read the texture ourselves
    from trimesh.exchange.ply import load_ply  # lazy: slow import, see the module docstring

    with open(path, "rb") as fh:
        kw = load_ply(fh, fix_texture=False, skip_materials=True)
    v = np.asarray(kw.get("vertices", np.zeros((0, 3))), dtype=np.float64).reshape(-1, 3)
    f = kw.get("faces")
    f = np.zeros((0, 3), np.int32) if f is None else np.asarray(f, dtype=np.int64).reshape(-1, 3)
    colors = None
    if kw.get("vertex_colors") is not None and len(kw["vertex_colors"]) == len(v):
        colors = _bgr_from_colors(kw["vertex_colors"])
    elif kw.get("face_colors") is not None and len(kw["face_colors"]) == len(f) and len(f):
        fc = _bgr_from_colors(kw["face_colors"])
        v, f, colors = v[f].reshape(-1, 3), np.arange(3 * len(f)).reshape(-1, 3), np.repeat(fc, 3, axis=0)
    uv = tex = None
    vis = kw.get("visual")
    if vis is not None and getattr(vis, "uv", None) is not None and len(vis.uv) == len(v):
        name = _ply_texture_name(path)
        if name:
            tex = read_image_bgr(path.parent / name)
        if tex is not None:
            uv = np.asarray(vis.uv, dtype=np.float32)
        elif name:
            log.warning("%s: texture %s not found beside the mesh; using vertex colours only", path, name)
    return _Part(v, f.astype(np.int32), colors, uv, tex)


def _read_trimesh_parts(path: Path) -> list[_Part]:
    import trimesh  # lazy: slow import, see the module docstring

    loaded = trimesh.load(str(path), process=False, maintain_order=True)
    items = []
    if isinstance(loaded, trimesh.Scene):
        for node in loaded.graph.nodes_geometry:
            T, gname = loaded.graph[node]
            g = loaded.geometry.get(gname)
            if isinstance(g, trimesh.Trimesh):
                items.append((g, np.asarray(T, dtype=np.float64)))
    elif isinstance(loaded, trimesh.Trimesh):
        items.append((loaded, np.eye(4)))

    fallback_images: dict | None = None  # loaded lazily when trimesh could not decode images (no Pillow)
    parts = []
    for g, T in items:
        v = np.asarray(g.vertices, dtype=np.float64) @ T[:3, :3].T + T[:3, 3]
        f = np.asarray(g.faces, dtype=np.int64).reshape(-1, 3)
        if np.linalg.det(T[:3, :3]) < 0:  # a mirroring node transform turns the faces inside out
            f = f[:, ::-1]
        vis = g.visual
        kind = getattr(vis, "kind", None)
        part = _Part(v, f.astype(np.int32))
        if kind == "texture":
            mat = getattr(vis, "material", None)
            uv = getattr(vis, "uv", None)
            img = None
            factor = None
            if mat is not None:
                img = pil_to_bgr(getattr(mat, "baseColorTexture", None)) if hasattr(mat, "baseColorTexture") else None
                if img is None:
                    img = pil_to_bgr(getattr(mat, "image", None))
                bcf = getattr(mat, "baseColorFactor", None)
                if bcf is not None:
                    factor = np.asarray(bcf, dtype=np.float64)[:3]
                    factor = factor / 255.0 if factor.max() > 1.0 else factor
            if img is None and uv is not None and mat is not None:
                if fallback_images is None:
                    fallback_images = material_images(path)
                img = fallback_images.get(getattr(mat, "name", None) or "")
                if img is None and len({id(x) for x in fallback_images.values()}) == 1:
                    img = next(iter(fallback_images.values()))
            if img is not None and factor is not None and not np.allclose(factor, 1.0):
                img = np.clip(np.rint(img * factor[::-1]), 0, 255).astype(np.uint8)
            if img is not None and uv is not None and len(uv) == len(v):
                part.uv, part.texture = np.asarray(uv, dtype=np.float32), img
            elif mat is not None:
                main = getattr(mat, "main_color", None)
                if main is not None:
                    part.colors = np.repeat(_bgr_from_colors(np.asarray(main).reshape(1, -1)), len(v), axis=0)
        elif kind == "vertex":
            part.colors = _bgr_from_colors(vis.vertex_colors)
        elif kind == "face":
            fc = _bgr_from_colors(vis.face_colors)
            part = _Part(v[f].reshape(-1, 3), np.arange(3 * len(f), dtype=np.int32).reshape(-1, 3), np.repeat(fc, 3, axis=0))
        parts.append(part)
    return parts


def _combine_parts(parts: list[_Part], path: Path) -> MeshData:
    """One mesh from several parts: a texture atlas when every part is textured, else
    vertex colours (textures sampled), else no colours."""
    for p in parts:
        if p.texture is not None and p.colors is None:
            p.colors = sample_texture(p.texture, p.uv)
    offsets = np.cumsum([0] + [len(p.vertices) for p in parts])
    v = np.concatenate([p.vertices for p in parts])
    f = np.concatenate([p.faces.astype(np.int64) + o for p, o in zip(parts, offsets)]).astype(np.int32)
    colors = None
    if any(p.colors is not None for p in parts):
        grey = np.array([180, 180, 180], np.uint8)
        colors = np.concatenate([p.colors if p.colors is not None else np.tile(grey, (len(p.vertices), 1)) for p in parts])
    uv = tex = None
    textured = [p for p in parts if p.texture is not None]
    if len(textured) == len(parts) == 1:
        uv, tex = parts[0].uv, parts[0].texture
    elif textured and len(textured) == len(parts):
        in_unit = all(p.uv.min() >= -1e-4 and p.uv.max() <= 1 + 1e-4 for p in parts)
        if in_unit:
            uv, tex = pack_atlas([p.uv for p in parts], [p.texture for p in parts])
        else:
            log.warning("%s: several textures with repeating uv; keeping vertex colours only", path)
    elif textured:
        log.warning("%s: only some parts are textured; keeping vertex colours only", path)
    return MeshData(v, f, colors, uv, tex)
