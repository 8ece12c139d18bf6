"""Where to look in a frame: the full-frame search views and the crops around an object.

Every crop is a square given by its affine ``A (2, 3)``: frame pixels -> ``input_size`` crop
pixels (:mod:`tracker.geometry.crop`). The tracker, ``kptrack viz`` and the benchmarks take their
crops from here, so there is one definition of each view.

* :func:`search_views`: with no pose, the letterboxed whole frame, then overlapping squares of
  side 0.6 x the frame's long side on a 2x2 grid, where the object shows ~1.7x larger than in
  the letterbox, closer to the scale the network trained on.
* :func:`box_crop`: the square around the object's 3D box projected with a pose, enlarged by a
  margin (the tracking crop).
* :func:`keypoint_crop`: the square around where a search view's confident keypoints gather,
  when they gave no pose (the object is small in a search view; closer, the network reads it
  better).
"""

from __future__ import annotations

import numpy as np

from tracker.camera import Camera
from tracker.geometry.crop import INPUT_SIZE, crop_affine, letterbox_affine


def search_views(width: int, height: int, input_size: int = INPUT_SIZE, windows: bool = True) -> list[np.ndarray]:
    """Full-frame search crops of a ``width x height`` frame: the letterbox, then (``windows``)
    the 2x2 grid of 0.6 x long-side squares. Returns a list of (2, 3) float64 affines."""
    views = [letterbox_affine(width, height, input_size)]
    if windows:
        side = 0.6 * max(width, height)
        xs = np.linspace(side / 2, width - side / 2, 2) if width > side else [width / 2.0]
        ys = np.linspace(side / 2, height - side / 2, 2) if height > side else [height / 2.0]
        views += [crop_affine(np.array([x - 0.5, y - 0.5]), side, 0.0, input_size) for y in ys for x in xs]
    return views


def square_crop(lo: np.ndarray, hi: np.ndarray, margin: float, min_side: float, max_side: float,
                input_size: int = INPUT_SIZE) -> np.ndarray:
    """Crop affine of the square centred on the box [lo, hi] ((2,) frame px each), side margin x
    the box's longer side, clipped to [min_side, max_side] frame px."""
    side = float(np.clip(margin * max(hi - lo), min_side, max_side))
    return crop_affine((lo + hi) / 2.0, side, 0.0, input_size)


def box_crop(camera: Camera, box_xyz: np.ndarray, R_m2c: np.ndarray, t_m2c: np.ndarray, margin: float,
             min_side: float, input_size: int = INPUT_SIZE) -> np.ndarray | None:
    """The tracking crop: the square around ``box_xyz`` (8, 3) mm projected with (R_m2c (3, 3),
    t_m2c (3,) mm), or None when the pose is not finite, the box is behind the camera or it lands
    outside the frame."""
    if not (np.all(np.isfinite(R_m2c)) and np.all(np.isfinite(t_m2c))) or t_m2c[2] <= 1e-3:
        return None
    uv = camera.project(box_xyz, R_m2c, t_m2c)
    if not np.all(np.isfinite(uv)):
        return None
    lo, hi = uv.min(0), uv.max(0)
    w, h = camera.width, camera.height
    if hi[0] < 0 or hi[1] < 0 or lo[0] > w - 1 or lo[1] > h - 1:
        return None
    return square_crop(lo, hi, margin, min_side, 4.0 * max(w, h), input_size)


def crop_side(A: np.ndarray, input_size: int = INPUT_SIZE) -> float:
    """Side in frame pixels of the square crop with affine A (2, 3)."""
    return 1.0 / abs(np.linalg.det(A[:, :2])) ** 0.5 * input_size


def keypoint_crop(uv: np.ndarray, conf: np.ndarray, A: np.ndarray, min_conf: float, margin: float, min_side: float,
                  input_size: int = INPUT_SIZE) -> np.ndarray | None:
    """Crop around the cluster of a search view's keypoints, or None.

    uv: (K, 2) frame px; conf: (K,); A: the search view's affine. Keypoints with conf >=
    ``min_conf`` count; those farther from their median than 3x the median distance are dropped;
    at least 3 must remain. The crop is sized from their spread like a tracking crop (``margin``),
    but never under a quarter of the search view nor over the view itself.
    """
    ok = (conf >= min_conf) & np.all(np.isfinite(uv), axis=1)
    if np.count_nonzero(ok) < 3:
        return None
    pts = uv[ok]
    med = np.median(pts, axis=0)
    d = np.linalg.norm(pts - med, axis=1)
    pts = pts[d <= max(3.0 * np.median(d), 1e-6)]
    if len(pts) < 3:
        return None
    view = crop_side(A, input_size)
    return square_crop(pts.min(0), pts.max(0), margin, max(min_side, 0.25 * view), view, input_size)
