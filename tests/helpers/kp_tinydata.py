"""Tiny hand-made BOP dataset for the training/export/viz tests (no renderer, no downloads).

Each image shows the default object's projected 3D box as a grey polygon and one coloured dot
per keypoint, at the exact projected keypoint, so the labels are known exactly and a net can
learn them in a few iterations.
"""

from __future__ import annotations

from pathlib import Path

import cv2
import numpy as np

from tracker.formats.bop_scene import BopGt, BopGtInfo, write_scene_camera, write_scene_gt, write_scene_gt_info
from tracker.geometry import project, random_rotation


def palette(k: int) -> list[tuple[int, int, int]]:
    hues = np.linspace(0, 179, k, endpoint=False).astype(np.uint8)
    hsv = np.stack([hues, np.full(k, 255, np.uint8), np.full(k, 255, np.uint8)], axis=1)[None]
    return [tuple(int(c) for c in bgr) for bgr in cv2.cvtColor(hsv, cv2.COLOR_HSV2BGR)[0]]


def write_tiny_bop(root: Path, obj, n: int = 8, size: int = 128, seed: int = 0, split: str = "train_synth",
                   scene_id: int = 0, corrupt: tuple[int, ...] = (), ext: str = ".png", colors=None, radius: int = 3,
                   distance: tuple[float, float] = (2.2, 3.0)) -> Path:
    """Write ``n`` images of ``obj`` into ``root/split/<scene>/``; images listed in ``corrupt`` are garbage bytes.

    colors: one BGR colour per keypoint (default: evenly spaced hues); radius: dot radius px;
    distance: range of the object's distance in diameters."""
    rng = np.random.default_rng(seed)
    sd = Path(root) / split / f"{scene_id:06d}"
    (sd / "rgb").mkdir(parents=True, exist_ok=True)
    f = 1.3 * size
    K = np.array([[f, 0, (size - 1) / 2], [0, f, (size - 1) / 2], [0, 0, 1.0]])
    cams, gts, infos = {}, {}, {}
    cols = palette(obj.num_keypoints) if colors is None else [tuple(int(c) for c in col) for col in colors]
    for im in range(n):
        R = random_rotation(rng)
        t = np.array([rng.uniform(-15, 15), rng.uniform(-15, 15), rng.uniform(*distance) * obj.diameter])
        img = np.full((size, size, 3), rng.integers(20, 90, 3), np.uint8)
        corners = project(obj.box_corners, R, t, K)
        hull = cv2.convexHull(np.round(corners * 16).astype(np.int32))
        cv2.fillConvexPoly(img, hull, (150, 150, 150), lineType=cv2.LINE_AA, shift=4)
        uv = project(obj.keypoints, R, t, K)
        for j in range(len(uv)):
            cv2.circle(img, tuple(int(round(c * 16)) for c in uv[j]), radius * 16, cols[j], -1, cv2.LINE_AA, shift=4)
        path = sd / "rgb" / f"{im:06d}{ext}"
        if im in corrupt:
            path.write_bytes(b"not an image at all")
        else:
            cv2.imwrite(str(path), img)
        x0, y0 = np.floor(corners.min(axis=0)).astype(int)
        x1, y1 = np.ceil(corners.max(axis=0)).astype(int)
        box = (int(x0), int(y0), int(x1 - x0 + 1), int(y1 - y0 + 1))
        cams[im] = K
        gts[im] = [BopGt(obj_id=1, R_m2c=R, t_m2c=t)]
        infos[im] = [BopGtInfo(bbox_obj=box, bbox_visib=box, px_count_all=100, px_count_visib=100, visib_fract=1.0)]
    write_scene_camera(sd / "scene_camera.json", cams)
    write_scene_gt(sd / "scene_gt.json", gts)
    write_scene_gt_info(sd / "scene_gt_info.json", infos)
    return Path(root)
