"""Image effects: the object composited over its background (with motion blur), colour jitter and
sensor noise.

Motion blur follows a real exposure: the blurred object layer and its blurred coverage are mixed
over the background, so edges blend with what is behind them. Images are (H, W, 3) uint8 BGR.
"""

from __future__ import annotations

import math

import cv2
import numpy as np

from train.synth.config import NOISE_BANK_SIGMA, NOISE_BANK_SIZE, S_NOISE_BANK


def line_kernel(length: float, angle: float) -> np.ndarray:
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


def composite(bg: np.ndarray, color: np.ndarray, mask: np.ndarray, blur: tuple[float, float] | None) -> np.ndarray:
    """Object over background; with blur=(length px, angle rad) the object layer is motion-blurred
    (blurred colour and blurred coverage, so edges mix with the background as in a real exposure).

    bg, color: (H, W, 3) uint8 BGR. mask: (H, W) bool, the object's pixels."""
    if blur is None or blur[0] < 1.5:
        out = bg.copy()
        np.copyto(out, color, where=mask[:, :, None])
        return out
    k = line_kernel(*blur)
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


def color_jitter(rng: np.random.Generator, img: np.ndarray) -> np.ndarray:
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


class NoiseBank:
    """Gaussian-like sensor noise from a seeded bank of int8 samples, built on first use (once
    per process), much cheaper than drawing fresh normals for every pixel."""

    def __init__(self, seed: int) -> None:
        self.seed = seed
        self.bank: np.ndarray | None = None

    def __call__(self, rng: np.random.Generator, h: int, w: int, sigma: float) -> np.ndarray:
        """(h, w, 3) int16 noise of std ``sigma``: random windows of the bank."""
        if self.bank is None:
            brng = np.random.default_rng([self.seed, S_NOISE_BANK])
            n = brng.standard_normal((NOISE_BANK_SIZE, NOISE_BANK_SIZE, 3), dtype=np.float32) * NOISE_BANK_SIGMA
            self.bank = np.clip(np.round(n), -127, 127).astype(np.int8)
        B = NOISE_BANK_SIZE
        out = np.empty((h, w, 3), np.int16)
        scale = sigma / NOISE_BANK_SIGMA
        # tile windows of the bank (flipped/rolled per tile) to cover big images
        for y in range(0, h, B):
            for x in range(0, w, B):
                hh, ww = min(B, h - y), min(B, w - x)
                oy, ox = int(rng.integers(0, B - hh + 1)), int(rng.integers(0, B - ww + 1))
                out[y:y + hh, x:x + ww] = self.bank[oy:oy + hh, ox:ox + ww]
        return (out * scale).astype(np.int16)


def add_noise(noise: NoiseBank, rng: np.random.Generator, img: np.ndarray, sigma: float) -> np.ndarray:
    """img (H, W, 3) uint8 plus noise of std ``sigma`` (none below 0.25)."""
    if sigma < 0.25:
        return img
    n = noise(rng, img.shape[0], img.shape[1], sigma)
    return np.clip(img.astype(np.int16) + n, 0, 255).astype(np.uint8)
