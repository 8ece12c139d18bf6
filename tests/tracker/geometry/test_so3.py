"""Round-trip, degenerate-input and reference tests for tracker.geometry.so3."""

from __future__ import annotations

import math

import cv2
import numpy as np
import pytest

from tracker import geometry as g
from tracker.geometry import so3

AXES = [
    np.array([1.0, 0.0, 0.0]),
    np.array([0.0, 1.0, 0.0]),
    np.array([0.0, 0.0, 1.0]),
    np.array([1.0, 1.0, 0.0]) / math.sqrt(2),
    np.array([-1.0, 2.0, 3.0]) / math.sqrt(14),
    np.array([0.0, -1.0, 1.0]) / math.sqrt(2),
]


def _is_rotation(R, tol=1e-12):
    return np.allclose(R @ R.T, np.eye(3), atol=tol) and abs(np.linalg.det(R) - 1.0) < tol


def _rng():
    return np.random.default_rng(1234)


# ------------------------------------------------------------------ so(3)
def test_hat_is_cross_product():
    rng = _rng()
    w, v = rng.standard_normal((2, 3))
    np.testing.assert_allclose(g.hat(w) @ v, np.cross(w, v), atol=1e-15)


def test_exp_matches_cv2_rodrigues():
    rng = _rng()
    for _ in range(20):
        w = rng.standard_normal(3) * rng.uniform(0, 3)
        np.testing.assert_allclose(g.so3_exp(w), cv2.Rodrigues(w)[0], atol=1e-12)


def test_exp_log_round_trip_random():
    rng = _rng()
    w = rng.standard_normal((200, 3))
    w *= (rng.uniform(0, math.pi - 1e-3, 200) / np.linalg.norm(w, axis=1))[:, None]
    R = g.so3_exp(w)
    assert R.shape == (200, 3, 3)
    np.testing.assert_allclose(g.so3_log(R), w, atol=1e-10)


def test_exp_zero_is_identity_and_log_identity_is_zero():
    assert np.array_equal(g.so3_exp(np.zeros(3)), np.eye(3))
    assert np.array_equal(g.so3_log(np.eye(3)), np.zeros(3))


@pytest.mark.parametrize("angle", [1e-15, 1e-12, 1e-9, 1e-7, 1e-5, 1e-4, 2e-4, 1e-3])
def test_exp_log_tiny_angles_keep_relative_precision(angle):
    for a in AXES:
        w = a * angle
        R = g.so3_exp(w)
        assert _is_rotation(R)
        # relative, not absolute: arccos-based logs return 0 here
        np.testing.assert_allclose(g.so3_log(R), w, rtol=1e-6, atol=1e-18)


@pytest.mark.parametrize("axis", AXES)
def test_log_exactly_pi(axis):
    # Build R = 2 a a^T - I exactly (no trig rounding): a rotation by pi about a.
    R = 2.0 * np.outer(axis, axis) - np.eye(3)
    w = g.so3_log(R)
    assert np.linalg.norm(w) == pytest.approx(math.pi, abs=1e-12)
    # axis up to sign, and the canonical sign has the first nonzero component positive
    assert abs(abs(w @ axis) - math.pi) < 1e-12
    nz = w[np.abs(w) > 1e-12]
    assert nz[0] > 0
    np.testing.assert_allclose(g.so3_exp(w), R, atol=1e-12)


@pytest.mark.parametrize("eps", [1e-3, 1e-6, 1e-9])
@pytest.mark.parametrize("axis", AXES[:4])
def test_log_near_pi(axis, eps):
    w = axis * (math.pi - eps)
    w_back = g.so3_log(g.so3_exp(w))
    np.testing.assert_allclose(w_back, w, atol=1e-9)
    # just past pi wraps to the opposite axis
    w2 = axis * (math.pi + eps)
    w2_back = g.so3_log(g.so3_exp(w2))
    np.testing.assert_allclose(w2_back, -axis * (math.pi - eps), atol=1e-9)


def test_log_returns_angle_at_most_pi():
    rng = _rng()
    R = g.random_rotation(rng, 500)
    n = np.linalg.norm(g.so3_log(R), axis=-1)
    assert np.all(n <= math.pi + 1e-12)
    np.testing.assert_allclose(g.so3_exp(g.so3_log(R)), R, atol=1e-12)


def test_single_and_batched_paths_agree():
    """One (3,) / (3, 3) input takes a Python-float fast path; a batch takes the numpy one."""
    rng = _rng()
    ws = [rng.standard_normal(3) * s for s in (1e-9, 1e-5, 9e-5, 1e-4, 0.3, 2.0)]
    ws += [a * (math.pi - 1e-7) for a in AXES] + [a * math.pi for a in AXES]
    for w in ws:
        np.testing.assert_allclose(g.so3_exp(w), g.so3_exp(w[None])[0], rtol=0, atol=1e-15)
    Rs = [g.so3_exp(w) for w in ws] + [2.0 * np.outer(a, a) - np.eye(3) for a in AXES] + list(g.random_rotation(rng, 50))
    Rs += [np.eye(3), np.diag([1.0, -1.0, -1.0]), np.diag([-1.0, 1.0, -1.0]), np.diag([-1.0, -1.0, 1.0])]
    for R in Rs:
        np.testing.assert_allclose(g.quat_from_matrix(R), g.quat_from_matrix(R[None])[0], rtol=0, atol=1e-15)
        np.testing.assert_allclose(g.so3_log(R), g.so3_log(R[None])[0], rtol=1e-13, atol=1e-15)


# ------------------------------------------------------------------ quaternions
def test_quat_round_trip_and_canonical_sign():
    rng = _rng()
    q = rng.standard_normal((300, 4))
    q /= np.linalg.norm(q, axis=1, keepdims=True)
    q_back = g.quat_from_matrix(g.matrix_from_quat(q))
    assert np.all(q_back[:, 0] >= 0)
    np.testing.assert_allclose(q_back, q * np.sign(q[:, :1]), atol=1e-12)


def test_quat_known_values():
    R = g.so3_exp(np.array([0.0, 0.0, math.pi / 2]))
    np.testing.assert_allclose(g.quat_from_matrix(R), [math.sqrt(0.5), 0, 0, math.sqrt(0.5)], atol=1e-15)
    np.testing.assert_allclose(g.quat_from_matrix(np.eye(3)), [1, 0, 0, 0], atol=0)
    # rotation by pi about x: w == 0, canonical sign makes x positive
    np.testing.assert_allclose(g.quat_from_matrix(np.diag([1.0, -1.0, -1.0])), [0, 1, 0, 0], atol=1e-15)


@pytest.mark.parametrize("axis", AXES)
def test_quat_at_pi_each_axis(axis):
    R = 2.0 * np.outer(axis, axis) - np.eye(3)
    q = g.quat_from_matrix(R)
    assert abs(q[0]) < 1e-15
    np.testing.assert_allclose(g.matrix_from_quat(q), R, atol=1e-15)


def test_matrix_from_quat_normalises_and_rejects_zero():
    q = np.array([2.0, 0.0, 0.0, 2.0])
    np.testing.assert_allclose(g.matrix_from_quat(q), g.so3_exp([0, 0, math.pi / 2]), atol=1e-15)
    with pytest.raises(ValueError, match="zero quaternion"):
        g.matrix_from_quat(np.zeros(4))


def test_quat_multiply_matches_matrix_product():
    rng = _rng()
    R1, R2 = g.random_rotation(rng, 2)
    q = g.quat_multiply(g.quat_from_matrix(R1), g.quat_from_matrix(R2))
    np.testing.assert_allclose(g.matrix_from_quat(q), R1 @ R2, atol=1e-12)


def test_rotation_slerp_endpoints_and_midpoint():
    rng = _rng()
    R0 = g.random_rotation(rng)
    w = np.array([0.3, -0.2, 0.5])
    R1 = R0 @ g.so3_exp(w)
    np.testing.assert_allclose(g.rotation_slerp(R0, R1, 0.0), R0, atol=1e-12)
    np.testing.assert_allclose(g.rotation_slerp(R0, R1, 1.0), R1, atol=1e-12)
    np.testing.assert_allclose(g.rotation_slerp(R0, R1, 0.5), R0 @ g.so3_exp(w / 2), atol=1e-12)


# ------------------------------------------------------------------ errors and sampling
def test_rotation_error_deg():
    rng = _rng()
    R = g.random_rotation(rng)
    for ang in [0.0, 1e-7, 0.5, 45.0, 179.0, 180.0]:
        R2 = R @ g.so3_exp(AXES[4] * math.radians(ang))
        assert g.rotation_error_deg(R, R2) == pytest.approx(ang, rel=1e-6, abs=1e-9)
        assert g.rotation_error_deg(R2, R) == pytest.approx(ang, rel=1e-6, abs=1e-9)
    assert g.rotation_error_deg(R, R) == 0.0
    batch = g.rotation_error_deg(np.stack([R, R]), np.stack([R, R @ g.so3_exp([0, 0.1, 0])]))
    np.testing.assert_allclose(batch, [0, math.degrees(0.1)])



def test_random_rotation_is_uniform():
    rng = _rng()
    R = g.random_rotation(rng, 4000)
    assert all(_is_rotation(r, 1e-12) for r in R[:50])
    # Haar measure: E[R] = 0, and the angle has density (1 - cos a) / pi on [0, pi], mean pi/2 + 2/pi
    np.testing.assert_allclose(R.mean(axis=0), 0, atol=0.05)
    ang = np.linalg.norm(g.so3_log(R), axis=-1)
    assert ang.mean() == pytest.approx(math.pi / 2 + 2 / math.pi, abs=0.03)
    # deterministic given a seed
    assert np.array_equal(g.random_rotation(7), g.random_rotation(7))
    assert g.random_rotation(None).shape == (3, 3)


def test_public_names_are_reexported_by_the_package():
    names = [n for n in dir(so3) if not n.startswith("_") and (callable(getattr(so3, n)) or n.isupper())]
    names = [n for n in names if getattr(getattr(so3, n), "__module__", so3.__name__) == so3.__name__]
    assert names and set(names) <= set(g.__all__)
    for n in names:
        assert getattr(g, n) is getattr(so3, n)
