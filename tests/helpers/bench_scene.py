"""A tiny rendered BOP sequence for the ``kptrack bench`` tests, and an oracle backend for it.

:func:`write_bench_scene` renders ``N`` = 6 frames (640x480) of the default object moving smoothly
over a gradient background, with scene_gt.json, scene_gt_info.json and scene_camera.json;
:func:`oracle_factory` is a ``run_bench`` backend factory whose heatmaps peak at the true keypoints.
"""

from __future__ import annotations

from pathlib import Path

import cv2
import numpy as np
from kptrack_testing import OracleHeatmaps

from tracker.camera import Camera
from tracker.formats import bop_scene
from tracker.geometry import so3_exp
from tracker.objects import load_object
from tracker.render import Renderer

N = 6
W, H = 640, 480


def gt_pose(i):
    """Frame i's ground-truth pose: (R_m2c (3, 3), t_m2c (3,) mm)."""
    R = so3_exp(np.array([0.5 + 0.02 * i, 0.7 + 0.03 * i, 0.1]))
    t = np.array([20.0 + 2.0 * i, -10.0 + 1.0 * i, 480.0 + 2.0 * i])
    return R, t


def write_bench_scene(root: Path):
    """Render the scene into ``root/test_seq/000000``; returns (scene dir, object, camera)."""
    obj = load_object("default")
    cam = Camera.from_fov(60.0, W, H)
    rend = Renderer(obj)
    yy, xx = np.mgrid[0:H, 0:W]
    bg = np.stack([60 + 0.2 * xx, 80 + 0.2 * yy, 100 + 0.1 * (xx + yy)], -1).clip(0, 255).astype(np.uint8)
    sd = Path(root) / "test_seq" / "000000"
    (sd / "rgb").mkdir(parents=True)
    gts, infos = {}, {}
    for i in range(N):
        R, t = gt_pose(i)
        out = rend.render(cam, R, t, background=bg)
        cv2.imwrite(str(sd / "rgb" / f"{i:06d}.jpg"), out.color, [cv2.IMWRITE_JPEG_QUALITY, 95])
        gts[i] = [bop_scene.BopGt(1, R, t)]
        infos[i] = [bop_scene.gt_info_from_masks(out.mask, out.mask)]
    bop_scene.write_scene_gt(sd / "scene_gt.json", gts)
    bop_scene.write_scene_gt_info(sd / "scene_gt_info.json", infos)
    bop_scene.write_scene_camera(sd / "scene_camera.json", {i: cam.K for i in range(N)})
    return sd, obj, cam


def oracle_factory(device, seq):
    """``run_bench``'s backend_factory: Gaussian heatmaps at the sequence's true keypoints."""
    obj = load_object("default")

    def uv_of(i):
        return seq.camera.project(obj.keypoints, seq.gt.R_m2c[i], seq.gt.t_m2c[i])

    return OracleHeatmaps(obj.keypoint_names, uv_of)
