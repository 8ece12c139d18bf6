"""Fits of a crop's heatmap peaks, whatever channel they came from, for objects with discrete
symmetries (the keypoint pass's step 5, :mod:`tracker.pipeline.keypoint_pass`).

A plain box's network finds its corners but can mix up which is which. :class:`PeakFits` takes
the heatmaps' peaks (:func:`tracker.pipeline.associate.heatmap_peaks`), matches them to the
keypoints a start pose projects (:func:`tracker.pipeline.associate.match_to_projection`, within
``associate_gate_cells``, then half that under the first fit) and fits those, as a model-based
tracker associates its features. The same match runs from the start turned by each of the
object's confusable turns (:mod:`tracker.objects.confusable`), and without a start from a
labelled RANSAC pose and from P3P hypotheses on the peaks under every channel firing on each
(:func:`tracker.pipeline.solve_ransac.peak_hypothesis`). Every fit tried can be collected into a
pool, the rivals of the pass's edge check (:mod:`tracker.pipeline.edges`).

A fit tuple is (fit, the keypoints it used, accepted, (uv (K, 2) frame px as seen, NaN where
unmatched; the peaks' values (K,))); fit is a :class:`~tracker.pipeline.pose_result.PoseResult`.
"""

from __future__ import annotations

from typing import Callable

import numpy as np

from tracker.geometry import project
from tracker.geometry.crop import heatmap_to_frame
from tracker.pipeline.associate import heatmap_peaks, match_to_projection, peak_labels
from tracker.pipeline.config import TrackerConfig
from tracker.pipeline.solve_ransac import peak_hypothesis


def fits_better(a, b) -> bool:
    """Whether fit ``a`` explains more keypoints than ``b`` (then a lower RMS breaks the tie)."""
    if b is None:
        return True
    return (a.n_inliers, -a.rms) > (b.n_inliers, -b.rms)


def collect(pool: list | None, fit) -> None:
    """Append a fit tuple (fit, keypoints used, accepted[, matched keypoints]) to ``pool``."""
    if pool is not None and fit is not None:
        pool.append(fit)


class PeakFits:
    """The matched-peak fits of one keypoint pass (see the module docstring).

    keypoints: (K, 3) float64 mm; K: (3, 3) ideal intrinsics; config: the tracker's; turns: (T, 4,
    4) the object's confusable turns (none: no turned starts); solve_warm: the pass's warm solver
    ``(xyz, uv, w, K, R0, t0, scale_px) -> PoseResult``; acceptable: the pass's accept test
    ``(fit, px_per_cell) -> bool``; undistort: observed frame px (N, 2) -> ideal; input_size,
    heatmap_size: the network's.
    """

    def __init__(self, keypoints: np.ndarray, K: np.ndarray, config: TrackerConfig, turns: np.ndarray,
                 solve_warm: Callable, acceptable: Callable, undistort: Callable, input_size: int, heatmap_size: int):
        self.keypoints, self.K, self.config, self.turns = keypoints, K, config, turns
        self.solve_warm, self.acceptable, self.undistort = solve_warm, acceptable, undistort
        self.input_size, self.heatmap_size = input_size, heatmap_size

    def peaks(self, heat: np.ndarray, A: np.ndarray):
        """The heatmaps' peaks (:func:`tracker.pipeline.associate.heatmap_peaks`): (frame px as seen
        (P, 2), undistorted (P, 2), values (P,), the channels firing on each
        (:func:`tracker.pipeline.associate.peak_labels`)), or None when fewer than min_keypoints."""
        xy, val = heatmap_peaks(heat, self.config.min_conf, 2 * len(self.keypoints))
        if len(xy) < self.config.min_keypoints:
            return None
        seen = heatmap_to_frame(xy, A, self.input_size, self.heatmap_size)
        return seen, self.undistort(seen), val, peak_labels(heat, xy, self.config.min_conf)

    def cold_fit(self, peaks, cold, px_per_cell: float, scale: float, iters: int | None = None, pool: list | None = None):
        """The best accepted matched-peak fit (:meth:`hypotheses_fit`) without a previous pose:
        from the labelled RANSAC pose ``cold`` (with ``confusable``: it may be a confusable turn
        off) and (``peak_cold``) from P3P-RANSAC hypotheses on the peaks under every channel firing
        on them (:func:`tracker.pipeline.solve_ransac.peak_hypothesis`); or None."""
        cfg = self.config
        if peaks is None:
            return None
        starts = [(cold.R_m2c, cold.t_m2c)] if cold is not None and cfg.confusable and len(self.turns) else []
        if cfg.peak_cold:
            starts.append(peak_hypothesis(self.keypoints, peaks[1], peaks[3], self.K, cfg.associate_gate_cells * px_per_cell,
                                          iters=iters or cfg.peak_ransac_iters, min_matched=cfg.min_keypoints))
        best = None
        for st in starts:
            if st is None:
                continue
            m = self.hypotheses_fit(peaks, st, px_per_cell, scale, pool)
            if m is not None and m[2] and (best is None or fits_better(m[0], best[0])):
                best = m
        return best

    def hypotheses_fit(self, peaks, start: tuple, px_per_cell: float, scale: float, pool: list | None = None):
        """The matched-peak fit (:meth:`matched_fit`) from ``start`` = (R, t), or from ``start``
        turned by one of the object's confusable turns when that explains at least
        ``confusable_margin`` more keypoints (the best such turn by inliers, then RMS). Every
        fit tried is appended to ``pool`` when given: the edge check's rivals, which it holds to the
        accept test with ``edge_min_inliers``."""
        cfg = self.config
        best = self.matched_fit(peaks, start, px_per_cell, scale)
        collect(pool, best)
        if not cfg.confusable or not len(self.turns):
            return best
        if best is not None and best[2] and best[0].n_inliers + cfg.confusable_margin > len(peaks[0]):
            return best  # no turn can explain confusable_margin more: there are not that many peaks
        R0, t0 = np.asarray(start[0], np.float64), np.asarray(start[1], np.float64)
        alt = None
        for T in self.turns:
            m = self.matched_fit(peaks, (R0 @ T[:3, :3], t0 + R0 @ T[:3, 3]), px_per_cell, scale)
            collect(pool, m)
            if m is not None and m[2] and (alt is None or fits_better(m[0], alt[0])):
                alt = m
        if alt is not None and (best is None or not best[2] or alt[0].n_inliers >= best[0].n_inliers + cfg.confusable_margin):
            return alt
        return best

    def matched_fit(self, peaks, warm: tuple, px_per_cell: float, scale: float):
        """The fit of the heatmaps' peaks matched to the keypoints projected by the warm start, then
        re-matched under that fit and fitted again (:mod:`tracker.pipeline.associate`): (fit, the
        keypoints it used, accepted, (uv (K, 2) frame px as seen, NaN where unmatched; the peaks'
        values (K,))), or None with too few matches. peaks: :meth:`peaks`'s tuple."""
        cfg = self.config
        seen, ideal, val = peaks[:3]
        R, t = np.asarray(warm[0], np.float64), np.asarray(warm[1], np.float64)
        res = idx = None
        for gate in (cfg.associate_gate_cells, 0.5 * cfg.associate_gate_cells):
            j = match_to_projection(ideal, project(self.keypoints, R, t, self.K), gate * px_per_cell)
            sel = j >= 0
            if np.count_nonzero(sel) < cfg.min_keypoints:
                break
            res, idx, at = self.solve_warm(self.keypoints[j[sel]], ideal[sel], val[sel], self.K, R, t, scale), j[sel], np.flatnonzero(sel)
            R, t = np.asarray(res.R_m2c), np.asarray(res.t_m2c)
        if res is None:
            return None
        uv_k, conf_k = np.full((len(self.keypoints), 2), np.nan), np.zeros(len(self.keypoints))
        uv_k[idx], conf_k[idx] = seen[at], val[at]
        return res, idx, self.acceptable(res, px_per_cell), (uv_k, conf_k)
