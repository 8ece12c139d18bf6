"""Keypoints under symmetries: training labels, how a discrete group reorders the keypoints, and
keypoints for an object with a continuous symmetry.

* :func:`canonical_keypoint_labels` / :func:`canonical_labels_and_pose` / :class:`SymmetricLabels`: a
  training image's labels under the equivalent of its pose that is canonical for the view (:func:`tracker.objects.symmetry.canonical_pose`),
  the COCO visibility flags following the keypoints they moved onto.
* :func:`keypoint_map` / :func:`keypoint_permutations`: where a transform moves each keypoint, and
  how a discrete group reorders them, so a view's labels under every equivalent are its labels
  permuted (training's min-over-equivalents loss; the confusable turns of
  :mod:`tracker.objects.confusable`).
* :func:`axis_keypoints`: keypoints for an object with a continuous symmetry, on the axis (the
  two ends and the centre: unambiguous) and on the two rims (fixed by the canonical rule per view).

Frames and units: model frame, mm; ``R_m2c`` (3, 3), ``t_m2c`` (3,) mm, ``x_cam = R x + t``.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np

from tracker.geometry import project
from tracker.objects.symmetry import SymmetryGroup, apply_transform, canonical_transform


def canonical_keypoint_labels(R_m2c: np.ndarray, t_m2c: np.ndarray, K: np.ndarray, keypoints_mm: np.ndarray,
                              group: SymmetryGroup, visibility: np.ndarray | None = None,
                              roll: float = 0.0) -> tuple[np.ndarray, np.ndarray | None]:
    """Training labels under the canonical pose: (uv (K, 2) pixels, visibility (K,) int8 or None);
    see :func:`canonical_labels_and_pose`."""
    return canonical_labels_and_pose(R_m2c, t_m2c, K, keypoints_mm, group, visibility, roll)[:2]


def canonical_labels_and_pose(R_m2c: np.ndarray, t_m2c: np.ndarray, K: np.ndarray, keypoints_mm: np.ndarray,
                              group: SymmetryGroup, visibility: np.ndarray | None = None, roll: float = 0.0
                              ) -> tuple[np.ndarray, np.ndarray | None, np.ndarray, np.ndarray]:
    """Training labels under the canonical pose, and that pose: (uv (K, 2) pixels, visibility (K,)
    int8 or None, R (3, 3), t (3,) mm).

    keypoints_mm: (K, 3) model frame; K: (3, 3) pixels; visibility: the COCO flags under the
    given pose. When the chosen symmetry maps the keypoints onto each other the flags follow
    them; otherwise None is returned (derive them again from the image bounds and mask).
    roll: rad, the in-plane rotation the image will be shown at (:func:`canonical_transform`)."""
    kp = np.asarray(keypoints_mm, np.float64)
    R0, t0 = np.asarray(R_m2c, np.float64), np.asarray(t_m2c, np.float64).reshape(3)
    S = np.eye(4) if group.is_trivial else canonical_transform(R0, t0, group, roll)
    R, t = apply_transform(R0, t0, S)
    uv = project(kp, R, t, K)
    if visibility is None or np.allclose(S, np.eye(4)):
        return uv, visibility, R, t
    j = keypoint_map(kp, S)
    return uv, (None if j is None else np.asarray(visibility)[j]), R, t


def keypoint_map(kp: np.ndarray, S: np.ndarray, tol_frac: float = 1e-3) -> np.ndarray | None:
    """(K,) int: the keypoint that S (4, 4) moves each keypoint (K, 3) mm onto (keypoint k sits,
    under the equivalent pose, where keypoint j[k] sat), or None when some moved keypoint lies
    ``tol_frac`` x the keypoints' extent or further from every keypoint. Two keypoints may land on
    one (check ``len(set(j)) == K`` for a permutation)."""
    moved = kp @ S[:3, :3].T + S[:3, 3]
    d = np.linalg.norm(moved[:, None] - kp[None], axis=2)
    j = d.argmin(1)
    scale = max(float(np.ptp(kp, axis=0).max()) if len(kp) else 1.0, 1e-9)
    return j if np.all(d[np.arange(len(kp)), j] < tol_frac * scale) else None


def keypoint_permutations(group: SymmetryGroup, keypoints_mm: np.ndarray, tol_frac: float = 1e-3) -> np.ndarray | None:
    """(M, K) int64: for each of a discrete group's transforms S (identity first), ``perm[m, k]``
    is the keypoint that S moves keypoint k onto; None when the group is trivial, has a continuous
    part, or some S does not map the keypoint set onto itself (within ``tol_frac`` x its extent).

    Under the equivalent pose (R S_R, t + R S_t) keypoint k projects where keypoint ``perm[m, k]``
    projects under (R, t), so a view's labels for every equivalent are its labels reordered:
    ``uv[perm[m]]``. Training uses this to let the network pick the equivalent
    (:func:`train.validation.heatmap_loss`)."""
    if group.axis is not None or len(group.discrete) < 2:
        return None
    kp = np.asarray(keypoints_mm, np.float64)
    perms = []
    for S in group.discrete:
        j = keypoint_map(kp, S, tol_frac)
        if j is None or len(set(j.tolist())) != len(kp):  # off the set, or two keypoints onto one
            return None
        perms.append(j)
    return np.stack(perms).astype(np.int64)


@dataclass(frozen=True, eq=False)
class SymmetricLabels:
    """What a training record of a symmetric object needs to label any crop of it: the ground-truth
    pose (R_m2c (3, 3), t_m2c (3,) mm), K (3, 3), the model keypoints (K, 3) mm, the group and the
    GT pose's COCO visibility (K,) or None. Call with the crop's roll (rad): (uv (K, 2) frame px,
    visibility or None), see :func:`canonical_keypoint_labels`; :meth:`labels_and_pose` also gives
    the canonical pose itself (the dense model-coordinate targets of :mod:`train.coords` are
    rendered from it)."""

    R_m2c: np.ndarray
    t_m2c: np.ndarray
    K: np.ndarray
    keypoints_mm: np.ndarray
    group: SymmetryGroup
    visibility: np.ndarray | None = None

    def __call__(self, roll: float = 0.0) -> tuple[np.ndarray, np.ndarray | None]:
        return self.labels_and_pose(roll)[:2]

    def labels_and_pose(self, roll: float = 0.0) -> tuple[np.ndarray, np.ndarray | None, np.ndarray, np.ndarray]:
        """(uv, visibility or None, R (3, 3), t (3,) mm): the labels and the equivalent they come
        from, for the view shown at ``roll`` rad (:func:`canonical_labels_and_pose`)."""
        return canonical_labels_and_pose(self.R_m2c, self.t_m2c, self.K, self.keypoints_mm, self.group, self.visibility, roll)


def axis_keypoints(vertices: np.ndarray, axis: np.ndarray, offset: np.ndarray, per_rim: int = 3) -> tuple[tuple[str, ...], np.ndarray]:
    """Keypoints of an object with a continuous symmetry: the axis' two ends and its midpoint
    (unambiguous in every view) and ``per_rim`` points evenly around each end's rim (the widest
    vertex radius within 3 % of the length of each end).

    vertices: (N, 3) mm; axis: (3,) unit; offset: (3,) mm on the axis. Returns names
    (``axis_top, axis_bottom, axis_centre, rim_top_0.., rim_bottom_0..``) and points (K, 3) mm.
    Rim point 0 lies towards the model's first axis not parallel to the symmetry axis.
    """
    v = np.asarray(vertices, np.float64)
    a = np.asarray(axis, np.float64) / np.linalg.norm(axis)
    o = np.asarray(offset, np.float64)
    h = (v - o) @ a
    radial = (v - o) - np.outer(h, a)
    r = np.linalg.norm(radial, axis=1)
    lo, hi = float(h.min()), float(h.max())
    band = 0.03 * (hi - lo)
    ref = np.eye(3)[int(np.argmin(np.abs(a)))]
    u = ref - (ref @ a) * a
    u /= np.linalg.norm(u)
    w = np.cross(a, u)
    names, pts = ["axis_top", "axis_bottom", "axis_centre"], [o + hi * a, o + lo * a, o + 0.5 * (hi + lo) * a]
    for end, sel in (("top", h >= hi - band), ("bottom", h <= lo + band)):
        hh = float(h[sel][np.argmax(r[sel])])
        rr = float(r[sel].max())
        for k in range(per_rim):
            phi = 2 * math.pi * k / per_rim
            names.append(f"rim_{end}_{k}")
            pts.append(o + hh * a + rr * (math.cos(phi) * u + math.sin(phi) * w))
    return tuple(names), np.array(pts)
