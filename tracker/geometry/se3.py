"""Rigid transforms SE(3): compose, invert, 4x4 matrices, applying a pose to points, look-at.

Pure numpy over float64 arrays. 3D points in millimetres, camera frame as OpenCV (x right,
y down, z forward). A pose is model-to-camera, ``x_cam = R_m2c @ x_model + t_m2c``; ``R`` is
(3, 3) float64, ``t`` is (3,) float64 mm (BOP's ``cam_R_m2c``, ``cam_t_m2c``).

Pose increments for the solver are LEFT increments ``delta = (omega, upsilon)``:
``R <- so3_exp(omega) @ R``, ``t <- so3_exp(omega) @ t + upsilon``, i.e. a small rigid motion
applied in the camera frame (Blanco, "A tutorial on SE(3) transformation parameterizations
and on-manifold optimization", 2010, sec. 10); see
:func:`tracker.geometry.projection.project_jacobian`.
"""

from __future__ import annotations

import math

import numpy as np

from tracker.geometry.so3 import so3_exp


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


def translation_error(t1: np.ndarray, t2: np.ndarray) -> float | np.ndarray:
    """Euclidean distance between translations. t1, t2: (..., 3) float mm. Returns mm."""
    d = np.linalg.norm(np.asarray(t1, dtype=np.float64) - np.asarray(t2, dtype=np.float64), axis=-1)
    return float(d) if np.ndim(d) == 0 else d


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
