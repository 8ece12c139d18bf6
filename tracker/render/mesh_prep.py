"""Mesh preparation for the renderer, computed once per object: face and corner normals,
vertices merged by position, connected components, back-face culling signs and crease edges.

Meshes from the wild are not reliably consistently wound, so everything here is tolerant of
winding: corner normals smooth within a crease angle up to sign, and a face is culled only
when its connected component (vertices merged by position) is closed, consistently wound and
of non-zero volume, which fixes its outside. Topology always uses vertices merged by position,
so meshes split at uv, colour or normal seams still count as closed.

Arrays: vertices (N, 3) float64 model frame mm; faces (M, 3) int vertex indices.
"""

from __future__ import annotations

import logging
import math

import numpy as np

log = logging.getLogger(__name__)


def face_normals(vertices: np.ndarray, faces: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Unit face normals (M, 3) (zero for degenerate faces) and face areas (M,)."""
    v = vertices[faces]
    cr = np.cross(v[:, 1] - v[:, 0], v[:, 2] - v[:, 0])
    norm = np.linalg.norm(cr, axis=1)
    fn = np.zeros_like(cr)
    ok = norm > 1e-12
    fn[ok] = cr[ok] / norm[ok, None]
    return fn, 0.5 * norm


def corner_normals(vertices: np.ndarray, faces: np.ndarray, crease_deg: float = 40.0,
                   max_pairs: int = 20_000_000) -> tuple[np.ndarray, np.ndarray]:
    """Per face-corner normals smoothed within a crease angle, tolerant of inconsistent winding.

    vertices: (N, 3) float64 mm; faces: (M, 3) int. A corner's normal is the area-weighted sum
    of the normals of the faces around its vertex whose normal is within ``crease_deg`` of its
    own face's normal up to sign (flipped to agree with it), so smoothing never crosses a
    crease and does not care about winding. Returns (face_normals (M, 3), corner (M, 3, 3)),
    model frame, unit, each corner normal on the same side as its face normal.
    """
    fn, area = face_normals(vertices, faces)
    m = len(faces)
    corner = np.repeat(fn[:, None, :], 3, axis=1)
    if m == 0:
        return fn, corner
    inc_v = faces.reshape(-1).astype(np.int64)  # incidence k = 3*f + j
    order = np.argsort(inc_v, kind="stable")
    sv = inc_v[order]
    starts = np.searchsorted(sv, sv, side="left")
    ends = np.searchsorted(sv, sv, side="right")
    counts = ends - starts
    total = int(counts.sum())
    if total > max_pairs:
        log.warning("mesh has vertices of very high degree (%d corner pairs); using flat shading", total)
        return fn, corner
    # All (corner, neighbour-incidence) pairs sharing a vertex.
    src = np.repeat(np.arange(len(sv)), counts)
    within = np.arange(total) - np.repeat(np.cumsum(counts) - counts, counts)
    nbr = starts[src] + within
    ci = order[src]  # corner incidence index
    fi = ci // 3
    fj = order[nbr] // 3
    d = np.sum(fn[fi] * fn[fj], axis=1)
    keep = np.abs(d) >= math.cos(math.radians(crease_deg))
    contrib = (np.sign(d) * area[fj])[:, None] * fn[fj]
    acc = np.zeros((3 * m, 3))
    np.add.at(acc, ci[keep], contrib[keep])
    nrm = np.linalg.norm(acc, axis=1)
    ok = nrm > 1e-12
    flat = corner.reshape(-1, 3).copy()
    flat[ok] = acc[ok] / nrm[ok, None]
    return fn, flat.reshape(m, 3, 3)


def merged_vertex_ids(vertices: np.ndarray) -> np.ndarray:
    """(N,) ids equal for vertices at the same position (within 1e-6 of the mesh size), so
    meshes split at uv or normal seams still count as closed."""
    if len(vertices) == 0:
        return np.zeros(0, np.int64)
    scale = max(float(np.abs(vertices).max()), 1e-9)
    q = np.round(vertices / (scale * 1e-6)).astype(np.int64)
    _, ids = np.unique(q, axis=0, return_inverse=True)
    return ids.reshape(-1)


def _components(n: int, edges: np.ndarray) -> np.ndarray:
    """(n,) connected-component label of each node of an undirected graph (edges (E, 2))."""
    label = np.arange(n)
    if len(edges) == 0:
        return label
    a, b = edges[:, 0], edges[:, 1]
    while True:
        lo = np.minimum(label[a], label[b])
        new = label.copy()
        np.minimum.at(new, a, lo)
        np.minimum.at(new, b, lo)
        new = new[new]  # pointer jumping: converges in O(log diameter) sweeps in practice
        new = new[new]
        if np.array_equal(new, label):
            return label
        label = new


def cull_signs(vertices: np.ndarray, faces: np.ndarray) -> np.ndarray:
    """Per-face back-face culling sign, (M,) int8: +1 where the face's component is closed and
    wound with outward normals (``cross(v1 - v0, v2 - v0)`` points out), -1 where closed and
    wound inward, 0 (never cull) where the component is open, non-manifold, inconsistently
    wound or flat.

    vertices: (N, 3) float64; faces: (M, 3) int. Topology uses vertices merged by position.
    For a face on a closed, consistently wound surface, its back side is always hidden by the
    surface itself when the camera is outside, so skipping it changes nothing but the time.
    """
    m = len(faces)
    out = np.zeros(m, np.int8)
    if m == 0:
        return out
    ids = merged_vertex_ids(vertices)
    f = ids[np.asarray(faces, np.int64)]
    n = int(ids.max()) + 1
    e = np.stack([f[:, [0, 1]], f[:, [1, 2]], f[:, [2, 0]]], axis=1).reshape(-1, 2)
    key = e[:, 0] * n + e[:, 1]
    rkey = e[:, 1] * n + e[:, 0]
    sk = np.sort(key)
    cnt = np.searchsorted(sk, key, "right") - np.searchsorted(sk, key, "left")
    rcnt = np.searchsorted(sk, rkey, "right") - np.searchsorted(sk, rkey, "left")
    # Closed and consistently wound: every directed edge appears once and so does its reverse.
    edge_ok = (cnt == 1) & (rcnt == 1) & (e[:, 0] != e[:, 1])
    face_ok = edge_ok.reshape(m, 3).all(axis=1)
    vlab = _components(n, e)
    flab = vlab[f[:, 0]]
    _, comp = np.unique(flab, return_inverse=True)
    comp = comp.reshape(-1)
    ncomp = int(comp.max()) + 1
    bad = np.bincount(comp, weights=(~face_ok).astype(np.float64), minlength=ncomp) > 0
    v = np.asarray(vertices, np.float64)[np.asarray(faces, np.int64)]
    c0 = v.mean(axis=(0, 1))  # volume about the centroid: less cancellation far from origin
    vol6 = np.einsum("ij,ij->i", v[:, 0] - c0, np.cross(v[:, 1] - c0, v[:, 2] - c0))
    cvol = np.bincount(comp, weights=vol6, minlength=ncomp)
    cabs = np.bincount(comp, weights=np.abs(vol6), minlength=ncomp)
    sign = np.where(bad | (np.abs(cvol) <= 1e-6 * np.maximum(cabs, 1e-300)), 0, np.sign(cvol)).astype(np.int8)
    return sign[comp]


def crease_edges(vertices: np.ndarray, faces: np.ndarray, normals: np.ndarray, crease_deg: float) -> np.ndarray:
    """Edges worth drawing in a wireframe overlay: boundary (and non-manifold) edges and edges
    whose two faces meet at more than ``crease_deg`` (sign-agnostic).

    vertices: (N, 3) float64 mm; faces: (M, 3) int; normals: (M, 3) unit face normals (from
    :func:`face_normals`). Topology uses vertices merged by position; zero-length edges are
    dropped. Returns (E, 2) int32 vertex index pairs into ``vertices``.
    """
    f0 = faces.astype(np.int64)
    m = len(f0)
    e0 = np.concatenate([f0[:, [0, 1]], f0[:, [1, 2]], f0[:, [2, 0]]])
    # Topology on vertices merged by position (flat-coloured meshes split every face).
    ids = merged_vertex_ids(vertices)
    e = ids[e0]
    ef = np.concatenate([np.arange(m)] * 3)
    swap = e[:, 0] > e[:, 1]
    e[swap] = e[swap][:, ::-1]
    key = e[:, 0] * (len(vertices) + 1) + e[:, 1]
    order = np.argsort(key, kind="stable")
    key_s, e_s, ef_s = key[order], e0[order], ef[order]
    first = np.ones(len(key_s), bool)
    first[1:] = key_s[1:] != key_s[:-1]
    starts = np.nonzero(first)[0]
    counts = np.diff(np.append(starts, len(key_s)))
    keep = counts != 2  # boundary or non-manifold
    two = counts == 2
    fa = ef_s[starts[two]]
    fb = ef_s[starts[two] + 1]
    d = np.abs(np.sum(normals[fa] * normals[fb], 1))
    sharp = d < math.cos(math.radians(crease_deg))
    keep[np.nonzero(two)[0][sharp]] = True
    keep &= e[order][starts, 0] != e[order][starts, 1]  # collapsed (zero-length) edges
    return np.ascontiguousarray(e_s[starts[keep]], dtype=np.int32)
