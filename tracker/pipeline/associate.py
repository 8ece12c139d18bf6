"""Unlabelled keypoints for a discrete-symmetric object: the heatmaps' peaks, matched to the model's
keypoints by the warm start.

On a plain box the network finds the corners (every visible corner carries a peak in the
maximum over its heatmaps) but not always which corner is which: telling two corners apart takes
the box's edge lengths and the handedness of the faces around each corner, a global cue, so
several channels can fire on one corner and leave another unclaimed. A tracker has a better
source for the identities: the previous pose. :func:`heatmap_peaks` takes the local maxima of
the channel-wise maximum, whatever channel they came from, and :func:`match_to_projection`
gives each the model keypoint whose projection under the warm start lies nearest (one peak per
keypoint, within a gate), as a model-based edge or corner tracker associates its features
(Harris's RAPiD; Drummond and Cipolla, "Real-time visual tracking of complex structures",
PAMI 2002). The keypoint pass fits those correspondences, re-matches under the fitted pose and
fits again (:class:`tracker.pipeline.keypoint_pass.KeypointPass`).

Without a previous pose, :func:`peak_labels` gives each peak every channel that fires on it
(within a fraction of the strongest one there): a corner two channels claim is a candidate for
both, and the cold start's pose hypotheses
(:func:`tracker.pipeline.solve_ransac.peak_hypothesis`) pick the consistent ones, as
multi-hypothesis correspondences do when a descriptor is ambiguous.
"""

from __future__ import annotations

import numpy as np


def heatmap_peaks(heat: np.ndarray, min_conf: float, max_peaks: int) -> tuple[np.ndarray, np.ndarray]:
    """Local maxima of the channel-wise maximum of ``heat`` (K, H, W).

    A peak is a cell >= ``min_conf`` and >= its 8 neighbours (strictly above the ones before it in
    scan order, so a flat top gives one peak); its position is refined per axis by the parabola
    through the log of the three values around it (the Gaussian's exact mode), kept when the
    neighbours are positive. Returns (xy (P, 2) float64 heatmap cells, x = column, value (P,)),
    strongest first, at most ``max_peaks``.
    """
    m = np.asarray(heat, np.float32).max(axis=0)
    m = np.where(np.isfinite(m), m, 0.0).astype(np.float64)
    h, w = m.shape
    pad = np.pad(m, 1, constant_values=-np.inf)
    centre = pad[1:-1, 1:-1]
    peak = centre >= min_conf
    for dy in (-1, 0, 1):
        for dx in (-1, 0, 1):
            if dy == 0 and dx == 0:
                continue
            nb = pad[1 + dy:1 + dy + h, 1 + dx:1 + dx + w]
            before = dy < 0 or (dy == 0 and dx < 0)
            peak &= (centre > nb) if before else (centre >= nb)
    ys, xs = np.nonzero(peak)
    if len(ys) == 0:
        return np.zeros((0, 2)), np.zeros(0)
    vals = m[ys, xs]
    order = np.argsort(-vals, kind="stable")[:max_peaks]
    ys, xs, vals = ys[order], xs[order], vals[order]
    xy = np.stack([xs, ys], axis=1).astype(np.float64)
    for axis, (oy, ox) in enumerate(((0, 1), (1, 0))):  # x: left/right neighbours, y: up/down
        for i, (y, x) in enumerate(zip(ys, xs)):
            y0, x0, y1, x1 = y - oy, x - ox, y + oy, x + ox
            if not (0 <= y0 < h and 0 <= x0 < w and 0 <= y1 < h and 0 <= x1 < w):
                continue
            a, b, c = m[y0, x0], m[y, x], m[y1, x1]
            if a <= 0 or c <= 0:
                continue
            la, lb, lc = np.log(a), np.log(b), np.log(c)
            den = la - 2 * lb + lc
            if den < 0:
                xy[i, axis] += float(np.clip(0.5 * (la - lc) / den, -0.5, 0.5))
    return xy, vals


def peak_labels(heat: np.ndarray, xy: np.ndarray, min_conf: float, rel: float = 0.5) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """The channels that fire on each peak: (peak index (C,), keypoint index (C,), value (C,)).

    heat: (K, H, W); xy: (P, 2) heatmap cells (:func:`heatmap_peaks`). A channel labels a peak when
    its value at the peak's cell is >= ``min_conf`` and >= ``rel`` times the strongest channel's
    there. Pairs come peak by peak, strongest channel first.
    """
    heat = np.asarray(heat, np.float32)
    k, h, w = heat.shape
    if len(xy) == 0:
        empty = np.zeros(0, np.int64)
        return empty, empty, np.zeros(0)
    cells = np.rint(np.asarray(xy, np.float64)).astype(np.int64)
    cx, cy = np.clip(cells[:, 0], 0, w - 1), np.clip(cells[:, 1], 0, h - 1)
    v = np.nan_to_num(heat[:, cy, cx].astype(np.float64).T, nan=0.0)  # (P, K)
    keep = (v >= min_conf) & (v >= rel * v.max(axis=1, keepdims=True))
    order = np.argsort(-v, axis=1, kind="stable")  # each peak's channels, strongest first
    pi, rank = np.nonzero(np.take_along_axis(keep, order, axis=1))  # row-major: peak by peak
    ki = order[pi, rank]
    return pi.astype(np.int64), ki.astype(np.int64), v[pi, ki]


def match_to_projection(peaks_uv: np.ndarray, model_uv: np.ndarray, gate_px: float) -> np.ndarray:
    """(P,) int: for each peak (P, 2) frame px, the model keypoint whose projection (K, 2) frame px
    is nearest, or -1. Greedy by distance: each keypoint takes at most one peak and each peak one
    keypoint, and a pair further apart than ``gate_px`` is not made (a NaN projection never is)."""
    p, k = len(peaks_uv), len(model_uv)
    out = np.full(p, -1, np.int64)
    if p == 0 or k == 0:
        return out
    d = np.linalg.norm(np.asarray(peaks_uv)[:, None] - np.asarray(model_uv)[None], axis=2)
    d = np.where(np.isfinite(d), d, np.inf)
    used_k = np.zeros(k, bool)
    for flat in np.argsort(d, axis=None, kind="stable"):
        i, j = divmod(int(flat), k)
        if d[i, j] > gate_px:
            break
        if out[i] < 0 and not used_k[j]:
            out[i], used_k[j] = j, True
    return out
