"""Pose accuracy metrics: ADD, ADD-S, MSSD, MSPD, 2D projection and keypoint errors.

Every error function shares bop_toolkit's signature ``(R_est, t_est, R_gt, t_gt, pts, ...)`` and
is the one home of its formula: ``kptrack eval``, ``kptrack bench`` and ``kptrack demo`` all call
these (rotation and translation errors live in :mod:`tracker.geometry`).

* ADD (Hinterstoisser et al., "Model Based Training, Detection and Pose Estimation of
  Texture-Less 3D Objects in Heavily Cluttered Scenes", ACCV 2012): mean distance between the
  model points moved by the estimated and by the ground-truth pose. A pose is correct when
  ADD < 0.1 x the object diameter.
* ADD-S (same paper; the name from Xiang et al., PoseCNN, RSS 2018): for symmetric objects, the
  mean distance from each ground-truth point to the *closest* estimated point (as bop_toolkit's
  ``adi``). ADD-S <= ADD.
* MSSD and MSPD (Hodaň et al., "BOP Challenge 2020 on 6D Object Localization", ECCVW 2020; BOP
  2019 onwards): the *maximum* 3D (mm) or projected (px) distance of the model points, minimised
  over the object's symmetry transforms ``S`` applied to the ground truth (``R_gt S_R``,
  ``R_gt S_t + t_gt``), as bop_toolkit's ``mssd`` / ``mspd``. ``syms``: (M, 4, 4) from
  :func:`tracker.objects.symmetry.symmetry_transforms` (identity included; continuous symmetries
  discretised).
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

from tracker.geometry import project, project_cam, transform

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
    """ADD-S, mm: mean over ground-truth points of the distance to the closest estimated point.

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
    e2 = (e * e).sum(1)
    mins = np.empty(len(g))
    for i in range(0, len(g), chunk):
        gc = g[i:i + chunk]
        d2 = (gc * gc).sum(1)[:, None] - 2.0 * gc @ e.T + e2[None, :]
        mins[i:i + chunk] = np.sqrt(np.maximum(d2.min(1), 0.0))
    return float(mins.mean())


def _gt_under_symmetries(R_gt: np.ndarray, t_gt: np.ndarray, pts: np.ndarray, syms) -> np.ndarray:
    """(M, N, 3) mm: pts (N, 3) under the ground truth composed with each symmetry (M, 4, 4)."""
    S = np.asarray(syms, np.float64).reshape(-1, 4, 4)
    R_gt, t_gt = np.asarray(R_gt, np.float64), np.asarray(t_gt, np.float64)
    Rs = R_gt @ S[:, :3, :3]  # (M, 3, 3): the GT composed with each symmetry
    ts = S[:, :3, 3] @ R_gt.T + t_gt  # (M, 3)
    return np.matmul(Rs, pts.T).transpose(0, 2, 1) + ts[:, None, :]


def mssd_error(R_est: np.ndarray, t_est: np.ndarray, R_gt: np.ndarray, t_gt: np.ndarray, pts: np.ndarray, syms) -> float:
    """MSSD, mm: min over symmetries S of max_p ||(R_est p + t_est) - (R_gt (S p) + t_gt)||.

    Hodaň et al., BOP Challenge 2019/2020 (bop_toolkit ``pose_error.mssd``). syms: (M, 4, 4)
    model-frame symmetry transforms, identity included (else only the listed ones count)."""
    pts = np.asarray(pts, np.float64)
    e = transform(R_est, t_est, pts)
    return float(np.linalg.norm(_gt_under_symmetries(R_gt, t_gt, pts, syms) - e[None], axis=2).max(1).min())


def mspd_error(R_est: np.ndarray, t_est: np.ndarray, R_gt: np.ndarray, t_gt: np.ndarray, K: np.ndarray, pts: np.ndarray,
               syms) -> float:
    """MSPD, px: min over symmetries S of max_p ||pi(R_est p + t_est) - pi(R_gt (S p) + t_gt)||.

    Hodaň et al., BOP Challenge 2019/2020 (bop_toolkit ``pose_error.mspd``, same argument order:
    K (3, 3) before pts). A point behind the camera makes that symmetry's error infinite."""
    return mspd_from_distances(projected_distances(R_est, t_est, R_gt, t_gt, K, pts, np.asarray(syms, np.float64).reshape(-1, 4, 4)))


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
    syms = np.concatenate([np.eye(4)[None], np.asarray(symmetries if symmetries is not None else [], np.float64).reshape(-1, 4, 4)])
    return proj2d_from_distances(projected_distances(R_est, t_est, R_gt, t_gt, K, pts, syms))


def proj2d_from_distances(d: np.ndarray) -> float:
    """The 2D projection error, px, from :func:`projected_distances` (M, N): min over symmetries of the mean."""
    return float(_finite_or_inf(d.mean(1)).min())


def mspd_from_distances(d: np.ndarray) -> float:
    """MSPD, px, from :func:`projected_distances` (M, N): min over symmetries of the max."""
    return float(_finite_or_inf(d.max(1)).min())


def projected_distances(R_est, t_est, R_gt, t_gt, K, pts, syms) -> np.ndarray:
    """(M, N) px: distance between each point (N, 3) projected by the estimate and by the GT
    composed with each symmetry (M, 4, 4); NaN where a point is behind the camera in either pose.
    MSPD and the 2D projection error both reduce it (:func:`mspd_from_distances`,
    :func:`proj2d_from_distances`), so a scorer computing both projects once."""
    pts = np.asarray(pts, np.float64)
    uv_e = project(pts, R_est, t_est, K)
    g = _gt_under_symmetries(R_gt, t_gt, pts, syms)
    m, n = g.shape[:2]
    uv_g = project_cam(g.reshape(-1, 3), K).reshape(m, n, 2)
    return np.linalg.norm(uv_g - uv_e[None], axis=2)


def _finite_or_inf(x: np.ndarray) -> np.ndarray:
    """x with NaN (a point behind the camera) turned into inf."""
    return np.where(np.isfinite(x), x, np.inf)


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
