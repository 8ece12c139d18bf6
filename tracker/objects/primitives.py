"""Meshes of simple shapes, for objects that are boxes or cylinders and have no CAD file.

``kptrack object init --box 80x60x40`` or ``--cylinder 60x100`` (diameter x height, mm) builds
one of these and writes it as an object directory. The model frame is centred on the shape,
z along a box's third side and a cylinder's axis; faces wind counter-clockwise seen from outside.
Both meshes are closed (watertight once vertices at the same position are welded: faces carry
their own vertices for uv and colour).

Keypoints (:func:`box_keypoints`, :func:`cylinder_keypoints`) are the points a person can click
on a photo: a box's 8 corners; a cylinder's two axis ends (the centres of its caps) and 4 points
on each rim, at 0, 90, 180 and 270 degrees from +x towards +y. All lie on the surface.

Appearance: with a texture image, the box's six faces take the six cells of a 3 x 2 grid of the
image (+x, -x, +y in the top row, -y, +z, -z in the bottom row, each face's cell upright when
seen from outside), and the cylinder's side takes the top two thirds of the image wrapped once
around, its top and bottom caps the left and right halves of the bottom third. Without one, each
box face gets its own colour and the cylinder's side a hue ramp around the axis, so the
appearance alone tells sides apart (a plain box or can is symmetric, which keypoints cannot
resolve).
"""

from __future__ import annotations

import re

import cv2
import numpy as np

from tracker.errors import KptrackError
from tracker.objects.mesh_io import MeshData

# The box's faces: outward normal axis and sign, and the two in-face axes (u right, v up seen from
# outside, so that u x v is the normal).
_BOX_FACES = ((0, 1, 1, 2), (0, -1, 2, 1), (1, 1, 2, 0), (1, -1, 0, 2), (2, 1, 0, 1), (2, -1, 1, 0))
_FACE_HUES = (0, 30, 60, 100, 130, 160)  # OpenCV hue (0..179), one per face


def parse_dims(spec: str, n: int, flag: str) -> tuple[float, ...]:
    """'80x60x40' -> (80.0, 60.0, 40.0) mm: ``n`` positive numbers separated by 'x'."""
    parts = re.split(r"[x,]", str(spec).strip().lower())
    try:
        dims = tuple(float(p) for p in parts)
    except ValueError:
        dims = ()
    if len(dims) != n or not all(np.isfinite(d) and d > 0 for d in dims):
        example = "80x60x40" if n == 3 else "60x100"
        raise KptrackError(f"{flag} {spec}: give {n} positive sizes in mm separated by 'x', e.g. {flag} {example}.")
    return dims


def box_keypoints(size_mm: tuple[float, float, float]) -> tuple[tuple[str, ...], np.ndarray]:
    """The 8 corners of :func:`box_mesh` ``(size_mm)``: names ``corner+x-y+z`` (the signs of
    the corner's coordinates) and points (8, 3) float64 mm, model frame."""
    half = np.asarray(size_mm, np.float64) / 2.0
    signs = np.array([(sx, sy, sz) for sx in (-1, 1) for sy in (-1, 1) for sz in (-1, 1)], np.float64)
    names = tuple("corner" + "".join(f"{'+' if s > 0 else '-'}{a}" for s, a in zip(row, "xyz")) for row in signs)
    return names, signs * half


def cylinder_keypoints(radius_mm: float, height_mm: float) -> tuple[tuple[str, ...], np.ndarray]:
    """Keypoints of :func:`cylinder_mesh` ``(radius_mm, height_mm)``: the axis ends ``top``
    (+z) and ``bottom`` (-z), then ``top_rim_0 .. top_rim_270`` and ``bottom_rim_0 ..
    bottom_rim_270`` (angle in degrees from +x towards +y). Returns names and points (10, 3)
    float64 mm, model frame."""
    h = height_mm / 2.0
    names, pts = ["top", "bottom"], [(0.0, 0.0, h), (0.0, 0.0, -h)]
    for end, z in (("top", h), ("bottom", -h)):
        for deg in (0, 90, 180, 270):
            a = np.radians(deg)
            names.append(f"{end}_rim_{deg}")
            pts.append((radius_mm * np.cos(a), radius_mm * np.sin(a), z))
    return tuple(names), np.array(pts, np.float64)


def _hue_bgr(hues: np.ndarray) -> np.ndarray:
    """(N, 3) uint8 BGR of saturated colours with OpenCV hues (N,) in 0..179."""
    hsv = np.stack([np.asarray(hues, np.uint8), np.full(len(hues), 200, np.uint8), np.full(len(hues), 220, np.uint8)], 1)
    return cv2.cvtColor(hsv[None], cv2.COLOR_HSV2BGR)[0]


def box_mesh(size_mm: tuple[float, float, float], texture: np.ndarray | None = None) -> MeshData:
    """A box of ``size_mm`` (sx, sy, sz) centred on the origin: 24 vertices (4 per face, so each
    face has its own uv and colour), 12 triangles. texture: (Ht, Wt, 3) uint8 BGR or None."""
    half = np.asarray(size_mm, np.float64) / 2.0
    verts, uv, cols, faces = [], [], [], []
    for i, (axis, sign, ua, va) in enumerate(_BOX_FACES):
        col, row = i % 3, i // 3
        for su, sv in ((-1, -1), (1, -1), (1, 1), (-1, 1)):
            p = np.zeros(3)
            p[axis], p[ua], p[va] = sign * half[axis], su * half[ua], sv * half[va]
            verts.append(p)
            # cell (col, row) of the 3 x 2 grid; v up, row 0 on top
            uv.append(((col + (su + 1) / 2) / 3.0, 1.0 - (row + (1 - sv) / 2) / 2.0))
        b = 4 * i
        faces += [(b, b + 1, b + 2), (b, b + 2, b + 3)]
        cols += [i] * 4
    verts, faces = np.array(verts), np.array(faces, np.int32)
    if texture is not None:
        return MeshData(verts, faces, uv=np.array(uv, np.float32), texture=texture)
    return MeshData(verts, faces, vertex_colors=_hue_bgr(np.array(_FACE_HUES)[cols]))


def cylinder_mesh(radius_mm: float, height_mm: float, texture: np.ndarray | None = None, segments: int = 64) -> MeshData:
    """A cylinder of ``radius_mm`` (half the ``--cylinder`` diameter) and ``height_mm`` about
    the z axis, centred on the origin: the side (a seam of duplicated vertices, so uv wraps
    once) and two capped ends. texture: (Ht, Wt, 3) uint8 BGR or None. With ``segments`` a
    multiple of 4 (the default 64) the rim keypoints of :func:`cylinder_keypoints` are vertices."""
    a = np.linspace(0.0, 2 * np.pi, segments + 1)
    c, s = np.cos(a), np.sin(a)
    h = height_mm / 2.0
    ring = lambda z: np.stack([radius_mm * c, radius_mm * s, np.full_like(c, z)], 1)  # noqa: E731
    side = np.concatenate([ring(-h), ring(h)])
    j = np.arange(segments)
    n1 = segments + 1
    side_faces = np.concatenate([np.stack([j, j + 1, n1 + j + 1], 1), np.stack([j, n1 + j + 1, n1 + j], 1)])
    side_uv = np.stack([np.tile(a / (2 * np.pi), 2), np.repeat([1 / 3, 1.0], n1)], 1)
    verts, faces, uvs, hues = [side], [side_faces], [side_uv], [np.tile(a / (2 * np.pi) * 179, 2)]
    for z, cu, wind in ((h, 0.25, 1), (-h, 0.75, -1)):  # top cap: left half of the bottom third
        base = sum(len(v) for v in verts)
        rim = ring(z)[:-1]
        verts.append(np.concatenate([[[0.0, 0.0, z]], rim]))
        tri = np.stack([np.zeros(segments, int), 1 + j, 1 + (j + 1) % segments], 1)
        faces.append(base + (tri if wind > 0 else tri[:, ::-1]))
        uvs.append(np.concatenate([[[cu, 1 / 6]], np.stack([cu + 0.24 * c[:-1] * wind, 1 / 6 + 0.16 * s[:-1]], 1)]))
        hues.append(np.full(segments + 1, 90.0 if wind > 0 else 150.0))
    verts, faces = np.concatenate(verts), np.concatenate(faces).astype(np.int32)
    if texture is not None:
        return MeshData(verts, faces, uv=np.concatenate(uvs).astype(np.float32), texture=texture)
    return MeshData(verts, faces, vertex_colors=_hue_bgr(np.concatenate(hues)))
