"""Round-trip and degenerate-input tests for tracker.geometry.se3."""

from __future__ import annotations

import numpy as np
import pytest

from tracker import geometry as g
from tracker.geometry import se3

K = np.array([[600.0, 0.0, 319.5], [0.0, 620.0, 239.5], [0.0, 0.0, 1.0]])


def _is_rotation(R, tol=1e-12):
    return np.allclose(R @ R.T, np.eye(3), atol=tol) and abs(np.linalg.det(R) - 1.0) < tol


def _rng():
    return np.random.default_rng(1234)


# ------------------------------------------------------------------ SE(3)
def test_compose_invert_transform_round_trip():
    rng = _rng()
    R1, R2 = g.random_rotation(rng, 2)
    t1, t2 = rng.standard_normal((2, 3)) * 100
    x = rng.standard_normal((10, 3)) * 50
    R, t = g.se3_compose(R1, t1, R2, t2)
    np.testing.assert_allclose(g.transform(R, t, x), g.transform(R1, t1, g.transform(R2, t2, x)), atol=1e-10)
    Ri, ti = g.se3_invert(R, t)
    np.testing.assert_allclose(g.transform(Ri, ti, g.transform(R, t, x)), x, atol=1e-10)
    Re, te = g.se3_compose(R, t, Ri, ti)
    np.testing.assert_allclose(Re, np.eye(3), atol=1e-12)
    np.testing.assert_allclose(te, 0, atol=1e-10)
    T = g.se3_to_matrix(R, t)
    np.testing.assert_allclose(T @ g.se3_to_matrix(R2, t2), g.se3_to_matrix(*g.se3_compose(R, t, R2, t2)), atol=1e-10)
    Rb, tb = g.se3_from_matrix(T)
    assert np.array_equal(Rb, R) and np.array_equal(tb, t)


def test_transform_accepts_single_point():
    out = g.transform(np.eye(3), np.array([1.0, 2.0, 3.0]), np.zeros(3))
    assert out.shape == (1, 3)
    np.testing.assert_array_equal(out[0], [1, 2, 3])


def test_translation_error():
    assert g.translation_error([0, 0, 0], [3, 4, 0]) == 5.0
    assert isinstance(g.translation_error([1, 2, 3], [1, 2, 3]), float)



def test_look_at_canonical():
    # camera on -z looking at the origin with up = -y gives the identity (OpenCV frame)
    R, t = g.look_at([0, 0, -500], [0, 0, 0], up=[0, -1, 0])
    np.testing.assert_allclose(R, np.eye(3), atol=1e-15)
    np.testing.assert_allclose(t, [0, 0, 500], atol=1e-12)


def test_look_at_geometry():
    rng = _rng()
    for _ in range(20):
        eye = rng.standard_normal(3) * 400
        target = rng.standard_normal(3) * 20
        up = np.array([0.0, 0.0, 1.0])
        R, t = g.look_at(eye, target, up)
        assert _is_rotation(R)
        np.testing.assert_allclose(g.transform(R, t, eye)[0], 0, atol=1e-9)  # camera centre at eye
        tc = g.transform(R, t, target)[0]
        np.testing.assert_allclose(tc, [0, 0, np.linalg.norm(target - eye)], atol=1e-9)
        # up points up in the image (negative camera y), with no sideways component
        up_cam = R @ up
        assert up_cam[1] < 0 and abs(up_cam[0]) < 1e-12


def test_look_at_roll_and_degenerate_up():
    R0, t0 = g.look_at([0, 0, -500], [0, 0, 0], up=[0, -1, 0])
    R1, t1 = g.look_at([0, 0, -500], [0, 0, 0], up=[0, -1, 0], roll_deg=90)
    # +x of the model (right in the image) turns to +y (down): clockwise on screen
    uv = g.project(np.array([[50.0, 0, 0]]), R1, t1, K)[0]
    assert uv[0] == pytest.approx(319.5) and uv[1] > 239.5
    # looking straight along up: still a valid rotation looking at the target
    R, t = g.look_at([0, 0, 300], [0, 0, 0], up=[0, 0, 1])
    assert _is_rotation(R)
    np.testing.assert_allclose(g.transform(R, t, np.zeros(3))[0], [0, 0, 300], atol=1e-9)
    with pytest.raises(ValueError, match="coincide"):
        g.look_at([1, 2, 3], [1, 2, 3])


def test_public_names_are_reexported_by_the_package():
    names = [n for n in dir(se3) if not n.startswith("_") and (callable(getattr(se3, n)) or n.isupper())]
    names = [n for n in names if getattr(getattr(se3, n), "__module__", se3.__name__) == se3.__name__]
    assert names and set(names) <= set(g.__all__)
    for n in names:
        assert getattr(g, n) is getattr(se3, n)
