"""The cold start: SQPnP (Terzakis & Lourakis, ECCV 2020; OpenCV ``SOLVEPNP_SQPNP``) inside
OpenCV's RANSAC on the confident keypoints, refined by the robust LM of
:mod:`tracker.pipeline.solve_lm`; and :func:`solve_pose`, which picks warm or cold."""

from __future__ import annotations

import cv2
import numpy as np

from tracker.errors import KptrackError
from tracker.pipeline.pose_result import PoseResult, _as_f64
from tracker.pipeline.solve_lm import solve_lm


def solve_pnp_ransac(
    xyz_model: np.ndarray,
    uv: np.ndarray,
    weights: np.ndarray,
    K: np.ndarray,
    *,
    min_conf: float = 0.3,
    reproj_px: float = 5.0,
    iters: int = 100,
    seed: int = 0,
    loss: str = "huber",
    scale_px: float = 3.0,
) -> PoseResult | None:
    """Cold-start pose: SQPnP inside OpenCV's RANSAC on the confident keypoints, then robust LM.

    xyz_model: (K, 3) mm; uv: (K, 2) ideal pixels; weights: (K,) confidences; K: (3, 3).
    Keypoints with a finite uv and weight >= min_conf enter RANSAC (reprojection threshold
    reproj_px, iters iterations; ``seed`` seeds OpenCV's global RNG, so the result is repeatable).
    The LM refine then uses the RANSAC inliers with their confidences (the others get weight 0).
    Returns None with fewer than 4 such keypoints or when OpenCV finds no pose.
    """
    X = np.asarray(xyz_model, dtype=np.float64)
    uvc = np.asarray(uv, dtype=np.float64)
    w = np.asarray(weights, dtype=np.float64)
    if X.ndim != 2 or X.shape[1] != 3 or uvc.shape != (X.shape[0], 2) or w.shape != (X.shape[0],):
        raise KptrackError(
            f"xyz_model/uv/weights: expected (K, 3), (K, 2), (K,), got {X.shape}, {uvc.shape}, {w.shape}. Pass one row per keypoint."
        )
    Kc = _as_f64(K, "K", (3, 3))
    with np.errstate(invalid="ignore"):
        sel = np.isfinite(X).all(1) & np.isfinite(uvc).all(1) & np.isfinite(w) & (w >= min_conf)
    idx = np.flatnonzero(sel)
    if idx.size < 4:
        return None
    cv2.setRNGSeed(int(seed))
    try:
        ok, rvec, tvec, inliers = cv2.solvePnPRansac(
            X[idx], uvc[idx], Kc, None, iterationsCount=int(iters), reprojectionError=float(reproj_px),
            confidence=0.999, flags=cv2.SOLVEPNP_SQPNP,
        )
    except cv2.error:
        return None
    if not ok or inliers is None or len(inliers) < 4 or not np.all(np.isfinite(tvec)):
        return None
    R0, _ = cv2.Rodrigues(rvec)
    w_lm = np.zeros_like(w)
    keep = idx[np.asarray(inliers).ravel()]
    w_lm[keep] = w[keep]
    return solve_lm(X, uvc, w_lm, Kc, R0, tvec.ravel(), loss=loss, scale_px=scale_px)


def solve_pose(
    xyz_model: np.ndarray,
    uv: np.ndarray,
    weights: np.ndarray,
    K: np.ndarray,
    R0: np.ndarray | None = None,
    t0: np.ndarray | None = None,
    **kwargs,
) -> PoseResult | None:
    """Warm start (:func:`solve_lm` from R0, t0) when R0 is given, else cold start
    (:func:`solve_pnp_ransac`). kwargs go to the chosen solver. Shapes as in :func:`solve_lm`."""
    if R0 is not None:
        if t0 is None:
            raise KptrackError("t0: a warm start needs both R0 and t0. Pass the previous pose's translation too.")
        return solve_lm(xyz_model, uv, weights, K, R0, t0, **kwargs)
    return solve_pnp_ransac(xyz_model, uv, weights, K, **kwargs)
