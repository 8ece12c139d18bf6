"""Tests for tracker/render/mesh_prep.py: corner normals, back-face culling signs and crease
edges on meshes with known answers."""

from __future__ import annotations

import numpy as np
import trimesh
from render_scenes import quad

from tracker.render.mesh_prep import corner_normals, crease_edges, cull_signs, face_normals


def test_corner_normals_smooth_sphere_despite_flipped_winding_and_keep_cube_flat():
    sph = trimesh.creation.icosphere(subdivisions=2, radius=1.0)
    faces = np.array(sph.faces)
    flip = np.random.default_rng(0).random(len(faces)) < 0.4
    faces[flip] = faces[flip][:, ::-1]
    v = np.array(sph.vertices)
    fn, cn = corner_normals(v, faces, crease_deg=40.0)
    radial = v[faces]  # unit sphere: the true normal is the position
    cosang = np.abs(np.sum(cn * radial, axis=2))
    assert cosang.min() > 0.999
    # Each corner normal is on its face normal's side.
    assert np.all(np.sum(cn * fn[:, None, :], axis=2) > 0)
    box = trimesh.creation.box(extents=(1, 1, 1))
    fn, cn = corner_normals(np.array(box.vertices), np.array(box.faces), crease_deg=40.0)
    assert np.allclose(cn, fn[:, None, :])


def test_cull_signs_only_for_closed_consistent_components():
    sph = trimesh.creation.icosphere(subdivisions=2, radius=10.0)
    v, f = np.array(sph.vertices), np.array(sph.faces)
    assert np.all(cull_signs(v, f) == 1)
    assert np.all(cull_signs(v, f[:, ::-1]) == -1)
    mixed = f.copy()
    mixed[::7] = mixed[::7, ::-1]
    assert np.all(cull_signs(v, mixed) == 0)
    assert np.all(cull_signs(v, f[:-1]) == 0)  # a hole: open
    # Two components, the second wound inward and split into separate vertices at a seam.
    v2 = np.concatenate([v, v + [40.0, 0, 0]])
    f2 = np.concatenate([f, (f + len(v))[:, ::-1]])
    s = cull_signs(v2, f2)
    assert np.all(s[: len(f)] == 1) and np.all(s[len(f):] == -1)
    unshared = v2[f2].reshape(-1, 3)  # every face with its own three vertices
    assert np.array_equal(cull_signs(unshared, np.arange(len(unshared)).reshape(-1, 3)), s)


def test_crease_edges_are_a_box_edges_and_a_square_border():
    box = trimesh.creation.box(extents=(1, 1, 1))
    v, f = np.array(box.vertices), np.array(box.faces)
    e = crease_edges(v, f, face_normals(v, f)[0], 40.0)
    assert e.dtype == np.int32 and e.shape == (12, 2)
    assert np.allclose(np.linalg.norm(v[e[:, 0]] - v[e[:, 1]], axis=1), 1.0)  # no flat face diagonals
    # Split at every face (flat-coloured export): the same edges, found through merged vertices.
    unshared = v[f].reshape(-1, 3)
    fu = np.arange(len(unshared)).reshape(-1, 3)
    eu = crease_edges(unshared, fu, face_normals(unshared, fu)[0], 40.0)
    assert eu.shape == (12, 2)
    v, f = quad()
    e = crease_edges(v, f, face_normals(v, f)[0], 40.0)
    assert sorted(map(tuple, np.sort(e, 1).tolist())) == [(0, 1), (0, 3), (1, 2), (2, 3)]  # border, not the diagonal
