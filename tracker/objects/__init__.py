"""Object models: the CAD mesh, its colours or texture, its 3D keypoints and BOP model info.

An *object directory* is what ``kptrack object init`` writes and what every ``--object``
argument reads (besides ``default``, the built-in procedural drill in
:mod:`tracker.objects.drill`):

``model.ply``
    The mesh in millimetres, binary little-endian PLY: ``x y z`` float32, ``red green blue``
    uchar (vertex colours, RGB in the file as PLY tools expect) and, for textured meshes,
    ``texture_u texture_v`` float32 per vertex with a ``comment TextureFile texture.png``
    header line, as in the BOP datasets' textured models. Textured meshes keep both: the
    vertex colours are sampled from the texture, so a consumer that ignores textures still
    sees the right colours.
``texture.png``
    Only for textured meshes.
``keypoints.json``
    ``{"names": [...], "points_mm": [[x, y, z], ...], "object_name": "..."}``.
``models_info.json``
    BOP model info for object id 1: ``diameter``, ``min_x/y/z``, ``size_x/y/z`` (mm) and,
    only when given, ``symmetries_discrete`` (row-major 4x4, 16 numbers, translation in mm)
    and ``symmetries_continuous`` (``{"axis": [..], "offset": [..]}``).

:func:`load_object` also reads a BOP ``models`` folder written by ``kptrack synth``
(``obj_000001.ply`` instead of ``model.ply``).

Meshes load through trimesh (PLY, OBJ, STL, GLB/glTF), always with ``process=False`` so that
vertices duplicated for flat colours or UV seams stay apart (trimesh gives one uv per vertex,
splitting vertices at seams). A glTF scene is flattened into one mesh, each geometry moved
by its node transform. Colours become BGR uint8 per vertex; face colours are turned into
vertex colours by giving every face its own vertices. Textures: the OBJ material image or
the glTF PBR ``baseColorTexture`` (times ``baseColorFactor``); without Pillow, which trimesh
needs to decode images, they are read with OpenCV from the MTL ``map_Kd`` or the glTF
buffers. Several textured geometries are packed into one atlas (stacked vertically); if
only some geometries are textured, or textures repeat (uv outside [0, 1]) across several,
the texture is dropped for vertex colours sampled from it. A single texture keeps its uv
as given; uv outside [0, 1] means the texture repeats.

Automatic keypoints are farthest-point sampling over the mesh's surface points, as in PVNet
(Peng et al., "PVNet: Pixel-wise Voting Network for 6DoF Pose Estimation", CVPR 2019), plus
the object's centroid (volume centroid for closed meshes). The candidate points are the
mesh vertices, which sit on corners and edges; area samples are only added for meshes with
fewer vertices than keypoints.

Keypoint check: a keypoint must be within 10 % of the diameter of the surface, *or* inside
the closed volume (generalised winding number > 0.5, Jacobson et al., "Robust
Inside-Outside Segmentation using Generalized Winding Numbers", SIGGRAPH 2013). So a
centroid or any other interior point is accepted whatever its name, while a point floating
outside the object (usually a units or frame mistake) is rejected.
"""

from __future__ import annotations

import json
import logging
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from tracker.errors import KptrackError

log = logging.getLogger(__name__)

MESH_SUFFIXES = (".ply", ".obj", ".stl", ".glb", ".gltf")
KEYPOINT_SURFACE_TOL = 0.10  # fraction of the diameter a keypoint may lie outside the surface
MIN_KEYPOINTS = 4  # PnP needs at least 4 points


def _ro(a: np.ndarray | None, dtype, shape_tail: tuple[int, ...], name: str) -> np.ndarray | None:
    """A read-only contiguous copy of ``a`` with the given dtype, checking its trailing shape."""
    if a is None:
        return None
    arr = np.array(a, dtype=dtype, copy=True, order="C")
    if arr.ndim != 1 + len(shape_tail) or arr.shape[1:] != shape_tail:
        raise ValueError(f"ObjectModel.{name}: expected shape (N, {', '.join(map(str, shape_tail))}), got {arr.shape}")
    arr.setflags(write=False)
    return arr


@dataclass(frozen=True, eq=False)
class ObjectModel:
    """A rigid object: mesh, appearance, keypoints and BOP model info. Immutable.

    name: object name.
    vertices: (N, 3) float64, mm, model frame.
    faces: (M, 3) int32 vertex indices (winding as in the source file; the default object
        and well-made meshes are counter-clockwise seen from outside).
    vertex_colors: (N, 3) uint8 BGR, or None (no colour information).
    uv: (N, 2) float32 texture coordinates or None; texture pixel column ``u * (Wt - 1)``,
        row ``(1 - v) * (Ht - 1)`` (OBJ/trimesh convention, v up).
    texture: (Ht, Wt, 3) uint8 BGR, or None. uv and texture are both set or both None.
    keypoint_names: K names; keypoints: (K, 3) float64, mm, model frame.
    diameter: float, mm, largest distance between two vertices.
    bbox_min, bbox_size: (3,) float64, mm, axis-aligned bounding box.
    symmetries_discrete: list of (4, 4) float64 model-frame transforms (translation in mm)
        mapping the object onto itself (BOP ``symmetries_discrete``), identity excluded.
    symmetries_continuous: list of ``{"axis": (3,), "offset": (3,) mm}`` (BOP).
    path: the object directory it was loaded from, or None.

    All arrays are read-only. Use :meth:`from_mesh` to compute diameter and bounding box.
    """

    name: str
    vertices: np.ndarray
    faces: np.ndarray
    vertex_colors: np.ndarray | None
    uv: np.ndarray | None
    texture: np.ndarray | None
    keypoint_names: tuple[str, ...]
    keypoints: np.ndarray
    diameter: float
    bbox_min: np.ndarray
    bbox_size: np.ndarray
    symmetries_discrete: list = field(default_factory=list)
    symmetries_continuous: list = field(default_factory=list)
    path: Path | None = None

    def __post_init__(self) -> None:
        s = object.__setattr__
        s(self, "vertices", _ro(self.vertices, np.float64, (3,), "vertices"))
        s(self, "faces", _ro(self.faces, np.int32, (3,), "faces"))
        s(self, "vertex_colors", _ro(self.vertex_colors, np.uint8, (3,), "vertex_colors"))
        s(self, "uv", _ro(self.uv, np.float32, (2,), "uv"))
        s(self, "keypoints", _ro(self.keypoints, np.float64, (3,), "keypoints"))
        s(self, "keypoint_names", tuple(str(n) for n in self.keypoint_names))
        s(self, "bbox_min", _ro(np.reshape(self.bbox_min, (1, 3)), np.float64, (3,), "bbox_min")[0])
        s(self, "bbox_size", _ro(np.reshape(self.bbox_size, (1, 3)), np.float64, (3,), "bbox_size")[0])
        s(self, "diameter", float(self.diameter))
        n = len(self.vertices)
        if len(self.faces) and (self.faces.min() < 0 or self.faces.max() >= n):
            raise ValueError("ObjectModel.faces: vertex index out of range")
        for nm in ("vertex_colors", "uv"):
            a = getattr(self, nm)
            if a is not None and len(a) != n:
                raise ValueError(f"ObjectModel.{nm}: {len(a)} rows for {n} vertices")
        if (self.uv is None) != (self.texture is None):
            raise ValueError("ObjectModel: uv and texture must both be given or both be None")
        if self.texture is not None:
            tex = np.array(self.texture, dtype=np.uint8, copy=True, order="C")
            if tex.ndim != 3 or tex.shape[2] != 3:
                raise ValueError(f"ObjectModel.texture: expected (H, W, 3) uint8 BGR, got {tex.shape}")
            tex.setflags(write=False)
            s(self, "texture", tex)
        if len(self.keypoint_names) != len(self.keypoints):
            raise ValueError(f"ObjectModel: {len(self.keypoint_names)} keypoint names for {len(self.keypoints)} keypoints")
        sd = []
        for T in self.symmetries_discrete:
            T = np.array(T, dtype=np.float64).reshape(4, 4)
            T.setflags(write=False)
            sd.append(T)
        s(self, "symmetries_discrete", sd)
        sc = []
        for c in self.symmetries_continuous:
            axis = np.asarray(c["axis"], dtype=np.float64).reshape(3)
            offset = np.asarray(c.get("offset", (0.0, 0.0, 0.0)), dtype=np.float64).reshape(3)
            sc.append({"axis": axis, "offset": offset})
        s(self, "symmetries_continuous", sc)

    def __reduce__(self):
        # rebuild through __init__ so an unpickled copy (multiprocessing workers) is
        # validated and read-only like the original
        import dataclasses

        return (type(self), tuple(getattr(self, f.name) for f in dataclasses.fields(self)))

    # ------------------------------------------------------------------ constructors
    @classmethod
    def from_mesh(
        cls,
        name: str,
        vertices: np.ndarray,
        faces: np.ndarray,
        keypoint_names,
        keypoints: np.ndarray,
        vertex_colors: np.ndarray | None = None,
        uv: np.ndarray | None = None,
        texture: np.ndarray | None = None,
        symmetries_discrete=(),
        symmetries_continuous=(),
        path: Path | None = None,
        diameter: float | None = None,
    ) -> "ObjectModel":
        """Build an ObjectModel, computing diameter (unless given, mm) and bounding box from
        the vertices.

        vertices: (N, 3) float64 mm; faces: (M, 3) int; keypoints: (K, 3) mm;
        vertex_colors: (N, 3) uint8 BGR or None; uv: (N, 2) or None; texture: (Ht, Wt, 3)
        uint8 BGR or None.
        """
        v = np.asarray(vertices, dtype=np.float64)
        lo, hi = v.min(axis=0), v.max(axis=0)
        return cls(
            name=name, vertices=v, faces=faces, vertex_colors=vertex_colors, uv=uv, texture=texture,
            keypoint_names=tuple(keypoint_names), keypoints=keypoints,
            diameter=mesh_diameter(v) if diameter is None else diameter,
            bbox_min=lo, bbox_size=hi - lo, symmetries_discrete=list(symmetries_discrete),
            symmetries_continuous=list(symmetries_continuous), path=path,
        )

    # ------------------------------------------------------------------ properties
    @property
    def box_corners(self) -> np.ndarray:
        """(8, 3) float64 mm: bounding-box corners, index bits (x, y, z) = (i>>2&1, i>>1&1, i&1)."""
        bits = np.array([[(i >> 2) & 1, (i >> 1) & 1, i & 1] for i in range(8)], dtype=np.float64)
        return self.bbox_min + bits * self.bbox_size

    @property
    def num_keypoints(self) -> int:
        return len(self.keypoint_names)

    @property
    def is_symmetric(self) -> bool:
        return bool(self.symmetries_discrete or self.symmetries_continuous)

    @property
    def is_textured(self) -> bool:
        return self.texture is not None

    def to_trimesh(self):
        """The mesh as a ``trimesh.Trimesh`` (mm, vertex colours as RGBA), unprocessed."""
        import trimesh

        colors = None
        if self.vertex_colors is not None:
            colors = np.concatenate([self.vertex_colors[:, ::-1], np.full((len(self.vertices), 1), 255, np.uint8)], axis=1)
        return trimesh.Trimesh(vertices=np.array(self.vertices), faces=np.array(self.faces), vertex_colors=colors, process=False)

    def with_keypoints(self, names, points: np.ndarray) -> "ObjectModel":
        """A copy with other keypoints; names: K strings, points: (K, 3) float64 mm."""
        import dataclasses

        return dataclasses.replace(self, keypoint_names=tuple(names), keypoints=points)


# ====================================================================== geometry helpers
def _max_pair_distance(pts: np.ndarray) -> float:
    best = 0.0
    step = max(1, 2_000_000 // max(len(pts), 1))
    sq = (pts**2).sum(axis=1)
    for i in range(0, len(pts), step):
        # |p|^2 + |q|^2 - 2 p.q as one matrix product; exact enough for a max in float64
        d2 = sq[i : i + step, None] + sq[None, :] - 2.0 * pts[i : i + step] @ pts.T
        best = max(best, float(d2.max()))
    return float(np.sqrt(max(best, 0.0)))


def mesh_diameter(vertices: np.ndarray, exact_limit: int = 5000) -> float:
    """Largest distance between two vertices, mm (BOP ``diameter``).

    vertices: (N, 3) float64 mm. Only convex-hull vertices can be the farthest pair, so the
    pairwise search runs over the hull (all unique vertices for flat/degenerate sets). A hull
    with more than ``exact_limit`` vertices (dense scans of round objects) is first reduced
    to the extreme points along 3000 evenly spread directions: the result is then a lower
    bound within 5e-4 of the diameter (1 - cos of half the angular gap between directions).
    """
    v = np.asarray(vertices, dtype=np.float64)
    if len(v) < 2:
        return 0.0
    if len(v) <= exact_limit:
        return _max_pair_distance(v)
    try:
        from scipy.spatial import ConvexHull

        pts = v[ConvexHull(v).vertices]
    except Exception:  # flat or degenerate: qhull refuses; the plain search still works
        pts = np.unique(v, axis=0)
    if len(pts) > exact_limit:
        n = 3000  # Fibonacci sphere: near-uniform directions, deterministic
        k = np.arange(n) + 0.5
        z = 1.0 - 2.0 * k / n
        phi = np.pi * (1.0 + 5**0.5) * k
        r = np.sqrt(1.0 - z * z)
        dirs = np.stack([r * np.cos(phi), r * np.sin(phi), z], axis=1)
        keep = []
        p32, d32 = pts.astype(np.float32), dirs.astype(np.float32)  # only picks candidates
        for j in range(0, n, 250):  # chunked: the full (3000, H) projection would be GBs
            proj = d32[j : j + 250] @ p32.T
            keep += [proj.argmax(axis=1), proj.argmin(axis=1)]
        pts = pts[np.unique(np.concatenate(keep))]
    return _max_pair_distance(pts)


def _closest_point_distances(points: np.ndarray, tri: np.ndarray, chunk: int = 50_000) -> np.ndarray:
    """Distance from each point to the nearest triangle, mm.

    points: (K, 3) float64; tri: (M, 3, 3) float64 triangle corners. Closest point on a
    triangle by Voronoi regions (Ericson, "Real-Time Collision Detection", 5.1.5).
    """
    out = np.full(len(points), np.inf)
    for s in range(0, len(tri), chunk):
        a, b, c = (tri[s : s + chunk, i][None] for i in range(3))  # (1, m, 3)
        p = points[:, None, :]  # (K, 1, 3)
        ab, ac, ap = b - a, c - a, p - a
        d1 = (ab * ap).sum(-1)
        d2 = (ac * ap).sum(-1)
        bp = p - b
        d3 = (ab * bp).sum(-1)
        d4 = (ac * bp).sum(-1)
        cp = p - c
        d5 = (ab * cp).sum(-1)
        d6 = (ac * cp).sum(-1)
        va = d3 * d6 - d5 * d4
        vb = d5 * d2 - d1 * d6
        vc = d1 * d4 - d3 * d2
        with np.errstate(divide="ignore", invalid="ignore"):
            denom = va + vb + vc
            v = np.where(denom != 0, vb / denom, 0.0)
            w = np.where(denom != 0, vc / denom, 0.0)
            q = a + ab * v[..., None] + ac * w[..., None]  # interior
            # edge regions
            t_ab = np.where(d1 - d3 != 0, d1 / (d1 - d3), 0.0)
            t_ac = np.where(d2 - d6 != 0, d2 / (d2 - d6), 0.0)
            t_bc = np.where((d4 - d3) + (d5 - d6) != 0, (d4 - d3) / ((d4 - d3) + (d5 - d6)), 0.0)
        m_bc = (va <= 0) & (d4 - d3 >= 0) & (d5 - d6 >= 0)
        q = np.where(m_bc[..., None], b + (c - b) * t_bc[..., None], q)
        m_ac = (vb <= 0) & (d2 >= 0) & (d6 <= 0)
        q = np.where(m_ac[..., None], a + ac * t_ac[..., None], q)
        m_ab = (vc <= 0) & (d1 >= 0) & (d3 <= 0)
        q = np.where(m_ab[..., None], a + ab * t_ab[..., None], q)
        q = np.where(((d6 >= 0) & (d5 <= d6))[..., None], c, q)
        q = np.where(((d3 >= 0) & (d4 <= d3))[..., None], b, q)
        q = np.where(((d1 <= 0) & (d2 <= 0))[..., None], a, q)
        dist = np.linalg.norm(p - q, axis=-1).min(axis=1)
        out = np.minimum(out, dist)
    return out


def _winding_numbers(points: np.ndarray, tri: np.ndarray, chunk: int = 50_000) -> np.ndarray:
    """Generalised winding number of each point w.r.t. the triangle soup: ~1 inside a
    closed outward-wound surface, ~0 outside, fractional for open meshes.

    points: (K, 3) float64; tri: (M, 3, 3) float64. Solid angles by Van Oosterom & Strackee.
    """
    total = np.zeros(len(points))
    for s in range(0, len(tri), chunk):
        a, b, c = (tri[s : s + chunk, i][None] - points[:, None, :] for i in range(3))
        la, lb, lc = (np.linalg.norm(x, axis=-1) for x in (a, b, c))
        det = (a * np.cross(b, c)).sum(-1)
        den = la * lb * lc + (a * b).sum(-1) * lc + (a * c).sum(-1) * lb + (b * c).sum(-1) * la
        total += (2.0 * np.arctan2(det, den)).sum(axis=1)
    return total / (4.0 * np.pi)


def keypoint_surface_distance(obj_vertices: np.ndarray, faces: np.ndarray, keypoints: np.ndarray) -> np.ndarray:
    """(K,) float64 mm: distance of each keypoint to the mesh surface, 0 for points inside
    the closed volume (winding number > 0.5).

    obj_vertices: (N, 3) float64 mm; faces: (M, 3) int; keypoints: (K, 3) float64 mm.
    """
    tri = np.asarray(obj_vertices, dtype=np.float64)[np.asarray(faces)]
    kp = np.asarray(keypoints, dtype=np.float64)
    d = _closest_point_distances(kp, tri)
    inside = np.abs(_winding_numbers(kp, tri)) > 0.5
    return np.where(inside, 0.0, d)


def sample_surface(vertices: np.ndarray, faces: np.ndarray, count: int, seed: int = 0) -> np.ndarray:
    """(count, 3) float64 mm: area-uniform random points on the mesh surface (deterministic
    for a given seed). vertices: (N, 3) mm; faces: (M, 3) int."""
    tri = np.asarray(vertices, dtype=np.float64)[np.asarray(faces)]
    area = 0.5 * np.linalg.norm(np.cross(tri[:, 1] - tri[:, 0], tri[:, 2] - tri[:, 0]), axis=1)
    rng = np.random.default_rng(seed)
    if area.sum() <= 0:
        return tri.reshape(-1, 3)[rng.integers(0, tri.shape[0] * 3, count)]
    idx = rng.choice(len(tri), size=count, p=area / area.sum())
    r1, r2 = rng.random(count), rng.random(count)
    flip = r1 + r2 > 1
    r1[flip], r2[flip] = 1 - r1[flip], 1 - r2[flip]
    t = tri[idx]
    return t[:, 0] + r1[:, None] * (t[:, 1] - t[:, 0]) + r2[:, None] * (t[:, 2] - t[:, 0])


def farthest_point_sampling(points: np.ndarray, k: int, start: np.ndarray | None = None,
                            chosen: np.ndarray | None = None) -> np.ndarray:
    """Indices (k,) of greedily farthest points (PVNet keypoint selection).

    points: (P, 3) float64 mm. chosen: (C, 3) float64 mm points already selected (the picks
    continue from them), or None: then the first pick is the point farthest from ``start``
    (default: the mean). Deterministic.
    """
    pts = np.asarray(points, dtype=np.float64)
    if chosen is not None and len(chosen):
        ch = np.asarray(chosen, dtype=np.float64)
        d = np.min(np.linalg.norm(pts[:, None, :] - ch[None, :, :], axis=2), axis=1)
    else:
        ref = pts.mean(axis=0) if start is None else np.asarray(start, dtype=np.float64)
        d = np.linalg.norm(pts - ref, axis=1)
    picks = []
    for _ in range(min(k, len(pts))):
        i = int(np.argmax(d))
        picks.append(i)
        d = np.minimum(d, np.linalg.norm(pts - pts[i], axis=1))
    return np.array(picks, dtype=np.int64)


def mesh_centroid(vertices: np.ndarray, faces: np.ndarray) -> np.ndarray:
    """(3,) mm: volume centroid of a closed mesh (signed tetrahedra), else the
    area-weighted surface centroid."""
    tri = np.asarray(vertices, dtype=np.float64)[np.asarray(faces)]
    vol6 = np.einsum("ij,ij->i", tri[:, 0], np.cross(tri[:, 1], tri[:, 2]))
    area = 0.5 * np.linalg.norm(np.cross(tri[:, 1] - tri[:, 0], tri[:, 2] - tri[:, 0]), axis=1)
    total = vol6.sum()
    ext = np.ptp(tri.reshape(-1, 3), axis=0).max() if len(tri) else 0.0
    # a closed mesh has a clearly non-zero volume; an open one gives a meaningless sum
    if ext > 0 and abs(total) / 6.0 > 1e-3 * ext**3 and _is_closed(vertices, faces):
        return (vol6[:, None] * tri.sum(axis=1)).sum(axis=0) / (4.0 * total)
    return (area[:, None] * tri.mean(axis=1)).sum(axis=0) / max(area.sum(), 1e-300)


def _is_closed(vertices: np.ndarray, faces: np.ndarray) -> bool:
    """True if every edge is shared by exactly two faces, after welding vertices at equal
    positions (meshes split for flat colours or UV seams are still closed surfaces)."""
    v = np.asarray(vertices, dtype=np.float64)
    if not len(faces):
        return False
    scale = max(float(np.abs(v).max()), 1e-12)
    _, weld = np.unique(np.round(v / scale, 9), axis=0, return_inverse=True)
    f = weld.reshape(-1)[np.asarray(faces)]
    e = np.sort(np.concatenate([f[:, [0, 1]], f[:, [1, 2]], f[:, [2, 0]]]), axis=1)
    _, counts = np.unique(e, axis=0, return_counts=True)
    return bool(np.all(counts == 2))


# ====================================================================== mesh reading
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


def _bgr_from_colors(c: np.ndarray) -> np.ndarray:
    """(n, 3|4) RGB(A), uint8 or float in [0, 1] -> (n, 3) uint8 BGR."""
    c = np.asarray(c)
    if c.dtype.kind == "f":
        c = c * 255.0 if (c.size and c.max() <= 1.0) else c
        c = np.clip(np.rint(c), 0, 255)
    return np.ascontiguousarray(c[:, :3][:, ::-1].astype(np.uint8))


def sample_texture(texture: np.ndarray, uv: np.ndarray) -> np.ndarray:
    """(N, 3) uint8 BGR: bilinear texture colour at each uv (repeating outside [0, 1]).

    texture: (Ht, Wt, 3) uint8 BGR; uv: (N, 2), column ``u * (Wt - 1)``, row ``(1 - v) * (Ht - 1)``.
    """
    h, w = texture.shape[:2]
    uv = np.asarray(uv, dtype=np.float64)
    u = np.where((uv[:, 0] < 0) | (uv[:, 0] > 1), np.mod(uv[:, 0], 1.0), uv[:, 0])
    v = np.where((uv[:, 1] < 0) | (uv[:, 1] > 1), np.mod(uv[:, 1], 1.0), uv[:, 1])
    x, y = u * (w - 1), (1.0 - v) * (h - 1)
    x0, y0 = np.clip(np.floor(x).astype(int), 0, w - 1), np.clip(np.floor(y).astype(int), 0, h - 1)
    x1, y1 = np.minimum(x0 + 1, w - 1), np.minimum(y0 + 1, h - 1)
    fx, fy = (x - x0)[:, None], (y - y0)[:, None]
    t = texture.astype(np.float64)
    c = (t[y0, x0] * (1 - fx) * (1 - fy) + t[y0, x1] * fx * (1 - fy) + t[y1, x0] * (1 - fx) * fy + t[y1, x1] * fx * fy)
    return np.clip(np.rint(c), 0, 255).astype(np.uint8)


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


def _read_image_bgr(path: Path) -> np.ndarray | None:
    import cv2

    img = cv2.imread(str(path), cv2.IMREAD_UNCHANGED)
    if img is None:
        log.warning("%s: could not read the texture image; using vertex colours only", path)
        return None
    if img.dtype != np.uint8:  # 16-bit PNGs
        img = (img / 257.0).astype(np.uint8) if img.dtype == np.uint16 else np.clip(img * 255.0, 0, 255).astype(np.uint8)
    if img.ndim == 2:
        img = cv2.cvtColor(img, cv2.COLOR_GRAY2BGR)
    elif img.shape[2] == 4:
        img = np.ascontiguousarray(img[:, :, :3])
    return img


def _read_ply_part(path: Path) -> _Part:
    # trimesh's own PLY path would re-split vertices by uv and drop the per-vertex colours;
    # we keep the file's vertices as they are (fix_texture=False) and read the texture ourselves
    from trimesh.exchange.ply import load_ply

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
            tex = _read_image_bgr(path.parent / name)
        if tex is not None:
            uv = np.asarray(vis.uv, dtype=np.float32)
        elif name:
            log.warning("%s: texture %s not found beside the mesh; using vertex colours only", path, name)
    return _Part(v, f.astype(np.int32), colors, uv, tex)


def _obj_material_images(path: Path) -> dict[str, Path]:
    """Material name -> map_Kd image path from the MTL files an OBJ references."""
    out: dict[str, Path] = {}
    try:
        text = path.read_text(errors="replace")
    except OSError:
        return out
    for line in text.splitlines():
        if line.lower().startswith("mtllib"):
            mtl = path.parent / line.split(None, 1)[1].strip()
            try:
                mtext = mtl.read_text(errors="replace")
            except (OSError, IndexError):
                continue
            current = None
            for ml in mtext.splitlines():
                tok = ml.strip().split()
                if not tok:
                    continue
                if tok[0].lower() == "newmtl":
                    current = " ".join(tok[1:])
                elif tok[0].lower() == "map_kd" and current is not None and len(tok) > 1:
                    out[current] = mtl.parent / tok[-1]  # options like -s come before the file
    return out


def _gltf_material_images(path: Path) -> dict[str, np.ndarray]:
    """Material name (or index as str) -> base-colour texture, BGR uint8, from a GLB/glTF."""
    import base64
    import struct

    import cv2

    raw = path.read_bytes()
    blob = b""
    if raw[:4] == b"glTF":
        off, header = 12, None
        while off + 8 <= len(raw):
            n, kind = struct.unpack_from("<I4s", raw, off)
            chunk = raw[off + 8 : off + 8 + n]
            if kind == b"JSON":
                header = json.loads(chunk.decode("utf-8"))
            elif kind.startswith(b"BIN"):
                blob = chunk
            off += 8 + n
    else:
        header = json.loads(raw.decode("utf-8"))
    if not header:
        return {}

    def buffer_bytes(i: int) -> bytes:
        b = header["buffers"][i]
        if "uri" not in b:
            return blob
        uri = b["uri"]
        if uri.startswith("data:"):
            return base64.b64decode(uri.split(",", 1)[1])
        return (path.parent / uri).read_bytes()

    def image(i: int) -> np.ndarray | None:
        im = header["images"][i]
        if "bufferView" in im:
            bv = header["bufferViews"][im["bufferView"]]
            data = buffer_bytes(bv.get("buffer", 0))[bv.get("byteOffset", 0) : bv.get("byteOffset", 0) + bv["byteLength"]]
        elif im.get("uri", "").startswith("data:"):
            data = base64.b64decode(im["uri"].split(",", 1)[1])
        elif "uri" in im:
            data = (path.parent / im["uri"]).read_bytes()
        else:
            return None
        img = cv2.imdecode(np.frombuffer(data, np.uint8), cv2.IMREAD_COLOR)
        return img

    out: dict[str, np.ndarray] = {}
    for mi, mat in enumerate(header.get("materials", [])):
        tex = mat.get("pbrMetallicRoughness", {}).get("baseColorTexture")
        if tex is None:
            continue
        src = header["textures"][tex["index"]].get("source")
        if src is None:
            continue
        img = image(src)
        if img is not None:
            out[str(mi)] = img
            if mat.get("name"):
                out[mat["name"]] = img
    return out


def _pil_to_bgr(img) -> np.ndarray | None:
    if img is None or not hasattr(img, "convert"):
        return None
    return np.ascontiguousarray(np.asarray(img.convert("RGB"))[:, :, ::-1])


def _read_trimesh_parts(path: Path) -> list[_Part]:
    import trimesh

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
                img = _pil_to_bgr(getattr(mat, "baseColorTexture", None)) if hasattr(mat, "baseColorTexture") else None
                if img is None:
                    img = _pil_to_bgr(getattr(mat, "image", None))
                bcf = getattr(mat, "baseColorFactor", None)
                if bcf is not None:
                    factor = np.asarray(bcf, dtype=np.float64)[:3]
                    factor = factor / 255.0 if factor.max() > 1.0 else factor
            if img is None and uv is not None and mat is not None:
                if fallback_images is None:
                    fallback_images = _fallback_images(path)
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


def _fallback_images(path: Path) -> dict[str, np.ndarray]:
    suffix = path.suffix.lower()
    if suffix == ".obj":
        out = {}
        for name, p in _obj_material_images(path).items():
            img = _read_image_bgr(p)
            if img is not None:
                out[name] = img
        return out
    if suffix in (".glb", ".gltf"):
        try:
            return _gltf_material_images(path)
        except Exception:  # a texture we cannot decode must not stop the mesh from loading
            log.warning("%s: could not decode the glTF textures; using vertex colours only", path, exc_info=True)
    return {}


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
            uv, tex = _atlas(parts)
        else:
            log.warning("%s: several textures with repeating uv; keeping vertex colours only", path)
    elif textured:
        log.warning("%s: only some parts are textured; keeping vertex colours only", path)
    return MeshData(v, f, colors, uv, tex)


def _atlas(parts: list[_Part]) -> tuple[np.ndarray, np.ndarray]:
    """Stack the distinct part textures vertically into one image (2 replicated rows between
    them, so bilinear lookups at an edge do not bleed into the neighbour) and remap uv."""
    pad = 2
    unique: dict[int, np.ndarray] = {}
    for p in parts:
        unique.setdefault(id(p.texture), p.texture)
    W = max(t.shape[1] for t in unique.values())
    H = sum(t.shape[0] for t in unique.values()) + pad * (len(unique) - 1)
    atlas = np.zeros((H, W, 3), np.uint8)
    row0: dict[int, int] = {}
    y = 0
    for key, t in unique.items():
        h, w = t.shape[:2]
        atlas[y : y + h, :w] = t
        atlas[y : y + h, w:] = t[:, -1:]
        if y + h < H:
            atlas[y + h : y + h + pad] = atlas[y + h - 1]
        row0[key] = y
        y += h + pad
    uvs = []
    for p in parts:
        h, w = p.texture.shape[:2]
        u = np.clip(p.uv[:, 0].astype(np.float64), 0, 1)
        vv = np.clip(p.uv[:, 1].astype(np.float64), 0, 1)
        col = u * (w - 1)
        row = row0[id(p.texture)] + (1.0 - vv) * (h - 1)
        uvs.append(np.stack([col / max(W - 1, 1), 1.0 - row / max(H - 1, 1)], axis=1))
    return np.concatenate(uvs).astype(np.float32), atlas


# ====================================================================== object dirs
def _keypoints_from_json(path: Path) -> tuple[tuple[str, ...], np.ndarray, str | None]:
    fix = f"It must be {{\"names\": [K names], \"points_mm\": [[x, y, z], ...K rows]}} with K >= {MIN_KEYPOINTS}."
    try:
        data = json.loads(path.read_text())
    except FileNotFoundError:
        raise KptrackError(f"{path}: keypoints file not found. Give an existing keypoints.json, or --keypoints auto.") from None
    except (OSError, UnicodeDecodeError, json.JSONDecodeError) as e:
        raise KptrackError(f"{path}: not a readable JSON file ({e}). {fix}") from None
    if not isinstance(data, dict) or "points_mm" not in data or "names" not in data:
        raise KptrackError(f"{path}: missing 'names' or 'points_mm'. {fix}")
    try:
        pts = np.asarray(data["points_mm"], dtype=np.float64)
    except (TypeError, ValueError):
        raise KptrackError(f"{path}: 'points_mm' is not a list of [x, y, z] numbers. {fix}") from None
    if pts.ndim != 2 or pts.shape[1] != 3:
        raise KptrackError(f"{path}: 'points_mm' has shape {pts.shape}, expected (K, 3). {fix}")
    if not np.all(np.isfinite(pts)):
        raise KptrackError(f"{path}: 'points_mm' contains NaN or infinity. {fix}")
    names = data["names"]
    if not isinstance(names, list) or not all(isinstance(n, str) and n for n in names):
        raise KptrackError(f"{path}: 'names' must be a list of non-empty strings. {fix}")
    if len(names) != len(pts):
        raise KptrackError(f"{path}: {len(names)} names for {len(pts)} points. Give one name per point.")
    if len(set(names)) != len(names):
        dup = sorted({n for n in names if names.count(n) > 1})
        raise KptrackError(f"{path}: duplicate keypoint names {dup}. Give each keypoint its own name.")
    if len(pts) < MIN_KEYPOINTS:
        raise KptrackError(f"{path}: {len(pts)} keypoints; the pose solver needs at least {MIN_KEYPOINTS}. Add keypoints.")
    obj_name = data.get("object_name")
    return tuple(names), pts, obj_name if isinstance(obj_name, str) else None


def check_keypoints_on_object(source: str | Path, vertices: np.ndarray, faces: np.ndarray, names, points: np.ndarray,
                              diameter: float | None = None) -> None:
    """Raise KptrackError (naming ``source``) if a keypoint is outside the object by more
    than 10 % of the diameter. vertices (N, 3) mm, faces (M, 3), points (K, 3) mm;
    diameter: mm, computed from the vertices when None."""
    diameter = mesh_diameter(vertices) if not diameter else float(diameter)
    d = keypoint_surface_distance(vertices, faces, points)
    bad = np.nonzero(d > KEYPOINT_SURFACE_TOL * diameter)[0]
    if len(bad):
        worst = ", ".join(f"{names[i]} ({d[i]:.1f} mm)" for i in bad[:5])
        raise KptrackError(
            f"{source}: keypoints lie off the object by more than {KEYPOINT_SURFACE_TOL:.0%} of its diameter "
            f"({diameter:.1f} mm): {worst}. Keypoints must be in mm in the mesh's frame, on or inside the object; "
            "check the --units of the mesh and the keypoint coordinates."
        )


def _read_models_info(path: Path) -> dict[str, Any]:
    try:
        data = json.loads(path.read_text())
    except FileNotFoundError:
        raise KptrackError(
            f"{path}: models_info.json not found. Recreate the object directory with "
            "`kptrack object init MESH --out DIR`."
        ) from None
    except (OSError, UnicodeDecodeError, json.JSONDecodeError) as e:
        raise KptrackError(f"{path}: not a readable JSON file ({e}). Recreate it with `kptrack object init`.") from None
    if not isinstance(data, dict) or not data:
        raise KptrackError(f"{path}: expected BOP model info {{\"1\": {{\"diameter\": ...}}}}. Recreate it with `kptrack object init`.")
    info = data.get("1", data[sorted(data)[0]])
    if not isinstance(info, dict):
        raise KptrackError(f"{path}: expected BOP model info {{\"1\": {{\"diameter\": ...}}}}. Recreate it with `kptrack object init`.")
    return info


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


def default_object() -> ObjectModel:
    """The built-in procedural drill (cached, read-only); see :mod:`tracker.objects.drill`."""
    from tracker.objects.drill import default_object as _default

    return _default()


def load_object(spec: str | Path) -> ObjectModel:
    """Load an object: ``'default'`` (the built-in procedural drill) or an object directory.

    The directory holds a mesh in mm (``model.ply``, or ``obj_000001.ply`` in a BOP
    ``models`` folder), ``keypoints.json`` and ``models_info.json``; see the module docstring.
    Raises KptrackError naming the missing or bad file.
    """
    if str(spec) == "default":
        return default_object()
    d = Path(spec)
    if not d.exists():
        raise KptrackError(f"{d}: no such object directory. Use --object default, or create one with `kptrack object init MESH --out {d}`.")
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
    info = _read_models_info(d / "models_info.json")
    mesh = read_mesh(_find_mesh_file(d))
    names, pts, obj_name = _keypoints_from_json(kp_path)
    diameter = float(info.get("diameter", 0.0)) or mesh_diameter(mesh.vertices)
    check_keypoints_on_object(kp_path, mesh.vertices, mesh.faces, names, pts, diameter)
    sym_d = [np.asarray(T, dtype=np.float64).reshape(4, 4) for T in info.get("symmetries_discrete", [])]
    sym_c = list(info.get("symmetries_continuous", []))
    lo, hi = mesh.vertices.min(axis=0), mesh.vertices.max(axis=0)
    return ObjectModel(
        name=obj_name or d.resolve().name, vertices=mesh.vertices, faces=mesh.faces, vertex_colors=mesh.vertex_colors,
        uv=mesh.uv, texture=mesh.texture, keypoint_names=names, keypoints=pts, diameter=diameter,
        bbox_min=lo, bbox_size=hi - lo, symmetries_discrete=sym_d, symmetries_continuous=sym_c, path=d,
    )


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
    import cv2

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


def auto_keypoints(vertices: np.ndarray, faces: np.ndarray, num_keypoints: int = 8, seed: int = 0) -> tuple[tuple[str, ...], np.ndarray]:
    """``num_keypoints`` farthest-point-sampled surface keypoints plus the centroid.

    vertices: (N, 3) float64 mm; faces: (M, 3) int. Returns names ``kp0..kp{n-1}, centroid``
    and points (n + 1, 3) float64 mm. The candidate surface points are the mesh vertices:
    they sit on corners and edges, where a keypoint is recognisable and its heatmap peak is
    sharp, while a point in the middle of a flat face is not (FPS over area samples picks
    those on a box). Only when there are fewer vertices than keypoints does the sampling
    continue over area-uniform surface samples (seeded, so deterministic).
    """
    v = np.asarray(vertices, dtype=np.float64)
    verts = np.unique(v, axis=0)
    centroid = mesh_centroid(v, faces)
    pts = verts[farthest_point_sampling(verts, num_keypoints, start=centroid)]
    if len(pts) < num_keypoints:
        samples = sample_surface(v, faces, 2000, seed=seed)
        pts = np.concatenate([pts, samples[farthest_point_sampling(samples, num_keypoints - len(pts), chosen=pts)]])
    names = tuple(f"kp{i}" for i in range(len(pts))) + ("centroid",)
    return names, np.concatenate([pts, centroid[None]])


def init_object(
    mesh: str | Path,
    keypoints: str | Path = "auto",
    out_dir: str | Path = "object",
    units: str = "mm",
    num_keypoints: int = 8,
    name: str | None = None,
    symmetries_discrete=(),
    symmetries_continuous=(),
) -> Path:
    """Make an object directory from a mesh file; returns the directory.

    mesh: PLY/OBJ/STL/GLB path, in ``units`` ('mm' or 'm'; metres are scaled by 1000).
    keypoints: 'auto' (farthest-point sampling + centroid, see :func:`auto_keypoints`) or a
    keypoints.json ({"names", "points_mm"}, always mm, in the mesh's frame). Symmetries
    (BOP form, translation mm) are stored in models_info.json only when given.
    """
    if units not in ("mm", "m"):
        raise KptrackError(f"--units {units!r}: unknown unit. Use mm or m.")
    if str(keypoints) == "auto" and (not isinstance(num_keypoints, (int, np.integer)) or num_keypoints + 1 < MIN_KEYPOINTS):
        raise KptrackError(f"--num-keypoints {num_keypoints}: need at least {MIN_KEYPOINTS - 1} (the centroid is added). Use e.g. 8.")
    mesh_path = Path(mesh)
    m = read_mesh(mesh_path)
    scale = 1000.0 if units == "m" else 1.0
    v = m.vertices * scale
    diameter = mesh_diameter(v)
    if units == "mm" and diameter < 2.0:
        log.warning("%s: the mesh is only %.3g mm across; if it is in metres pass --units m", mesh_path, diameter)
    if units == "m" and diameter > 20_000:
        log.warning("%s: the mesh is %.3g m across; if it is in millimetres pass --units mm", mesh_path, diameter / 1000)
    if str(keypoints) == "auto":
        names, pts = auto_keypoints(v, m.faces, int(num_keypoints))
    else:
        kp_path = Path(keypoints)
        names, pts, _ = _keypoints_from_json(kp_path)
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


__all__ = [
    "ObjectModel", "MeshData", "load_object", "default_object", "init_object", "write_object_dir", "read_mesh", "write_ply",
    "auto_keypoints", "mesh_diameter", "keypoint_surface_distance", "check_keypoints_on_object",
    "farthest_point_sampling", "sample_surface", "sample_texture", "mesh_centroid", "models_info_dict", "keypoints_dict",
]
