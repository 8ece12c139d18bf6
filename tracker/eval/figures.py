"""Figures of one crop for ``kptrack viz``: keypoints over the crop, and the heatmap grid.

Colours come from :func:`palette` (one per keypoint); :func:`draw_keypoints_crop` shows the crop
zoomed with keypoints (hollow where hidden or weak) and optional lines to the ground truth, with a
legend; :func:`draw_heatmap_grid` shows each heatmap over the grey crop, named, with its peak.
"""

from __future__ import annotations

import math

import cv2
import numpy as np

from tracker.geometry.crop import apply_affine

#: keypoints with a confidence below this are drawn hollow
WEAK_CONF = 0.3


def palette(k: int) -> list[tuple[int, int, int]]:
    """k distinct saturated BGR colours."""
    hsv = np.stack([np.linspace(0, 179, k, endpoint=False), np.full(k, 230), np.full(k, 255)], 1).astype(np.uint8)[None]
    return [tuple(int(c) for c in bgr) for bgr in cv2.cvtColor(hsv, cv2.COLOR_HSV2BGR)[0]]


def _label(img, text, org, scale=0.45, color=(255, 255, 255)):
    """Text on a dark box (readable over any background)."""
    (tw, th), base = cv2.getTextSize(text, cv2.FONT_HERSHEY_SIMPLEX, scale, 1)
    x, y = int(org[0]), int(org[1])
    cv2.rectangle(img, (x - 2, y - th - 3), (x + tw + 2, y + base), (20, 20, 20), -1)
    cv2.putText(img, text, (x, y), cv2.FONT_HERSHEY_SIMPLEX, scale, color, 1, cv2.LINE_AA)


def _zoom(crop: np.ndarray, f: int = 2) -> np.ndarray:
    return cv2.resize(crop, (crop.shape[1] * f, crop.shape[0] * f), interpolation=cv2.INTER_LINEAR)


def _legend(names, cols, height: int) -> np.ndarray:
    panel = np.full((height, 230, 3), 32, np.uint8)
    for i, (n, c) in enumerate(zip(names, cols)):
        y = 22 + 20 * i
        cv2.circle(panel, (14, y - 5), 6, c, -1, cv2.LINE_AA)
        _label(panel, f"{i}: {n}"[:30], (26, y), 0.42)
    return panel


def draw_keypoints_crop(crop, A, uv, names, *, visibility=None, conf=None, gt_uv=None, title="", zoom: int = 2):
    """The crop zoomed ``zoom`` x with keypoints uv (K, 2) frame px mapped through A (2, 3) and a legend."""
    img = _zoom(crop, zoom)
    cols = palette(len(names))
    if gt_uv is not None:
        for p, g in zip(apply_affine(A, uv) * zoom, apply_affine(A, gt_uv) * zoom):
            if np.all(np.isfinite(p)) and np.all(np.isfinite(g)):
                cv2.line(img, tuple(int(round(x)) for x in g), tuple(int(round(x)) for x in p), (255, 255, 255), 1, cv2.LINE_AA)
    for i, q in enumerate(apply_affine(A, uv) * zoom):
        if not np.all(np.isfinite(q)):
            continue
        c = tuple(int(round(x)) for x in q)
        hidden = visibility is not None and visibility[i] == 1
        weak = conf is not None and conf[i] < WEAK_CONF
        cv2.circle(img, c, 7, (0, 0, 0), 3, cv2.LINE_AA)
        cv2.circle(img, c, 6, cols[i], 1 if (hidden or weak) else -1, cv2.LINE_AA)
        _label(img, str(i), (c[0] + 8, c[1] - 6), 0.45, cols[i])
    for j, line in enumerate(title.split("\n") if title else []):
        _label(img, line, (8, 20 + 20 * j), 0.5)
    return np.hstack([img, _legend(names, cols, img.shape[0])])


def draw_heatmap_grid(crop: np.ndarray, heatmaps: np.ndarray, names, conf) -> np.ndarray:
    """Grid of K tiles: the crop in grey with heatmap k (colour-mapped, 0..1) over it, named."""
    k = heatmaps.shape[0]
    cols = int(math.ceil(math.sqrt(k + 1)))
    rows = int(math.ceil((k + 1) / cols))
    t = 200
    base = cv2.cvtColor(cv2.cvtColor(cv2.resize(crop, (t, t), interpolation=cv2.INTER_AREA), cv2.COLOR_BGR2GRAY), cv2.COLOR_GRAY2BGR)
    tiles = []
    for i in range(k + 1):
        hm = heatmaps.max(0) if i == k else heatmaps[i]
        hm8 = (np.clip(cv2.resize(hm, (t, t), interpolation=cv2.INTER_LINEAR), 0, 1) * 255).astype(np.uint8)
        tile = cv2.addWeighted(base, 0.45, cv2.applyColorMap(hm8, cv2.COLORMAP_JET), 0.55, 0)
        _label(tile, (f"{i}: {names[i]}" if i < k else "all (max)")[:26], (5, 16), 0.42)
        if i < k:
            _label(tile, f"peak {conf[i]:.2f}", (5, t - 8), 0.42)
        tiles.append(tile)
    tiles += [np.zeros_like(tiles[0])] * (rows * cols - len(tiles))
    grid = np.vstack([np.hstack(tiles[r * cols : (r + 1) * cols]) for r in range(rows)])
    return grid
