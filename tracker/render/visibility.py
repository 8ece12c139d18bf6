"""COCO-style visibility of model keypoints at a pose, against a rendered depth map.

A keypoint is visible (2) when nothing rendered lies more than a tolerance in front of it
near its projection, hidden (1) when the object's own surface covers it, and unlabelled (0)
when it projects outside the image or lies behind the camera; the flags are COCO's ``v``.
Keypoints are projected as the renderer projects vertices
(:func:`tracker.render.renderer.project_points`, pinhole: ``camera.dist`` is ignored), so
they are looked up on exactly the pixels of the depth map it rendered.
"""

from __future__ import annotations

from typing import Any

import numpy as np

from tracker.errors import KptrackError
from tracker.render.renderer import check_camera, check_pose, project_points


def keypoint_visibility(keypoints_mm: np.ndarray, camera: Any, R_m2c: Any, t_m2c: Any, depth: np.ndarray,
                        tol_mm: float | None = None) -> np.ndarray:
    """COCO-style visibility of model keypoints against a rendered depth map.

    keypoints_mm: (K, 3) float64 model frame mm; depth: (H, W) float32 camera z mm, 0 =
    background (e.g. from :meth:`~tracker.render.renderer.Renderer.render_depth` at the same pose).
    tol_mm: how far behind the rendered surface a keypoint may lie and still count as seen;
    default ``max(2 mm, 1 % of the keypoints' extent, 0.5 % of the keypoint's depth)``.
    Returns v: (K,) int8 -- 2 visible; 1 inside the image but hidden; 0 outside the image or
    behind the camera. A keypoint is visible when, somewhere in the 3x3 pixels around its
    projection, nothing is rendered or the rendered surface is no more than ``tol_mm`` in
    front of it; the neighbourhood keeps points on silhouettes and steep surfaces visible.
    """
    kp = np.asarray(keypoints_mm, dtype=np.float64)
    if kp.ndim != 2 or kp.shape[1] != 3:
        raise KptrackError(f"keypoints_mm: expected (K, 3) model points in mm, got {kp.shape}.")
    K, w, h = check_camera(camera)
    d = np.asarray(depth)
    if d.shape != (h, w):
        raise KptrackError(f"depth: expected ({h}, {w}) matching the camera, got {d.shape}. Render at the same camera.")
    R, t = check_pose(R_m2c, t_m2c)
    z, uv = project_points(kp, K, R, t)
    vis = np.zeros(len(kp), np.int8)
    if len(kp) == 0:
        return vis
    extent = float(np.linalg.norm(kp.max(0) - kp.min(0)))
    with np.errstate(invalid="ignore"):
        col = np.floor(uv[:, 0] + 0.5)
        row = np.floor(uv[:, 1] + 0.5)
    inside = (z > 1e-6) & np.isfinite(col) & np.isfinite(row) & (col >= 0) & (col < w) & (row >= 0) & (row < h)
    for k in np.nonzero(inside)[0]:
        c, r = int(col[k]), int(row[k])
        tol = tol_mm if tol_mm is not None else max(2.0, 0.01 * extent, 0.005 * z[k])
        patch = d[max(r - 1, 0):r + 2, max(c - 1, 0):c + 2]
        seen = (patch <= 0) | (patch >= z[k] - tol)
        vis[k] = 2 if np.any(seen) else 1
    return vis
