"""Camera projection: OpenCV lens distortion, pinhole projection and its pose Jacobian.

The one home of the projection formula: :class:`tracker.camera.Camera`, the evaluation and
the data writers all call :func:`project`. Pure numpy over float64 arrays.

* 3D points in millimetres; 2D points in pixels with pixel centres at integer coordinates
  (OpenCV). Camera frame as OpenCV: x right, y down, z forward.
* A pose is model-to-camera, ``x_cam = R_m2c @ x_model + t_m2c`` (see :mod:`tracker.geometry.se3`).
* ``K`` is (3, 3) ``[[fx, s, cx], [0, fy, cy], [0, 0, 1]]``; the skew ``s`` is used.
* Lens distortion follows OpenCV's model (Brown-Conrady radial + tangential, rational, thin
  prism, tilted sensor) and matches ``cv2.projectPoints``.
* Points at camera depth ``z <= MIN_DEPTH_MM`` do not project; they come back NaN.
* :func:`project_jacobian` is taken w.r.t. a LEFT pose increment ``(omega, upsilon)``
  (Blanco, "A tutorial on SE(3) transformation parameterizations and on-manifold
  optimization", 2010, sec. 10).
"""

from __future__ import annotations

import math

import numpy as np

from tracker.geometry.se3 import transform
from tracker.geometry.so3 import hat

#: Points with camera-frame depth at or below this (mm) do not project; they come back NaN.
MIN_DEPTH_MM = 1e-6
#: Accepted lengths of an OpenCV distortion vector (see :func:`distort` for the order).
DIST_LENGTHS = (0, 4, 5, 8, 12, 14)


def _check_dist(dist: np.ndarray | None) -> np.ndarray:
    d = np.zeros(0) if dist is None else np.asarray(dist, dtype=np.float64).ravel()
    if d.size not in DIST_LENGTHS:
        raise ValueError(f"distortion must have 0, 4, 5, 8, 12 or 14 coefficients (OpenCV order), got {d.size}")
    return d


def _tilt_matrix(tau_x: float, tau_y: float) -> np.ndarray:
    """OpenCV's tilted-sensor projection (Scheimpflug), as in ``computeTiltProjectionMatrix``."""
    cx, sx, cy, sy = math.cos(tau_x), math.sin(tau_x), math.cos(tau_y), math.sin(tau_y)
    rot_x = np.array([[1, 0, 0], [0, cx, sx], [0, -sx, cx]], dtype=np.float64)
    rot_y = np.array([[cy, 0, -sy], [0, 1, 0], [sy, 0, cy]], dtype=np.float64)
    rxy = rot_y @ rot_x
    proj_z = np.array([[rxy[2, 2], 0, -rxy[0, 2]], [0, rxy[2, 2], -rxy[1, 2]], [0, 0, 1]], dtype=np.float64)
    return proj_z @ rxy


def distort(xy: np.ndarray, dist: np.ndarray | None) -> np.ndarray:
    """Apply OpenCV lens distortion to normalised image coordinates.

    xy: (N, 2) float, ideal normalised coordinates ``(X/Z, Y/Z)``.
    dist: None or (n,) float, n in {0, 4, 5, 8, 12, 14}, OpenCV order
    ``k1, k2, p1, p2[, k3[, k4, k5, k6[, s1, s2, s3, s4[, tau_x, tau_y]]]]``.
    Returns (N, 2) float64 distorted normalised coordinates.
    """
    xy = np.asarray(xy, dtype=np.float64).reshape(-1, 2)
    d = _check_dist(dist)
    if d.size == 0 or not np.any(d):
        return xy.copy()
    # Python floats, not numpy scalars: this runs per frame on a handful of points, where numpy
    # scalar arithmetic would cost more than the array work. Absent terms are skipped.
    k1, k2, p1, p2, k3, k4, k5, k6, s1, s2, s3, s4, tau_x, tau_y = d.tolist() + [0.0] * (14 - d.size)
    x, y = xy[:, 0], xy[:, 1]
    r2 = x * x + y * y
    radial = 1.0 + r2 * (k1 + r2 * (k2 + r2 * k3))
    if k4 or k5 or k6:
        radial = radial / (1.0 + r2 * (k4 + r2 * (k5 + r2 * k6)))
    xy2 = 2.0 * x * y
    out = np.empty_like(xy)
    out[:, 0] = x * radial + p1 * xy2 + p2 * (r2 + 2.0 * x * x)
    out[:, 1] = y * radial + p1 * (r2 + 2.0 * y * y) + p2 * xy2
    if s1 or s2 or s3 or s4:
        r4 = r2 * r2
        out[:, 0] += s1 * r2 + s2 * r4
        out[:, 1] += s3 * r2 + s4 * r4
    if tau_x or tau_y:
        v = np.column_stack([out, np.ones(len(out))]) @ _tilt_matrix(tau_x, tau_y).T
        out = v[:, :2] / v[:, 2:3]
    return out


def project_cam(xyz_cam: np.ndarray, K: np.ndarray, dist: np.ndarray | None = None) -> np.ndarray:
    """Project camera-frame points to pixels.

    xyz_cam: (N, 3) float mm, camera frame. K: (3, 3) float intrinsics. dist: see :func:`distort`.
    Returns uv: (N, 2) float64 pixels; rows with ``z <= MIN_DEPTH_MM`` are NaN.
    Uses the full first row of K (skew included); ``cv2.projectPoints`` ignores skew, so the
    two agree whenever ``K[0, 1] == 0``.
    """
    xyz = np.asarray(xyz_cam, dtype=np.float64).reshape(-1, 3)
    K = np.asarray(K, dtype=np.float64)
    z = xyz[:, 2]
    ok = z > MIN_DEPTH_MM
    zs = np.where(ok, z, 1.0)
    xy = xyz[:, :2] / zs[:, None]
    if dist is not None:
        xy = distort(xy, dist)
    fx, s, cx, fy, cy = K[0, 0], K[0, 1], K[0, 2], K[1, 1], K[1, 2]
    uv = np.empty_like(xy)
    uv[:, 0] = fx * xy[:, 0] + s * xy[:, 1] + cx
    uv[:, 1] = fy * xy[:, 1] + cy
    uv[~ok] = np.nan
    return uv


def project(
    xyz_model: np.ndarray, R: np.ndarray, t: np.ndarray, K: np.ndarray, dist: np.ndarray | None = None
) -> np.ndarray:
    """Project model points to pixels through pose (R, t) = model-to-camera.

    xyz_model: (N, 3) float mm. R: (3, 3); t: (3,) mm. K: (3, 3). dist: None or OpenCV
    coefficients (see :func:`distort`). Returns uv: (N, 2) float64 pixels, NaN for points with
    camera depth ``z <= 1e-6`` mm (behind or on the camera plane).
    """
    return project_cam(transform(R, t, xyz_model), K, dist)


def project_jacobian(xyz_model: np.ndarray, R: np.ndarray, t: np.ndarray, K: np.ndarray) -> np.ndarray:
    """Jacobian of the pinhole projection w.r.t. a LEFT pose increment.

    The increment is ``delta = (omega (3), upsilon (3))`` with ``R <- so3_exp(omega) @ R``,
    ``t <- so3_exp(omega) @ t + upsilon``, so the camera-frame point moves as
    ``X <- so3_exp(omega) @ X + upsilon`` and ``dX/d delta = [-hat(X) | I]``.

    xyz_model: (N, 3) float mm. R: (3, 3); t: (3,) mm. K: (3, 3) (pinhole, no distortion: the
    solver works on undistorted pixels). Returns J: (N, 2, 6) float64, pixels per radian
    (columns 0-2) and pixels per mm (columns 3-5); NaN rows where ``z <= 1e-6`` mm.
    """
    X = transform(R, t, xyz_model)
    K = np.asarray(K, dtype=np.float64)
    fx, s, fy = K[0, 0], K[0, 1], K[1, 1]
    x, y, z = X[:, 0], X[:, 1], X[:, 2]
    ok = z > MIN_DEPTH_MM
    iz = 1.0 / np.where(ok, z, 1.0)
    # d(u, v)/dX for u = fx X/Z + s Y/Z + cx, v = fy Y/Z + cy
    dp = np.zeros((X.shape[0], 2, 3))
    dp[:, 0, 0] = fx * iz
    dp[:, 0, 1] = s * iz
    dp[:, 0, 2] = -(fx * x + s * y) * iz * iz
    dp[:, 1, 1] = fy * iz
    dp[:, 1, 2] = -fy * y * iz * iz
    dX = np.concatenate([-hat(X), np.broadcast_to(np.eye(3), (X.shape[0], 3, 3))], axis=-1)
    J = dp @ dX
    J[~ok] = np.nan
    return J

