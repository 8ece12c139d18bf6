"""Small scenes for the tracker.render tests: a pinhole camera, an ObjectModel from arrays, a
square, a random triangle soup, a rotation about an axis, and the analytic pixel mask of a
projected convex polygon; a frame of an object with its tracking crop (the edge tests)."""

import math

import cv2
import numpy as np

from tracker.camera import Camera
from tracker.geometry import so3_exp
from tracker.objects import ObjectModel
from tracker.pipeline.config import TrackerConfig
from tracker.pipeline.search import box_crop
from tracker.render.renderer import Renderer


def make_camera(width=96, height=80, f=90.0, cx=None, cy=None):
    """Pinhole camera, fy = 1.05 fx (so x/y mix-ups show), principal point at the centre."""
    K = np.array([[f, 0.0, (width - 1) / 2 if cx is None else cx], [0.0, f * 1.05, (height - 1) / 2 if cy is None else cy], [0, 0, 1.0]])
    return Camera(K=K, dist=None, width=width, height=height)


def make_object(vertices, faces, colors=None, uv=None, texture=None, keypoints=None):
    kp = np.zeros((0, 3)) if keypoints is None else np.asarray(keypoints, np.float64)
    return ObjectModel.from_mesh(
        "test", np.asarray(vertices, np.float64), np.asarray(faces, np.int32), [f"k{i}" for i in range(len(kp))], kp,
        vertex_colors=None if colors is None else np.asarray(colors, np.uint8),
        uv=None if uv is None else np.asarray(uv, np.float32), texture=texture,
    )


def quad(half=30.0, z=0.0):
    """A square of side 2 * half mm in the plane z (mm), as 4 vertices and 2 triangles."""
    v = np.array([[-half, -half, z], [half, -half, z], [half, half, z], [-half, half, z]])
    return v, np.array([[0, 1, 2], [0, 2, 3]])


def rot(axis, deg):
    """(3, 3) rotation by ``deg`` degrees about ``axis`` (any length)."""
    axis = np.asarray(axis, float) / np.linalg.norm(axis)
    return so3_exp(axis * math.radians(deg))


def random_soup(rng, n_tri=40):
    """(3 n_tri, 3) vertices mm and (n_tri, 3) faces of unconnected triangles 120-220 mm deep."""
    centres = rng.uniform([-40, -30, 120], [40, 30, 220], (n_tri, 3))
    v = (centres[:, None, :] + rng.normal(0, 12, (n_tri, 3, 3))).reshape(-1, 3)
    f = np.arange(3 * n_tri).reshape(-1, 3)
    return v, f


def analytic_polygon_mask(poly_uv, width, height):
    """Pixel centres inside a convex polygon (any winding)."""
    ys, xs = np.mgrid[0:height, 0:width].astype(np.float64)
    n = len(poly_uv)
    signs = []
    for i in range(n):
        a, b = poly_uv[i], poly_uv[(i + 1) % n]
        signs.append((b[0] - a[0]) * (ys - a[1]) - (b[1] - a[1]) * (xs - a[0]))
    s = np.stack(signs)
    return np.all(s >= 0, 0) | np.all(s <= 0, 0)


def tracking_crop_scene(obj, cam, R, t, size=256, seed=0):
    """A frame of ``obj`` (one grey, shaded) at (R, t) over a smooth random background of 16 px
    blocks, the tracking crop's affine around it (the fast preset's margin) and the (size, size) crop."""
    rng = np.random.default_rng(seed)
    h, w = cam.height, cam.width
    bg = np.clip(90 + 25 * rng.standard_normal((h // 16, w // 16, 3)), 0, 255).astype(np.uint8)
    bg = np.ascontiguousarray(np.kron(bg, np.ones((16, 16, 1), np.uint8)))
    frame = Renderer(obj).render(cam, R, t, background=bg).color
    cfg = TrackerConfig.preset("fast")
    A = box_crop(cam, np.array(obj.box_corners, float), R, t, cfg.roi_margin, cfg.min_roi_px, size)
    return frame, A, cv2.warpAffine(frame, A, (size, size), flags=cv2.INTER_LINEAR)
