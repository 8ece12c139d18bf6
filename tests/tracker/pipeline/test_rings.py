"""Keypoints off a continuous symmetry axis, fitted on their circles (tracker/pipeline/rings.py)."""

import numpy as np
import pytest
from kp_meshes import box_object
from kptrack_testing import OracleHeatmaps
from render_scenes import tracking_crop_scene
from tracker.geometry import project, so3_exp
from tracker.objects.symmetry import rotation_about, symmetry_group
from tracker.pipeline.config import TrackerConfig
from tracker.pipeline.keypoint_pass import KeypointPass, StageClock, WarmSolver
from tracker.pipeline.rings import Rings, RingSolver

R_TRUE = so3_exp(np.array([1.1, 0.4, -0.3]))
T_TRUE = np.array([15.0, -10.0, 420.0])




def _slid(cyl, rng, spread_deg):
    """The cylinder's keypoints, each rim point turned about the axis by its own random angle
    (up to spread_deg either way): what a network whose rim labels smear reports."""
    pts = cyl.keypoints.copy()
    for k in range(2, len(pts)):
        a = np.radians(rng.uniform(-spread_deg, spread_deg))
        pts[k] = rotation_about(np.array([0.0, 0.0, 1.0]), a)[:3, :3] @ pts[k]
    return pts


def test_place_puts_each_rim_point_where_its_circle_meets_the_observation(cam, cyl):
    """Observations of rim points slid along their circles: placed from the true pose, every point
    projects onto its observation and keeps its radius and height; the axis points stay put."""
    rings = Rings(symmetry_group(cyl))
    slid = _slid(cyl, np.random.default_rng(0), 60.0)
    uv = project(slid, R_TRUE, T_TRUE, cam.K)
    placed = rings.place(cyl.keypoints, uv, R_TRUE, T_TRUE, cam.K)
    assert np.max(np.linalg.norm(project(placed, R_TRUE, T_TRUE, cam.K) - uv, axis=1)) < 0.05
    assert np.allclose(placed[:2], cyl.keypoints[:2])
    assert np.allclose(np.linalg.norm(placed[:, :2], axis=1), np.linalg.norm(cyl.keypoints[:, :2], axis=1))
    assert np.allclose(placed[:, 2], cyl.keypoints[:, 2])
    # a point with no observation keeps its place
    uv[3] = np.nan
    assert np.allclose(rings.place(cyl.keypoints, uv, R_TRUE, T_TRUE, cam.K)[3], cyl.keypoints[3])


def test_the_ring_fit_recovers_a_pose_the_slid_labels_pull_off(cam, cyl):
    """Rim labels slid up to 40 degrees each: the plain fit lands 2-9 mm and 2-3 degrees of tilt
    off, the ring fit (three rounds, from a start 3 degrees and 8 mm off) within a millimetre and a
    degree, up to the free spin."""
    cfg = TrackerConfig.preset("fast")
    plain, ring = WarmSolver(cfg), RingSolver(WarmSolver(cfg), Rings(symmetry_group(cyl)))
    axis = np.array([0.0, 0.0, 1.0])
    errs = {"plain": [], "ring": []}
    for seed in range(5):
        rng = np.random.default_rng(seed)
        uv = project(_slid(cyl, rng, 40.0), R_TRUE, T_TRUE, cam.K)
        R0, t0 = so3_exp(np.radians(3.0) * rng.standard_normal(3) / np.sqrt(3)) @ R_TRUE, T_TRUE + rng.uniform(-8, 8, 3)
        for name, solve in (("plain", plain), ("ring", ring)):
            res = solve(cyl.keypoints, uv, np.ones(len(uv)), cam.K, R0, t0, 3.0)
            tilt = np.degrees(np.arccos(np.clip((res.R_m2c @ axis) @ (R_TRUE @ axis), -1, 1)))
            errs[name].append((np.linalg.norm(res.t_m2c - T_TRUE), tilt))
    plain_err, ring_err = np.array(errs["plain"]), np.array(errs["ring"])
    assert np.all(ring_err[:, 0] < 1.5) and np.all(ring_err[:, 1] < 1.0)
    assert np.max(plain_err[:, 0]) > 5.0 and np.all(plain_err[:, 1] > 1.5)


def test_the_ring_fit_keeps_the_plain_fits_basin(cam, cyl):
    """Exact labels, a start 40 mm too far: the fit must come back to the true pose (the ring rounds
    from the plain fit's pose), not stay in the far basin the circles alone allow."""
    solve = RingSolver(WarmSolver(TrackerConfig.preset("fast")), Rings(symmetry_group(cyl)))
    uv = project(cyl.keypoints, R_TRUE, T_TRUE, cam.K)
    res = solve(cyl.keypoints, uv, np.ones(len(uv)), cam.K, R_TRUE, T_TRUE + np.array([0.0, 0.0, 40.0]), 3.0)
    assert np.linalg.norm(res.t_m2c - T_TRUE) < 0.1 and res.rms < 0.05


def test_the_pass_fits_circles_only_when_asked_and_only_about_a_continuous_axis(cam, cyl):
    """A crop whose oracle heatmaps put the rim points slid along their circles: with ring_fit the
    pass's pose is within a millimetre, without it several off. A box (discrete symmetries) gets no rings."""
    frame, A, _ = tracking_crop_scene(cyl, cam, R_TRUE, T_TRUE)
    uv = project(_slid(cyl, np.random.default_rng(3), 40.0), R_TRUE, T_TRUE, cam.K)
    err = {}
    for on in (False, True):
        cfg = TrackerConfig.preset("fast", ring_fit=on)
        kp = KeypointPass(OracleHeatmaps(cyl.keypoint_names, lambda i: uv), cyl.keypoints, cam, cfg,
                          symmetry=symmetry_group(cyl))
        assert (kp.rings is not None) == on
        p = kp(frame, A, 0, (R_TRUE, T_TRUE + np.array([0.0, 0.0, 5.0])), StageClock())
        assert p.accepted
        err[on] = np.linalg.norm(np.asarray(p.pose.t_m2c) - T_TRUE)
    assert err[True] < 1.0 < err[False]
    box = box_object("box", "box")
    kp = KeypointPass(OracleHeatmaps(box.keypoint_names, lambda i: None), box.keypoints, cam,
                      TrackerConfig.preset("fast", ring_fit=True), equivalents=symmetry_group(box).discrete)
    assert kp.rings is None


def test_rings_need_an_axis():
    with pytest.raises(ValueError, match="axis"):
        Rings(symmetry_group(box_object("box", "box")))

