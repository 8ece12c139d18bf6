"""The second built-in object, ``--object bottle``: a procedural bottle with a continuous symmetry.

Why a bottle: most symmetric objects people track are bottles, cans and cups, which no keypoint
on their side can pin down. This one exercises the whole symmetric path (canonical training
labels, tracking that does not spin, ADD-S / MSSD / MSPD) with no downloaded asset.

Shape: a surface of revolution about the model's z axis, 200 mm tall, built from a profile of
(radius, height) points: a flat base, a 66 mm wide body, a shoulder narrowing to a 28 mm neck,
and a 32 mm cap. Appearance: coloured bands around the axis (no logo), one colour per profile
segment, so every rotation about the axis leaves it unchanged; top and bottom differ (a dark
base, an orange cap), so there is no upside-down symmetry.

Model frame (mm): z up along the axis, origin at the centre of the bounding box (the base at
z = -100, the cap's top at z = +100). ``symmetries_continuous`` = axis (0, 0, 1) through the
origin. Faces wind counter-clockwise seen from outside; vertices are duplicated per band, so
the colours (BGR uint8) are flat per band.

Keypoints (:func:`tracker.objects.symmetry_keypoints.axis_keypoints`, 9): the axis' two ends and its
centre, and three points on each rim (the cap's top edge, the base's edge); the rim points are
made unambiguous per view by the canonical training labels.
"""

from __future__ import annotations

import functools
import math

import numpy as np

from tracker.objects.mesh_io import MeshData
from tracker.objects.model import ObjectModel
from tracker.objects.symmetry_keypoints import axis_keypoints

HEIGHT_MM = 200.0
SEGMENTS = 64


def _bgr(r: int, g: int, b: int) -> tuple[int, int, int]:
    return (b, g, r)  # written as RGB for readability, stored BGR


# (radius mm, height mm from the base) points, bottom centre to top centre, and the colour of
# the segment that starts at each point (the last point has none).
_PROFILE = (
    (0.0, 0.0, _bgr(60, 60, 60)),  # base
    (33.0, 0.0, _bgr(40, 40, 40)),
    (33.0, 10.0, _bgr(30, 90, 180)),  # body
    (33.0, 70.0, _bgr(230, 200, 40)),
    (33.0, 85.0, _bgr(235, 235, 235)),  # label band
    (33.0, 115.0, _bgr(200, 40, 40)),
    (33.0, 125.0, _bgr(30, 90, 180)),
    (33.0, 135.0, _bgr(70, 130, 210)),  # shoulder
    (22.0, 155.0, _bgr(60, 160, 60)),
    (14.0, 168.0, _bgr(60, 160, 60)),  # neck
    (14.0, 180.0, _bgr(240, 120, 30)),  # cap flange
    (16.0, 180.0, _bgr(240, 120, 30)),  # cap
    (16.0, 200.0, _bgr(245, 235, 220)),  # cap top
    (0.0, 200.0, None),
)


def bottle_mesh(segments: int = SEGMENTS) -> MeshData:
    """The bottle's mesh (mm, centred, z up) with flat per-band vertex colours (BGR uint8)."""
    a = np.linspace(0.0, 2 * math.pi, segments + 1)[:-1]
    c, s = np.cos(a), np.sin(a)
    verts, faces, cols = [], [], []
    j = np.arange(segments)
    j1 = (j + 1) % segments
    for (r0, z0, col), (r1, z1, _) in zip(_PROFILE[:-1], _PROFILE[1:]):
        base = sum(len(v) for v in verts)
        ring0 = np.stack([r0 * c, r0 * s, np.full(segments, z0)], 1)
        ring1 = np.stack([r1 * c, r1 * s, np.full(segments, z1)], 1)
        verts.append(np.concatenate([ring0, ring1]))
        cols.append(np.tile(np.array(col, np.uint8), (2 * segments, 1)))
        lo, hi = base + j, base + segments + j
        lo1, hi1 = base + j1, base + segments + j1
        tris = []
        if r0 > 0:  # (lo, lo1, hi1): outward by the right-hand rule for a profile going up/outwards
            tris.append(np.stack([lo, lo1, hi1], 1))
        if r1 > 0:
            tris.append(np.stack([lo, hi1, hi], 1))
        faces.append(np.concatenate(tris))
    v = np.concatenate(verts)
    v[:, 2] -= HEIGHT_MM / 2.0
    return MeshData(v, np.concatenate(faces).astype(np.int32), vertex_colors=np.concatenate(cols))


@functools.lru_cache(maxsize=1)
def bottle_object() -> ObjectModel:
    """The built-in bottle as an ObjectModel (cached, read-only), its continuous symmetry declared."""
    m = bottle_mesh()
    axis, offset = np.array([0.0, 0.0, 1.0]), np.zeros(3)
    names, pts = axis_keypoints(m.vertices, axis, offset, per_rim=3)
    return ObjectModel.from_mesh(
        name="bottle", vertices=m.vertices, faces=m.faces, vertex_colors=m.vertex_colors,
        keypoint_names=names, keypoints=pts, symmetries_continuous=[{"axis": axis, "offset": offset}],
    )
