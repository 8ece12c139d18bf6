"""Tests for tracker.camera.camera: constructors, derived cameras, undistortion, projection."""

from __future__ import annotations

import math

import cv2
import numpy as np
import pytest

from tracker import geometry as g
from tracker.camera import Camera

DIST5 = np.array([-0.3, 0.1, 1e-3, -1e-3, -0.02])


def _cam(dist=DIST5):
    return Camera.from_intrinsics(610.0, 605.0, 322.3, 241.7, 640, 480, dist)


# ------------------------------------------------------------------ constructors
def test_from_intrinsics_and_accessors():
    c = _cam()
    assert (c.fx, c.fy, c.cx, c.cy) == (610.0, 605.0, 322.3, 241.7)
    assert c.size == (640, 480) and c.K.dtype == np.float64 and c.dist.shape == (5,)
    assert c.has_distortion and not _cam(None).has_distortion
    assert _cam(None).dist.shape == (0,)


def test_camera_is_frozen_and_arrays_read_only():
    c = _cam()
    with pytest.raises(AttributeError):
        c.width = 10
    with pytest.raises(ValueError):
        c.K[0, 0] = 1.0
    K = np.array(c.K)
    c2 = Camera(K, None, 640, 480)
    K[0, 0] = 1.0  # the camera holds its own copy
    assert c2.fx == 610.0


def test_equality():
    assert _cam() == _cam()
    assert _cam() != _cam(None)
    assert _cam() != Camera.from_intrinsics(610.0, 605.0, 322.3, 241.7, 641, 480, DIST5)


@pytest.mark.parametrize(
    "kwargs",
    [
        dict(K=np.eye(2), dist=None, width=10, height=10),
        dict(K=np.diag([-1.0, 1.0, 1.0]), dist=None, width=10, height=10),
        dict(K=np.eye(3), dist=np.zeros(6), width=10, height=10),
        dict(K=np.eye(3), dist=None, width=0, height=10),
        dict(K=np.eye(3), dist=None, width=10.5, height=10),
    ],
)
def test_invalid_camera_rejected(kwargs):
    with pytest.raises(ValueError):
        Camera(**kwargs)


def test_from_fov():
    c = Camera.from_fov(90.0, 640, 480)
    assert c.fx == pytest.approx(320.0) and c.fy == c.fx
    assert (c.cx, c.cy) == (319.5, 239.5)
    assert c.fov_deg[0] == pytest.approx(90.0)
    assert c.fov_deg[1] == pytest.approx(math.degrees(2 * math.atan(240 / 320)))
    assert not c.has_distortion
    with pytest.raises(ValueError):
        Camera.from_fov(180.0, 640, 480)


# ------------------------------------------------------------------ derived cameras
def test_scaled_follows_pixel_centre_convention():
    c = _cam()
    h = c.scaled(0.5)
    assert h.size == (320, 240)
    assert h.fx == pytest.approx(305.0) and h.fy == pytest.approx(302.5)
    assert h.cx == pytest.approx((322.3 + 0.5) * 0.5 - 0.5)
    assert h.cy == pytest.approx((241.7 + 0.5) * 0.5 - 0.5)
    np.testing.assert_array_equal(h.dist, c.dist)
    # a 3D point lands where the pixel-grid resize puts it: edge-to-edge scaling
    R, t = np.eye(3), np.zeros(3)
    X = np.array([[30.0, -20.0, 400.0]])
    uv = g.project(X, R, t, c.K)[0]
    uvh = g.project(X, R, t, h.K)[0]
    np.testing.assert_allclose(uvh, (uv + 0.5) * 0.5 - 0.5)
    a = c.scaled(2.0, 0.5)
    assert a.size == (1280, 240) and a.fx == pytest.approx(1220.0) and a.fy == pytest.approx(302.5)
    # scaling round trip
    b = c.scaled(2.0).scaled(0.5)
    np.testing.assert_allclose(b.K, c.K)
    assert b.size == c.size


def test_scaled_matches_cv2_resize_of_a_dot():
    # Draw a dot at the projected point, resize with INTER_AREA, find it again.
    c = Camera.from_intrinsics(200.0, 200.0, 31.5, 23.5, 64, 48)
    X = np.array([[3.0, 2.0, 100.0]])
    u, v = g.project(X, np.eye(3), np.zeros(3), c.K)[0]
    img = np.zeros((48, 64), np.float32)
    img[int(round(v)) - 1 : int(round(v)) + 3, int(round(u)) - 1 : int(round(u)) + 3] = 1.0  # 4x4 block
    centre = np.array([int(round(u)) + 0.5, int(round(v)) + 0.5])  # block centre (pixel units)
    small = cv2.resize(img, (32, 24), interpolation=cv2.INTER_AREA)
    ys, xs = np.mgrid[0:24, 0:32]
    found = np.array([(xs * small).sum(), (ys * small).sum()]) / small.sum()
    h = c.scaled(0.5)
    np.testing.assert_allclose(found, (centre + 0.5) * 0.5 - 0.5, atol=1e-6)
    # and the scaled camera's principal point maps the same way
    assert h.cx == pytest.approx((c.cx + 0.5) / 2 - 0.5)


def test_resized_exact_size():
    c = _cam()
    r = c.resized(1280, 720)
    assert r.size == (1280, 720)
    assert r.fx == pytest.approx(1220.0) and r.fy == pytest.approx(605.0 * 1.5)


def test_cropped():
    c = _cam()
    cr = c.cropped(100, 50, 200, 150)
    assert cr.size == (200, 150)
    assert (cr.cx, cr.cy) == pytest.approx((222.3, 191.7))
    X = np.array([[10.0, 5.0, 300.0]])
    np.testing.assert_allclose(cr.project(X, np.eye(3), np.zeros(3)), c.project(X, np.eye(3), np.zeros(3)) - [100, 50])
    with pytest.raises(ValueError):
        c.cropped(0, 0, 0, 10)


# ------------------------------------------------------------------ undistortion
def test_undistort_points_inverts_projection():
    c = _cam()
    rng = np.random.default_rng(0)
    X = np.c_[rng.uniform(-250, 250, (300, 2)), np.full(300, 600.0)]
    uv_d = c.project(X, np.eye(3), np.zeros(3))
    uv_ideal = g.project(X, np.eye(3), np.zeros(3), c.K)
    assert np.max(np.abs(uv_d - uv_ideal)) > 5  # strong lens: the test is not vacuous
    np.testing.assert_allclose(c.undistort_points(uv_d), uv_ideal, atol=1e-6)
    # agrees with plain cv2.undistortPoints where that has converged (near the centre)
    near = np.linalg.norm(uv_d - [c.cx, c.cy], axis=1) < 100
    ref = cv2.undistortPoints(uv_d[near].reshape(-1, 1, 2), c.K, c.dist, P=c.K).reshape(-1, 2)
    np.testing.assert_allclose(c.undistort_points(uv_d[near]), ref, atol=1e-3)


def test_undistort_points_nan_and_no_distortion():
    c = _cam()
    uv = np.array([[np.nan, 3.0], [300.0, 200.0]])
    out = c.undistort_points(uv)
    assert np.all(np.isnan(out[0])) and np.all(np.isfinite(out[1]))
    c0 = _cam(None)
    np.testing.assert_array_equal(c0.undistort_points(uv[1:]), uv[1:])
    assert c.undistort_points(np.zeros((0, 2))).shape == (0, 2)


def test_project_is_the_geometry_projection():
    """Camera.project is tracker.geometry.projection.project with the camera's K and dist."""
    c = _cam()
    rng = np.random.default_rng(3)
    X = np.c_[rng.uniform(-100, 100, (20, 2)), rng.uniform(200, 900, 20)]
    R, t = g.so3_exp([0.1, -0.2, 0.3]), np.array([5.0, -3.0, 10.0])
    np.testing.assert_array_equal(c.project(X, R, t), g.project(X, R, t, c.K, c.dist))
