"""Tiny hand-made BOP folders and poses for the tracker.formats tests."""

from __future__ import annotations

import cv2
import numpy as np

from tracker.formats.bop_scene import BopCamera, BopGt, BopGtInfo, write_scene_camera, write_scene_gt, write_scene_gt_info


def random_rot(rng):
    q, r = np.linalg.qr(rng.normal(size=(3, 3)))
    q = q * np.sign(np.diag(r))
    if np.linalg.det(q) < 0:
        q[:, 0] = -q[:, 0]
    return q


def intrinsics(f=500.0, cx=319.5, cy=239.5):
    return np.array([[f, 0, cx], [0, f * 1.01, cy], [0, 0, 1.0]])


def make_bop(root, split="test", n_scenes=2, n_im=3, ext=".png", seed=0):
    """A tiny LINEMOD-style BOP split: two objects per image, obj 1 at gt index 1."""
    rng = np.random.default_rng(seed)
    truth = {}
    for s in range(n_scenes):
        sd = root / split / f"{s:06d}"
        (sd / "rgb").mkdir(parents=True)
        (sd / "mask_visib").mkdir()
        cams, gts, infos = {}, {}, {}
        for im in range(n_im):
            K = intrinsics(480 + 10 * im)
            R = random_rot(rng)
            t = np.array([rng.normal() * 20, rng.normal() * 20, 600 + rng.random() * 100])
            cams[im] = BopCamera(K=K, depth_scale=1.0)
            gts[im] = [BopGt(5, random_rot(rng), np.array([0, 0, 700.0])), BopGt(1, R, t)]
            infos[im] = [BopGtInfo((0, 0, 5, 5), (0, 0, 5, 5), 25, 25, 1.0), BopGtInfo((1, 1, 4, 4), (1, 1, 4, 2), 16, 8, 0.1 * im)]
            img = np.full((24, 32, 3), 10 * im + s, np.uint8)
            cv2.imwrite(str(sd / "rgb" / f"{im:06d}{ext}"), img)
            m = np.zeros((24, 32), np.uint8)
            m[1:3, 1:5] = 255
            cv2.imwrite(str(sd / "mask_visib" / f"{im:06d}_000001.png"), m)
            truth[(s, im)] = (K, R, t)
        write_scene_camera(sd / "scene_camera.json", cams)
        write_scene_gt(sd / "scene_gt.json", gts)
        write_scene_gt_info(sd / "scene_gt_info.json", infos)
    return truth
