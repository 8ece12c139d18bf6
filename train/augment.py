"""Training-crop augmentation: one affine for all geometry, then photometric changes.

Geometry (scale, in-plane rotation, centre shift, the whole-frame "search" view) is composed
into a single ``(2, 3)`` crop affine from :mod:`tracker.geometry.crop`. The image is warped once with it
and the keypoints are mapped with the same matrix, so labels and heatmap targets stay exact
(no resampling of labels, no rounding). The seed recipe (Newell et al., ECCV 2016) uses scale
and 2D rotation augmentation; centre jitter and the search view make the net robust to the
tracker's imperfect ROI and to its full-frame search.

No horizontal flip: mirroring a 3D object is not a view of the same object, and it would swap
keypoint identities of a chiral object.

Photometric changes act on the 256x256 crop only (colour jitter in brightness, contrast,
saturation and hue; Gaussian or motion blur; Gaussian noise; cut-out occlusion after DeVries
and Taylor, "Improved Regularization of Convolutional Neural Networks with Cutout", 2017).
Cut-out does not change labels: keypoints under it keep their targets, so the net learns to
place occluded keypoints from context, which the pose fit needs.

Cut-out lands anywhere, mostly on background. :func:`occlude_keypoint` aims instead: a bar (a
rod, a forearm, a tool handle) laid across one visible keypoint, labels again unchanged, so that
an end of the object hidden behind something is placed from the rest of the object rather than
guessed from the occluder (benchmarks/RESULTS.md, "Bars across keypoints").
"""

from __future__ import annotations

import functools
import math
from dataclasses import dataclass

import cv2
import numpy as np

from tracker.geometry.crop import INPUT_SIZE, crop_affine


@dataclass(frozen=True)
class AugmentConfig:
    """Augmentation parameters (defaults are the training defaults).

    box_padding: crop side = box_padding * max(box w, h) before jitter.
    scale_jitter: crop side multiplied by uniform(1 - s, 1 + s) (0.25 = +-25 %).
    center_jitter: crop centre shifted by uniform(-c, c) * side on each axis.
    rotation_deg: in-plane rotation uniform(-r, r) degrees, 0..180.
    search_prob: fraction of crops that are search views: a square of side
        ``uniform_log(search_zoom_in, search_zoom_out) * long side`` anywhere in the frame (1 = the
        letterboxed frame, 0.6 = the tracker's search windows, > 1 = the frame shrunk, object small).
        Such a crop may miss the object: its keypoints then get zero targets (weight kept), which
        teaches the net to answer "not here".
    """

    box_padding: float = 1.25
    scale_jitter: float = 0.25
    center_jitter: float = 0.10
    rotation_deg: float = 30.0
    search_prob: float = 0.15
    search_zoom_in: float = 0.6
    search_zoom_out: float = 2.0
    color_prob: float = 0.8
    brightness: float = 32.0
    contrast: float = 0.3
    saturation: float = 0.3
    hue_deg: float = 8.0
    blur_prob: float = 0.2
    noise_prob: float = 0.3
    noise_std: float = 8.0
    cutout_prob: float = 0.4
    cutout_max: float = 0.4
    keypoint_bar_prob: float = 0.0
    keypoint_bar_width: tuple[float, float] = (0.06, 0.2)

    def __post_init__(self) -> None:
        if not 0.0 <= self.rotation_deg <= 180.0:
            raise ValueError(f"rotation_deg must be in [0, 180], got {self.rotation_deg}")
        if not 0.0 <= self.scale_jitter < 1.0:
            raise ValueError(f"scale_jitter must be in [0, 1), got {self.scale_jitter}")
        if not 0.0 <= self.search_prob <= 1.0:
            raise ValueError(f"search_prob must be in [0, 1], got {self.search_prob}")
        if not 0.0 <= self.keypoint_bar_prob <= 1.0:
            raise ValueError(f"keypoint_bar_prob must be in [0, 1], got {self.keypoint_bar_prob}")


NO_AUGMENT = AugmentConfig(
    scale_jitter=0.0, center_jitter=0.0, rotation_deg=0.0, search_prob=0.0, color_prob=0.0, blur_prob=0.0,
    noise_prob=0.0, cutout_prob=0.0,
)


def box_center_side(box_xywh: np.ndarray, padding: float) -> tuple[np.ndarray, float]:
    """Centre (2,) float64 frame px and padded square side of a box [x, y, w, h] (pixel-centre convention)."""
    x, y, w, h = (float(v) for v in box_xywh)
    center = np.array([x + (w - 1.0) / 2.0, y + (h - 1.0) / 2.0])
    return center, max(padding * max(w, h), 8.0)


def box_affine(box_xywh: np.ndarray, padding: float = 1.25, out_size: int = INPUT_SIZE) -> np.ndarray:
    """The deterministic crop of a box (validation, viz): centred, side padding * max(w, h), no rotation."""
    c, s = box_center_side(box_xywh, padding)
    return crop_affine(c, s, 0.0, out_size)


def sample_affine(
    rng: np.random.Generator, box_xywh: np.ndarray, image_wh: tuple[int, int], cfg: AugmentConfig, out_size: int = INPUT_SIZE
) -> tuple[np.ndarray, bool]:
    """Draw one training crop affine (2, 3) float64 frame px -> crop px. Returns (A, is_search)."""
    rot = math.radians(rng.uniform(-cfg.rotation_deg, cfg.rotation_deg)) if cfg.rotation_deg > 0 else 0.0
    if cfg.search_prob > 0 and rng.random() < cfg.search_prob:
        # The tracker's search views: the letterboxed frame (side = long side) and windows of
        # 0.6 x the long side; up to search_zoom_out x for objects smaller than in the data.
        w, h = image_wh
        lo, hi = math.log(cfg.search_zoom_in), math.log(max(cfg.search_zoom_out, cfg.search_zoom_in))
        side = float(max(w, h)) * math.exp(rng.uniform(lo, hi))
        center = np.array([
            rng.uniform(side / 2 - 0.5, w - side / 2 - 0.5) if w > side else (w - 1) / 2.0,
            rng.uniform(side / 2 - 0.5, h - side / 2 - 0.5) if h > side else (h - 1) / 2.0,
        ])
        return crop_affine(center, side, rot, out_size), True
    center, side = box_center_side(box_xywh, cfg.box_padding)
    side *= rng.uniform(1.0 - cfg.scale_jitter, 1.0 + cfg.scale_jitter)
    center = center + rng.uniform(-cfg.center_jitter, cfg.center_jitter, size=2) * side
    return crop_affine(center, side, rot, out_size), False


def warp(image: np.ndarray, A: np.ndarray, out_size: int = INPUT_SIZE, border_value=(0, 0, 0)) -> np.ndarray:
    """Crop image (H, W, 3) uint8 with affine A (2, 3): (out_size, out_size, 3) uint8, bilinear."""
    return cv2.warpAffine(
        image, np.asarray(A, dtype=np.float64), (out_size, out_size), flags=cv2.INTER_LINEAR,
        borderMode=cv2.BORDER_CONSTANT, borderValue=tuple(int(v) for v in border_value),
    )


def photometric(rng: np.random.Generator, crop: np.ndarray, cfg: AugmentConfig) -> np.ndarray:
    """Colour jitter, blur, noise and cut-out on a (S, S, 3) uint8 BGR crop. Returns a new uint8 crop.

    Saturation, contrast and brightness are one 3x4 colour matrix (:func:`_colour_matrix`)
    applied by ``cv2.transform`` in a single pass, and the noise is a window of a seeded bank of
    normals (:func:`_noise`): the crop's share of a training step fell from 2.05 ms to 0.47 ms
    on one core (benchmarks/RESULTS.md, "The training step's own work")."""
    img = crop
    s = img.shape[0]
    if cfg.color_prob > 0 and rng.random() < cfg.color_prob:
        a = rng.uniform(1 - cfg.saturation, 1 + cfg.saturation) if cfg.saturation > 0 else 1.0
        c = rng.uniform(1 - cfg.contrast, 1 + cfg.contrast)
        b = rng.uniform(-cfg.brightness, cfg.brightness)
        img = cv2.transform(img, _colour_matrix(cv2.mean(img)[:3], a, c, b))
        if cfg.hue_deg > 0:
            shift = int(round(rng.uniform(-cfg.hue_deg, cfg.hue_deg) / 2.0))  # OpenCV hue is degrees / 2
            if shift:
                hsv = cv2.cvtColor(img, cv2.COLOR_BGR2HSV)
                img = cv2.cvtColor(cv2.LUT(hsv, _hue_lut(shift)), cv2.COLOR_HSV2BGR)
    if cfg.blur_prob > 0 and rng.random() < cfg.blur_prob:
        if rng.random() < 0.5:
            img = cv2.GaussianBlur(img, (0, 0), rng.uniform(0.5, 1.5))
        else:  # motion blur along a random direction, as from a moving hand-held camera
            n = int(rng.integers(3, 8))
            k = np.zeros((n, n), np.float32)
            k[n // 2, :] = 1.0 / n
            R = cv2.getRotationMatrix2D(((n - 1) / 2.0, (n - 1) / 2.0), rng.uniform(0, 180), 1.0)
            k = cv2.warpAffine(k, R, (n, n))
            img = cv2.filter2D(img, -1, k / max(k.sum(), 1e-6))
    if cfg.noise_prob > 0 and rng.random() < cfg.noise_prob:
        sd = rng.uniform(1.0, cfg.noise_std)
        img = cv2.add(img, _noise(rng, img.shape) * np.float32(sd), dtype=cv2.CV_8U)
    if cfg.cutout_prob > 0 and rng.random() < cfg.cutout_prob:
        img = img.copy() if img is crop else img
        for _ in range(int(rng.integers(1, 3))):
            w = int(rng.uniform(0.1, cfg.cutout_max) * s)
            h = int(rng.uniform(0.1, cfg.cutout_max) * s)
            x0 = int(rng.integers(0, s - w + 1))
            y0 = int(rng.integers(0, s - h + 1))
            if rng.random() < 0.5:
                img[y0 : y0 + h, x0 : x0 + w] = rng.integers(0, 256, size=3, dtype=np.uint8)
            else:
                img[y0 : y0 + h, x0 : x0 + w] = rng.integers(0, 256, size=(h, w, 3), dtype=np.uint8)
    return img


def occlude_keypoint(rng: np.random.Generator, crop: np.ndarray, keypoints: np.ndarray, visibility: np.ndarray,
                     cfg: AugmentConfig) -> np.ndarray:
    """With probability ``cfg.keypoint_bar_prob``, a bar across one visible keypoint of a (S, S, 3)
    uint8 crop; returns the crop (a new array when drawn on). keypoints: (K, 2) crop pixels;
    visibility: (K,) (2 = visible). The bar runs right across the crop at a uniform angle, its
    width ``keypoint_bar_width`` of the crop side, its centre line within half a width of the
    keypoint, so the keypoint is always covered; it is one flat colour or a noise texture. Crops
    with no visible keypoint inside them are returned as they are."""
    if cfg.keypoint_bar_prob <= 0.0 or rng.random() >= cfg.keypoint_bar_prob:
        return crop
    s = crop.shape[0]
    q = np.asarray(keypoints, np.float64)
    inside = (np.asarray(visibility) == 2) & np.all((q >= 0) & (q < s), axis=1)
    if not inside.any():
        return crop
    c = q[rng.choice(np.flatnonzero(inside))]
    lo, hi = cfg.keypoint_bar_width
    width = rng.uniform(lo, hi) * s
    a = rng.uniform(0.0, math.pi)
    along, across = np.array([math.cos(a), math.sin(a)]), np.array([-math.sin(a), math.cos(a)])
    mid = c + rng.uniform(-0.4, 0.4) * width * across  # the keypoint stays under the bar
    ends = (mid - 2 * s * along, mid + 2 * s * along)
    half = 0.5 * width * across
    poly = np.array([ends[0] - half, ends[1] - half, ends[1] + half, ends[0] + half])
    mask = np.zeros(crop.shape[:2], np.uint8)
    cv2.fillConvexPoly(mask, np.round(poly * 16).astype(np.int32), 255, cv2.LINE_AA, shift=4)
    colour = rng.integers(0, 256, size=3).astype(np.float32)
    if rng.random() < 0.5:
        fill = np.broadcast_to(colour, crop.shape)
    else:
        fill = colour + _noise(rng, crop.shape) * np.float32(rng.uniform(8.0, 40.0))
    alpha = (mask.astype(np.float32) / 255.0)[:, :, None]
    out = crop.astype(np.float32) * (1.0 - alpha) + fill * alpha
    return np.clip(out, 0, 255).astype(np.uint8)


GRAY_BGR = np.array([0.114, 0.587, 0.299])  # luma weights of B, G, R (cv2.COLOR_BGR2GRAY's)


def _colour_matrix(channel_means, saturation: float, contrast: float, brightness: float) -> np.ndarray:
    """The (3, 4) float32 matrix that cv2.transform applies to a BGR pixel p as M[:, :3] @ p + M[:, 3]:
    saturation s blends p with its grey g = GRAY_BGR . p (q = g + s (p - g)), then contrast c and
    brightness b act about the mean m of q over the crop: c (q - m) + m + b."""
    m_p = np.asarray(channel_means, np.float64)
    m_q = saturation * m_p.mean() + (1.0 - saturation) * float(GRAY_BGR @ m_p)  # the mean of q, all channels
    M = np.empty((3, 4))
    M[:, :3] = contrast * (saturation * np.eye(3) + (1.0 - saturation) * np.tile(GRAY_BGR, (3, 1)))
    M[:, 3] = (1.0 - contrast) * m_q + brightness
    return M.astype(np.float32)


def _hue_lut(shift: int) -> np.ndarray:
    """(1, 256, 3) uint8 cv2.LUT table turning OpenCV's hue (0..179) by ``shift``, S and V unchanged."""
    lut = np.tile(np.arange(256, dtype=np.int32)[None, :, None], (1, 1, 3))
    lut[0, :180, 0] = (np.arange(180) + shift) % 180
    return lut.astype(np.uint8)


_NOISE_SIZE = 512


@functools.lru_cache(maxsize=1)
def _noise_bank() -> np.ndarray:
    """(512, 512, 3) float32 standard normals from a fixed seed, drawn on first use in each process."""
    return np.random.default_rng(20261205).standard_normal((_NOISE_SIZE, _NOISE_SIZE, 3), dtype=np.float32)


def _noise(rng: np.random.Generator, shape: tuple[int, ...]) -> np.ndarray:
    """(H, W, 3) float32 standard normals: a random window of :func:`_noise_bank` (fresh normals for
    an image larger than the bank). Drawing 196 608 normals for every 256 x 256 crop cost 2 ms; a
    window costs nothing, and the bank's windows at random offsets are as good as fresh noise for
    augmentation."""
    h, w = shape[:2]
    if h > _NOISE_SIZE or w > _NOISE_SIZE:
        return rng.standard_normal((h, w, 3), dtype=np.float32)
    y, x = (int(v) for v in rng.integers(0, (_NOISE_SIZE - h + 1, _NOISE_SIZE - w + 1)))
    return _noise_bank()[y : y + h, x : x + w]
