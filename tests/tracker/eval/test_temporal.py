"""Temporal metrics: static segments, occlusion episodes and recovery, acceleration jitter."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from eval_scene import K
from tracker.eval.estimates import Estimates
from tracker.eval.temporal import acceleration_jitter, occlusion_episodes, pose_jumps, recovery_frames, runs, static_segments
from tracker.formats.bop_scene import SceneGt
from tracker.geometry import so3_exp


def test_temporal_helpers():
    v = np.ones(40)
    v[5:20] = 0.05  # 15 frames: an episode
    v[25:30] = 0.0  # 5 frames: too short
    v[35:] = 0.0  # runs to the end
    eps = occlusion_episodes(v, thr=0.1, min_frames=10)
    assert eps == [(5, 20)]
    correct = np.zeros(40, bool)
    correct[23] = True
    assert recovery_frames(eps, correct) == [3]
    assert recovery_frames(eps, np.zeros(40, bool)) == [None]
    assert recovery_frames([(30, 40)], np.ones(40, bool)) == []  # never reappears: not counted
    R = np.repeat(np.eye(3)[None], 12, 0)
    t = np.zeros((12, 3))
    t[:, 0] = [0, 1, 2, 3, 3, 3, 3, 3, 3, 4, 5, 6]  # still over frames 3..8
    assert static_segments(R, t, trans_mm=0.5, rot_deg=0.1, min_frames=5) == [(3, 9)]
    assert static_segments(R, t, trans_mm=0.5, rot_deg=0.1, min_frames=7) == []


def test_runs():
    m = np.array([1, 1, 0, 1, 0, 0, 1, 1, 1], bool)
    assert runs(m, 1) == [(0, 2), (3, 4), (6, 9)]
    assert runs(m, 2) == [(0, 2), (6, 9)]
    assert runs(np.zeros(0, bool), 1) == []


def test_acceleration_jitter_zero_for_exact_motion_and_sized_by_noise():
    n = 200
    R = np.array([so3_exp(np.array([0.0, 0.03 * i, 0.0])) for i in range(n)])
    t = np.array([[5.0 * i, 0.002 * i * i, 500.0] for i in range(n)])  # accelerating: GT has its own 2nd difference
    gt = SceneGt(1, Path("s"), np.arange(n), np.repeat(K[None], n, 0), R, t, np.ones(n))
    exact = Estimates(R.copy(), t.copy(), np.ones(n), np.ones(n, bool))
    j = acceleration_jitter(gt, exact)
    assert j["triples"] == n - 2 and j["trans_mm_rms"] < 1e-9 and j["rot_deg_rms"] < 1e-6
    rng = np.random.default_rng(0)
    noisy = Estimates(R.copy(), t + rng.normal(0, 0.5, (n, 3)), np.ones(n), np.ones(n, bool))
    # second difference of iid noise: variance 6 sigma^2 per axis, 3 axes
    assert acceleration_jitter(gt, noisy)["trans_mm_rms"] == pytest.approx(np.sqrt(18) * 0.5, rel=0.15)
    holes = Estimates(R.copy(), t.copy(), np.ones(n), np.arange(n) % 2 == 0)
    assert acceleration_jitter(gt, holes)["triples"] == 0


def test_pose_jumps_count_a_flip_between_box_equivalents_but_not_smooth_motion():
    n = 30
    R = np.array([so3_exp(np.array([0.0, 0.0, 0.05 * i])) for i in range(n)])  # 2.9 deg per frame
    t = np.tile([0.0, 0.0, 500.0], (n, 1))
    gt = SceneGt(1, Path("s"), np.arange(n), np.repeat(K[None], n, 0), R, t, np.ones(n))
    flip = so3_exp(np.array([np.pi, 0.0, 0.0]))  # a box's half turn: same ADD-S, another pose
    est_R = R.copy()
    est_R[10:20] = est_R[10:20] @ flip  # flipped on frames 10..19: jumps into and out of it
    valid = np.ones(n, bool)
    valid[25] = False  # pairs touching a missing frame are not counted
    j = pose_jumps(gt, Estimates(est_R, t.copy(), np.ones(n), valid))
    assert j["frames"] == [10, 20] and j["jumps"] == 2 and j["pairs"] == n - 3
    assert j["frac"] == pytest.approx(2 / (n - 3))
    assert pose_jumps(gt, Estimates(R.copy(), t.copy(), np.ones(n), np.ones(n, bool)))["jumps"] == 0


def test_pose_jumps_are_sorted_by_the_correctness_of_the_poses_they_join():
    n = 30
    R = np.array([so3_exp(np.array([0.0, 0.0, 0.05 * i])) for i in range(n)])
    t = np.tile([0.0, 0.0, 500.0], (n, 1))
    gt = SceneGt(1, Path("s"), np.arange(n), np.repeat(K[None], n, 0), R, t, np.ones(n))
    flip = so3_exp(np.array([np.pi, 0.0, 0.0]))
    est_R = R.copy()
    est_R[5:10] = est_R[5:10] @ flip    # jumps at 5 and 10
    est_R[15:20] = est_R[15:20] @ flip  # jumps at 15 and 20
    est = Estimates(est_R, t.copy(), np.ones(n), np.ones(n, bool))
    correct = np.ones(n, bool)          # 5..9: an equivalent, as correct as the truth: flips at 5 and 10
    correct[15:21] = False              # 15..20 wrong: 15 loses the track, 20 is wrong to wrong, 21 is no jump
    correct[14] = True
    j = pose_jumps(gt, est, correct=correct)
    assert j["frames"] == [5, 10, 15, 20]
    assert j["kinds"] == {"between_correct": 2, "to_wrong": 1, "to_correct": 0, "between_wrong": 1}
    correct[20] = True                  # the jump back at 20 now corrects the pose
    assert pose_jumps(gt, est, correct=correct)["kinds"] == {"between_correct": 2, "to_wrong": 1, "to_correct": 1,
                                                             "between_wrong": 0}
    assert "kinds" not in pose_jumps(gt, est)
