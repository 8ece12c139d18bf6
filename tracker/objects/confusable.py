"""Confusable turns: rotations an object is *nearly* symmetric under, beyond its declared group.

A plain 80x60x40 mm box has the three half turns as true symmetries, but a quarter turn about its
long axis only swaps its 60 and 40 mm sides: the corners land 14 mm from where corners were. A
network that has to name the corners from the edge lengths confuses such views, and a pose fitted
to its labels can come out that quarter turn wrong while still explaining five of the eight
corners. The tracker uses these turns as alternative starting points: each one re-fits the
heatmaps' unlabelled peaks (:mod:`tracker.pipeline.associate`), and the hypothesis that explains
the most of them wins (:class:`tracker.pipeline.keypoint_pass.KeypointPass`).

Candidates are the 24 rotations that permute the principal axes of the keypoints (with signs),
about their centroid: every orientation a box-like object can be confused with. One is kept when
it maps the keypoint set onto itself within ``tol_frac`` x the keypoints' extent (each keypoint
onto a different one), and when it is not already a symmetry of the group (those give the same
image; the tracker handles them as equivalents). Objects with no near-symmetry get none.
"""

from __future__ import annotations

import itertools

import numpy as np

from tracker.objects.symmetry_keypoints import keypoint_map

CONFUSABLE_TOL_FRAC = 0.4  # a turn may move each keypoint this far (x the keypoints' extent) onto another


def _axis_permuting_rotations() -> np.ndarray:
    """(24, 3, 3): the proper rotations that map the coordinate axes onto (signed) axes."""
    out = []
    for perm in itertools.permutations(range(3)):
        for signs in itertools.product((1.0, -1.0), repeat=3):
            M = np.zeros((3, 3))
            M[np.arange(3), perm] = signs
            if np.linalg.det(M) > 0:
                out.append(M)
    return np.stack(out)


def confusable_turns(keypoints_mm: np.ndarray, group_discrete: np.ndarray | None = None,
                     tol_frac: float = CONFUSABLE_TOL_FRAC) -> np.ndarray:
    """(N, 4, 4) float64 model-frame transforms (rotations about the keypoints' centroid): the
    turns under which the keypoints (K, 3) mm nearly map onto themselves (see the module
    docstring), none of them the identity or, with ``group_discrete`` (M, 4, 4), a composition
    of the identity with one of the group's transforms. At most one per coset of the group is kept
    (the others give the same image). (0, 4, 4) when there are none or fewer than 3 keypoints."""
    kp = np.asarray(keypoints_mm, np.float64)
    if kp.ndim != 2 or kp.shape[1] != 3 or len(kp) < 3:
        return np.zeros((0, 4, 4))
    centre = kp.mean(0)
    q = kp - centre
    _, vecs = np.linalg.eigh(q.T @ q)
    if np.linalg.det(vecs) < 0:
        vecs[:, 0] = -vecs[:, 0]
    group = np.eye(4)[None] if group_discrete is None else np.asarray(group_discrete, np.float64)
    kept: list[np.ndarray] = []
    for M in _axis_permuting_rotations():
        R = vecs @ M @ vecs.T
        if np.allclose(R, np.eye(3), atol=1e-9):
            continue
        T = np.eye(4)
        T[:3, :3], T[:3, 3] = R, centre - R @ centre
        j = keypoint_map(kp, T, tol_frac)
        if j is None or len(set(j.tolist())) != len(kp):
            continue
        # the same image as one already kept, or as the identity, when T = K S for group elements
        if any(_same_coset(T, U, group) for U in [np.eye(4), *kept]):
            continue
        kept.append(T)
    return np.stack(kept) if kept else np.zeros((0, 4, 4))


def _same_coset(T: np.ndarray, U: np.ndarray, group: np.ndarray, atol: float = 1e-6) -> bool:
    """Whether T = U S for some S of the group (then poses R T and R U look the same)."""
    return any(np.allclose(T, U @ S, atol=atol * max(1.0, float(np.abs(T[:3, 3]).max()))) for S in group)
