"""The built-in default object: a procedural toy drill, built in numpy with no downloaded asset.

Why a drill: a pose tracker needs an object that no proper rotation maps onto itself (else
the pose is ambiguous), with sides that look different (so the network can tell them apart)
and sharp, nameable keypoints (tips and corners). The drill is made of five convex parts,
each a distinct hue, and every side of every part carries its own colour and pattern
(checks, stripes, sectors), so even a silhouette-symmetric view has a unique appearance:

=========  ==============================================================================
part       shape
=========  ==============================================================================
body       box, x in [-45, 35], y in [-22, 22], z in [0, 45] (before centring)
nozzle     cone along +x from the body's front face, tip at x = 70
handle     cylinder below the body, tilted 15 degrees backwards, 60 mm long
battery    box at the handle's lower end
knob       small cylinder on the body's top, off-centre towards +y (breaks mirror symmetry)
=========  ==============================================================================

Model frame (mm): x forward (towards the nozzle tip), y to the drill's left, z up; the
origin is the centre of the axis-aligned bounding box. Size about 132 x 50 x 127 mm,
diameter about 170 mm, about 3k triangles. Vertices are duplicated per pattern cell, so the
per-vertex colours (BGR uint8) are flat per cell; faces wind counter-clockwise seen from
outside (outward normals by the right-hand rule).

Keypoints (10, each a mesh vertex on the surface): ``nozzle_tip``, ``knob_top`` (centre of
the knob's top cap), four top corners of the body, the body's back-bottom-right corner, and
three bottom corners of the battery. Left/right are the drill's own (+y is left).
"""

from __future__ import annotations

import functools
import math
from dataclasses import dataclass

import numpy as np

from tracker.objects.model import ObjectModel

# Part names, in the order of the part ids in DefaultMesh.face_part.
PART_NAMES: tuple[str, ...] = ("body", "nozzle", "handle", "battery", "knob")

# Geometry (mm, before centring on the bounding box).
_BODY_MIN = np.array([-45.0, -22.0, 0.0])
_BODY_MAX = np.array([35.0, 22.0, 45.0])
_NOZZLE_BASE = np.array([35.0, 0.0, 28.0])
_NOZZLE_TIP = np.array([70.0, 0.0, 28.0])
_NOZZLE_R = 14.0
_HANDLE_TOP = np.array([-20.0, 0.0, 5.0])  # starts inside the body so the parts join
_HANDLE_TILT_DEG = 15.0
_HANDLE_LEN = 60.0
_HANDLE_R = 13.0
_BATTERY_MIN = np.array([-62.0, -25.0, -70.0])
_BATTERY_MAX = np.array([-10.0, 25.0, -53.0])
_KNOB_BASE = np.array([-30.0, 10.0, 45.0])
_KNOB_R = 7.0
_KNOB_H = 12.0


def _rgb(r: int, g: int, b: int) -> np.ndarray:
    # colours are written as RGB for readability and stored BGR (the project's image order)
    return np.array([b, g, r], dtype=np.float64)


@dataclass(frozen=True)
class DefaultMesh:
    """The default object's mesh with its part labels (for tests and tools).

    vertices: (N, 3) float64 mm; faces: (M, 3) int32; vertex_colors: (N, 3) uint8 BGR;
    face_part: (M,) int32, index into ``PART_NAMES``; keypoint_names: K names;
    keypoints: (K, 3) float64 mm (each equal to a vertex).
    """

    vertices: np.ndarray
    faces: np.ndarray
    vertex_colors: np.ndarray
    face_part: np.ndarray
    keypoint_names: tuple[str, ...]
    keypoints: np.ndarray


class _Builder:
    """Accumulates parametric surface patches, each cell with its own four vertices."""

    def __init__(self) -> None:
        self.v: list[np.ndarray] = []
        self.f: list[np.ndarray] = []
        self.c: list[np.ndarray] = []
        self.part: list[np.ndarray] = []
        self.n = 0

    def patch(self, fn, nu: int, nv: int, color, part: int, inside: np.ndarray) -> None:
        """Add the surface ``fn(s, t)`` for s, t in [0, 1] as an nu x nv grid of flat cells.

        fn: vectorised, (n,) s and (n,) t -> (n, 3) mm. color(i, j) -> (3,) BGR float for
        cell (i, j). inside: (3,) a point inside the (convex) part; triangles are wound so
        their normals point away from it.
        """
        i, j = np.meshgrid(np.arange(nu), np.arange(nv), indexing="ij")
        i, j = i.ravel(), j.ravel()
        s0, s1 = i / nu, (i + 1) / nu
        t0, t1 = j / nv, (j + 1) / nv
        # four corners per cell: (s0,t0) (s1,t0) (s1,t1) (s0,t1)
        s = np.stack([s0, s1, s1, s0], axis=1).ravel()
        t = np.stack([t0, t0, t1, t1], axis=1).ravel()
        verts = fn(s, t).reshape(-1, 3)
        ncell = i.size
        base = self.n + 4 * np.arange(ncell)[:, None]
        tris = np.concatenate([base + [0, 1, 2], base + [0, 2, 3]], axis=0)
        cols = np.repeat(np.array([color(a, b) for a, b in zip(i, j)]), 4, axis=0)
        # drop zero-area triangles (cone apex, disc centre) and orient outwards
        local = tris - self.n
        p0, p1, p2 = verts[local[:, 0]], verts[local[:, 1]], verts[local[:, 2]]
        nrm = np.cross(p1 - p0, p2 - p0)
        area2 = np.linalg.norm(nrm, axis=1)
        keep = area2 > 1e-9
        tris, nrm, p0 = tris[keep], nrm[keep], p0[keep]
        centre = (p0 + verts[local[keep, 1]] + verts[local[keep, 2]]) / 3.0
        flip = np.einsum("ij,ij->i", nrm, centre - inside) < 0
        tris[flip] = tris[flip][:, [0, 2, 1]]
        self.v.append(verts)
        self.f.append(tris)
        self.c.append(cols)
        self.part.append(np.full(len(tris), part, dtype=np.int32))
        self.n += len(verts)

    def box(self, lo, hi, side_colors: dict, part: int, cell_mm: float) -> None:
        """Axis-aligned box; side_colors maps '+x','-x',... to color(i, j) functions."""
        lo, hi = np.asarray(lo, float), np.asarray(hi, float)
        centre = (lo + hi) / 2
        for axis in range(3):
            a, b = [k for k in range(3) if k != axis]
            for sign, val in (("-", lo[axis]), ("+", hi[axis])):
                nu = max(1, int(round((hi[a] - lo[a]) / cell_mm)))
                nv = max(1, int(round((hi[b] - lo[b]) / cell_mm)))

                def fn(s, t, a=a, b=b, axis=axis, val=val):
                    out = np.empty((s.size, 3))
                    out[:, axis] = val
                    out[:, a] = lo[a] + s * (hi[a] - lo[a])
                    out[:, b] = lo[b] + t * (hi[b] - lo[b])
                    return out

                self.patch(fn, nu, nv, side_colors[sign + "xyz"[axis]], part, centre)

    def cylinder(self, p0, axis, radius, length, e1, ns, nl, side_color, cap0_color, cap1_color, part, radius_end=None) -> None:
        """Cylinder (or cone if radius_end=0) from p0 along unit axis; e1 orients the seam."""
        p0, axis, e1 = (np.asarray(x, float) for x in (p0, axis, e1))
        e2 = np.cross(axis, e1)
        r1 = radius if radius_end is None else radius_end
        centre = p0 + axis * length / 2

        def side(s, t):
            ang = 2 * np.pi * s
            r = radius + (r1 - radius) * t
            return p0 + np.outer(t * length, axis) + (r * np.cos(ang))[:, None] * e1 + (r * np.sin(ang))[:, None] * e2

        self.patch(side, ns, nl, side_color, part, centre)
        for end, rr, col in ((0.0, radius, cap0_color), (1.0, r1, cap1_color)):
            if rr <= 0:
                continue

            def cap(s, t, end=end, rr=rr):
                ang = 2 * np.pi * s
                c = p0 + axis * length * end
                return c + (rr * t * np.cos(ang))[:, None] * e1 + (rr * t * np.sin(ang))[:, None] * e2

            self.patch(cap, ns, 2, col, part, centre)


def _checker(c1, c2, period: int = 1):
    return lambda i, j: c1 if ((i // period + j // period) % 2 == 0) else c2


def _stripes_i(c1, c2, period: int = 1):
    return lambda i, j: c1 if ((i // period) % 2 == 0) else c2


def _stripes_j(c1, c2, period: int = 1):
    return lambda i, j: c1 if ((j // period) % 2 == 0) else c2


def _flat(c):
    return lambda i, j: c


def _build() -> DefaultMesh:
    b = _Builder()
    dark = 0.62  # pattern cells are the base hue darkened, so a part keeps its hue

    # body (part 0): every side its own hue and pattern
    red, green, blue = _rgb(220, 40, 40), _rgb(40, 170, 60), _rgb(40, 80, 220)
    yellow, orange, purple = _rgb(235, 200, 30), _rgb(245, 130, 20), _rgb(140, 50, 170)
    b.box(
        _BODY_MIN, _BODY_MAX,
        {
            "+x": _checker(red, red * dark, 2),
            "-x": _stripes_j(green, green * dark, 1),
            "+y": _checker(blue, blue * dark, 1),
            "-y": _stripes_i(yellow, yellow * dark, 2),
            "+z": _checker(orange, orange * dark, 3),
            "-z": _flat(purple),
        },
        part=0, cell_mm=6.5,
    )
    # nozzle (part 1): light grey cone, one cyan quarter so its roll is visible
    grey, cyan = _rgb(200, 200, 205), _rgb(30, 200, 220)
    ns = 32
    b.cylinder(
        _NOZZLE_BASE, [1.0, 0.0, 0.0], _NOZZLE_R, _NOZZLE_TIP[0] - _NOZZLE_BASE[0], [0.0, 0.0, 1.0], ns, 6,
        lambda i, j: cyan if i < ns // 4 else (grey if j % 2 == 0 else grey * 0.8),
        _flat(grey * 0.7), _flat(grey), part=1, radius_end=0.0,
    )
    # handle (part 2): dark rubber, front half green-black, back half charcoal, ring bands
    tilt = math.radians(_HANDLE_TILT_DEG)
    h_axis = np.array([-math.sin(tilt), 0.0, -math.cos(tilt)])
    h_e1 = np.array([math.cos(tilt), 0.0, -math.sin(tilt)])  # points forward (+x-ish)
    rubber, charcoal = _rgb(30, 110, 90), _rgb(70, 70, 75)

    def handle_col(i, j):
        base = rubber if (i < ns // 4 or i >= 3 * ns // 4) else charcoal
        return base * (0.7 if j % 3 == 2 else 1.0)

    b.cylinder(_HANDLE_TOP, h_axis, _HANDLE_R, _HANDLE_LEN, h_e1, ns, 10, handle_col, _flat(charcoal), _flat(charcoal), part=2)
    # battery (part 3): its own palette, one hue per side
    b.box(
        _BATTERY_MIN, _BATTERY_MAX,
        {
            "+x": _stripes_i(_rgb(0, 210, 210), _rgb(0, 120, 120), 1),
            "-x": _checker(_rgb(230, 40, 200), _rgb(130, 20, 110), 1),
            "+y": _stripes_j(_rgb(150, 230, 40), _rgb(80, 130, 20), 1),
            "-y": _checker(_rgb(250, 150, 170), _rgb(160, 80, 100), 2),
            "+z": _flat(_rgb(20, 30, 110)),
            "-z": _checker(_rgb(235, 235, 235), _rgb(120, 120, 120), 2),
        },
        part=3, cell_mm=6.5,
    )
    # knob (part 4): magenta sides with one white sector, white top
    magenta, white = _rgb(255, 0, 140), _rgb(250, 250, 250)
    b.cylinder(
        _KNOB_BASE, [0.0, 0.0, 1.0], _KNOB_R, _KNOB_H, [1.0, 0.0, 0.0], 16, 2,
        lambda i, j: white if i < 3 else magenta, _flat(magenta * dark), _flat(white), part=4,
    )

    v = np.concatenate(b.v)
    f = np.concatenate(b.f).astype(np.int32)
    c = np.clip(np.rint(np.concatenate(b.c)), 0, 255).astype(np.uint8)
    part = np.concatenate(b.part)

    kp = {
        "nozzle_tip": _NOZZLE_TIP,
        "knob_top": _KNOB_BASE + [0.0, 0.0, _KNOB_H],
        "body_front_top_left": [_BODY_MAX[0], _BODY_MAX[1], _BODY_MAX[2]],
        "body_front_top_right": [_BODY_MAX[0], _BODY_MIN[1], _BODY_MAX[2]],
        "body_back_top_left": [_BODY_MIN[0], _BODY_MAX[1], _BODY_MAX[2]],
        "body_back_top_right": [_BODY_MIN[0], _BODY_MIN[1], _BODY_MAX[2]],
        "body_back_bottom_right": [_BODY_MIN[0], _BODY_MIN[1], _BODY_MIN[2]],
        "battery_front_bottom_left": [_BATTERY_MAX[0], _BATTERY_MAX[1], _BATTERY_MIN[2]],
        "battery_front_bottom_right": [_BATTERY_MAX[0], _BATTERY_MIN[1], _BATTERY_MIN[2]],
        "battery_back_bottom_left": [_BATTERY_MIN[0], _BATTERY_MAX[1], _BATTERY_MIN[2]],
    }
    names = tuple(kp)
    pts = np.array([kp[k] for k in names], dtype=np.float64)

    # centre on the bounding box so the origin is the object's middle
    centre = (v.min(axis=0) + v.max(axis=0)) / 2
    v = v - centre
    pts = pts - centre
    # snap keypoints to their (exactly equal) vertices, so "on the surface" is exact
    d = np.linalg.norm(v[None, :, :] - pts[:, None, :], axis=2)
    pts = v[d.argmin(axis=1)].copy()
    return DefaultMesh(v, f, c, part, names, pts)


@functools.lru_cache(maxsize=1)
def default_mesh() -> DefaultMesh:
    """The default object's mesh with per-face part ids (cached, arrays read-only)."""
    m = _build()
    for a in (m.vertices, m.faces, m.vertex_colors, m.face_part, m.keypoints):
        a.setflags(write=False)
    return m


@functools.lru_cache(maxsize=1)
def default_object() -> ObjectModel:
    """The built-in default object as an :class:`~tracker.objects.model.ObjectModel` (cached;
    the same read-only instance on every call)."""
    m = default_mesh()
    return ObjectModel.from_mesh(
        name="default",
        vertices=m.vertices,
        faces=m.faces,
        vertex_colors=m.vertex_colors,
        keypoint_names=m.keypoint_names,
        keypoints=m.keypoints,
    )
