"""Reference (cv2.projectPoints), degenerate-input and finite-difference tests for
tracker.geometry.projection."""

from __future__ import annotations

import cv2
import numpy as np
import pytest

from tracker import geometry as g
from tracker.geometry import projection

K = np.array([[600.0, 0.0, 319.5], [0.0, 620.0, 239.5], [0.0, 0.0, 1.0]])


def _rng():
    return np.random.default_rng(1234)


def _scene(rng, n=50):
    xyz = rng.uniform(-60, 60, (n, 3))
    R = g.so3_exp(rng.standard_normal(3) * 0.5)
    t = np.array([10.0, -5.0, 500.0])
    return xyz, R, t


def test_project_pinhole_matches_cv2():
    rng = _rng()
    xyz, R, t = _scene(rng)
    ref = cv2.projectPoints(xyz, cv2.Rodrigues(R)[0], t, K, None)[0].reshape(-1, 2)
    np.testing.assert_allclose(g.project(xyz, R, t, K), ref, atol=1e-9)


@pytest.mark.parametrize(
    "dist",
    [
        [-0.28, 0.09, 1e-3, -2e-3],
        [-0.28, 0.09, 1e-3, -2e-3, 0.02],
        [0.5, -0.3, 1e-3, 2e-3, 0.05, 0.4, -0.2, 0.04],
        [0.1, -0.05, 1e-3, 2e-3, 0.01, 0.02, 0.01, 0.0, 1e-3, -2e-3, 3e-3, 1e-3],
        [0.1, -0.05, 1e-3, 2e-3, 0.01, 0.02, 0.01, 0.0, 1e-3, -2e-3, 3e-3, 1e-3, 0.02, -0.03],
    ],
    ids=["4", "5", "8", "12", "14"],
)
def test_project_distortion_matches_cv2(dist):
    rng = _rng()
    xyz, R, t = _scene(rng)
    dist = np.array(dist)
    ref = cv2.projectPoints(xyz, cv2.Rodrigues(R)[0], t, K, dist)[0].reshape(-1, 2)
    uv = g.project(xyz, R, t, K, dist)
    np.testing.assert_allclose(uv, ref, atol=1e-6)
    # and the distortion really moved the points (the test is not vacuous)
    assert np.max(np.abs(uv - g.project(xyz, R, t, K))) > 0.5


def test_project_rejects_bad_distortion_length():
    with pytest.raises(ValueError, match="coefficients"):
        g.project(np.zeros((1, 3)) + [0, 0, 100], np.eye(3), np.zeros(3), K, np.zeros(6))


def test_project_behind_camera_is_nan():
    xyz = np.array([[0.0, 0.0, 100.0], [0.0, 0.0, -100.0], [10.0, 0.0, 0.0], [1.0, 1.0, 1e-7], [1.0, 1.0, 1e-3]])
    uv = g.project(xyz, np.eye(3), np.zeros(3), K, np.array([-0.2, 0.05, 0, 0]))
    assert np.all(np.isfinite(uv[[0, 4]]))
    assert np.all(np.isnan(uv[[1, 2, 3]]))
    np.testing.assert_allclose(uv[0], [319.5, 239.5])
    J = g.project_jacobian(xyz, np.eye(3), np.zeros(3), K)
    assert np.all(np.isnan(J[[1, 2, 3]])) and np.all(np.isfinite(J[[0, 4]]))


def test_project_with_skew_uses_full_k_row():
    Ks = K.copy()
    Ks[0, 1] = 2.0
    uv = g.project(np.array([[10.0, 20.0, 100.0]]), np.eye(3), np.zeros(3), Ks)
    np.testing.assert_allclose(uv[0], [600 * 0.1 + 2 * 0.2 + 319.5, 620 * 0.2 + 239.5])


@pytest.mark.parametrize("skew", [0.0, 3.0])
def test_project_jacobian_matches_finite_differences(skew):
    rng = _rng()
    xyz, R, t = _scene(rng, 20)
    Ks = K.copy()
    Ks[0, 1] = skew
    J = g.project_jacobian(xyz, R, t, Ks)
    assert J.shape == (20, 2, 6)
    h = 1e-6
    Jn = np.zeros_like(J)
    for k in range(6):
        d = np.zeros(6)
        d[k] = h
        uv = []
        for sgn in (1, -1):
            E = g.so3_exp(sgn * d[:3])
            uv.append(g.project(xyz, E @ R, E @ t + sgn * d[3:], Ks))
        Jn[:, :, k] = (uv[0] - uv[1]) / (2 * h)
    np.testing.assert_allclose(J, Jn, rtol=1e-6, atol=1e-5)


def test_public_names_are_reexported_by_the_package():
    names = [n for n in dir(projection) if not n.startswith("_") and (callable(getattr(projection, n)) or n.isupper())]
    names = [n for n in names if getattr(getattr(projection, n), "__module__", projection.__name__) == projection.__name__]
    assert names and set(names) <= set(g.__all__)
    for n in names:
        assert getattr(g, n) is getattr(projection, n)
