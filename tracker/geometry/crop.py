"""Crop affines and the heatmap coordinate convention, shared end to end.

One convention is used everywhere (target encoding, augmentation, decoding, mapping back):

* Pixel centres sit at integer coordinates (OpenCV). A crop is ``INPUT_SIZE`` x ``INPUT_SIZE``
  pixels whose centre is at ``(INPUT_SIZE - 1) / 2``.
* A crop affine ``A: (2, 3) float64`` maps frame pixels to crop pixels, ``q = A @ [u, v, 1]``.
  It is built from a box centre ``c`` (frame px), a box side ``s`` (frame px) and an in-plane
  rotation: ``q = (INPUT_SIZE / s) * Rot(theta) @ (p - c) + (INPUT_SIZE - 1) / 2``.
  ``cv2.warpAffine(frame, A, (INPUT_SIZE, INPUT_SIZE))`` produces the crop.
* Crop pixels map to heatmap cells with the unbiased data processing (UDP) convention of
  Huang et al., "The Devil is in the Details: Delving into Unbiased Data Processing for Human
  Pose Estimation" (CVPR 2020): the crop's extreme pixel centres map to the heatmap's extreme
  cell centres, ``h = q * (HEATMAP_SIZE - 1) / (INPUT_SIZE - 1)``, and back with the exact
  inverse. So a 256 px crop maps to 64 cells by one affine, the same both ways.
"""

from __future__ import annotations

import math

import numpy as np

INPUT_SIZE = 256
HEATMAP_SIZE = 64


def crop_to_heatmap_scale(input_size: int = INPUT_SIZE, heatmap_size: int = HEATMAP_SIZE) -> float:
    """Scale factor from crop pixels to heatmap cells (UDP): ``(H - 1) / (I - 1)``."""
    return (heatmap_size - 1) / (input_size - 1)


def crop_to_heatmap(q: np.ndarray, input_size: int = INPUT_SIZE, heatmap_size: int = HEATMAP_SIZE) -> np.ndarray:
    """Map crop pixel coordinates to heatmap cell coordinates.

    q: (..., 2) float, crop pixels. Returns (..., 2) float64, heatmap cells.
    """
    return np.asarray(q, dtype=np.float64) * crop_to_heatmap_scale(input_size, heatmap_size)


def heatmap_to_crop(h: np.ndarray, input_size: int = INPUT_SIZE, heatmap_size: int = HEATMAP_SIZE) -> np.ndarray:
    """Inverse of :func:`crop_to_heatmap`. h: (..., 2) heatmap cells -> (..., 2) float64 crop pixels."""
    return np.asarray(h, dtype=np.float64) / crop_to_heatmap_scale(input_size, heatmap_size)


def crop_affine(center: np.ndarray, side: float, rotation_rad: float = 0.0, out_size: int = INPUT_SIZE) -> np.ndarray:
    """Affine from frame pixels to a square crop.

    center: (2,) float, box centre in frame pixels. side: box side in frame pixels (> 0).
    rotation_rad: in-plane rotation applied to the content (counter-clockwise in the image).
    Returns A: (2, 3) float64 with ``q = A[:, :2] @ p + A[:, 2]``.
    """
    if not side > 0:
        raise ValueError(f"crop side must be > 0, got {side}")
    s = out_size / float(side)
    c, sn = math.cos(rotation_rad), math.sin(rotation_rad)
    # Image y points down, so a counter-clockwise visual rotation by theta is [[c, s], [-s, c]].
    M = s * np.array([[c, sn], [-sn, c]], dtype=np.float64)
    half = (out_size - 1) / 2.0
    t = np.array([half, half]) - M @ np.asarray(center, dtype=np.float64)
    return np.hstack([M, t[:, None]])


def letterbox_affine(width: int, height: int, out_size: int = INPUT_SIZE) -> np.ndarray:
    """Affine that fits a whole ``width`` x ``height`` frame into a square crop, centred, aspect kept."""
    side = float(max(width, height))
    return crop_affine(np.array([(width - 1) / 2.0, (height - 1) / 2.0]), side, 0.0, out_size)


def invert_affine(A: np.ndarray) -> np.ndarray:
    """Inverse of a (2, 3) affine, as a (2, 3) float64 affine."""
    # Closed-form 2x2 inverse: np.linalg.inv costs ~20 us per call, more than the whole decode.
    (a, b, tx), (c, d, ty) = np.asarray(A, dtype=np.float64).tolist()
    det = a * d - b * c
    if det == 0.0 or not np.isfinite(det):
        raise ValueError("crop affine is singular")
    ia, ib, ic, id_ = d / det, -b / det, -c / det, a / det
    return np.array([[ia, ib, -(ia * tx + ib * ty)], [ic, id_, -(ic * tx + id_ * ty)]], dtype=np.float64)


def apply_affine(A: np.ndarray, p: np.ndarray) -> np.ndarray:
    """Apply a (2, 3) affine to points p: (..., 2). Returns (..., 2) float64."""
    A = np.asarray(A, dtype=np.float64)
    p = np.asarray(p, dtype=np.float64)
    return p @ A[:, :2].T + A[:, 2]


def compose_affine(A2: np.ndarray, A1: np.ndarray) -> np.ndarray:
    """Affine of ``A2 after A1`` (apply A1 first), both (2, 3)."""
    H1 = np.vstack([np.asarray(A1, dtype=np.float64), [0.0, 0.0, 1.0]])
    H2 = np.vstack([np.asarray(A2, dtype=np.float64), [0.0, 0.0, 1.0]])
    return (H2 @ H1)[:2]


def heatmap_to_frame(h: np.ndarray, A: np.ndarray, input_size: int = INPUT_SIZE, heatmap_size: int = HEATMAP_SIZE) -> np.ndarray:
    """Map heatmap cells (..., 2) back to frame pixels through the inverse of crop affine A (2, 3)."""
    return apply_affine(invert_affine(A), heatmap_to_crop(h, input_size, heatmap_size))


def frame_to_heatmap(p: np.ndarray, A: np.ndarray, input_size: int = INPUT_SIZE, heatmap_size: int = HEATMAP_SIZE) -> np.ndarray:
    """Map frame pixels (..., 2) to heatmap cells through crop affine A (2, 3)."""
    return crop_to_heatmap(apply_affine(A, p), input_size, heatmap_size)
