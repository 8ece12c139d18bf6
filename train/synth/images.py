"""Training images (split ``train_synth``): the per-image worker.

Domain randomisation in the spirit of Tobin et al., "Domain Randomization for Transferring Deep
Neural Networks from Simulation to the Real World" (IROS 2017) and the cut-and-paste occlusion
of Dwibedi et al. (ICCV 2017): a random camera and pose (:mod:`train.synth.sampling`), a random
light, ambient and specular; a procedural or user background; blob, bar and hand-like
occluders covering at most ``max_occlusion`` of the object, or one over an end of it
(``end_occlusion``), or a bar lying along it over an end (``axis_occlusion``); motion blur of the object or of the
whole image; colour jitter; sensor noise; JPEG compression. Meshes without colours get one of
the seeded random vertex colourings.

Image ``i`` draws everything from ``np.random.default_rng([seed, i])``, in the order below.
"""

from __future__ import annotations

import math

import cv2
import numpy as np

from train.synth.config import N_COLOURINGS
from train.synth.effects import add_noise, color_jitter, composite, line_kernel
from train.synth.job import current_job
from train.synth.labels import Label, image_labels
from train.synth.occluders import add_occluders
from train.synth.sampling import random_light, sample_camera, sample_pose


def train_image(i: int) -> Label:
    """Render, write and label training image ``i`` (scene ``i // scene_size``) of the installed job."""
    job = current_job()
    cfg, obj = job.cfg, job.obj
    rng = np.random.default_rng([cfg.seed, i])
    scene_id, im_id = divmod(i, cfg.scene_size)
    cam = sample_camera(rng, cfg)
    R, t = sample_pose(rng, cfg, obj, cam)
    light, ambient, specular = random_light(rng)
    plain = obj.vertex_colors is None and obj.texture is None
    variant = int(rng.integers(N_COLOURINGS)) if plain else -1
    rend = job.renderer(variant)
    out = rend.render(cam, R, t, light_dir_cam=light, ambient=ambient, specular=specular)
    bg = job.background(rng, cam.height, cam.width)
    # motion blur: of the object alone (it moved) or of the whole image (the camera shook)
    blur, shake = None, False
    if rng.random() < 0.3:
        blur = (rng.uniform(2.0, 12.0), rng.uniform(0, math.pi))
        shake = rng.random() < 0.5
    image = composite(bg, out.color, out.mask, None if shake else blur)
    occ = add_occluders(rng, cfg, image, out.mask)
    if shake:
        image = cv2.filter2D(image, -1, line_kernel(*blur), borderType=cv2.BORDER_REFLECT)
    if rng.random() < 0.15:
        image = cv2.GaussianBlur(image, (0, 0), rng.uniform(0.4, 1.2))
    image = color_jitter(rng, image)
    image = add_noise(job.noise, rng, image, rng.uniform(0.0, 8.0))
    info, uv, v = image_labels(rend, obj, cam, R, t, out.depth, out.mask, occ)
    job.write_images(scene_id, im_id, image, out.mask & ~occ)
    return Label(i, scene_id, im_id, cam.K, R, t, info, uv, v)
