"""The per-frame error plot of one scene that ``kptrack eval`` writes, drawn with cv2 (no matplotlib).

:func:`plot_errors` draws, over the frame index, ADD(-S)/diameter, 2D projection and keypoint errors
(px), rotation (deg) and translation (mm) errors, and the visible fraction, from one scene of
:func:`tracker.eval.evaluate.evaluate_scene`'s output; the thresholds as red lines.
"""

from __future__ import annotations

import math
from pathlib import Path
from typing import Any

import cv2
import numpy as np

from tracker.errors import KptrackError
from tracker.eval.temporal import runs

_COLORS = {"ad": (220, 40, 40), "proj": (200, 120, 0), "rot": (0, 140, 0), "trans": (160, 0, 160), "kp": (0, 140, 255),
           "vis": (90, 90, 90)}


def _nice_step(span: float, target: int = 8) -> float:
    raw = span / max(1, target)
    mag = 10 ** math.floor(math.log10(raw)) if raw > 0 else 1.0
    for m in (1, 2, 5, 10):
        if raw <= m * mag:
            return m * mag
    return 10 * mag


def _panel(img: np.ndarray, y0: int, h: int, x0: int, w: int, n: int, series, ymax: float, label: str,
           thresholds=(), shade=(), missing=None) -> None:
    """Draw one panel into img (H, W, 3) uint8 BGR at rows y0..y0+h, columns x0..x0+w: frame index on x
    (0..n-1), values clipped to [0, ymax] on y. series: (values (n,), BGR colour, legend) triples."""
    font = cv2.FONT_HERSHEY_SIMPLEX
    for s, e in shade:  # occlusion episodes
        xa = x0 + int(round(s / max(1, n - 1) * w))
        xb = x0 + int(round((e - 1) / max(1, n - 1) * w))
        cv2.rectangle(img, (xa, y0), (max(xa + 1, xb), y0 + h), (225, 225, 225), -1)
    cv2.rectangle(img, (x0, y0), (x0 + w, y0 + h), (0, 0, 0), 1)
    for frac in (0.0, 0.5, 1.0):
        yy = y0 + h - int(round(frac * h))
        cv2.putText(img, f"{frac * ymax:g}", (4, yy + 4), font, 0.35, (0, 0, 0), 1, cv2.LINE_AA)
        cv2.line(img, (x0 - 4, yy), (x0, yy), (0, 0, 0), 1)
    for thr in thresholds:
        yy = y0 + h - int(round(min(thr, ymax) / ymax * h))
        cv2.line(img, (x0, yy), (x0 + w, yy), (0, 0, 200), 1, cv2.LINE_AA)
    cv2.putText(img, label, (x0 + 6, y0 + 14), font, 0.42, (0, 0, 0), 1, cv2.LINE_AA)
    ty = y0 + 14
    for values, color, name in series:
        v = np.asarray(values, np.float64)
        xs = x0 + np.round(np.arange(n) / max(1, n - 1) * w).astype(np.int32)
        ys = y0 + h - np.round(np.clip(np.nan_to_num(v, nan=0.0), 0, ymax) / ymax * h).astype(np.int32)
        ok = np.isfinite(v)
        # polylines broken at missing values
        for s, e in runs(ok, 1):
            pts = np.stack([xs[s:e], ys[s:e]], 1).reshape(-1, 1, 2)
            if e - s == 1:
                cv2.circle(img, tuple(int(c) for c in pts[0, 0]), 1, color, -1)
            else:
                cv2.polylines(img, [pts], False, color, 1, cv2.LINE_AA)
        if name:
            cv2.putText(img, name, (x0 + w - 150, ty), font, 0.38, color, 1, cv2.LINE_AA)
            ty += 13
    if missing is not None:  # red ticks under frames without an estimate
        for i in np.flatnonzero(missing):
            x = x0 + int(round(i / max(1, n - 1) * w))
            cv2.line(img, (x, y0 + h - 4), (x, y0 + h), (0, 0, 255), 1)


def plot_errors(scene: dict[str, Any], path: str | Path, *, diameter_mm: float, add_frac: float = 0.1,
                proj_px: float = 5.0, title: str = "") -> Path:
    """Write a PNG of the per-frame errors of one scene (output of :func:`evaluate_scene`) with cv2.

    Panels: ADD(-S)/diameter, 2D projection and keypoint errors (px), rotation (deg) and
    translation (mm) errors, visible fraction. Grey bands: full-occlusion episodes; red ticks:
    frames with no estimate; red lines: the thresholds."""
    pf = scene["per_frame"]
    n = len(pf["im_id"])
    arr = {k: np.array([np.nan if x is None else x for x in pf[k]], np.float64) for k in
           ("ad_mm", "proj2d_px", "kp_px", "rot_deg", "trans_mm", "visib_fract")}
    missing = ~np.asarray(pf["estimated"], bool)
    shade = [tuple(e) for e in scene["aggregate"]["occlusion"]["episodes"]]
    W, x0, ph, gap, top = 1100, 48, 130, 22, 34
    panels = 5
    img = np.full((top + panels * (ph + gap) + 24, W, 3), 255, np.uint8)
    w = W - x0 - 16
    cv2.putText(img, title or f"scene {scene['scene_id']}: errors per frame ({n} frames)", (x0, 22),
                cv2.FONT_HERSHEY_SIMPLEX, 0.55, (0, 0, 0), 1, cv2.LINE_AA)
    metric = scene["aggregate"]["ad_metric"]
    y = top
    _panel(img, y, ph, x0, w, n, [(arr["ad_mm"] / diameter_mm, _COLORS["ad"], "")], 0.5,
           f"{metric} / diameter (line: {add_frac:g})", (add_frac,), shade, missing)
    y += ph + gap
    _panel(img, y, ph, x0, w, n, [(arr["proj2d_px"], _COLORS["proj"], "2D projection"), (arr["kp_px"], _COLORS["kp"], "keypoints")],
           30.0, f"pixels (line: {proj_px:g} px)", (proj_px,), shade, missing)
    y += ph + gap
    _panel(img, y, ph, x0, w, n, [(arr["rot_deg"], _COLORS["rot"], "")], 20.0, "rotation error, deg (line: 5)", (5.0,), shade, missing)
    y += ph + gap
    _panel(img, y, ph, x0, w, n, [(arr["trans_mm"], _COLORS["trans"], "")], 100.0, "translation error, mm (line: 50)", (50.0,), shade, missing)
    y += ph + gap
    _panel(img, y, ph, x0, w, n, [(arr["visib_fract"], _COLORS["vis"], "")], 1.0, "visible fraction (line: 0.1)", (0.1,), shade)
    # frame ticks under the last panel
    step = _nice_step(max(1, n - 1))
    k = 0.0
    while k <= n - 1:
        x = x0 + int(round(k / max(1, n - 1) * w))
        cv2.line(img, (x, y + ph), (x, y + ph + 4), (0, 0, 0), 1)
        cv2.putText(img, f"{int(k)}", (x - 8, y + ph + 16), cv2.FONT_HERSHEY_SIMPLEX, 0.35, (0, 0, 0), 1, cv2.LINE_AA)
        k += step
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    if not cv2.imwrite(str(path), img):
        raise KptrackError(f"{path}: cannot write the plot PNG. Choose a writable --out folder.")
    return path
