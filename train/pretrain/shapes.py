"""Procedural objects for backbone pretraining: random compositions of boxes, cylinders, spheres
and extruded polygons, each with a random procedural texture.

:func:`random_object` (seeded) builds one: 1 to 4 parts, the first at the origin and the others
overlapping it at random offsets and orientations, all sharing one texture (the parts' uv point
into it: the layouts of :mod:`tracker.objects.primitives` for boxes and cylinders, latitude-
longitude for spheres, a wrapped side and planar caps for extrusions). It also returns the
object's *corners* (box corners and the polygon vertices of extrusions, in the model frame):
geometric keypoints a pretext head learns to find on any object.

None of kptrack's evaluation objects (the drill, the test box and cylinder with their texture,
the bottle) is built here: sizes, proportions, part counts and textures are all random.
"""

from __future__ import annotations

import numpy as np

from tracker.geometry import random_rotation
from tracker.objects import ObjectModel
from tracker.objects.mesh_io import MeshData
from tracker.objects.primitives import box_mesh, cylinder_mesh
from train.synth.backgrounds import procedural_background

TEXTURE_SIZE = (256, 384)  # h, w: the 3 x 2 grid of the primitives' layout at 128 px cells


def sphere_mesh(radius: float, rings: int = 12, segments: int = 24) -> MeshData:
    """A UV sphere (latitude-longitude grid, a seam of duplicated vertices), uv = (longitude, latitude)."""
    th = np.linspace(0.0, np.pi, rings + 1)[:, None]
    ph = np.linspace(0.0, 2 * np.pi, segments + 1)[None, :]
    v = np.stack([np.sin(th) * np.cos(ph), np.sin(th) * np.sin(ph), np.cos(th) * np.ones_like(ph)], -1).reshape(-1, 3) * radius
    uv = np.stack([np.broadcast_to(ph / (2 * np.pi), (rings + 1, segments + 1)),
                   np.broadcast_to(1.0 - th / np.pi, (rings + 1, segments + 1))], -1).reshape(-1, 2)
    i, j = np.meshgrid(np.arange(rings), np.arange(segments), indexing="ij")
    a = (i * (segments + 1) + j).ravel()
    b, c, d = a + segments + 1, a + segments + 2, a + 1
    faces = np.concatenate([np.stack([a, b, c], 1), np.stack([a, c, d], 1)]).astype(np.int32)
    return MeshData(v, faces, uv=uv.astype(np.float32))


def extrusion_mesh(polygon: np.ndarray, height: float) -> MeshData:
    """A prism: the star-shaped polygon (P, 2) mm (counter-clockwise about the origin) extruded
    along z, centred; the side wraps the texture once, the caps map it in plan."""
    p = np.asarray(polygon, np.float64)
    n, h = len(p), height / 2.0
    loop = np.concatenate([p, p[:1]])
    seg = np.concatenate([[0.0], np.cumsum(np.linalg.norm(np.diff(loop, axis=0), axis=1))])
    u = seg / seg[-1]
    bottom = np.column_stack([loop, np.full(n + 1, -h)])
    top = np.column_stack([loop, np.full(n + 1, h)])
    j = np.arange(n)
    faces = [np.stack([j, j + 1, n + 1 + j + 1], 1), np.stack([j, n + 1 + j + 1, n + 1 + j], 1)]
    verts, uvs = [bottom, top], [np.column_stack([u, np.full(n + 1, 1 / 3)]), np.column_stack([u, np.ones(n + 1)])]
    r = np.abs(p).max()
    for z, sign in ((h, 1), (-h, -1)):
        base = sum(len(x) for x in verts)
        verts.append(np.vstack([[0.0, 0.0, z], np.column_stack([p, np.full(n, z)])]))
        tri = np.stack([np.zeros(n, int), 1 + j, 1 + (j + 1) % n], 1)
        faces.append(base + (tri if sign > 0 else tri[:, ::-1]))
        uvs.append(np.vstack([[0.5, 1 / 6], np.column_stack([0.5 + 0.45 * p[:, 0] / r, 1 / 6 + 0.15 * p[:, 1] / r])]))
    return MeshData(np.vstack(verts), np.concatenate(faces).astype(np.int32), uv=np.vstack(uvs).astype(np.float32))


def _star_polygon(rng: np.random.Generator, radius: float) -> np.ndarray:
    n = int(rng.integers(3, 8))
    ang = np.sort(rng.uniform(0, 2 * np.pi, n)) if rng.random() < 0.5 else np.linspace(0, 2 * np.pi, n, endpoint=False)
    rad = radius * rng.uniform(0.5, 1.0, n)
    return np.column_stack([rad * np.cos(ang), rad * np.sin(ang)])


def _part(rng: np.random.Generator, size: float) -> tuple[MeshData, np.ndarray]:
    """One random primitive of about ``size`` mm and its corners (C, 3) mm. (The primitives give
    their uv layout only with a texture: a placeholder asks for it; the object gets its own.)"""
    kind = int(rng.integers(4))
    if kind == 0:
        dims = size * rng.uniform(0.3, 1.0, 3)
        m = box_mesh(tuple(dims), np.zeros((2, 3, 3), np.uint8))
        corners = np.array([[sx, sy, sz] for sx in (-1, 1) for sy in (-1, 1) for sz in (-1, 1)]) * dims / 2
    elif kind == 1:
        m = cylinder_mesh(size * rng.uniform(0.15, 0.5), size * rng.uniform(0.3, 1.0), np.zeros((3, 2, 3), np.uint8), segments=24)
        corners = np.zeros((0, 3))
    elif kind == 2:
        m, corners = sphere_mesh(size * rng.uniform(0.2, 0.5)), np.zeros((0, 3))
    else:
        poly = _star_polygon(rng, size * rng.uniform(0.25, 0.5))
        height = size * rng.uniform(0.2, 0.8)
        m = extrusion_mesh(poly, height)
        corners = np.vstack([np.column_stack([poly, np.full(len(poly), z)]) for z in (-height / 2, height / 2)])
    return m, corners


def random_object(rng: np.random.Generator, size_mm: float = 100.0) -> tuple[ObjectModel, np.ndarray]:
    """(a textured random composition of 1-4 primitives, its corners (C, 3) mm), see the module docstring."""
    verts, faces, uvs, corners = [], [], [], []
    for k in range(int(rng.integers(1, 5))):
        m, c = _part(rng, size_mm * (1.0 if k == 0 else rng.uniform(0.4, 0.8)))
        R = random_rotation(rng)
        t = np.zeros(3) if k == 0 else rng.normal(0.0, 0.25 * size_mm, 3)
        faces.append(m.faces + sum(len(v) for v in verts))
        verts.append(m.vertices @ R.T + t)
        uvs.append(m.uv)
        corners.append(c @ R.T + t)
    texture = procedural_background(rng, *TEXTURE_SIZE, cluttered=rng.random() < 0.7)
    v = np.vstack(verts)
    v -= (v.min(0) + v.max(0)) / 2.0
    shift = (np.vstack(verts).min(0) + np.vstack(verts).max(0)) / 2.0
    obj = ObjectModel.from_mesh(name="procedural", vertices=v, faces=np.vstack(faces), keypoint_names=("centre",),
                                keypoints=np.zeros((1, 3)), uv=np.vstack(uvs), texture=texture)
    return obj, np.vstack(corners) - shift
