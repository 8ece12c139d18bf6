"""Test sequences (``--sequence``, split ``test_seq``, one scene): the plan and the per-frame worker.

A smooth 6-DoF trajectory at ``fps`` (sums of sinusoids in the rotation vector, image position
and depth, and a slow spin), fast segments (a time warp up to 5x), a partial occlusion (a hand
sweeping over the object), a full occlusion lasting >= 30 frames (a board covering the
object), and an exit and re-entry through the image border. The camera is static: one
background per sequence plus mild per-frame noise; the object is motion-blurred by its image
velocity. ``scene_gt`` holds the true pose for every frame, even when occluded or out of view.

The whole sequence is planned up front from ``[seed, S_SEQ_PLAN]`` (:func:`plan_sequence`);
frame ``i`` then draws only its noise from ``[seed, S_SEQ_FRAME, i]``.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from tracker.camera import Camera
from tracker.geometry import project, random_rotation, so3_exp
from tracker.objects import ObjectModel
from train.synth.backgrounds import BackgroundImages, procedural_background
from train.synth.config import S_SEQ_FRAME, S_SEQ_PLAN, SynthConfig
from train.synth.effects import add_noise, composite
from train.synth.job import current_job
from train.synth.labels import Label, image_labels
from train.synth.occluders import occluder_sprite, paste
from train.synth.sampling import random_light, random_unit


@dataclass
class Episode:
    """A scripted event of a sequence: frames [start, end)."""

    kind: str  # 'fast' | 'partial_occlusion' | 'full_occlusion' | 'exit'
    start: int
    end: int


@dataclass
class SequencePlan:
    """Everything about a sequence that is decided before any frame is rendered."""

    camera: Camera
    R: np.ndarray  # (n, 3, 3) R_m2c
    t: np.ndarray  # (n, 3) t_m2c, mm
    episodes: list[Episode]
    sprites: list  # per episode index: (mask, colour) or None
    occluders: list  # per frame: list of (sprite index, cx, cy)
    blur: np.ndarray  # (n, 2): motion-blur length px, angle rad
    background: np.ndarray  # (H, W, 3) uint8
    light: tuple[np.ndarray, float, float]


# Durations in frames at 30 fps (scaled by fps / 30): ramp-in, hold, ramp-out.
_EPISODES = {
    "fast": (0, 30, 0),
    "partial_occlusion": (15, 15, 15),
    "full_occlusion": (15, 36, 12),
    "exit": (15, 20, 15),
}


def plan_episodes(rng: np.random.Generator, n: int, fps: float = 30.0) -> list[Episode]:
    """Place the scripted events on a timeline of n frames: a clean start (so a tracker can lock
    on), then the four kinds in random order with random gaps, repeating while frames remain.
    Episodes that do not fit a short sequence are left out."""
    s = fps / 30.0
    start = int(round(30 * s))
    tail = int(round(10 * s))
    out: list[Episode] = []
    t = start
    while True:
        placed = False
        for kind in rng.permutation(list(_EPISODES)):
            dur = int(round(sum(_EPISODES[kind]) * s))
            if t + dur <= n - tail:
                out.append(Episode(str(kind), t, t + dur))
                t += dur + int(rng.integers(int(8 * s), int(20 * s) + 1))
                placed = True
        if not placed:
            break
    return out


def _smoothstep(x: np.ndarray) -> np.ndarray:
    x = np.clip(x, 0.0, 1.0)
    return x * x * (3.0 - 2.0 * x)


def _episode_ramp(ep: Episode, k: np.ndarray, fps: float) -> np.ndarray:
    """0 outside, smoothstep up over ramp-in, 1 over hold, smoothstep down over ramp-out."""
    s = fps / 30.0
    a, h, b = (int(round(x * s)) for x in _EPISODES[ep.kind])
    r = np.zeros(len(k))
    x = k - ep.start
    if a > 0:
        r = np.where((x >= 0) & (x < a), _smoothstep((x + 1) / a), r)
    r = np.where((x >= a) & (x < a + h), 1.0, r)
    if b > 0:
        r = np.where((x >= a + h) & (x < a + h + b), _smoothstep((a + h + b - x - 1) / b), r)
    return r


def _sum_sines(rng, s: np.ndarray, n_terms: int, amp: float, fmin: float, fmax: float, dim: int) -> np.ndarray:
    out = np.zeros((len(s), dim))
    for _ in range(n_terms):
        a = rng.uniform(-1, 1, dim) * amp
        f = rng.uniform(fmin, fmax)
        ph = rng.uniform(0, 2 * math.pi, dim)
        out += a * np.sin(2 * math.pi * f * s[:, None] + ph)
    return out


def plan_sequence(cfg: SynthConfig, obj: ObjectModel, bg_files: list[Path]) -> SequencePlan:
    """The whole sequence, decided up front from the seed: trajectory, events, occluders, blur."""
    rng = np.random.default_rng([cfg.seed, S_SEQ_PLAN])
    W, H = cfg.image_size
    n, fps = cfg.frames, cfg.fps
    cam = Camera.from_fov(60.0, W, H)
    episodes = plan_episodes(rng, n, fps)
    k = np.arange(n, dtype=np.float64)

    # time warp: fast segments run the trajectory up to 5x faster (3x on average)
    speed = np.ones(n)
    for ep in episodes:
        if ep.kind == "fast":
            x = (k - ep.start) / max(ep.end - ep.start, 1)
            speed += np.where((x >= 0) & (x < 1), 4.0 * np.sin(np.pi * np.clip(x, 0, 1)) ** 2, 0.0)
    s = np.concatenate([[0.0], np.cumsum(speed[:-1])]) / fps  # trajectory time, s

    # rotation: a random start, a slow spin and wobbles in the rotation vector
    R0 = random_rotation(rng)
    spin = random_unit(rng) * rng.uniform(0.3, 0.7)  # rad/s
    w = spin[None, :] * s[:, None] + _sum_sines(rng, s, 3, 0.5, 0.05, 0.25, 3)
    R = so3_exp(w) @ R0

    # translation: depth around z0 (sphere ~38 % of the image height), image position by sines
    z0 = cam.fx * obj.diameter / (0.38 * H)
    z = z0 * (1.0 + _sum_sines(rng, s, 2, 0.12, 0.03, 0.12, 1)[:, 0])
    r_px = cam.fx * 0.5 * obj.diameter / z  # projected sphere radius, px
    amp_u = max(0.0, (W - 1) / 2.0 - 1.05 * r_px.max())
    amp_v = max(0.0, (H - 1) / 2.0 - 1.05 * r_px.max())
    uv = _sum_sines(rng, s, 3, 1.0, 0.03, 0.2, 2)
    uv = uv / max(np.abs(uv).max(), 1e-9)
    u = cam.cx + amp_u * 0.9 * uv[:, 0]
    v = cam.cy + amp_v * 0.9 * uv[:, 1]
    for ep in episodes:
        if ep.kind == "exit":
            ramp = _episode_ramp(ep, k, fps)
            mid = (ep.start + ep.end) // 2
            left = u[mid] < cam.cx
            u_out = -2.2 * r_px - 12.0 if left else (W - 1) + 2.2 * r_px + 12.0
            u = u + (u_out - u) * ramp
    rays = np.stack([(u - cam.cx) / cam.fx, (v - cam.cy) / cam.fy, np.ones(n)], 1)
    centre = obj.bbox_min + 0.5 * obj.bbox_size
    t = z[:, None] * rays - R @ centre

    # occluders follow the object: centre + offset that sweeps in, holds and leaves
    corners = np.stack([project(obj.box_corners, R[i], t[i], cam.K) for i in range(n)])  # (n, 8, 2)
    ctr = np.stack([u, v], 1)
    extent = np.nanmax(np.linalg.norm(corners - ctr[:, None, :], axis=2), axis=1)  # px, covers the silhouette
    sprites: list = []
    occluders: list[list] = [[] for _ in range(n)]
    for e, ep in enumerate(episodes):
        if ep.kind not in ("partial_occlusion", "full_occlusion"):
            sprites.append(None)
            continue
        srng = np.random.default_rng([cfg.seed, S_SEQ_PLAN, 1000 + e])
        frames = np.arange(ep.start, ep.end)
        ramp = _episode_ramp(ep, frames.astype(float), fps)
        a = srng.uniform(0, 2 * math.pi)
        dirv = np.array([math.cos(a), math.sin(a)])
        if ep.kind == "full_occlusion":
            req = 1.15 * float(np.max(extent[frames])) + 3.0
            sprite = occluder_sprite(srng, 2 * req, "blob", min_radius_px=req)
            near = 0.0
        else:
            size = 1.1 * float(np.median(extent[frames])) * 2
            sprite = occluder_sprite(srng, size, "hand" if srng.random() < 0.7 else "bar")
            near = 0.55 * float(np.median(extent[frames])) + 0.3 * max(sprite[0].shape) / 2
        sprites.append(sprite)
        far = float(np.hypot(W, H)) + max(sprite[0].shape)
        for j, f in enumerate(frames):
            d = far + (near - far) * ramp[j]
            occluders[f].append((e, ctr[f, 0] + d * dirv[0], ctr[f, 1] + d * dirv[1]))

    # motion blur from the image velocity of the box corners (half-frame exposure)
    vel = np.zeros((n, 2))
    if n > 1:
        c_all = np.nan_to_num(corners.mean(axis=1))
        vel[1:-1] = (c_all[2:] - c_all[:-2]) / 2.0
        vel[0], vel[-1] = c_all[1] - c_all[0], c_all[-1] - c_all[-2]
    blur = np.stack([0.5 * np.linalg.norm(vel, axis=1), np.arctan2(vel[:, 1], vel[:, 0])], 1)

    if bg_files:
        background = BackgroundImages(bg_files)(rng, H, W)
    else:
        background = procedural_background(rng, H, W, cluttered=True)
    return SequencePlan(cam, R, t, episodes, sprites, occluders, blur, background, random_light(rng))


def sequence_frame(i: int) -> Label:
    """Render, write and label frame ``i`` of the installed job's sequence plan (scene 0, im_id i).
    The label carries the frame for the video."""
    job = current_job()
    cfg, obj, plan = job.cfg, job.obj, job.plan
    rng = np.random.default_rng([cfg.seed, S_SEQ_FRAME, i])
    cam, R, t = plan.camera, plan.R[i], plan.t[i]
    rend = job.renderer(0 if (obj.vertex_colors is None and obj.texture is None) else -1)
    light, ambient, specular = plan.light
    out = rend.render(cam, R, t, light_dir_cam=light, ambient=ambient, specular=specular)
    image = composite(plan.background, out.color, out.mask, tuple(plan.blur[i]))
    occ = np.zeros(out.mask.shape, bool)
    for e, cx, cy in plan.occluders[i]:
        paste(image, occ, plan.sprites[e], cx, cy)
    image = add_noise(job.noise, rng, image, 2.0)
    info, uv, v = image_labels(rend, obj, cam, R, t, out.depth, out.mask, occ)
    job.write_images(0, i, image, out.mask & ~occ)
    return Label(i, 0, i, cam.K, R, t, info, uv, v, frame=image)
