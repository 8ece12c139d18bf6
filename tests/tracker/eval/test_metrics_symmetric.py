"""ADD-S, MSSD and MSPD against the bop_toolkit formulas (pose_error.adi / mssd / mspd, written
out here as plain loops) on hand-made cases, and the symmetric scores in evaluate_scene."""

import math

import numpy as np
import pytest

from tracker.eval.metrics import adds_error, mspd_error, mssd_error
from tracker.geometry import so3_exp
from tracker.objects.symmetry import rotation_about

K = np.array([[500.0, 0, 320], [0, 500.0, 240], [0, 0, 1]])


def bop_adi(R_e, t_e, R_g, t_g, pts):
    """Per GT point, the distance to the nearest estimated point; mean."""
    e = [R_e @ p + t_e for p in pts]
    return float(np.mean([min(np.linalg.norm(R_g @ p + t_g - q) for q in e) for p in pts]))


def bop_mssd(R_e, t_e, R_g, t_g, pts, syms):
    errs = []
    for S in syms:
        Rs, ts = R_g @ S[:3, :3], R_g @ S[:3, 3] + t_g
        errs.append(max(np.linalg.norm((R_e @ p + t_e) - (Rs @ p + ts)) for p in pts))
    return min(errs)


def bop_mspd(R_e, t_e, R_g, t_g, K, pts, syms):
    def proj(R, t, p):
        x = K @ (R @ p + t)
        return x[:2] / x[2]

    errs = []
    for S in syms:
        Rs, ts = R_g @ S[:3, :3], R_g @ S[:3, 3] + t_g
        errs.append(max(np.linalg.norm(proj(R_e, t_e, p) - proj(Rs, ts, p)) for p in pts))
    return min(errs)


def cases():
    rng = np.random.default_rng(3)
    pts = rng.uniform(-40, 40, (60, 3))
    R_g, t_g = so3_exp(np.array([0.2, -0.4, 0.3])), np.array([10.0, -5.0, 600.0])
    half_z = rotation_about(np.array([0.0, 0.0, 1.0]), math.pi, np.array([1.0, 2.0, 0.0]))
    syms = np.stack([np.eye(4), half_z])
    yield pts, R_g, t_g, R_g, t_g, syms  # exact
    yield pts, so3_exp(np.array([0.25, -0.4, 0.3])), t_g + [3.0, 0.0, 8.0], R_g, t_g, syms  # a small error
    # the estimate is the GT's symmetric twin, plus a small shift: MSSD/MSPD see only the shift
    yield pts, so3_exp(np.array([0.9, 0.1, -0.3])), t_g + [20.0, 5.0, -30.0], R_g, t_g, syms  # far off
    yield pts, R_g @ half_z[:3, :3], R_g @ half_z[:3, 3] + t_g + [2.0, 0.0, 0.0], R_g, t_g, syms


@pytest.mark.parametrize("case", list(cases()))
def test_agrees_with_bop_toolkit_formulas(case):
    pts, R_e, t_e, R_g, t_g, syms = case
    assert adds_error(R_e, t_e, R_g, t_g, pts) == pytest.approx(bop_adi(R_e, t_e, R_g, t_g, pts), abs=1e-6)
    assert mssd_error(R_e, t_e, R_g, t_g, pts, syms) == pytest.approx(bop_mssd(R_e, t_e, R_g, t_g, pts, syms), abs=1e-9)
    assert mspd_error(R_e, t_e, R_g, t_g, K, pts, syms) == pytest.approx(bop_mspd(R_e, t_e, R_g, t_g, K, pts, syms), abs=1e-9)


def test_hand_values():
    pts = np.array([[10.0, 0, 0], [-10.0, 0, 0], [0, 5.0, 0]])
    R, t = np.eye(3), np.array([0.0, 0.0, 500.0])
    shift = t + [0.0, 0.0, 3.0]
    assert mssd_error(R, shift, R, t, pts, np.eye(4)[None]) == pytest.approx(3.0)
    flip = rotation_about(np.array([0.0, 0.0, 1.0]), math.pi)
    Rf = flip[:3, :3]
    # without the symmetry the twin is 20 mm off at the far points; with it, exact
    assert mssd_error(Rf, t, R, t, pts, np.eye(4)[None]) == pytest.approx(20.0)
    assert mssd_error(Rf, t, R, t, pts, np.stack([np.eye(4), flip])) == pytest.approx(0.0, abs=1e-9)
    # MSPD: a 1 mm lateral shift at 500 mm with f = 500 px is 1 px for every point
    assert mspd_error(R, t + [1.0, 0, 0], R, t, K, pts, np.eye(4)[None]) == pytest.approx(1.0)
    # behind the camera: infinite
    assert mspd_error(R, np.array([0, 0, -500.0]), R, t, K, pts, np.eye(4)[None]) == math.inf
