"""The rigid object model: :class:`ObjectModel` (mesh, appearance, keypoints, BOP model info)
and the BOP ``diameter`` of a mesh.

Reading meshes is :mod:`tracker.objects.mesh_io`, keypoints :mod:`tracker.objects.keypoints`,
object directories on disk :mod:`tracker.objects.object_dir`.
"""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np


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
        import trimesh  # lazy: trimesh takes ~0.5 s to import and tracking never needs it

        colors = None
        if self.vertex_colors is not None:
            colors = np.concatenate([self.vertex_colors[:, ::-1], np.full((len(self.vertices), 1), 255, np.uint8)], axis=1)
        return trimesh.Trimesh(vertices=np.array(self.vertices), faces=np.array(self.faces), vertex_colors=colors, process=False)

    def with_keypoints(self, names, points: np.ndarray) -> "ObjectModel":
        """A copy with other keypoints; names: K strings, points: (K, 3) float64 mm."""
        return dataclasses.replace(self, keypoint_names=tuple(names), keypoints=points)


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
        from scipy.spatial import ConvexHull  # scipy is optional (dev extra); ImportError takes the fallback below

        pts = v[ConvexHull(v).vertices]
    except Exception:  # no scipy, or flat/degenerate points that qhull refuses: the plain search still works
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
