"""Pose accuracy metrics: ADD, ADD-S, 2D projection and keypoint errors.

Every error function shares bop_toolkit's signature ``(R_est, t_est, R_gt, t_gt, pts, ...)`` and
is the one home of its formula: ``kptrack eval``, ``kptrack bench`` and ``kptrack demo`` all call
these (rotation and translation errors live in :mod:`tracker.geometry`).

* ADD (Hinterstoisser et al., "Model Based Training, Detection and Pose Estimation of
  Texture-Less 3D Objects in Heavily Cluttered Scenes", ACCV 2012): mean distance between the
  model points moved by the estimated and by the ground-truth pose. A pose is correct when
  ADD < 0.1 x the object diameter.
* ADD-S (same paper; the name from Xiang et al., PoseCNN, RSS 2018): for symmetric objects, the
  mean distance from each estimated point to the *closest* ground-truth point. ADD-S <= ADD.
  ``ADD(-S)`` uses ADD-S for symmetric objects and ADD otherwise.
* 2D projection error (Brachmann et al., "Uncertainty-Driven 6D Pose Estimation of Objects and
  Scenes from a Single RGB Image", CVPR 2016): mean pixel distance between the model points
  projected with the estimated and with the ground-truth pose; correct when < 5 px. For objects
  with discrete symmetries the minimum over the symmetry transforms is taken (as BOP's MSPD does).
* keypoint error: the same mean pixel distance over the object's keypoints, without symmetries.

All inputs: R (3, 3) float64, t (3,) float64 mm, points (N, 3) float64 mm in the model frame,
K (3, 3) float64 pixels. Errors are in mm (ADD, ADD-S) or pixels (projection).
"""

from __future__ import annotations

import math
import numpy as np

from tracker.geometry import project, transform

ADD_THRESHOLD = 0.1  # x diameter
PROJ_THRESHOLD_PX = 5.0
MIN_VISIB_FRACT = 0.5


def add_error(R_est: np.ndarray, t_est: np.ndarray, R_gt: np.ndarray, t_gt: np.ndarray, pts: np.ndarray) -> float:
    """ADD, mm: mean ||(R_est p + t_est) - (R_gt p + t_gt)|| over pts (N, 3) mm.

    Hinterstoisser et al., "Model Based Training, Detection and Pose Estimation of Texture-Less 3D
    Objects in Heavily Cluttered Scenes", ACCV 2012.
    """
    pts = np.asarray(pts, np.float64)
    return float(np.linalg.norm(transform(R_est, t_est, pts) - transform(R_gt, t_gt, pts), axis=1).mean())


def adds_error(R_est: np.ndarray, t_est: np.ndarray, R_gt: np.ndarray, t_gt: np.ndarray, pts: np.ndarray, chunk: int = 1024) -> float:
    """ADD-S, mm: mean over estimated points of the distance to the closest ground-truth point.

    Hinterstoisser et al., ACCV 2012 (for symmetric objects); named ADD-S by Xiang et al., "PoseCNN:
    A Convolutional Neural Network for 6D Object Pose Estimation in Cluttered Scenes", RSS 2018.

    Brute force in chunks of ``chunk`` rows (N x N distances), fine for the ~1000 points
    :func:`sample_points` keeps.
    """
    pts = np.asarray(pts, np.float64)
    # Distances are translation invariant: centring on the GT points keeps the squared-norm
    # expansion below from cancelling catastrophically at camera distances (~1e3 mm).
    g = transform(R_gt, t_gt, pts)
    c = g.mean(0)
    g = g - c
    e = transform(R_est, t_est, pts) - c
    g2 = (g * g).sum(1)
    mins = np.empty(len(e))
    for i in range(0, len(e), chunk):
        ec = e[i:i + chunk]
        d2 = (ec * ec).sum(1)[:, None] - 2.0 * ec @ g.T + g2[None, :]
        mins[i:i + chunk] = np.sqrt(np.maximum(d2.min(1), 0.0))
    return float(mins.mean())


def proj2d_error(
    R_est: np.ndarray, t_est: np.ndarray, R_gt: np.ndarray, t_gt: np.ndarray, pts: np.ndarray, K: np.ndarray,
    symmetries: list[np.ndarray] | None = None,
) -> float:
    """2D projection error, px: mean distance between pts projected by the two poses (pinhole K).

    Brachmann et al., "Uncertainty-Driven 6D Pose Estimation of Objects and Scenes from a Single
    RGB Image", CVPR 2016. K: (3, 3) float64 pixels.

    symmetries: optional list of (4, 4) model-frame symmetry transforms S; the error is the
    minimum over ``R_gt S`` (the identity is always included). A point behind the camera in
    either pose makes the error infinite.
    """
    pts = np.asarray(pts, np.float64)
    uv_e = project(pts, R_est, t_est, K)
    best = np.inf
    for S in [np.eye(4)] + list(symmetries or []):
        S = np.asarray(S, np.float64)
        Rg = np.asarray(R_gt, np.float64) @ S[:3, :3]
        tg = np.asarray(R_gt, np.float64) @ S[:3, 3] + np.asarray(t_gt, np.float64)
        d = np.linalg.norm(uv_e - project(pts, Rg, tg, K), axis=1)
        err = float(d.mean()) if np.all(np.isfinite(d)) else np.inf
        best = min(best, err)
    return best


def add_s_error(
    R_est: np.ndarray, t_est: np.ndarray, R_gt: np.ndarray, t_gt: np.ndarray, pts: np.ndarray, symmetric: bool,
) -> float:
    """ADD(-S), mm: ADD-S when ``symmetric``, else ADD (Hinterstoisser et al., ACCV 2012)."""
    return adds_error(R_est, t_est, R_gt, t_gt, pts) if symmetric else add_error(R_est, t_est, R_gt, t_gt, pts)


def keypoint_error(
    R_est: np.ndarray, t_est: np.ndarray, R_gt: np.ndarray, t_gt: np.ndarray, pts: np.ndarray, K: np.ndarray,
) -> float:
    """Keypoint error, px: mean distance between keypoints pts (M, 3) mm projected by the two poses.

    The 2D projection error of Brachmann et al. (CVPR 2016) over the object's keypoints, without
    symmetries. Unlike :func:`proj2d_error`, a keypoint behind the camera in either pose is left
    out of the mean rather than making it infinite; inf only when every keypoint is. K: (3, 3).
    """
    pts = np.asarray(pts, np.float64)
    d = np.linalg.norm(project(pts, R_est, t_est, K) - project(pts, R_gt, t_gt, K), axis=1)
    return float(np.nanmean(d)) if np.any(np.isfinite(d)) else math.inf


def sample_points(vertices: np.ndarray, n: int = 1000, seed: int = 0) -> np.ndarray:
    """At most n of the model's vertices (N, 3) mm, chosen with a fixed seed so scores repeat."""
    v = np.asarray(vertices, np.float64)
    if len(v) <= n:
        return v
    idx = np.random.default_rng(seed).choice(len(v), size=n, replace=False)
    return v[np.sort(idx)]
