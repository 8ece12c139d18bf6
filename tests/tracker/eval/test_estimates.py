"""Estimates aligned with GT frames: from BOP result rows, from a tracker's poses; rows that fit no frame."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from eval_scene import K
from tracker.eval.estimates import align_estimates, estimates_from_poses, unmatched_rows
from tracker.formats import BopResult
from tracker.formats.bop_scene import SceneGt


def _gt(n=4, scene_id=3):
    R = np.repeat(np.eye(3)[None], n, 0)
    t = np.tile([0.0, 0.0, 500.0], (n, 1))
    return SceneGt(scene_id, Path("s"), np.arange(n) * 10, np.repeat(K[None], n, 0), R, t, np.ones(n))


def test_align_estimates_takes_the_best_row_with_a_score():
    gt = _gt()
    I, t = np.eye(3), np.array([0.0, 0.0, 500.0])
    rows = [
        BopResult(3, 0, 1, 0.5, I, t + 1, 0.1),
        BopResult(3, 0, 1, 0.9, I, t + 2, 0.2),  # higher score wins
        BopResult(3, 10, 1, 0.0, I, t, 0.1),  # score 0: lost, no estimate
        BopResult(3, 20, 1, 0.9, I * np.nan, t, 0.1),  # not finite: skipped
        BopResult(3, 30, 2, 0.9, I, t, 0.1),  # another object
        BopResult(4, 30, 1, 0.9, I, t, 0.1),  # another scene
    ]
    est = align_estimates(gt, rows, obj_id=1)
    assert est.valid.tolist() == [True, False, False, False]
    assert np.array_equal(est.t_m2c[0], t + 2) and est.score[0] == 0.9 and est.time_s[0] == 0.2
    assert np.all(np.isnan(est.t_m2c[1:]))


def test_estimates_from_poses():
    gt = _gt()
    I, t = np.eye(3), np.array([1.0, 2.0, 500.0])
    est = estimates_from_poses(gt, [(I, t, 0.7), None, (I, t, 0.0)])  # shorter: the last frame has none
    assert est.valid.tolist() == [True, False, True, False]
    assert est.score.tolist() == [0.7, 0.0, 1e-6, 0.0]  # a score of 0 is clipped: still a pose
    assert np.array_equal(est.t_m2c[2], t) and np.all(np.isnan(est.R_m2c[1]))
    assert np.all(est.time_s == -1.0)
    with pytest.raises(ValueError, match="5 poses for 4"):
        estimates_from_poses(gt, [None] * 5)


def test_unmatched_rows():
    gts = [_gt(scene_id=3), _gt(scene_id=5)]
    I, t = np.eye(3), np.zeros(3)
    rows = [BopResult(3, 0, 1, 0.9, I, t), BopResult(3, 1, 1, 0.9, I, t), BopResult(5, 40, 1, 0.0, I, t),
            BopResult(6, 0, 1, 0.9, I, t), BopResult(6, 0, 2, 0.9, I, t), BopResult(3, 7, 2, 0.9, I, t)]
    assert unmatched_rows(gts, rows, 1) == {"unknown_im_id": 2, "unknown_scene_id": 1}
    assert unmatched_rows(gts, rows[:1], 1) == {"unknown_im_id": 0, "unknown_scene_id": 0}
