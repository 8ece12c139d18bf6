"""Rigid-body geometry and camera projection: pure numpy functions over float64 arrays.

Conventions (see the README's Design section):

* 3D points in millimetres; 2D points in pixels with pixel centres at integer coordinates.
* Camera frame as OpenCV: x right, y down, z forward.
* A pose is model-to-camera, ``x_cam = R_m2c @ x_model + t_m2c``; ``R`` is (3, 3) float64,
  ``t`` is (3,) float64 mm.
* Rotation vectors (so(3)) are axis * angle in radians. Quaternions are ``(w, x, y, z)``,
  unit norm, returned with ``w >= 0``.
* Pose increments for the solver are LEFT increments ``delta = (omega, upsilon)``:
  ``R <- so3_exp(omega) @ R``, ``t <- so3_exp(omega) @ t + upsilon``, i.e. a small rigid motion
  applied in the camera frame (Blanco, "A tutorial on SE(3) transformation parameterizations
  and on-manifold optimization", 2010, sec. 10).

Rotation functions accept leading batch dimensions (``(..., 3)`` vectors, ``(..., 3, 3)``
matrices). The matrix-to-quaternion conversion is Shepperd's method ("Quaternion from rotation
matrix", J. Guidance and Control, 1978), which stays accurate for every angle; ``so3_log``
goes through it, so it is robust near 0 and near pi. Uniform random rotations follow Shoemake,
"Uniform random rotations" (Graphics Gems III, 1992). Lens distortion follows OpenCV's model
(Brown-Conrady radial + tangential, rational, thin prism, tilted sensor) and matches
``cv2.projectPoints``.
"""

from __future__ import annotations

import math

import numpy as np

#: Points with camera-frame depth at or below this (mm) do not project; they come back NaN.
MIN_DEPTH_MM = 1e-6

_SMALL_ANGLE = 1e-4  # below this (rad) so3_exp uses Taylor series; error ~ theta^6 / 5040
_DIST_LENGTHS = (0, 4, 5, 8, 12, 14)


# ------------------------------------------------------------------ so(3)
def hat(w: np.ndarray) -> np.ndarray:
    """Skew-symmetric matrix of a vector: ``hat(w) @ v == cross(w, v)``.

    w: (..., 3) float. Returns (..., 3, 3) float64.
    """
    w = np.asarray(w, dtype=np.float64)
    z = np.zeros(w.shape[:-1])
    x, y, zz = w[..., 0], w[..., 1], w[..., 2]
    return np.stack(
        [np.stack([z, -zz, y], -1), np.stack([zz, z, -x], -1), np.stack([-y, x, z], -1)], -2
    )


def so3_exp(w: np.ndarray) -> np.ndarray:
    """Rotation matrix of a rotation vector (Rodrigues' formula).

    w: (..., 3) float, axis * angle, radians. Returns R: (..., 3, 3) float64.
    Taylor series below 1e-4 rad keep it exact to machine precision at and near 0.
    """
    w = np.asarray(w, dtype=np.float64)
    if w.shape == (3,):
        return _so3_exp_single(w)
    th2 = np.sum(w * w, axis=-1)
    th = np.sqrt(th2)
    small = th < _SMALL_ANGLE
    safe = np.where(small, 1.0, th)
    a = np.where(small, 1.0 - th2 / 6.0 + th2 * th2 / 120.0, np.sin(safe) / safe)
    b = np.where(small, 0.5 - th2 / 24.0 + th2 * th2 / 720.0, (1.0 - np.cos(safe)) / (safe * safe))
    W = hat(w)
    return np.eye(3) + a[..., None, None] * W + b[..., None, None] * (W @ W)


def _so3_exp_single(w: np.ndarray) -> np.ndarray:
    """so3_exp for one (3,) vector in Python floats: the per-frame path, ~10x faster than the
    batched numpy one at this size (same formula; tests hold the two equal)."""
    x, y, z = w.tolist()
    th2 = x * x + y * y + z * z
    if th2 < _SMALL_ANGLE * _SMALL_ANGLE:
        a = 1.0 - th2 / 6.0 + th2 * th2 / 120.0
        b = 0.5 - th2 / 24.0 + th2 * th2 / 720.0
    else:
        th = math.sqrt(th2)
        a = math.sin(th) / th
        b = (1.0 - math.cos(th)) / th2
    # R = I + a W + b W^2, with W^2 = w w^T - th2 I
    return np.array(
        [
            [1.0 + b * (x * x - th2), b * x * y - a * z, b * x * z + a * y],
            [b * x * y + a * z, 1.0 + b * (y * y - th2), b * y * z - a * x],
            [b * x * z - a * y, b * y * z + a * x, 1.0 + b * (z * z - th2)],
        ]
    )


def so3_log(R: np.ndarray) -> np.ndarray:
    """Rotation vector of a rotation matrix, the inverse of :func:`so3_exp`.

    R: (..., 3, 3) float, a rotation. Returns w: (..., 3) float64 with ``|w|`` in [0, pi].
    At exactly pi the sign of the axis is ambiguous; the axis returned has its first nonzero
    component positive. Goes through :func:`quat_from_matrix`, so it is accurate near 0 and pi.
    """
    R = np.asarray(R, dtype=np.float64)
    if R.shape == (3, 3):
        w, x, y, z = _quat_from_matrix_single(R)
        n = math.sqrt(x * x + y * y + z * z)
        f = 2.0 / w * (1.0 - n * n / (3.0 * w * w)) if n < 1e-7 else 2.0 * math.atan2(n, w) / n
        return np.array([x * f, y * f, z * f])
    q = quat_from_matrix(R)
    w = q[..., 0]
    v = q[..., 1:]
    n = np.linalg.norm(v, axis=-1)
    small = n < 1e-7
    # theta = 2 atan2(n, w); omega = v * theta / n. For small n, theta / n = 2/w (1 - n^2/(3 w^2)).
    safe_n = np.where(small, 1.0, n)
    safe_w = np.where(small, w, 1.0)  # w > 0.99 wherever n is small
    f = np.where(small, 2.0 / safe_w * (1.0 - n * n / (3.0 * safe_w * safe_w)), 2.0 * np.arctan2(n, w) / safe_n)
    return v * f[..., None]


# ------------------------------------------------------------------ quaternions (w, x, y, z)
def _canonical_quat(q: np.ndarray) -> np.ndarray:
    """Unit quaternion with w >= 0; when w == 0, the first nonzero component positive."""
    q = q / np.linalg.norm(q, axis=-1, keepdims=True)
    first = np.argmax(np.abs(q) > 1e-12, axis=-1)
    sign = np.sign(np.take_along_axis(q, first[..., None], axis=-1))
    sign = np.where(sign == 0, 1.0, sign)
    return q * sign


def quat_from_matrix(R: np.ndarray) -> np.ndarray:
    """Unit quaternion ``(w, x, y, z)`` of a rotation matrix (Shepperd's method).

    R: (..., 3, 3) float, a rotation. Returns q: (..., 4) float64, ``w >= 0``.
    """
    R = np.asarray(R, dtype=np.float64)
    if R.shape == (3, 3):
        return np.array(_quat_from_matrix_single(R))
    if R.shape[-2:] != (3, 3):
        raise ValueError(f"R must be (..., 3, 3), got {R.shape}")
    r00, r01, r02 = R[..., 0, 0], R[..., 0, 1], R[..., 0, 2]
    r10, r11, r12 = R[..., 1, 0], R[..., 1, 1], R[..., 1, 2]
    r20, r21, r22 = R[..., 2, 0], R[..., 2, 1], R[..., 2, 2]
    tr = r00 + r11 + r22
    # Four candidate formulas; each is accurate when its divisor s is the largest.
    s0 = 2.0 * np.sqrt(np.maximum(1.0 + tr, 1e-300))
    s1 = 2.0 * np.sqrt(np.maximum(1.0 + r00 - r11 - r22, 1e-300))
    s2 = 2.0 * np.sqrt(np.maximum(1.0 - r00 + r11 - r22, 1e-300))
    s3 = 2.0 * np.sqrt(np.maximum(1.0 - r00 - r11 + r22, 1e-300))
    cands = np.stack(
        [
            np.stack([0.25 * s0, (r21 - r12) / s0, (r02 - r20) / s0, (r10 - r01) / s0], -1),
            np.stack([(r21 - r12) / s1, 0.25 * s1, (r01 + r10) / s1, (r02 + r20) / s1], -1),
            np.stack([(r02 - r20) / s2, (r01 + r10) / s2, 0.25 * s2, (r12 + r21) / s2], -1),
            np.stack([(r10 - r01) / s3, (r02 + r20) / s3, (r12 + r21) / s3, 0.25 * s3], -1),
        ],
        -2,
    )
    pick = np.argmax(np.stack([tr, r00, r11, r22], -1), axis=-1)
    q = np.take_along_axis(cands, pick[..., None, None], axis=-2)[..., 0, :]
    return _canonical_quat(q)


def _quat_from_matrix_single(R: np.ndarray) -> tuple[float, float, float, float]:
    """quat_from_matrix for one (3, 3) matrix in Python floats (the per-frame path); same
    branches, tie-breaking and sign convention as the batched code."""
    (r00, r01, r02), (r10, r11, r12), (r20, r21, r22) = R.tolist()
    tr = r00 + r11 + r22
    m = max(tr, r00, r11, r22)
    if m == tr:
        s = 2.0 * math.sqrt(max(1.0 + tr, 1e-300))
        q = (0.25 * s, (r21 - r12) / s, (r02 - r20) / s, (r10 - r01) / s)
    elif m == r00:
        s = 2.0 * math.sqrt(max(1.0 + r00 - r11 - r22, 1e-300))
        q = ((r21 - r12) / s, 0.25 * s, (r01 + r10) / s, (r02 + r20) / s)
    elif m == r11:
        s = 2.0 * math.sqrt(max(1.0 - r00 + r11 - r22, 1e-300))
        q = ((r02 - r20) / s, (r01 + r10) / s, 0.25 * s, (r12 + r21) / s)
    else:
        s = 2.0 * math.sqrt(max(1.0 - r00 - r11 + r22, 1e-300))
        q = ((r10 - r01) / s, (r02 + r20) / s, (r12 + r21) / s, 0.25 * s)
    n = math.sqrt(sum(c * c for c in q))
    q = tuple(c / n for c in q)
    lead = next((c for c in q if abs(c) > 1e-12), 1.0)
    return q if lead > 0 else tuple(-c for c in q)


def matrix_from_quat(q: np.ndarray) -> np.ndarray:
    """Rotation matrix of a quaternion ``(w, x, y, z)``; q need not be unit (it is normalised).

    q: (..., 4) float. Returns R: (..., 3, 3) float64. Raises ValueError for a zero quaternion.
    """
    q = np.asarray(q, dtype=np.float64)
    n = np.linalg.norm(q, axis=-1, keepdims=True)
    if np.any(n < 1e-12):
        raise ValueError("matrix_from_quat: zero quaternion has no rotation")
    w, x, y, z = np.moveaxis(q / n, -1, 0)
    return np.stack(
        [
            np.stack([1 - 2 * (y * y + z * z), 2 * (x * y - w * z), 2 * (x * z + w * y)], -1),
            np.stack([2 * (x * y + w * z), 1 - 2 * (x * x + z * z), 2 * (y * z - w * x)], -1),
            np.stack([2 * (x * z - w * y), 2 * (y * z + w * x), 1 - 2 * (x * x + y * y)], -1),
        ],
        -2,
    )


def quat_multiply(q1: np.ndarray, q2: np.ndarray) -> np.ndarray:
    """Hamilton product ``q1 * q2`` (the rotation q2 first, then q1).

    q1, q2: (..., 4) float ``(w, x, y, z)``. Returns (..., 4) float64 (not re-normalised).
    """
    w1, x1, y1, z1 = np.moveaxis(np.asarray(q1, dtype=np.float64), -1, 0)
    w2, x2, y2, z2 = np.moveaxis(np.asarray(q2, dtype=np.float64), -1, 0)
    return np.stack(
        [
            w1 * w2 - x1 * x2 - y1 * y2 - z1 * z2,
            w1 * x2 + x1 * w2 + y1 * z2 - z1 * y2,
            w1 * y2 - x1 * z2 + y1 * w2 + z1 * x2,
            w1 * z2 + x1 * y2 - y1 * x2 + z1 * w2,
        ],
        -1,
    )


def rotation_slerp(R0: np.ndarray, R1: np.ndarray, alpha: float) -> np.ndarray:
    """Geodesic interpolation between two rotations: ``R0 @ exp(alpha * log(R0^T R1))``.

    R0, R1: (3, 3) float. alpha: 0 gives R0, 1 gives R1. Returns (3, 3) float64.
    """
    R0 = np.asarray(R0, dtype=np.float64)
    return R0 @ so3_exp(alpha * so3_log(R0.T @ np.asarray(R1, dtype=np.float64)))


# ------------------------------------------------------------------ SE(3)
def se3_compose(R1: np.ndarray, t1: np.ndarray, R2: np.ndarray, t2: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Composition ``T1 * T2``: the map ``x -> R1 (R2 x + t2) + t1``.

    R1, R2: (3, 3) float; t1, t2: (3,) float mm. Returns (R (3, 3), t (3,)) float64.
    """
    R1 = np.asarray(R1, dtype=np.float64)
    return R1 @ np.asarray(R2, dtype=np.float64), R1 @ np.asarray(t2, dtype=np.float64) + np.asarray(t1, dtype=np.float64)


def se3_invert(R: np.ndarray, t: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Inverse rigid transform: ``x -> R^T (x - t)``.

    R: (3, 3) float; t: (3,) float mm. Returns (R^T (3, 3), -R^T t (3,)) float64.
    """
    Rt = np.asarray(R, dtype=np.float64).T
    return Rt.copy(), -Rt @ np.asarray(t, dtype=np.float64)


def se3_to_matrix(R: np.ndarray, t: np.ndarray) -> np.ndarray:
    """(3, 3) rotation and (3,) translation -> (4, 4) float64 homogeneous transform."""
    T = np.eye(4)
    T[:3, :3] = R
    T[:3, 3] = t
    return T


def se3_from_matrix(T: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """(4, 4) homogeneous transform -> (R (3, 3), t (3,)) float64 copies."""
    T = np.asarray(T, dtype=np.float64)
    if T.shape != (4, 4):
        raise ValueError(f"T must be (4, 4), got {T.shape}")
    return T[:3, :3].copy(), T[:3, 3].copy()


def transform(R: np.ndarray, t: np.ndarray, xyz: np.ndarray) -> np.ndarray:
    """Apply a rigid transform to points: ``R @ x + t`` for each row.

    R: (3, 3) float; t: (3,) float mm; xyz: (N, 3) float mm. Returns (N, 3) float64 mm.
    """
    xyz = np.asarray(xyz, dtype=np.float64).reshape(-1, 3)
    return xyz @ np.asarray(R, dtype=np.float64).T + np.asarray(t, dtype=np.float64)


# ------------------------------------------------------------------ projection
def _check_dist(dist: np.ndarray | None) -> np.ndarray:
    d = np.zeros(0) if dist is None else np.asarray(dist, dtype=np.float64).ravel()
    if d.size not in _DIST_LENGTHS:
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


# ------------------------------------------------------------------ errors, sampling, views
def rotation_error_deg(R1: np.ndarray, R2: np.ndarray) -> float | np.ndarray:
    """Geodesic angle between rotations, degrees in [0, 180].

    R1, R2: (..., 3, 3) float. Returns a float (or (...,) array for batches). Computed as
    ``|so3_log(R1^T R2)|`` rather than ``arccos((tr - 1) / 2)``, which loses all precision
    below ~1e-4 degrees.
    """
    R1 = np.asarray(R1, dtype=np.float64)
    R2 = np.asarray(R2, dtype=np.float64)
    ang = np.degrees(np.linalg.norm(so3_log(np.swapaxes(R1, -1, -2) @ R2), axis=-1))
    return float(ang) if np.ndim(ang) == 0 else ang


def translation_error(t1: np.ndarray, t2: np.ndarray) -> float | np.ndarray:
    """Euclidean distance between translations. t1, t2: (..., 3) float mm. Returns mm."""
    d = np.linalg.norm(np.asarray(t1, dtype=np.float64) - np.asarray(t2, dtype=np.float64), axis=-1)
    return float(d) if np.ndim(d) == 0 else d


def random_rotation(rng: np.random.Generator | int | None = None, size: int | None = None) -> np.ndarray:
    """Rotation(s) drawn uniformly (Haar measure) from SO(3).

    rng: a numpy Generator, a seed, or None. size: None for one (3, 3) matrix, or n for
    (n, 3, 3). A normalised 4D Gaussian is a uniform unit quaternion (Shoemake 1992).
    """
    rng = np.random.default_rng(rng)
    q = rng.standard_normal((1 if size is None else int(size), 4))
    R = matrix_from_quat(q)
    return R[0] if size is None else R


def look_at(
    eye: np.ndarray, target: np.ndarray, up: np.ndarray = (0.0, 0.0, 1.0), roll_deg: float = 0.0
) -> tuple[np.ndarray, np.ndarray]:
    """Model-to-camera pose of a camera at ``eye`` looking at ``target`` (both in model coords, mm).

    The optical axis (+z) points from eye to target, and ``up`` (model frame) appears upward
    in the image (OpenCV's image y points down, so camera -y is the component of ``up``
    orthogonal to the optical axis). ``roll_deg`` then turns the view about the optical axis;
    positive turns the image content clockwise on screen. If ``up`` is parallel to the view
    direction, the model axis least aligned with the view direction is used instead.

    eye, target, up: (3,) float. Returns (R_m2c (3, 3), t_m2c (3,) mm) float64, with
    ``transform(R_m2c, t_m2c, target)`` on the +z axis at distance ``|target - eye|``.
    """
    eye = np.asarray(eye, dtype=np.float64)
    target = np.asarray(target, dtype=np.float64)
    f = target - eye
    dist = np.linalg.norm(f)
    if not dist > 1e-12:
        raise ValueError("look_at: eye and target coincide")
    f = f / dist
    up = np.asarray(up, dtype=np.float64)
    down = -(up - f * (up @ f))
    if np.linalg.norm(down) < 1e-9 * max(1.0, np.linalg.norm(up)):
        alt = np.eye(3)[np.argmin(np.abs(f))]
        down = -(alt - f * (alt @ f))
    y = down / np.linalg.norm(down)
    x = np.cross(y, f)
    R = np.stack([x, y, f])  # rows: camera axes in model coords
    if roll_deg:
        R = so3_exp(np.array([0.0, 0.0, math.radians(roll_deg)])) @ R
    return R, -R @ eye
