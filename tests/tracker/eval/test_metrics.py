"""ADD / ADD-S / 2D projection / keypoint error: identities, ordering, symmetric objects, the accumulator."""

import numpy as np
import pytest
from pose_accuracy_ref import PoseAccuracy

from tracker.geometry import so3_exp
from tracker.eval.metrics import (
    add_error,
    add_s_error,
    adds_error,
    keypoint_error,
    proj2d_error,
    sample_points,
)

K = np.array([[500.0, 0, 320], [0, 500.0, 240], [0, 0, 1]])


def _box_points(rng, n=400, size=(60.0, 40.0, 20.0)):
    return (rng.random((n, 3)) - 0.5) * np.asarray(size)


def _cylinder_points(n_around=72, n_h=10, r=30.0, h=80.0):
    a = np.linspace(0, 2 * np.pi, n_around, endpoint=False)
    z = np.linspace(-h / 2, h / 2, n_h)
    A, Z = np.meshgrid(a, z)
    return np.stack([r * np.cos(A).ravel(), r * np.sin(A).ravel(), Z.ravel()], 1)


def test_identical_poses_score_zero():
    rng = np.random.default_rng(0)
    pts = _box_points(rng)
    R, t = so3_exp(np.array([0.3, -0.2, 0.5])), np.array([10.0, -5.0, 600.0])
    assert add_error(R, t, R, t, pts) == pytest.approx(0.0, abs=1e-9)
    assert adds_error(R, t, R, t, pts) == pytest.approx(0.0, abs=1e-6)
    assert proj2d_error(R, t, R, t, pts, K) == pytest.approx(0.0, abs=1e-9)


def test_pure_translation_add_equals_offset():
    rng = np.random.default_rng(1)
    pts = _box_points(rng)
    R, t = np.eye(3), np.array([0.0, 0.0, 500.0])
    assert add_error(R, t + [3.0, 4.0, 0.0], R, t, pts) == pytest.approx(5.0)


def test_adds_never_exceeds_add():
    rng = np.random.default_rng(2)
    pts = _box_points(rng)
    R_gt, t_gt = np.eye(3), np.array([0.0, 0.0, 500.0])
    for _ in range(20):
        R = so3_exp(rng.normal(size=3) * 0.5)
        t = t_gt + rng.normal(size=3) * 10
        assert adds_error(R, t, R_gt, t_gt, pts) <= add_error(R, t, R_gt, t_gt, pts) + 1e-9


def test_symmetric_object_rotation_about_axis():
    # A cylinder turned about its axis by a non-grid angle: ADD is large, ADD-S is tiny
    # (bounded by the sampling spacing), and ADD(-S) picks the right one.
    pts = _cylinder_points()
    R_gt, t_gt = np.eye(3), np.array([0.0, 0.0, 500.0])
    R = so3_exp(np.array([0.0, 0.0, 0.7]))
    add = add_error(R, t_gt, R_gt, t_gt, pts)
    adds = adds_error(R, t_gt, R_gt, t_gt, pts)
    spacing = 2 * np.pi * 30.0 / 72
    assert add > 15.0
    assert adds < spacing / 2 + 1e-6
    assert add_s_error(R, t_gt, R_gt, t_gt, pts, symmetric=True) == pytest.approx(adds)
    assert add_s_error(R, t_gt, R_gt, t_gt, pts, symmetric=False) == pytest.approx(add)


def test_proj2d_with_discrete_symmetry():
    rng = np.random.default_rng(3)
    pts = _box_points(rng)
    R_gt, t_gt = np.eye(3), np.array([0.0, 0.0, 500.0])
    flip = np.eye(4)
    flip[:3, :3] = so3_exp(np.array([0.0, 0.0, np.pi]))  # box symmetric under 180 deg about z
    R = R_gt @ flip[:3, :3]
    assert proj2d_error(R, t_gt, R_gt, t_gt, pts, K) > 20.0
    assert proj2d_error(R, t_gt, R_gt, t_gt, pts, K, symmetries=[flip]) == pytest.approx(0.0, abs=1e-9)


def test_proj2d_known_shift():
    rng = np.random.default_rng(4)
    pts = _box_points(rng)
    R, t = np.eye(3), np.array([0.0, 0.0, 500.0])
    # 1 mm sideways at 500 mm depth with f = 500 px moves every point by 1 px
    assert proj2d_error(R, t + [1.0, 0, 0], R, t, pts * 0, K) == pytest.approx(1.0)


def test_behind_camera_is_infinite():
    pts = np.array([[0.0, 0, 0], [10.0, 0, 0]])
    assert proj2d_error(np.eye(3), np.array([0, 0, -100.0]), np.eye(3), np.array([0, 0, 500.0]), pts, K) == np.inf


def test_accumulator_counts_missing_and_low_visibility():
    rng = np.random.default_rng(5)
    pts = _box_points(rng)
    acc = PoseAccuracy(pts=pts, diameter=75.0)
    R, t = np.eye(3), np.array([0.0, 0.0, 500.0])
    acc.update(R, t, R, t, K, visib_fract=1.0)  # perfect
    acc.update(R, t + [20.0, 0, 0], R, t, K, visib_fract=0.9)  # ADD 20 > 7.5, proj 20 px
    acc.update(None, None, R, t, K, visib_fract=0.8)  # lost
    acc.update(None, None, R, t, K, visib_fract=0.2)  # not scored
    s = acc.summary()
    assert s["n_scored"] == 3 and s["n_missing"] == 1 and s["n_low_visibility"] == 1
    assert s["frac_add"] == pytest.approx(1 / 3)
    assert s["frac_proj"] == pytest.approx(1 / 3)


def test_sample_points_is_deterministic_subset():
    v = np.random.default_rng(6).normal(size=(5000, 3))
    a, b = sample_points(v, 300), sample_points(v, 300)
    assert a.shape == (300, 3) and np.array_equal(a, b)
    assert len({tuple(r) for r in a} - {tuple(r) for r in v}) == 0


def test_keypoint_error_pixels_and_points_behind_the_camera():
    kps = np.array([[0.0, 0.0, 0.0], [20.0, 0.0, 0.0], [0.0, -10.0, 5.0]])
    R, t = so3_exp(np.array([0.2, -0.1, 0.3])), np.array([5.0, -5.0, 500.0])
    assert keypoint_error(R, t, R, t, kps, K) == pytest.approx(0.0, abs=1e-9)
    # a sideways shift of 2 mm at depth 500 mm moves every point by 500 * 2 / z px, the same as proj2d_error
    R0 = np.eye(3)
    t0 = np.array([0.0, 0.0, 500.0])
    flat = np.array([[0.0, 0.0, 0.0], [20.0, 5.0, 0.0]])
    e = keypoint_error(R0, t0 + [2.0, 0, 0], R0, t0, flat, K)
    assert e == pytest.approx(2.0) and e == pytest.approx(proj2d_error(R0, t0 + [2.0, 0, 0], R0, t0, flat, K))
    # a keypoint behind the camera is left out of the mean (proj2d_error would be inf); all behind -> inf
    deep = np.array([[0.0, 0.0, 0.0], [0.0, 0.0, -600.0]])
    assert keypoint_error(R0, t0 + [2.0, 0, 0], R0, t0, deep, K) == pytest.approx(2.0)
    assert np.isinf(proj2d_error(R0, t0 + [2.0, 0, 0], R0, t0, deep, K))
    assert np.isinf(keypoint_error(R0, -t0, R0, t0, flat, K))
