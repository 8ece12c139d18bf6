"""Pretext samples for backbone pretraining, rendered on the fly.

Sample ``i`` (everything from ``np.random.default_rng([seed, i])``): one of a pool of
:func:`~train.pretrain.shapes.random_object` objects (built lazily in each worker, the same in
every one), at a random rotation, framed as a tracking crop frames an object (its diameter 45-90 %
of the 256 px image, centred within +-10 %), lit at random, over a procedural background, with
the training crops' photometric augmentation. The targets, on the 64 x 64 heatmap grid
(the unbiased UDP scale of :mod:`tracker.geometry.crop`), are the dense labels the renderer
gives for free:

====  =========  ===================================================================
ch    name       target
====  =========  ===================================================================
0     mask       object coverage of each cell, 0..1
1     edges      silhouette and crease edges (normals turning > 30 deg), 0..1
2-4   normals    camera-frame unit surface normal, averaged per cell (0 off the object)
5     corners    Gaussian (sigma 2 cells) at each visible corner of the object
6-8   coords     model coordinates, scaled by the object's box to [-1, 1], averaged over
                 the object's part of each cell (0 off the object): which part of the
                 object each cell shows (:mod:`train.coords`)
====  =========  ===================================================================
"""

from __future__ import annotations

import math

import cv2
import numpy as np
import torch

from tracker.camera import Camera
from tracker.geometry import random_rotation
from tracker.geometry.crop import HEATMAP_SIZE, INPUT_SIZE
from tracker.render import Renderer, keypoint_visibility
from train.augment import AugmentConfig, photometric
from train.coords import box_frame, masked_mean_channels, model_coordinates
from train.heatmaps import gaussian_targets
from train.pretrain.shapes import random_object
from train.synth.backgrounds import procedural_background
from train.synth.sampling import random_light

CHANNELS = ("mask", "edges", "normal_x", "normal_y", "normal_z", "corners", "coord_x", "coord_y", "coord_z")
S_POOL = 2**31 + 11  # seed stream of the object pool


def normals_from_depth(depth: np.ndarray, K: np.ndarray) -> np.ndarray:
    """(H, W, 3) float32 camera-frame unit normals from a depth map (H, W) mm (0 = background),
    facing the camera; zero where the depth or a neighbour is missing."""
    h, w = depth.shape
    u, v = np.meshgrid(np.arange(w, dtype=np.float32), np.arange(h, dtype=np.float32))
    z = depth.astype(np.float32)
    p = np.stack([(u - K[0, 2]) * z / K[0, 0], (v - K[1, 2]) * z / K[1, 1], z], -1)
    dx, dy = np.zeros_like(p), np.zeros_like(p)
    dx[:, 1:-1], dy[1:-1] = (p[:, 2:] - p[:, :-2]) / 2, (p[2:] - p[:-2]) / 2
    n = np.cross(dx, dy)
    norm = np.linalg.norm(n, axis=-1, keepdims=True)
    valid = (z > 0) & (norm[..., 0] > 0)
    valid[:, [0, -1]] = valid[[0, -1]] = False
    valid[1:-1, 1:-1] &= (z[1:-1, 2:] > 0) & (z[1:-1, :-2] > 0) & (z[2:, 1:-1] > 0) & (z[:-2, 1:-1] > 0)
    n = np.where(valid[..., None], n / np.maximum(norm, 1e-12), 0.0)
    n *= np.where(n[..., 2:3] > 0, -1.0, 1.0)  # face the camera (-z)
    return n.astype(np.float32)


def edge_map(mask: np.ndarray, normals: np.ndarray, crease_deg: float = 30.0) -> np.ndarray:
    """(H, W) bool: the silhouette boundary and the pixels where the normal turns by more than
    ``crease_deg`` to a neighbour."""
    m = mask.astype(np.uint8)
    edges = cv2.morphologyEx(m, cv2.MORPH_GRADIENT, np.ones((3, 3), np.uint8)) > 0
    c = math.cos(math.radians(crease_deg))
    for axis in (0, 1):
        a, b = np.moveaxis(normals, axis, 0)[:-1], np.moveaxis(normals, axis, 0)[1:]
        both = (np.abs(a).sum(-1) > 0) & (np.abs(b).sum(-1) > 0)
        turn = both & ((a * b).sum(-1) < c)
        t = np.zeros(mask.shape, bool)
        np.moveaxis(t, axis, 0)[:-1] |= turn
        edges |= t
    return edges


def to_cells(img: np.ndarray) -> np.ndarray:
    """Average a (S, S[, C]) image over the 64 x 64 heatmap cells (area resampling)."""
    return cv2.resize(img, (HEATMAP_SIZE, HEATMAP_SIZE), interpolation=cv2.INTER_AREA)


class PretextDataset(torch.utils.data.Dataset):
    """Rendered pretext samples (see the module docstring). ``len`` is ``n``; item ``i`` is
    ``{'image': (S, S, 3) uint8 BGR tensor, 'target': (9, 64, 64) float32 tensor}``."""

    def __init__(self, n: int, seed: int = 0, pool: int = 256, augment: AugmentConfig | None = AugmentConfig()):
        self.n, self.seed, self.pool_size, self.augment = int(n), int(seed), int(pool), augment
        self._pool: dict[int, tuple] = {}

    def __len__(self) -> int:
        return self.n

    def _object(self, j: int):
        if j not in self._pool:  # per process: workers build their own renderers
            obj, corners = random_object(np.random.default_rng([self.seed, S_POOL, j]))
            self._pool[j] = (obj, corners, Renderer(obj))
        return self._pool[j]

    def scene(self, rng: np.random.Generator):
        """(object, its corners, its renderer, camera, R, t) of a sample: the first draws of its ``rng``."""
        obj, corners, rend = self._object(int(rng.integers(self.pool_size)))
        s = INPUT_SIZE
        cam = Camera.from_fov(rng.uniform(30.0, 60.0), s, s)
        R = random_rotation(rng)
        z = cam.fx * obj.diameter / (rng.uniform(0.45, 0.9) * s)
        t = np.array([*(rng.uniform(-0.1, 0.1, 2) * s * z / cam.fx), z])
        return obj, corners, rend, cam, R, t

    def sample(self, i: int) -> tuple[np.ndarray, np.ndarray]:
        """(image (S, S, 3) uint8 BGR, target (9, 64, 64) float32) of sample ``i``."""
        rng = np.random.default_rng([self.seed, i])
        obj, corners, rend, cam, R, t = self.scene(rng)
        s = INPUT_SIZE
        light, ambient, specular = random_light(rng)
        out = rend.render(cam, R, t, light_dir_cam=light, ambient=ambient, specular=specular)
        image = np.where(out.mask[..., None], out.color, procedural_background(rng, s, s))
        if self.augment is not None:
            image = photometric(rng, image, self.augment)
        # normals and edges on every second pixel: 4x cheaper, and still finer than the 64 cells
        K2 = cam.K * np.array([[0.5], [0.5], [1.0]])
        normals = normals_from_depth(out.depth[::2, ::2], K2)
        edges = edge_map(out.mask[::2, ::2], normals)
        target = np.zeros((len(CHANNELS), HEATMAP_SIZE, HEATMAP_SIZE), np.float32)
        target[0] = to_cells(out.mask.astype(np.float32))
        target[1] = np.clip(to_cells(edges.astype(np.float32)) * 2.0, 0.0, 1.0)
        target[2:5] = np.moveaxis(to_cells(normals), -1, 0)
        if len(corners):
            vis = keypoint_visibility(corners, cam, R, t, out.depth) == 2
            if vis.any():
                uv = cam.project(corners[vis], R, t)  # the image is the crop: crop pixels
                maps, _ = gaussian_targets(uv, np.full(len(uv), 2, np.int8), 2.0)
                target[5] = maps.max(0)
        coords = model_coordinates(out.depth, cam.K, R, t, *box_frame(obj))
        target[6:9] = masked_mean_channels(np.moveaxis(to_cells(coords), -1, 0))[1:]
        return np.ascontiguousarray(image), target

    def __getitem__(self, i: int) -> dict:
        image, target = self.sample(i)
        return {"image": torch.from_numpy(image), "target": torch.from_numpy(target)}
