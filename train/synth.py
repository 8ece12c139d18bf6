"""Synthetic BOP-format datasets of one object: training images and test sequences.

``kptrack synth`` renders the object with :class:`tracker.render.Renderer` and writes exact
labels in the formats other tools read (BOP; Hodaň et al., ECCV 2018) plus COCO keypoints::

    OUT/models/obj_000001.ply (mm), models_info.json, keypoints.json
    OUT/<split>/<scene_id:06d>/scene_camera.json, scene_gt.json, scene_gt_info.json,
        rgb/<im_id:06d>.jpg, mask_visib/<im_id:06d>_000000.png, keypoints_coco.json
        (+ video.mp4, camera.yaml, sequence_info.json for --sequence)

Two modes:

* **Training images** (split ``train_synth``, 256x256 by default, scenes of ``scene_size``
  images). Domain randomisation in the spirit of Tobin et al., "Domain Randomization for
  Transferring Deep Neural Networks from Simulation to the Real World" (IROS 2017) and the
  cut-and-paste occlusion of Dwibedi et al. (ICCV 2017): uniform random rotations (Shoemake
  1992) or rotations within ``rot_range_deg`` of a canonical view; a random horizontal field of
  view (35-60 deg); a distance chosen from the object's diameter and the focal length so the
  bounding sphere spans 20-90 % of the image; random in-plane offsets; random light direction,
  ambient and specular; procedural backgrounds (gradients, value noise, shapes, stripes) or a
  folder of user images; blob, bar and hand-like occluders covering at most 40 % of the
  object; motion blur; colour jitter; sensor noise; JPEG compression. Meshes without colours
  get random procedural vertex colourings.
* **Test sequences** (``--sequence``, split ``test_seq``, 640x480, one scene): a smooth 6-DoF
  trajectory at 30 fps (sums of sinusoids in the rotation vector, image position and depth, and
  a slow spin), fast segments (a time warp up to 5x), a partial occlusion (a hand sweeping
  over the object), a full occlusion lasting >= 30 frames (a board covering the object), and
  an exit and re-entry through the image border. The camera is static: one background per
  sequence plus mild per-frame noise; the object is motion-blurred by its image velocity.
  ``scene_gt`` holds the true pose for every frame, even when occluded or out of view.

Labels are exact: keypoints are stored from the float64 projection of the stored pose
(:func:`tracker.geometry.project` with the stored ``cam_K``, ``cam_R_m2c``, ``cam_t_m2c``),
written with shortest round-trip floats. COCO ``v`` is 2 only when a keypoint is inside the
image, not behind the object's own surface (:func:`tracker.render.keypoint_visibility`) and
not under an occluder; 1 when inside the image but hidden; 0 outside the image. The visible
mask is the render's mask minus the occluders. As in BOP, ``px_count_all`` and ``bbox_obj``
count the whole silhouette even beyond the image border (rendered on a larger canvas when the
object is cut off), so ``visib_fract`` falls to 0 when the object leaves the frame.

Determinism: image ``i`` draws everything from ``np.random.default_rng([seed, i])``; what
workers share (noise bank, colourings, sequence plan) derives from the seed alone, so the
output is byte-identical for any number of workers.
"""

from __future__ import annotations

import contextlib
import dataclasses
import json
import logging
import math
import multiprocessing as mp
import os
import shutil
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import cv2
import numpy as np

from tracker.formats.bop import (
    IMAGE_EXTS,
    BopCamera,
    BopGt,
    BopGtInfo,
    gt_info_from_masks,
    mask_bbox,
    write_scene_camera,
    write_scene_gt,
    write_scene_gt_info,
)
from tracker.camera import Camera
from tracker.formats.coco import CocoAnnotation, CocoImage, write_coco
from tracker.errors import KptrackError
from tracker.geometry import look_at, project, random_rotation, so3_exp
from tracker.objects import ObjectModel, keypoints_dict, load_object, write_object_dir
from tracker.render import Renderer, keypoint_visibility

log = logging.getLogger(__name__)

OBJ_ID = 1
TRAIN_SPLIT = "train_synth"
SEQ_SPLIT = "test_seq"

# Streams of np.random.default_rng([seed, STREAM, ...]) that are not per training image.
# Training image i uses [seed, i]; these tags are far above any image index.
_S_NOISE_BANK = 2**31 + 1
_S_COLOURS = 2**31 + 2
_S_SEQ_PLAN = 2**31 + 3
_S_SEQ_FRAME = 2**31 + 4

_NOISE_BANK_SIZE = 512
_NOISE_BANK_SIGMA = 32.0  # the bank holds N(0, 32^2) int8 samples, scaled down per image
_N_COLOURINGS = 8  # random vertex colourings for meshes without colours


# ============================================================================ config
@dataclass(frozen=True)
class SynthConfig:
    """What ``kptrack synth`` renders.

    object: 'default' or an object directory. out: dataset root. num: training images.
    seed: everything derives from it. sequence: write one test sequence instead of training
    images. frames: sequence length. width/height: image size (None: 256x256 for training,
    640x480 for sequences). backgrounds: folder of background images (None: procedural).
    workers: processes (None: all cores). split: split name (None: train_synth / test_seq).
    rot_range_deg: largest rotation from the canonical view (180 = the whole sphere).
    scene_size: images per training scene. overwrite: replace an existing split folder.
    occluder_prob: chance that a training image has occluders; max_occlusion: the most of the
    object's silhouette they may cover. fill_range: projected bounding-sphere diameter as a
    fraction of the image's smaller side. fov_range_deg: horizontal field of view range of the
    training cameras. fps: sequence frame rate. jpeg_quality: cv2 JPEG quality.
    progress: show a tqdm bar.
    """

    object: str | Path = "default"
    out: str | Path = "data/synth"
    num: int = 1000
    seed: int = 0
    sequence: bool = False
    frames: int = 300
    width: int | None = None
    height: int | None = None
    backgrounds: str | Path | None = None
    workers: int | None = None
    split: str | None = None
    rot_range_deg: float = 180.0
    scene_size: int = 1000
    overwrite: bool = False
    occluder_prob: float = 0.5
    max_occlusion: float = 0.4
    fill_range: tuple[float, float] = (0.2, 0.9)
    fov_range_deg: tuple[float, float] = (35.0, 60.0)
    fps: float = 30.0
    jpeg_quality: int = 90
    progress: bool = True

    @property
    def image_size(self) -> tuple[int, int]:
        """(width, height) after defaults."""
        dw, dh = (640, 480) if self.sequence else (256, 256)
        return int(self.width or dw), int(self.height or dh)

    @property
    def split_name(self) -> str:
        return self.split or (SEQ_SPLIT if self.sequence else TRAIN_SPLIT)

    def validate(self) -> None:
        w, h = self.image_size
        if w < 32 or h < 32 or w > 8192 or h > 8192:
            raise KptrackError(f"--width/--height: {w}x{h} is out of range. Use 32 to 8192 pixels.")
        if self.sequence and self.frames < 1:
            raise KptrackError(f"--frames: must be >= 1, got {self.frames}.")
        if not self.sequence and self.num < 1:
            raise KptrackError(f"--num: must be >= 1, got {self.num}.")
        if self.workers is not None and self.workers < 1:
            raise KptrackError(f"--workers: must be >= 1, got {self.workers}.")
        if not 0.0 < self.rot_range_deg <= 180.0:
            raise KptrackError(f"--rot-range: must be in (0, 180] degrees, got {self.rot_range_deg}.")
        if self.scene_size < 1:
            raise KptrackError(f"scene_size: must be >= 1, got {self.scene_size}.")
        lo, hi = self.fill_range
        if not 0.01 <= lo <= hi <= 2.0:
            raise KptrackError(f"fill_range: expected 0.01 <= lo <= hi <= 2, got {self.fill_range}.")
        flo, fhi = self.fov_range_deg
        if not 1.0 <= flo <= fhi < 170.0:
            raise KptrackError(f"fov_range_deg: expected 1 <= lo <= hi < 170, got {self.fov_range_deg}.")
        if not 0.0 <= self.max_occlusion <= 1.0 or not 0.0 <= self.occluder_prob <= 1.0:
            raise KptrackError("occluder_prob and max_occlusion: must be in [0, 1].")
        if not self.fps > 0:
            raise KptrackError(f"fps: must be > 0, got {self.fps}.")
        split = self.split_name
        if not split or "/" in split or "\\" in split or split in (".", "..", "models"):
            raise KptrackError(f"--split: {split!r} is not a usable split folder name. Use e.g. train_synth.")
        if self.backgrounds is not None and not Path(self.backgrounds).is_dir():
            raise KptrackError(f"--backgrounds: {self.backgrounds} is not a folder. Pass a folder of .jpg/.png images.")


# ============================================================================ small helpers
def _smoothstep(x: np.ndarray) -> np.ndarray:
    x = np.clip(x, 0.0, 1.0)
    return x * x * (3.0 - 2.0 * x)


def _random_unit(rng: np.random.Generator) -> np.ndarray:
    v = rng.standard_normal(3)
    return v / max(np.linalg.norm(v), 1e-12)


def canonical_rotation() -> np.ndarray:
    """The canonical view's R_m2c (3, 3): camera on the model's -y axis looking at the origin,
    model +z up in the image."""
    R, _ = look_at(np.array([0.0, -1000.0, 0.0]), np.zeros(3), up=(0.0, 0.0, 1.0))
    return R


def sample_rotation(rng: np.random.Generator, rot_range_deg: float = 180.0, R_canon: np.ndarray | None = None) -> np.ndarray:
    """A random R_m2c (3, 3): uniform over SO(3) when rot_range_deg >= 180, else uniform over the
    geodesic ball of that radius around R_canon (angle drawn with the Haar density
    (1 - cos a) by rejection, axis uniform, applied in the camera frame)."""
    if rot_range_deg >= 180.0:
        return random_rotation(rng)
    R0 = canonical_rotation() if R_canon is None else R_canon
    amax = math.radians(rot_range_deg)
    cmax = 1.0 - math.cos(amax)
    while True:
        a = amax * rng.random()
        if rng.random() * cmax <= 1.0 - math.cos(a):
            break
    return so3_exp(_random_unit(rng) * a) @ R0


def random_vertex_colors(obj: ObjectModel, rng: np.random.Generator) -> np.ndarray:
    """A procedural colouring for meshes without colours: a mix of 2-3 random colours driven by a
    smooth 3D sine-noise field over the vertex positions. Returns (N, 3) uint8 BGR."""
    p = (np.asarray(obj.vertices) - obj.bbox_min) / max(obj.diameter, 1e-9)
    field_ = np.zeros(len(p))
    for _ in range(4):
        k = _random_unit(rng) * rng.uniform(2.0, 12.0) * math.pi
        field_ += np.sin(p @ k + rng.uniform(0, 2 * math.pi)) * rng.uniform(0.3, 1.0)
    f = (field_ - field_.min()) / max(np.ptp(field_), 1e-9)
    cols = rng.uniform(20, 235, size=(3, 3))
    if rng.random() < 0.5:  # banded: hard edges give the network more to look at
        f = np.floor(f * rng.integers(2, 6)) / 5.0
    c = np.where(f[:, None] < 0.5, cols[0] + (cols[1] - cols[0]) * (2 * f[:, None]), cols[1] + (cols[2] - cols[1]) * (2 * f[:, None] - 1))
    return np.clip(c, 0, 255).astype(np.uint8)


def _paste_window(shape: tuple[int, int], h: int, w: int, y0: int, x0: int):
    """Slices (image, sprite) for a (h, w) sprite whose top-left is (y0, x0), clipped to shape;
    None when they do not overlap."""
    H, W = shape
    ya, xa = max(y0, 0), max(x0, 0)
    yb, xb = min(y0 + h, H), min(x0 + w, W)
    if ya >= yb or xa >= xb:
        return None
    return (slice(ya, yb), slice(xa, xb)), (slice(ya - y0, yb - y0), slice(xa - x0, xb - x0))


def _line_kernel(length: float, angle: float) -> np.ndarray:
    """Normalised linear motion-blur kernel of ``length`` px along ``angle`` (radians)."""
    n = max(3, int(math.ceil(length)) | 1)
    k = np.zeros((n, n), np.float32)
    c = (n - 1) / 2.0
    dx, dy = math.cos(angle) * length / 2.0, math.sin(angle) * length / 2.0
    cv2.line(k, (int(round(c - dx)), int(round(c - dy))), (int(round(c + dx)), int(round(c + dy))), 1.0, 1, cv2.LINE_AA)
    s = float(k.sum())
    if s <= 0:
        k[int(c), int(c)] = 1.0
        s = 1.0
    return k / s


# ============================================================================ backgrounds
class _Grid:
    """Per-size cached pixel coordinate grids (float32, normalised to [0, 1])."""

    def __init__(self) -> None:
        self._g: dict[tuple[int, int], tuple[np.ndarray, np.ndarray]] = {}

    def __call__(self, h: int, w: int) -> tuple[np.ndarray, np.ndarray]:
        g = self._g.get((h, w))
        if g is None:
            ys, xs = np.mgrid[0:h, 0:w].astype(np.float32)
            g = (xs / max(w - 1, 1), ys / max(h - 1, 1))
            self._g[(h, w)] = g
        return g


_GRID = _Grid()


def _palette(rng: np.random.Generator) -> np.ndarray:
    """A random colour ramp: 2-3 random colours spread over 256 entries. Returns (1, 256, 3) uint8 BGR."""
    n = int(rng.integers(2, 4))
    stops = np.concatenate([[0.0], np.sort(rng.uniform(0.2, 0.8, n - 2)), [1.0]]) * 255.0
    cols = rng.uniform(0, 255, (n, 3))
    x = np.arange(256, dtype=np.float64)
    lut = np.stack([np.interp(x, stops, cols[:, c]) for c in range(3)], 1)
    return lut.astype(np.uint8).reshape(1, 256, 3)


def _colorize(field_: np.ndarray, rng: np.random.Generator) -> np.ndarray:
    """(h, w) float32 scalar field -> (h, w, 3) uint8 through a random palette (min..max stretched).
    One LUT pass instead of float colour arithmetic per pixel."""
    f8 = cv2.normalize(field_, None, 0, 255, cv2.NORM_MINMAX, cv2.CV_8U)
    return cv2.LUT(cv2.merge([f8, f8, f8]), _palette(rng))


def _bg_gradient(rng, h, w):
    xs, ys = _GRID(h, w)
    if rng.random() < 0.7:
        a = rng.uniform(0, 2 * math.pi)
        t = xs * np.float32(math.cos(a)) + ys * np.float32(math.sin(a))
    else:  # radial
        cx, cy = rng.random(2).astype(np.float32)
        t = cv2.magnitude(xs - cx, ys - cy)
    return _colorize(t, rng)


def _value_noise(rng, h, w) -> np.ndarray:
    """Multi-octave value noise (h, w) float32: each octave doubles the grid and halves (x0.55)
    the amplitude; accumulated on the coarse grids, so only one full-size resize."""
    g = int(rng.integers(2, 6))
    acc = rng.random((g, g), dtype=np.float32)
    amp = 1.0
    for _ in range(int(rng.integers(2, 5))):
        g *= 2
        amp *= 0.55
        acc = cv2.resize(acc, (g, g), interpolation=cv2.INTER_LINEAR) + np.float32(amp) * rng.random((g, g), dtype=np.float32)
    return cv2.resize(acc, (w, h), interpolation=cv2.INTER_CUBIC)


def _bg_value_noise(rng, h, w):
    return _colorize(_value_noise(rng, h, w), rng)


def _bg_stripes(rng, h, w):
    xs, ys = _GRID(h, w)
    a = rng.uniform(0, math.pi)
    freq = rng.uniform(3, 30) * math.pi
    t = np.sin((xs * math.cos(a) + ys * math.sin(a) * (h / max(w, 1))) * freq)
    if rng.random() < 0.5:  # checker
        b = a + math.pi / 2
        t = t * np.sin((xs * math.cos(b) + ys * math.sin(b)) * freq * rng.uniform(0.5, 2))
    if rng.random() < 0.6:
        t = np.sign(t)
    return _colorize(t.astype(np.float32), rng)


def _draw_shapes(rng, img: np.ndarray, n: int) -> None:
    h, w = img.shape[:2]
    s = max(h, w)
    for _ in range(n):
        col = tuple(float(x) for x in rng.uniform(0, 255, 3))
        kind = rng.integers(0, 5)
        th = -1 if rng.random() < 0.6 else int(rng.integers(1, max(2, s // 40)))
        c = (int(rng.integers(-s // 8, w + s // 8)), int(rng.integers(-s // 8, h + s // 8)))
        r = int(rng.integers(max(2, s // 60), max(3, s // 4)))
        if kind == 0:
            cv2.circle(img, c, r, col, th, cv2.LINE_AA)
        elif kind == 1:
            cv2.rectangle(img, c, (c[0] + int(rng.integers(-r, r)), c[1] + int(rng.integers(-r, r))), col, th)
        elif kind == 2:
            cv2.ellipse(img, c, (r, max(1, int(r * rng.uniform(0.2, 1)))), float(rng.uniform(0, 180)), 0, 360, col, th, cv2.LINE_AA)
        elif kind == 3:
            e = (int(rng.integers(0, w)), int(rng.integers(0, h)))
            cv2.line(img, c, e, col, max(1, th), cv2.LINE_AA)
        else:
            k = int(rng.integers(3, 7))
            pts = np.array(c) + rng.integers(-r, r + 1, size=(k, 2))
            cv2.fillPoly(img, [pts.astype(np.int32)], col, cv2.LINE_AA)


def procedural_background(rng: np.random.Generator, h: int, w: int, cluttered: bool = False) -> np.ndarray:
    """A random procedural background: gradient, value noise, stripes/checks, or one of them
    under random shapes (always the latter when ``cluttered``). Returns (h, w, 3) uint8 BGR."""
    kind = int(rng.integers(3, 5)) if cluttered else int(rng.integers(0, 5))
    if kind == 0:
        img = _bg_gradient(rng, h, w)
    elif kind == 1:
        img = _bg_value_noise(rng, h, w)
    elif kind == 2:
        img = _bg_stripes(rng, h, w)
    else:
        img = (_bg_value_noise if kind == 3 else _bg_gradient)(rng, h, w)
    if kind >= 3:
        _draw_shapes(rng, img, int(rng.integers(5, 40)))
    return img


def list_background_images(folder: str | Path) -> list[Path]:
    """Image files under ``folder`` (recursive, sorted). KptrackError if there are none."""
    folder = Path(folder)
    files = sorted(p for p in folder.rglob("*") if p.suffix.lower() in IMAGE_EXTS and p.is_file())
    if not files:
        raise KptrackError(f"--backgrounds: {folder} holds no images ({', '.join(IMAGE_EXTS)}). Add images or leave it out.")
    return files


# ============================================================================ occluders
_SKIN_RGB = ((255, 219, 172), (241, 194, 125), (224, 172, 105), (198, 134, 66), (141, 85, 36), (92, 51, 23))


def _shade_sprite(rng, mask: np.ndarray, base_bgr: np.ndarray, textured: bool) -> np.ndarray:
    h, w = mask.shape
    xs, ys = _GRID(h, w)
    a = rng.uniform(0, 2 * math.pi)
    shade = 0.7 + 0.45 * (xs * math.cos(a) + ys * math.sin(a) + 1.0) * 0.5
    col = base_bgr[None, None, :] * shade[:, :, None]
    if textured:
        g = int(rng.integers(3, 9))
        n = cv2.resize(rng.random((g, g), dtype=np.float32), (w, h), interpolation=cv2.INTER_CUBIC)
        col = col * (0.75 + 0.5 * n[:, :, None])
    return np.clip(col, 0, 255).astype(np.uint8)


def occluder_sprite(rng: np.random.Generator, size_px: float, kind: str, min_radius_px: float | None = None) -> tuple[np.ndarray, np.ndarray]:
    """A random occluder about ``size_px`` across.

    kind: 'blob' (smooth random star-shaped polygon; with ``min_radius_px`` every point of its
    outline is at least that far from the centre), 'bar' (a rotated stick) or 'hand' (palm,
    four fingers and a thumb, skin-coloured or a glove). Returns (mask (h, w) bool, colour
    (h, w, 3) uint8 BGR); the shape's centre is the sprite's centre.
    """
    size_px = max(float(size_px), 4.0)
    if kind == "blob":
        nh = 4
        amps = rng.uniform(0, 1, nh)
        amps *= rng.uniform(0.1, 0.25) / max(amps.sum(), 1e-9)  # sum |a| <= 0.25
        r0 = size_px / 2.0
        if min_radius_px is not None:
            r0 = max(r0, min_radius_px / (1.0 - amps.sum()))
        S = int(math.ceil(2 * r0 * (1 + amps.sum()))) + 5
        th = np.linspace(0, 2 * math.pi, 72, endpoint=False)
        r = r0 * (1 + sum(a * np.sin((k + 2) * th + rng.uniform(0, 2 * math.pi)) for k, a in enumerate(amps)))
        c = (S - 1) / 2.0
        pts = np.stack([c + r * np.cos(th), c + r * np.sin(th)], 1)
        m = np.zeros((S, S), np.uint8)
        cv2.fillPoly(m, [np.round(pts).astype(np.int32)], 1)
        base = rng.uniform(20, 235, 3)
        return m.astype(bool), _shade_sprite(rng, m, base, textured=rng.random() < 0.6)
    S = int(math.ceil(size_px * 1.2)) + 5
    c = (S - 1) / 2.0
    m = np.zeros((S, S), np.uint8)
    ang = rng.uniform(0, 2 * math.pi)
    rot = np.array([[math.cos(ang), -math.sin(ang)], [math.sin(ang), math.cos(ang)]])

    def P(x, y):  # sprite-local (units of size_px, centred) -> pixel
        q = rot @ np.array([x, y]) * size_px + c
        return int(round(q[0])), int(round(q[1]))

    if kind == "bar":
        half_w = rng.uniform(0.05, 0.15)
        corners = [P(-0.55, -half_w), P(0.55, -half_w), P(0.55, half_w), P(-0.55, half_w)]
        cv2.fillPoly(m, [np.array(corners, np.int32)], 1)
        base = rng.uniform(20, 235, 3)
        return m.astype(bool), _shade_sprite(rng, m, base, textured=rng.random() < 0.5)
    # hand: palm ellipse at the bottom, fingers up, thumb to one side (mirrored at random)
    side = 1.0 if rng.random() < 0.5 else -1.0
    pc = P(0.0, 0.12)
    cv2.ellipse(m, pc, (max(1, int(0.2 * size_px)), max(1, int(0.24 * size_px))), math.degrees(ang), 0, 360, 1, -1)
    fw = max(1, int(size_px * rng.uniform(0.07, 0.1)))
    for j, fx in enumerate((-0.14, -0.05, 0.04, 0.13)):
        length = rng.uniform(0.22, 0.34) * (0.85 if j in (0, 3) else 1.0)
        spread = (fx * 0.6) + rng.uniform(-0.05, 0.05)
        a, b = P(fx * side, -0.05), P((fx + spread) * side, -0.05 - length)
        cv2.line(m, a, b, 1, fw)
        cv2.circle(m, b, max(1, fw // 2), 1, -1)
    a, b = P(0.16 * side, 0.18), P(0.40 * side, -0.02)
    cv2.line(m, a, b, 1, int(fw * 1.1) + 1)
    cv2.circle(m, b, max(1, fw // 2), 1, -1)
    if rng.random() < 0.75:
        rgb = np.array(_SKIN_RGB[int(rng.integers(len(_SKIN_RGB)))], np.float64) * rng.uniform(0.85, 1.1)
        base = rgb[::-1]
    else:
        base = rng.uniform(20, 235, 3)  # a glove
    return m.astype(bool), _shade_sprite(rng, m, base, textured=False)


def _paste(image: np.ndarray, occ: np.ndarray, sprite: tuple[np.ndarray, np.ndarray], cx: float, cy: float) -> None:
    """Paste a sprite (mask, colour) centred at (cx, cy) into image (H, W, 3) and occ (H, W) bool."""
    m, col = sprite
    h, w = m.shape
    win = _paste_window(occ.shape, h, w, int(round(cy - (h - 1) / 2)), int(round(cx - (w - 1) / 2)))
    if win is None:
        return
    (iy, ix), (sy, sx) = win
    mm = m[sy, sx]
    np.copyto(image[iy, ix], col[sy, sx], where=mm[:, :, None])
    occ[iy, ix] |= mm


def _overlap(occ_shape, mask: np.ndarray, sprite_mask: np.ndarray, cx: float, cy: float, already: np.ndarray) -> int:
    """Object pixels newly covered by a sprite centred at (cx, cy)."""
    h, w = sprite_mask.shape
    win = _paste_window(occ_shape, h, w, int(round(cy - (h - 1) / 2)), int(round(cx - (w - 1) / 2)))
    if win is None:
        return 0
    (iy, ix), (sy, sx) = win
    return int(np.count_nonzero(sprite_mask[sy, sx] & mask[iy, ix] & ~already[iy, ix]))


# ============================================================================ per-process context
@dataclass
class _Job:
    """Everything a worker needs, set in the parent before the pool forks."""

    cfg: SynthConfig
    obj: ObjectModel
    scene_dirs: dict[int, Path]
    bg_files: list[Path]
    plan: Any = None  # _SeqPlan for sequences
    # per-process caches (built lazily in each worker)
    pid: int = -1
    renderers: dict = dataclasses.field(default_factory=dict)
    noise_bank: np.ndarray | None = None
    bg_cache: dict = dataclasses.field(default_factory=dict)

    def ensure_process(self) -> None:
        if self.pid != os.getpid():
            self.pid = os.getpid()
            self.renderers = {}
            self.bg_cache = {}
            self.noise_bank = None

    def renderer(self, variant: int) -> Renderer:
        """variant -1: the object as it is; >= 0: one of the seeded random colourings."""
        r = self.renderers.get(variant)
        if r is None:
            obj = self.obj
            if variant >= 0:
                cols = random_vertex_colors(obj, np.random.default_rng([self.cfg.seed, _S_COLOURS, variant]))
                obj = dataclasses.replace(obj, vertex_colors=cols)
            r = Renderer(obj)
            self.renderers[variant] = r
        return r

    def noise(self, rng: np.random.Generator, h: int, w: int, sigma: float) -> np.ndarray:
        """(h, w, 3) int16 Gaussian-like noise of std ``sigma``: a random window of a seeded bank
        (much cheaper than drawing fresh normals for every pixel)."""
        if self.noise_bank is None:
            brng = np.random.default_rng([self.cfg.seed, _S_NOISE_BANK])
            n = brng.standard_normal((_NOISE_BANK_SIZE, _NOISE_BANK_SIZE, 3), dtype=np.float32) * _NOISE_BANK_SIGMA
            self.noise_bank = np.clip(np.round(n), -127, 127).astype(np.int8)
        B = _NOISE_BANK_SIZE
        out = np.empty((h, w, 3), np.int16)
        scale = sigma / _NOISE_BANK_SIGMA
        # tile windows of the bank (flipped/rolled per tile) to cover big images
        for y in range(0, h, B):
            for x in range(0, w, B):
                hh, ww = min(B, h - y), min(B, w - x)
                oy, ox = int(rng.integers(0, B - hh + 1)), int(rng.integers(0, B - ww + 1))
                out[y:y + hh, x:x + ww] = self.noise_bank[oy:oy + hh, ox:ox + ww]
        return (out * scale).astype(np.int16)

    def background(self, rng: np.random.Generator, h: int, w: int) -> np.ndarray:
        if not self.bg_files:
            return procedural_background(rng, h, w)
        path = self.bg_files[int(rng.integers(len(self.bg_files)))]
        img = self.bg_cache.get(path)
        if img is None:
            img = cv2.imread(str(path), cv2.IMREAD_COLOR)
            if img is None:
                log.warning("%s: unreadable background image; using a procedural one", path)
                img = np.zeros((0, 0, 3), np.uint8)
            else:
                s = 2.0 * max(h, w) / min(img.shape[:2])
                if s < 1.0:  # keep the cache small
                    img = cv2.resize(img, None, fx=s, fy=s, interpolation=cv2.INTER_AREA)
            if len(self.bg_cache) < 256:
                self.bg_cache[path] = img
        if img.size == 0:
            return procedural_background(rng, h, w)
        ih, iw = img.shape[:2]
        aspect = w / h
        ch = rng.uniform(0.4, 1.0) * min(ih, iw / aspect)
        cw = ch * aspect
        y0 = rng.uniform(0, ih - ch)
        x0 = rng.uniform(0, iw - cw)
        crop = img[int(y0):int(y0 + ch) + 1, int(x0):int(x0 + cw) + 1]
        out = cv2.resize(crop, (w, h), interpolation=cv2.INTER_AREA if ch > h else cv2.INTER_LINEAR)
        return out[:, ::-1].copy() if rng.random() < 0.5 else out


_JOB: _Job | None = None


def _job() -> _Job:
    assert _JOB is not None, "synth worker used outside run_synth"
    _JOB.ensure_process()
    return _JOB


# ============================================================================ labels shared by both modes
@dataclass
class _Label:
    index: int
    scene_id: int
    im_id: int
    K: np.ndarray
    R: np.ndarray
    t: np.ndarray
    info: BopGtInfo
    uv: np.ndarray
    v: np.ndarray
    frame: np.ndarray | None = None  # sequences: the frame for the video


def _full_silhouette(renderer: Renderer, obj: ObjectModel, cam: Camera, R, t, mask_in_image: np.ndarray) -> tuple[int, tuple[int, int, int, int]]:
    """BOP's px_count_all and bbox_obj: the whole silhouette even past the image border.

    When the projected bounding box leaves the image, the depth pass is re-run on a canvas
    grown to hold it (at most one image size beyond each border)."""
    W, H = cam.width, cam.height
    uv = project(obj.box_corners, R, t, cam.K)
    if np.all(np.isfinite(uv)):
        lo, hi = uv.min(0), uv.max(0)
        if lo[0] >= 0 and lo[1] >= 0 and hi[0] <= W - 1 and hi[1] <= H - 1:
            return int(np.count_nonzero(mask_in_image)), mask_bbox(mask_in_image)
        px0 = int(min(max(-math.floor(lo[0]) + 1, 0), W))
        py0 = int(min(max(-math.floor(lo[1]) + 1, 0), H))
        px1 = int(min(max(math.ceil(hi[0]) - (W - 1) + 1, 0), W))
        py1 = int(min(max(math.ceil(hi[1]) - (H - 1) + 1, 0), H))
    else:  # part of the box is behind the camera: take the largest canvas
        px0 = px1 = W
        py0 = py1 = H
    big = cam.cropped(-px0, -py0, W + px0 + px1, H + py0 + py1)
    _, m = renderer.render_depth(big, R, t)
    n = int(np.count_nonzero(m))
    if n == 0:
        return 0, (-1, -1, -1, -1)
    x, y, w, h = mask_bbox(m)
    return n, (x - px0, y - py0, w, h)


def _labels(renderer: Renderer, obj: ObjectModel, cam: Camera, R, t, depth, mask, occ) -> tuple[BopGtInfo, np.ndarray, np.ndarray]:
    vis_mask = mask & ~occ
    kps = obj.keypoints
    uv = project(kps, R, t, cam.K)
    v = keypoint_visibility(kps, cam, R, t, depth).astype(np.int8)
    for k in np.nonzero(v == 2)[0]:
        c, r = int(math.floor(uv[k, 0] + 0.5)), int(math.floor(uv[k, 1] + 0.5))
        if occ[r, c]:
            v[k] = 1
    info0 = gt_info_from_masks(mask, vis_mask)
    n_all, bbox_obj = _full_silhouette(renderer, obj, cam, R, t, mask)
    n_all = max(n_all, info0.px_count_all)
    info = BopGtInfo(
        bbox_obj=bbox_obj if n_all > 0 else info0.bbox_obj,
        bbox_visib=info0.bbox_visib,
        px_count_all=n_all,
        px_count_visib=info0.px_count_visib,
        visib_fract=float(info0.px_count_visib / n_all) if n_all > 0 else 0.0,
    )
    return info, uv, v


# An 8-bit 0/255 PNG as BOP writes it. Masks compress well without row filters, and libpng's
# adaptive filter choice is most of the encode time (5x slower), so pick "none" where OpenCV
# lets us (>= 4.11).
_PNG_MASK_PARAMS = [cv2.IMWRITE_PNG_COMPRESSION, 1]
if hasattr(cv2, "IMWRITE_PNG_FILTER") and hasattr(cv2, "IMWRITE_PNG_FILTER_NONE"):
    _PNG_MASK_PARAMS += [cv2.IMWRITE_PNG_FILTER, cv2.IMWRITE_PNG_FILTER_NONE]


def _write_images(job: _Job, scene_id: int, im_id: int, image: np.ndarray, vis_mask: np.ndarray) -> None:
    sd = job.scene_dirs[scene_id]
    p = sd / "rgb" / f"{im_id:06d}.jpg"
    if not cv2.imwrite(str(p), image, [cv2.IMWRITE_JPEG_QUALITY, int(job.cfg.jpeg_quality)]):
        raise KptrackError(f"{p}: could not write the image. Check free space and permissions of --out.")
    cv2.imwrite(str(sd / "mask_visib" / f"{im_id:06d}_000000.png"), vis_mask.view(np.uint8) * np.uint8(255), _PNG_MASK_PARAMS)


def _color_jitter(rng, img: np.ndarray) -> np.ndarray:
    """Brightness, contrast, per-channel gain and gamma through one LUT; sometimes saturation."""
    x = np.arange(256, dtype=np.float32)[:, None]
    gain = rng.uniform(0.8, 1.2, 3).astype(np.float32)[None, :]
    contrast = rng.uniform(0.7, 1.3)
    bright = rng.uniform(-30, 30)
    gamma = math.exp(rng.uniform(-0.3, 0.3))
    lut = ((x - 128.0) * contrast + 128.0 + bright) * gain
    lut = 255.0 * (np.clip(lut, 0, 255) / 255.0) ** gamma
    out = cv2.LUT(img, np.clip(lut, 0, 255).astype(np.uint8).reshape(1, 256, 3))
    if rng.random() < 0.3:
        gray = cv2.cvtColor(out, cv2.COLOR_BGR2GRAY)
        s = rng.uniform(0.3, 1.4)
        out = cv2.addWeighted(out, s, cv2.cvtColor(gray, cv2.COLOR_GRAY2BGR), 1.0 - s, 0.0)
    return out


def _composite(bg: np.ndarray, color: np.ndarray, mask: np.ndarray, blur: tuple[float, float] | None) -> np.ndarray:
    """Object over background; with blur=(length px, angle rad) the object layer is motion-blurred
    (blurred colour and blurred coverage, so edges mix with the background as in a real exposure)."""
    if blur is None or blur[0] < 1.5:
        out = bg.copy()
        np.copyto(out, color, where=mask[:, :, None])
        return out
    k = _line_kernel(*blur)
    ys, xs = np.nonzero(mask.any(axis=1))[0], np.nonzero(mask.any(axis=0))[0]
    if ys.size == 0:
        return bg.copy()
    pad = k.shape[0]
    H, W = mask.shape
    y0, y1 = max(ys[0] - pad, 0), min(ys[-1] + pad + 1, H)
    x0, x1 = max(xs[0] - pad, 0), min(xs[-1] + pad + 1, W)
    m = mask[y0:y1, x0:x1].astype(np.float32)
    layer = color[y0:y1, x0:x1].astype(np.float32) * m[:, :, None]
    a = cv2.filter2D(m, -1, k, borderType=cv2.BORDER_CONSTANT)[:, :, None]
    lb = cv2.filter2D(layer, -1, k, borderType=cv2.BORDER_CONSTANT)
    out = bg.copy()
    roi = out[y0:y1, x0:x1].astype(np.float32)
    out[y0:y1, x0:x1] = np.clip(roi * (1.0 - a) + lb, 0, 255).astype(np.uint8)
    return out


def _add_noise(job: _Job, rng, img: np.ndarray, sigma: float) -> np.ndarray:
    if sigma < 0.25:
        return img
    n = job.noise(rng, img.shape[0], img.shape[1], sigma)
    return np.clip(img.astype(np.int16) + n, 0, 255).astype(np.uint8)


# ============================================================================ mode (a): training images
def _train_camera(rng, cfg: SynthConfig) -> Camera:
    W, H = cfg.image_size
    fov = math.radians(rng.uniform(*cfg.fov_range_deg))
    f = W / (2.0 * math.tan(fov / 2.0))
    return Camera.from_intrinsics(f, f, (W - 1) / 2.0, (H - 1) / 2.0, W, H)


def _train_pose(rng, cfg: SynthConfig, obj: ObjectModel, cam: Camera) -> tuple[np.ndarray, np.ndarray]:
    """Rotation, then a depth from the diameter and focal length so the bounding sphere spans
    ``fill`` of the smaller image side, then the centre at a random pixel keeping the sphere
    (nearly) inside the image."""
    W, H = cam.width, cam.height
    R = sample_rotation(rng, cfg.rot_range_deg)
    fill = rng.uniform(*cfg.fill_range)
    side = min(W, H)
    z = cam.fx * obj.diameter / (fill * side)
    r_px = 0.5 * fill * side
    # allow the sphere to stick out by up to 15 % of its radius (a little truncation is realistic)
    mu = min(max(r_px * 0.85, 0.0), (W - 1) / 2.0)
    mv = min(max(r_px * 0.85, 0.0), (H - 1) / 2.0)
    u = rng.uniform(mu, W - 1 - mu)
    v = rng.uniform(mv, H - 1 - mv)
    ray = np.linalg.solve(cam.K, np.array([u, v, 1.0]))
    centre = obj.bbox_min + 0.5 * obj.bbox_size
    t = z * ray - R @ centre
    return R, t


def _random_light(rng) -> tuple[np.ndarray, float, float]:
    """Direction towards the light (camera frame), always on the camera's side of the object."""
    d = _random_unit(rng)
    d[2] = -abs(d[2]) - 0.3
    return d / np.linalg.norm(d), float(rng.uniform(0.15, 0.6)), float(rng.uniform(0.0, 0.6))


def _add_occluders(rng, cfg: SynthConfig, image: np.ndarray, mask: np.ndarray) -> np.ndarray:
    """Paste 1-2 occluders near the object, covering at most cfg.max_occlusion of its mask."""
    occ = np.zeros(mask.shape, bool)
    n_obj = int(np.count_nonzero(mask))
    if n_obj == 0 or rng.random() >= cfg.occluder_prob:
        return occ
    x, y, w, h = mask_bbox(mask)
    cx, cy = x + (w - 1) / 2.0, y + (h - 1) / 2.0
    size_obj = float(max(w, h))
    budget = int(cfg.max_occlusion * n_obj)
    covered = 0
    for _ in range(1 if rng.random() < 0.7 else 2):
        kind = ("blob", "hand", "bar")[int(rng.integers(3))]
        sprite = occluder_sprite(rng, size_obj * rng.uniform(0.3, 0.9), kind)
        s = max(sprite[0].shape)
        a = rng.uniform(0, 2 * math.pi)
        d = rng.uniform(0.3, 1.0) * (size_obj + s) / 2.0
        for _try in range(10):
            px, py = cx + d * math.cos(a), cy + d * math.sin(a)
            new = _overlap(occ.shape, mask, sprite[0], px, py, occ)
            if covered + new <= budget:
                _paste(image, occ, sprite, px, py)
                covered += new
                break
            d += 0.12 * size_obj
    return occ


def _train_image(i: int) -> _Label:
    job = _job()
    cfg, obj = job.cfg, job.obj
    rng = np.random.default_rng([cfg.seed, i])
    scene_id, im_id = divmod(i, cfg.scene_size)
    cam = _train_camera(rng, cfg)
    R, t = _train_pose(rng, cfg, obj, cam)
    light, ambient, specular = _random_light(rng)
    plain = obj.vertex_colors is None and obj.texture is None
    variant = int(rng.integers(_N_COLOURINGS)) if plain else -1
    rend = job.renderer(variant)
    out = rend.render(cam, R, t, light_dir_cam=light, ambient=ambient, specular=specular)
    bg = job.background(rng, cam.height, cam.width)
    # motion blur: of the object alone (it moved) or of the whole image (the camera shook)
    blur, shake = None, False
    if rng.random() < 0.3:
        blur = (rng.uniform(2.0, 12.0), rng.uniform(0, math.pi))
        shake = rng.random() < 0.5
    image = _composite(bg, out.color, out.mask, None if shake else blur)
    occ = _add_occluders(rng, cfg, image, out.mask)
    if shake:
        image = cv2.filter2D(image, -1, _line_kernel(*blur), borderType=cv2.BORDER_REFLECT)
    if rng.random() < 0.15:
        image = cv2.GaussianBlur(image, (0, 0), rng.uniform(0.4, 1.2))
    image = _color_jitter(rng, image)
    image = _add_noise(job, rng, image, rng.uniform(0.0, 8.0))
    info, uv, v = _labels(rend, obj, cam, R, t, out.depth, out.mask, occ)
    _write_images(job, scene_id, im_id, image, out.mask & ~occ)
    return _Label(i, scene_id, im_id, cam.K, R, t, info, uv, v)


# ============================================================================ mode (b): test sequences
@dataclass
class Episode:
    """A scripted event of a sequence: frames [start, end)."""

    kind: str  # 'fast' | 'partial_occlusion' | 'full_occlusion' | 'exit'
    start: int
    end: int


@dataclass
class _SeqPlan:
    camera: Camera
    R: np.ndarray  # (n, 3, 3)
    t: np.ndarray  # (n, 3) mm
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


def plan_sequence(cfg: SynthConfig, obj: ObjectModel, bg_files: list[Path]) -> _SeqPlan:
    """The whole sequence, decided up front from the seed: trajectory, events, occluders, blur."""
    rng = np.random.default_rng([cfg.seed, _S_SEQ_PLAN])
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
    spin = _random_unit(rng) * rng.uniform(0.3, 0.7)  # rad/s
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
        srng = np.random.default_rng([cfg.seed, _S_SEQ_PLAN, 1000 + e])
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
        job = _Job(cfg=cfg, obj=obj, scene_dirs={}, bg_files=bg_files)
        job.ensure_process()
        background = job.background(rng, H, W)
    else:
        background = procedural_background(rng, H, W, cluttered=True)
    return _SeqPlan(cam, R, t, episodes, sprites, occluders, blur, background, _random_light(rng))


def _seq_frame(i: int) -> _Label:
    job = _job()
    cfg, obj, plan = job.cfg, job.obj, job.plan
    rng = np.random.default_rng([cfg.seed, _S_SEQ_FRAME, i])
    cam, R, t = plan.camera, plan.R[i], plan.t[i]
    rend = job.renderer(0 if (obj.vertex_colors is None and obj.texture is None) else -1)
    light, ambient, specular = plan.light
    out = rend.render(cam, R, t, light_dir_cam=light, ambient=ambient, specular=specular)
    image = _composite(plan.background, out.color, out.mask, tuple(plan.blur[i]))
    occ = np.zeros(out.mask.shape, bool)
    for e, cx, cy in plan.occluders[i]:
        _paste(image, occ, plan.sprites[e], cx, cy)
    image = _add_noise(job, rng, image, 2.0)
    info, uv, v = _labels(rend, obj, cam, R, t, out.depth, out.mask, occ)
    _write_images(job, 0, i, image, out.mask & ~occ)
    return _Label(i, 0, i, cam.K, R, t, info, uv, v, frame=image)


# ============================================================================ writers and driver
def _write_models(out: Path, obj: ObjectModel, overwrite: bool) -> Path:
    """OUT/models/ in BOP style. Refuses to replace a different object's files unless overwrite."""
    d = out / "models"
    kp_path = d / "keypoints.json"
    kp = keypoints_dict(obj)
    if kp_path.is_file() and not overwrite:
        try:
            old = json.loads(kp_path.read_text())
            same = old.get("names") == kp["names"] and np.allclose(np.asarray(old.get("points_mm"), float), obj.keypoints)
        except (ValueError, TypeError):
            same = False
        if not same:
            raise KptrackError(
                f"{kp_path}: this dataset already holds a different object. Use another --out, or --overwrite to replace it."
            )
    name = f"obj_{OBJ_ID:06d}"
    return write_object_dir(obj, d, mesh_name=f"{name}.ply", texture_name=f"{name}.png", obj_id=OBJ_ID)


def _prepare_split(cfg: SynthConfig) -> Path:
    split_dir = Path(cfg.out) / cfg.split_name
    if split_dir.exists() and any(split_dir.iterdir()):
        if not cfg.overwrite:
            raise KptrackError(
                f"{split_dir}: already holds data. Pass --overwrite to replace it, or --split NAME / another --out."
            )
        shutil.rmtree(split_dir)
    return split_dir


def _make_scene_dirs(split_dir: Path, scene_ids) -> dict[int, Path]:
    out = {}
    for s in scene_ids:
        sd = split_dir / f"{s:06d}"
        (sd / "rgb").mkdir(parents=True, exist_ok=True)
        (sd / "mask_visib").mkdir(parents=True, exist_ok=True)
        out[s] = sd
    return out


def _write_scene(sd: Path, labels: list[_Label], obj: ObjectModel, width: int, height: int) -> None:
    labels = sorted(labels, key=lambda x: x.im_id)
    write_scene_camera(sd / "scene_camera.json", {lb.im_id: BopCamera(K=lb.K, depth_scale=1.0) for lb in labels})
    write_scene_gt(sd / "scene_gt.json", {lb.im_id: [BopGt(OBJ_ID, lb.R, lb.t)] for lb in labels})
    write_scene_gt_info(sd / "scene_gt_info.json", {lb.im_id: [lb.info] for lb in labels})
    images = [CocoImage(lb.im_id, f"rgb/{lb.im_id:06d}.jpg", width, height) for lb in labels]
    anns = []
    for lb in labels:
        bv = lb.info.bbox_visib
        bbox = tuple(float(x) for x in bv) if bv[2] > 0 else (0.0, 0.0, 0.0, 0.0)
        anns.append(CocoAnnotation(image_id=lb.im_id, uv=lb.uv, v=lb.v, bbox=bbox, area=float(lb.info.px_count_visib), id=lb.im_id + 1))
    write_coco(sd / "keypoints_coco.json", images, anns, obj.keypoint_names, category_name=obj.name)


def _n_workers(cfg: SynthConfig, n_items: int) -> int:
    if cfg.workers is not None:
        n = cfg.workers
    else:
        try:
            n = len(os.sched_getaffinity(0))
        except AttributeError:
            n = os.cpu_count() or 1
    return max(1, min(n, n_items))


def _warm_up(obj: ObjectModel) -> None:
    """Compile (or load) the renderer's numba kernels once in the parent, so forked workers inherit them."""
    cam = Camera.from_fov(60.0, 32, 32)
    Renderer(obj).render(cam, np.eye(3), np.array([0.0, 0.0, 3.0 * max(obj.diameter, 1.0)]))


@contextlib.contextmanager
def _cv2_single_threaded():
    """Run OpenCV single-threaded for the duration, restoring the caller's setting after.

    Why: the workers are forked, and a child forked while OpenCV's thread pool is alive
    inherits its locks and condition variables but not its threads; the first pool call in
    the child (even ``cv2.setNumThreads``) can then wait forever. Stopping the pool in the
    parent before forking avoids that, and one process per core needs no OpenCV threads."""
    prev = cv2.getNumThreads()
    cv2.setNumThreads(1)
    try:
        yield
    finally:
        cv2.setNumThreads(prev)


def _run_pool(fn, items, workers: int, progress: bool, desc: str):
    """Yield fn(item) in order, over a fork pool (or in-process for one worker), with a progress bar.
    The pool forks before the bar exists, so no tqdm monitor thread is copied into the workers."""
    from tqdm import tqdm

    with contextlib.ExitStack() as stack:
        if workers == 1:
            results = map(fn, items)
        else:
            pool = stack.enter_context(mp.get_context("fork").Pool(workers))
            results = pool.imap(fn, items, chunksize=max(1, min(16, len(items) // (workers * 8))))
        bar = stack.enter_context(tqdm(total=len(items), desc=desc, unit="img", disable=not progress, smoothing=0.1))
        for r in results:
            yield r
            bar.update(1)


def run_synth(cfg: SynthConfig) -> Path:
    """Render the dataset cfg describes (see the module docstring) and return the folder written:
    the split folder for training images, the scene folder for a sequence."""
    cfg.validate()
    with _cv2_single_threaded():
        return _run_synth(cfg)


def _run_synth(cfg: SynthConfig) -> Path:
    global _JOB
    obj = load_object(cfg.object)
    if obj.num_keypoints == 0:
        raise KptrackError(f"--object {cfg.object}: the object has no keypoints. Add keypoints.json (kptrack object init).")
    bg_files = list_background_images(cfg.backgrounds) if cfg.backgrounds is not None else []
    out = Path(cfg.out)
    split_dir = _prepare_split(cfg)
    _write_models(out, obj, cfg.overwrite)
    W, H = cfg.image_size
    _warm_up(obj)
    t0 = time.perf_counter()
    if not cfg.sequence:
        n_scenes = (cfg.num + cfg.scene_size - 1) // cfg.scene_size
        scene_dirs = _make_scene_dirs(split_dir, range(n_scenes))
        _JOB = _Job(cfg=cfg, obj=obj, scene_dirs=scene_dirs, bg_files=bg_files)
        workers = _n_workers(cfg, cfg.num)
        pending: dict[int, list[_Label]] = {}
        try:
            for lb in _run_pool(_train_image, list(range(cfg.num)), workers, cfg.progress, "synth"):
                pending.setdefault(lb.scene_id, []).append(lb)
                expected = min(cfg.scene_size, cfg.num - lb.scene_id * cfg.scene_size)
                if len(pending[lb.scene_id]) == expected:
                    _write_scene(scene_dirs[lb.scene_id], pending.pop(lb.scene_id), obj, W, H)
        finally:
            _JOB = None
        dt = time.perf_counter() - t0
        log.info("wrote %d images in %d scene(s) to %s in %.1f s (%.1f images/s, %d workers)",
                 cfg.num, n_scenes, split_dir, dt, cfg.num / max(dt, 1e-9), workers)
        return split_dir

    scene_dirs = _make_scene_dirs(split_dir, [0])
    sd = scene_dirs[0]
    plan = plan_sequence(cfg, obj, bg_files)
    plan.camera.to_yaml(sd / "camera.yaml")
    video_path = sd / "video.mp4"
    writer = cv2.VideoWriter(str(video_path), cv2.VideoWriter_fourcc(*"mp4v"), float(cfg.fps), (W, H))
    if not writer.isOpened():
        raise KptrackError(f"{video_path}: OpenCV cannot write MP4 (mp4v) video here. Install an OpenCV build with video support.")
    _JOB = _Job(cfg=cfg, obj=obj, scene_dirs=scene_dirs, bg_files=bg_files, plan=plan)
    workers = _n_workers(cfg, cfg.frames)
    labels = []
    try:
        for lb in _run_pool(_seq_frame, list(range(cfg.frames)), workers, cfg.progress, "synth sequence"):
            writer.write(lb.frame)
            lb.frame = None
            labels.append(lb)
    finally:
        writer.release()
        _JOB = None
    _write_scene(sd, labels, obj, W, H)
    info = {
        "fps": cfg.fps,
        "frames": cfg.frames,
        "seed": cfg.seed,
        "object": obj.name,
        "episodes": [dataclasses.asdict(e) for e in plan.episodes],
    }
    (sd / "sequence_info.json").write_text(json.dumps(info, indent=1) + "\n")
    dt = time.perf_counter() - t0
    log.info("wrote a %d-frame sequence to %s in %.1f s (%.1f frames/s, %d workers); events: %s",
             cfg.frames, sd, dt, cfg.frames / max(dt, 1e-9), workers,
             ", ".join(f"{e.kind} {e.start}-{e.end - 1}" for e in plan.episodes) or "none (too short)")
    return sd
