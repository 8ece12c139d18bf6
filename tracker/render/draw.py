"""Drawing on video frames: the object overlaid at a pose, its axes, keypoints coloured by
confidence, and a text HUD.

Every function draws in place on ``frame``, an (H, W, 3) uint8 BGR image, and returns it, so
calls chain and a frame loop never copies. Pixel coordinates follow OpenCV (pixel centres at
integers); projection is the renderer's pinhole (``camera.dist`` is ignored), so pass
poses and keypoints in undistorted pixels. The model overlay reuses one
:class:`~tracker.render.renderer.Renderer` per live object (see :func:`_renderer_for`), so a
per-frame overlay never rebuilds normals.
"""

from __future__ import annotations

import weakref
from typing import Any, Sequence

import cv2
import numpy as np

from tracker.errors import KptrackError
from tracker.render.renderer import Raster, Renderer, check_camera, check_pose, project_points

# Axis colours, BGR: X red, Y green, Z blue.
_AXIS_COLORS = ((0, 0, 255), (0, 255, 0), (255, 0, 0))

_RENDERER_CACHE: "weakref.WeakKeyDictionary[Any, Renderer]" = weakref.WeakKeyDictionary()


def _renderer_for(obj: Any) -> Renderer:
    """A Renderer per live object, so per-frame overlays don't rebuild normals."""
    try:
        return _RENDERER_CACHE[obj]
    except KeyError:
        pass
    except TypeError:  # not hashable / weak-referenceable: no caching
        return Renderer(obj)
    r = Renderer(obj)
    _RENDERER_CACHE[obj] = r
    return r


def confidence_color(c: float) -> tuple[int, int, int]:
    """BGR from red (confidence 0) through yellow to green (confidence 1); c is clipped to [0, 1]."""
    c = float(min(max(c, 0.0), 1.0))
    return (0, int(round(255 * min(1.0, 2 * c))), int(round(255 * min(1.0, 2 * (1 - c)))))


def draw_overlay(frame: np.ndarray, obj: Any, camera: Any, R_m2c: Any, t_m2c: Any, *, renderer: Renderer | None = None,
                 mode: str = "shaded", alpha: float = 0.45, keypoints_uv: np.ndarray | None = None,
                 confidences: np.ndarray | None = None, axes: bool = True, color: Sequence[int] = (0, 255, 0),
                 show_conf: bool = False) -> np.ndarray:
    """Draw the object at a pose over ``frame`` in place and return it.

    frame: (H, W, 3) uint8 BGR matching camera (width, height); R_m2c (3,3), t_m2c (3,) mm.
    mode: 'shaded' alpha-blends the rendered model (``alpha`` = model weight) inside its mask;
    'edges' draws the silhouette and the visible crease edges in ``color``.
    keypoints_uv: (K, 2) float64 frame pixels (NaN rows skipped), drawn as circles whose
    radius and colour (red -> green) grow with confidences (K,) in [0, 1] (default 1);
    ``show_conf`` writes the number beside each. axes: X red, Y green, Z blue, from the model
    origin, 0.5 * diameter long.
    """
    img = frame
    if not isinstance(img, np.ndarray) or img.dtype != np.uint8 or img.ndim != 3 or img.shape[2] != 3:
        raise KptrackError(f"frame: expected an (H, W, 3) uint8 BGR image, got {getattr(img, 'shape', type(img))}.")
    if mode not in ("shaded", "edges"):
        raise KptrackError(f"mode: {mode!r} is not one of 'shaded', 'edges'.")
    K, w, h = check_camera(camera)
    if img.shape[:2] != (h, w):
        raise KptrackError(f"frame: size {img.shape[1]}x{img.shape[0]} does not match the camera {w}x{h}. Use the calibration for this video size (Camera.scaled).")
    rend = renderer if renderer is not None else _renderer_for(obj)
    R, t = check_pose(R_m2c, t_m2c)
    col = tuple(int(c) for c in color)
    if mode == "shaded":
        ras = rend.raster(K, w, h, R, t, True)
        if ras is not None:
            if img.flags.c_contiguous:
                rend.shade(ras, K, R, None, 0.35, 0.25, img, float(alpha))
            else:  # the kernel writes through a contiguous view; copy back for odd strides
                tmp = np.ascontiguousarray(img)
                rend.shade(ras, K, R, None, 0.35, 0.25, tmp, float(alpha))
                img[...] = tmp
    else:
        ras = rend.raster(K, w, h, R, t, False)
        if ras is not None:
            roi_mask = (ras.fid >= 0).astype(np.uint8)
            contours, _ = cv2.findContours(roi_mask, cv2.RETR_EXTERNAL, cv2.CHAIN_APPROX_SIMPLE, offset=(ras.x0, ras.y0))
            cv2.drawContours(img, contours, -1, col, 2, cv2.LINE_AA)
            edges = rend.crease_edges()
            if len(edges):
                _draw_visible_edges(img, rend, ras, edges, col)
    if axes:
        draw_axes(img, K, R, t, 0.5 * rend.diameter, near_mm=rend.near)
    if keypoints_uv is not None:
        draw_keypoints(img, keypoints_uv, confidences, show_conf=show_conf)
    return img


def _draw_visible_edges(img: np.ndarray, rend: Renderer, ras: Raster, edges: np.ndarray, col: tuple[int, int, int]) -> None:
    """Draw crease edges ((E, 2) vertex pairs) whose midpoint is not hidden behind the rendered
    surface of ``ras`` (a first pass of ``rend`` at the same pose)."""
    z, uv = ras.z, ras.uv
    a, b = edges[:, 0], edges[:, 1]
    ok = (z[a] >= rend.near) & (z[b] >= rend.near)
    a, b = a[ok], b[ok]
    if len(a) == 0:
        return
    # The 3D midpoint of an edge projects to the 2D midpoint of... nothing simple, so test the
    # 2D midpoint, whose depth along the edge is exact in 1/z (perspective-correct).
    mu = 0.5 * (uv[a] + uv[b])
    mz = 2.0 / (1.0 / z[a] + 1.0 / z[b])
    rh, rw = ras.zbuf.shape
    c = np.floor(mu[:, 0] + 0.5) - ras.x0
    r = np.floor(mu[:, 1] + 0.5) - ras.y0
    inb = (c >= 0) & (c < rw) & (r >= 0) & (r < rh)
    c = np.clip(c, 0, rw - 1).astype(np.intp)
    r = np.clip(r, 0, rh - 1).astype(np.intp)
    # Visible when some pixel of the 3x3 around it has the edge no farther than the surface
    # there (plus a tolerance): an edge lies on the surface, on a silhouette or a crease.
    tol = max(1.0, 0.01 * rend.diameter)
    far = np.full(len(c), -np.inf)
    for dy in (-1, 0, 1):
        rr = np.clip(r + dy, 0, rh - 1)
        for dx in (-1, 0, 1):
            zz = ras.zbuf[rr, np.clip(c + dx, 0, rw - 1)]
            far = np.maximum(far, np.where(np.isfinite(zz), zz, -np.inf))
    vis = inb & ((far == -np.inf) | (mz <= far + tol))
    if not np.any(vis):
        return
    segs = np.stack([uv[a[vis]], uv[b[vis]]], 1)
    segs = np.round(np.clip(segs, -1e5, 1e5)).astype(np.int32)
    cv2.polylines(img, list(segs), False, col, 1, cv2.LINE_AA)


def draw_axes(frame: np.ndarray, K: np.ndarray, R_m2c: np.ndarray, t_m2c: np.ndarray, length_mm: float, *,
              near_mm: float = 1.0) -> np.ndarray:
    """Draw the model frame's axes (X red, Y green, Z blue, ``length_mm`` long from the model
    origin) in place; returns ``frame``.

    frame: (H, W, 3) uint8 BGR; K: (3, 3) float64; R_m2c (3, 3), t_m2c (3,) mm float64, as
    from :func:`~tracker.render.renderer.check_camera` and
    :func:`~tracker.render.renderer.check_pose`. Nothing is drawn when an axis end is nearer than ``near_mm`` or projects absurdly far.
    """
    L = length_mm
    pts = np.array([[0, 0, 0], [L, 0, 0], [0, L, 0], [0, 0, L]], np.float64)
    z, uv = project_points(pts, K, R_m2c, t_m2c)
    if np.all(z > near_mm) and np.all(np.abs(uv) < 1e5):
        o = tuple(int(round(c)) for c in uv[0])
        for i, c in enumerate(_AXIS_COLORS, start=1):
            cv2.line(frame, o, tuple(int(round(v)) for v in uv[i]), c, 2, cv2.LINE_AA)
    return frame


def draw_keypoints(frame: np.ndarray, keypoints_uv: np.ndarray, confidences: np.ndarray | None = None, *,
                   show_conf: bool = False) -> np.ndarray:
    """Draw keypoints as filled circles in place; returns ``frame``.

    frame: (H, W, 3) uint8 BGR; keypoints_uv: (K, 2) float64 frame pixels (non-finite or
    absurdly far rows skipped); confidences: (K,) in [0, 1] or None (all 1). Radius (2 to 6
    px) and colour (:func:`confidence_color`, red -> green) grow with confidence;
    ``show_conf`` writes the number beside each.
    """
    kuv = np.asarray(keypoints_uv, np.float64).reshape(-1, 2)
    conf = np.ones(len(kuv)) if confidences is None else np.asarray(confidences, np.float64).reshape(-1)
    if len(conf) != len(kuv):
        raise KptrackError(f"confidences: {len(conf)} values for {len(kuv)} keypoints; pass one per keypoint.")
    for (u, v), c in zip(kuv, conf):
        if not (np.isfinite(u) and np.isfinite(v)) or abs(u) > 1e5 or abs(v) > 1e5:
            continue
        cc = float(c) if np.isfinite(c) else 0.0
        p = (int(round(u)), int(round(v)))
        cv2.circle(frame, p, int(round(2 + 4 * min(max(cc, 0.0), 1.0))), confidence_color(cc), -1, cv2.LINE_AA)
        if show_conf:
            cv2.putText(frame, f"{cc:.2f}", (p[0] + 6, p[1] - 4), cv2.FONT_HERSHEY_SIMPLEX, 0.35, (255, 255, 255), 1, cv2.LINE_AA)
    return frame


def draw_hud(frame: np.ndarray, lines: Sequence[str], *, origin: tuple[int, int] = (8, 8), scale: float = 0.5) -> np.ndarray:
    """Draw text ``lines`` top-left over a darkened box, in place; returns ``frame``.

    frame: (H, W, 3) uint8 BGR; origin: (x, y) pixels of the box's top-left corner; scale:
    OpenCV font scale.
    """
    if not lines:
        return frame
    font = cv2.FONT_HERSHEY_SIMPLEX
    sizes = [cv2.getTextSize(s, font, scale, 1) for s in lines]
    lh = max(sz[0][1] + sz[1] for sz in sizes) + 4
    bw = max(sz[0][0] for sz in sizes) + 10
    x0, y0 = origin
    h, w = frame.shape[:2]
    x1, y1 = min(x0 + bw, w), min(y0 + lh * len(lines) + 6, h)
    if x1 > x0 and y1 > y0:
        box = frame[y0:y1, x0:x1]
        box[:] = (box.astype(np.uint16) * 3 // 10).astype(np.uint8)
    for i, s in enumerate(lines):
        cv2.putText(frame, s, (x0 + 5, y0 + 3 + lh * (i + 1) - 4), font, scale, (255, 255, 255), 1, cv2.LINE_AA)
    return frame


def draw_keypoint_marks(frame: np.ndarray, keypoints_uv: np.ndarray, confidences: np.ndarray) -> np.ndarray:
    """Hollow red circles at the keypoints with confidence > 0, in place (a frame with no pose);
    returns ``frame``. keypoints_uv: (K, 2) float64 frame px (non-finite rows skipped); confidences: (K,)."""
    for (u, v), c in zip(keypoints_uv, confidences):
        if np.isfinite(u) and np.isfinite(v) and c > 0:
            cv2.circle(frame, (int(round(u)), int(round(v))), 3, (0, 0, 255), 1, cv2.LINE_AA)
    return frame
