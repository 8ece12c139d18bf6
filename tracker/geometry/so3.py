"""Rotations: so(3) exp/log, unit quaternions, slerp, uniform random rotations, angular error.

Pure numpy over float64 arrays. Exp, log, the quaternion conversions and the angular error
accept leading batch dimensions (``(..., 3)`` rotation vectors, ``(..., 3, 3)`` matrices,
``(..., 4)`` quaternions); a single (3,) / (3, 3) input to exp / log takes a Python-float fast
path (the per-frame case), held equal to the batched code by the tests.

* Rotation vectors (so(3)) are axis * angle in radians; :func:`so3_exp` is Rodrigues' formula.
* Quaternions are ``(w, x, y, z)``, unit norm, returned with ``w >= 0`` (when ``w == 0``, the
  first nonzero component positive).
* The matrix-to-quaternion conversion is Shepperd's method ("Quaternion from rotation
  matrix", J. Guidance and Control, 1978), which stays accurate for every angle;
  :func:`so3_log` goes through it, so it is robust near 0 and near pi.
* Uniform random rotations follow Shoemake, "Uniform random rotations" (Graphics Gems III, 1992).

The pose solver in :mod:`tracker.pipeline.pose` keeps a numba twin of :func:`so3_exp` inside
its kernel (numba cannot call numpy code like this); it is the one allowed second copy.
"""

from __future__ import annotations

import math

import numpy as np

_SMALL_ANGLE = 1e-4  # below this (rad) so3_exp uses Taylor series; error ~ theta^6 / 5040


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


# ------------------------------------------------------------------ interpolation, error, sampling
def rotation_slerp(R0: np.ndarray, R1: np.ndarray, alpha: float) -> np.ndarray:
    """Geodesic interpolation between two rotations: ``R0 @ exp(alpha * log(R0^T R1))``.

    R0, R1: (3, 3) float. alpha: 0 gives R0, 1 gives R1. Returns (3, 3) float64.
    """
    R0 = np.asarray(R0, dtype=np.float64)
    return R0 @ so3_exp(alpha * so3_log(R0.T @ np.asarray(R1, dtype=np.float64)))


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


def random_rotation(rng: np.random.Generator | int | None = None, size: int | None = None) -> np.ndarray:
    """Rotation(s) drawn uniformly (Haar measure) from SO(3).

    rng: a numpy Generator, a seed, or None. size: None for one (3, 3) matrix, or n for
    (n, 3, 3). A normalised 4D Gaussian is a uniform unit quaternion (Shoemake 1992).
    """
    rng = np.random.default_rng(rng)
    q = rng.standard_normal((1 if size is None else int(size), 4))
    R = matrix_from_quat(q)
    return R[0] if size is None else R
