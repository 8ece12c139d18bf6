"""The result of a pose solve, the solvers' shared constants, and their input checks.

:class:`PoseResult` is what :mod:`tracker.pipeline.solve_lm` (and its numpy twin
:mod:`tracker.pipeline.solve_lm_ref`) and :mod:`tracker.pipeline.solve_ransac` return.
Conventions as in :mod:`tracker.pipeline.solve_lm`: poses are model-to-camera (mm), ``uv`` are
ideal (undistorted) pixels with integer centres.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from tracker.errors import KptrackError

#: Loss name -> code used by the numba core.
LOSSES = {"l2": 0, "huber": 1, "cauchy": 2}
#: Points at or behind this depth (mm, camera frame) are ignored at that pose.
Z_MIN_MM = 1e-6
#: A keypoint is an inlier when its residual is below INLIER_FACTOR * scale_px.
INLIER_FACTOR = 3.0


@dataclass(frozen=True)
class PoseResult:
    """A solved pose and how well it fits.

    R_m2c: (3, 3) float64 rotation; t_m2c: (3,) float64 mm.
    rms: confidence-weighted RMS reprojection error of the inliers, px (inf if none).
    n_inliers: keypoints with residual < 3 * scale_px. inlier_mask: (K,) bool.
    cov: (6, 6) float64 covariance of the left increment (omega rad, upsilon mm); inf * I
      where the pose is not determined (fewer than 3 usable points).
    iterations: LM linearisations performed. converged: the step (or the achievable cost
      decrease) fell below tol before max_iter.
    """

    R_m2c: np.ndarray
    t_m2c: np.ndarray
    rms: float
    n_inliers: int
    inlier_mask: np.ndarray
    cov: np.ndarray
    iterations: int
    converged: bool

    @classmethod
    def _fast(cls, R_m2c, t_m2c, rms, n_inliers, inlier_mask, cov, iterations, converged) -> "PoseResult":
        # The frozen dataclass __init__ sets each field through object.__setattr__ (~1 us in
        # all); the per-frame solver fills the instance dict in one go instead.
        obj = object.__new__(cls)
        obj.__dict__.update(
            R_m2c=R_m2c, t_m2c=t_m2c, rms=float(rms), n_inliers=int(n_inliers), inlier_mask=inlier_mask,
            cov=cov, iterations=int(iterations), converged=bool(converged),
        )
        return obj


_F64 = np.dtype(np.float64)


def _as_f64(a, name: str, shape: tuple) -> np.ndarray:
    """``a`` as a C-contiguous float64 array of ``shape`` (no copy when it already is one)."""
    if type(a) is not np.ndarray or a.dtype is not _F64 or not a.flags.c_contiguous:
        try:
            a = np.ascontiguousarray(a, dtype=np.float64)
        except (TypeError, ValueError) as err:
            raise KptrackError(f"{name}: cannot read as a float array ({err}). Pass a float array of shape {shape}.") from None
    if a.shape != shape:
        if len(shape) == 1 and a.size == shape[0]:
            a = a.reshape(shape)  # e.g. a (3, 1) tvec from OpenCV
        else:
            raise KptrackError(f"{name}: expected shape {shape}, got {a.shape}. Pass a float array of that shape.")
    return a


def _check_inputs(xyz_model, uv, weights, K, R0, t0, loss, scale_px):
    X = xyz_model
    if type(X) is not np.ndarray or X.ndim != 2:
        X = _as_f64(X, "xyz_model", np.shape(X) if np.ndim(X) == 2 else (-1, 3))
    n = X.shape[0]
    if X.shape[1] != 3:
        raise KptrackError(f"xyz_model: expected (K, 3) model points in mm, got shape {X.shape}. Pass one row per keypoint.")
    X = _as_f64(X, "xyz_model", (n, 3))
    uv = _as_f64(uv, "uv", (n, 2))
    w = _as_f64(weights, "weights", (n,))
    Kc = _as_f64(K, "K", (3, 3))
    R0 = _as_f64(R0, "R0", (3, 3))
    t0 = _as_f64(t0, "t0", (3,))
    code = LOSSES.get(loss)
    if code is None:
        raise KptrackError(f"loss: unknown loss {loss!r}. Use one of {sorted(LOSSES)}.")
    if not scale_px > 0:
        raise KptrackError(f"scale_px: must be > 0 pixels, got {scale_px}.")
    return X, uv, w, Kc, R0, t0, code


def pose_std(cov: np.ndarray, point_cam: np.ndarray, free_axis_cam: np.ndarray | None = None) -> dict | None:
    """Standard deviations of a solved pose from its covariance, for the JSONL log and the HUD.

    cov: (6, 6) covariance of the left increment (omega rad, upsilon mm), as in PoseResult.
    point_cam: (3,) mm, the object point whose position is reported (the model origin, or a point
    on a continuous symmetry axis), camera frame; its displacement is ``omega x p + upsilon``.
    free_axis_cam: (3,) unit camera-frame axis of a continuous symmetry, or None: the rotation
    about it is not observable, so it is projected out of the rotation and marked free.
    Returns ``{'rot_deg': [3], 'trans_mm': [3], 'rot_deg_total', 'trans_mm_total', 'free_angle'}``
    (per camera axis; totals are the root of the trace), or None where the pose is undetermined.
    """
    C = np.asarray(cov, np.float64)
    if C.shape != (6, 6) or not np.all(np.isfinite(C)):
        return None
    p = np.asarray(point_cam, np.float64)
    A = np.zeros((3, 6))
    A[:, :3] = -np.array([[0.0, -p[2], p[1]], [p[2], 0.0, -p[0]], [-p[1], p[0], 0.0]])  # -[p]x
    A[:, 3:] = np.eye(3)
    Ct = A @ C @ A.T
    Cw = C[:3, :3]
    if free_axis_cam is not None:
        a = np.asarray(free_axis_cam, np.float64)
        P = np.eye(3) - np.outer(a, a)
        Cw = P @ Cw @ P
    rot = np.degrees(np.sqrt(np.maximum(np.diag(Cw), 0.0)))
    tr = np.sqrt(np.maximum(np.diag(Ct), 0.0))
    return {"rot_deg": [float(x) for x in rot], "trans_mm": [float(x) for x in tr],
            "rot_deg_total": float(np.sqrt(np.sum(rot**2))), "trans_mm_total": float(np.sqrt(np.sum(tr**2))),
            "free_angle": None if free_axis_cam is None else "rotation about the symmetry axis"}
