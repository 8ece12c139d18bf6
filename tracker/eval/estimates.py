"""Estimated poses aligned frame by frame with one scene's ground truth, ready for the scorer.

:func:`align_estimates` picks them from BOP result rows (``kptrack eval``), :func:`estimates_from_poses`
from a tracker's per-frame poses (``kptrack bench``, ``kptrack demo``), and :func:`unmatched_rows`
counts the result rows that fit no GT frame, so a CSV for another sequence does not pass unnoticed.
A frame has an estimate when its score is > 0: ``kptrack track`` writes score 0 for a lost object.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Sequence

import numpy as np

from tracker.formats.bop_results import BopResult
from tracker.formats.bop_scene import SceneGt

# what the bench always gave a pose whose solver reported score 0, so that it still counts as estimated
MIN_POSE_SCORE = 1e-6


@dataclass
class Estimates:
    """Estimated poses aligned with a SceneGt: R_m2c (N, 3, 3), t_m2c (N, 3) mm (NaN where missing),
    score (N,), valid (N,) bool, time_s (N,) (-1 unknown)."""

    R_m2c: np.ndarray
    t_m2c: np.ndarray
    score: np.ndarray
    valid: np.ndarray
    time_s: np.ndarray = field(default_factory=lambda: np.zeros(0))


def align_estimates(gt: SceneGt, results: Sequence[BopResult], obj_id: int = 1) -> Estimates:
    """Pick, for each GT frame, the highest-scoring result row of (scene, im_id, obj_id) with score > 0."""
    n = len(gt.im_ids)
    R = np.full((n, 3, 3), np.nan)
    t = np.full((n, 3), np.nan)
    score = np.zeros(n)
    tm = np.full(n, -1.0)
    index = {int(i): k for k, i in enumerate(gt.im_ids)}
    for r in results:
        if r.scene_id != gt.scene_id or r.obj_id != obj_id or not r.score > 0:
            continue
        k = index.get(int(r.im_id))
        if k is None or r.score <= score[k]:
            continue
        if not (np.all(np.isfinite(r.R_m2c)) and np.all(np.isfinite(r.t_m2c))):
            continue
        R[k], t[k], score[k], tm[k] = r.R_m2c, r.t_m2c, r.score, r.time
    return Estimates(R, t, score, score > 0, tm)


def estimates_from_poses(gt: SceneGt, poses: Sequence[tuple[np.ndarray, np.ndarray, float] | None]) -> Estimates:
    """Estimates from one pose per GT frame, in frame order: (R_m2c (3, 3), t_m2c (3,) mm, score) or None
    when the tracker gave none. The score is clipped to >= 1e-6 so every given pose counts as estimated.
    Frames past the end of a shorter ``poses`` (a run that stopped early) have no estimate."""
    n = len(gt.im_ids)
    if len(poses) > n:
        raise ValueError(f"{len(poses)} poses for {n} ground-truth frames of scene {gt.scene_id}: "
                         "cut the ground truth to the frames run, or pass one pose per frame.")
    R = np.full((n, 3, 3), np.nan)
    t = np.full((n, 3), np.nan)
    score = np.zeros(n)
    for i, p in enumerate(poses):
        if p is not None:
            R[i], t[i], score[i] = p[0], p[1], max(float(p[2]), MIN_POSE_SCORE)
    return Estimates(R, t, score, score > 0, np.full(n, -1.0))


def unmatched_rows(gts: Sequence[SceneGt], results: Sequence[BopResult], obj_id: int = 1) -> dict[str, int]:
    """Result rows of ``obj_id`` (any score) that no GT frame takes: 'unknown_im_id' (scene among
    ``gts``, im_id not among its frames of the object) and 'unknown_scene_id' (scene not among ``gts``)."""
    frames = {g.scene_id: {int(i) for i in g.im_ids} for g in gts}
    unknown_im = unknown_scene = 0
    for r in results:
        if r.obj_id != obj_id:
            continue  # other objects in the CSV are not this evaluation's business
        if r.scene_id not in frames:
            unknown_scene += 1
        elif int(r.im_id) not in frames[r.scene_id]:
            unknown_im += 1
    return {"unknown_im_id": unknown_im, "unknown_scene_id": unknown_scene}
