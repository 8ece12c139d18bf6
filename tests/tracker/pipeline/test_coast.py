"""Edges carry a track through frames whose keypoint fit fails (tracker.pipeline.coast)."""

import dataclasses

import numpy as np
import pytest
from kp_meshes import box_object
from kptrack_testing import OracleHeatmaps
from render_scenes import tracking_crop_scene
from tracker.errors import KptrackError
from tracker.geometry import so3_exp
from tracker.objects.symmetry import symmetry_group
from tracker.pipeline.coast import EdgeCoast
from tracker.pipeline.config import TrackerConfig
from tracker.pipeline.edge_refine import EdgeRefiner
from tracker.pipeline.edges import EdgeScorer
from tracker.pipeline.keypoint_pass import KeypointPass, StageClock
from tracker.pipeline.state import LOST, TRACKING
from tracker.pipeline.tracker import Tracker

S = 256  # the crop side, px (the camera is the 640x480 one of conftest.py)
R_CYL = so3_exp(np.array([1.2, 0.3, 0.2]))
T_CYL = np.array([10.0, -5.0, 380.0])




def _axis_error_deg(obj, R1, R2):
    """The angle between the symmetry axis under two rotations (the angle about it is free)."""
    a = symmetry_group(obj).axis
    return float(np.degrees(np.arccos(np.clip((R1 @ a) @ (R2 @ a), -1.0, 1.0))))


def _failed_pass(obj, cam, frame, A):
    """A pass over ``frame`` whose network found nothing: no fit, but its crop and affine."""
    kp = KeypointPass(OracleHeatmaps(obj.keypoint_names, lambda i: None), obj.keypoints, cam,
                      TrackerConfig.preset("fast"), symmetry=symmetry_group(obj))
    p = kp(frame, A, 0, (R_CYL, T_CYL), StageClock())
    assert not p.accepted
    return p


def _coast(obj, cam, frames=5, min_score=0.7):
    return EdgeCoast(EdgeRefiner(EdgeScorer(obj, S), cam.K, cam.undistort_points), frames, min_score)


def test_the_edges_bring_a_prediction_onto_the_object(cam, cyl):
    """The prediction 4 % too far and tilted 2 deg, no keypoints: one refinement takes the carried
    pose more than half way back in depth and axis, accepted, with no inliers and no covariance."""
    frame, A, _ = tracking_crop_scene(cyl, cam, R_CYL, T_CYL, S)
    p = _failed_pass(cyl, cam, frame, A)
    R0, t0 = so3_exp(np.array([0.03, -0.02, 0.0])) @ R_CYL, T_CYL * 1.04
    q = _coast(cyl, cam)(p, R0, t0, 0)
    assert q is not None and q.accepted
    assert np.linalg.norm(q.pose.t_m2c - T_CYL) < 0.5 * np.linalg.norm(t0 - T_CYL)
    assert _axis_error_deg(cyl, q.pose.R_m2c, R_CYL) < 0.5 * _axis_error_deg(cyl, R0, R_CYL)
    assert q.pose.n_inliers == 0 and not np.isfinite(q.pose.rms) and not np.all(np.isfinite(q.pose.cov))
    assert q.crop is p.crop and np.array_equal(q.affine, A)


def test_no_carry_past_the_limit_without_edges_or_with_the_object_gone(cam, cyl):
    frame, A, _ = tracking_crop_scene(cyl, cam, R_CYL, T_CYL, S)
    p = _failed_pass(cyl, cam, frame, A)
    coast = _coast(cyl, cam, frames=3)
    assert coast(p, R_CYL, T_CYL, 2) is not None
    assert coast(p, R_CYL, T_CYL, 3) is None  # three frames in a row already carried
    flat = np.full_like(p.crop, 128)
    assert coast(dataclasses.replace(p, crop=flat), R_CYL, T_CYL, 0) is None
    # the background alone (the object moved away): what edges there are do not make its outline
    far = T_CYL + np.array([0.0, 0.0, 5000.0])
    empty, _, _ = tracking_crop_scene(cyl, cam, R_CYL, far, S)
    q = _failed_pass(cyl, cam, empty, A)
    assert coast(q, R_CYL, T_CYL, 0) is None


def _sequence(cyl, cam, n):
    """n frames of the cylinder drifting sideways and turning slowly, over one background."""
    poses = [(so3_exp(np.array([0.0, 0.01 * i, 0.0])) @ R_CYL, T_CYL + np.array([1.5 * i, 0.0, 0.0])) for i in range(n)]
    return poses, [tracking_crop_scene(cyl, cam, R, t, S, seed=3)[0] for R, t in poses]


@pytest.mark.parametrize("coast_frames", [0, 3])
def test_the_tracker_coasts_at_most_the_frames_asked(cam, cyl, coast_frames):
    """Keypoints for four frames, then none with the object still in view: with edge_coast_frames 3
    the next three frames are carried on edges (mode 'coast', tracking, on the object), then the
    track is lost; with 0 it is lost at once."""
    poses, frames = _sequence(cyl, cam, 9)
    oracle = OracleHeatmaps(cyl.keypoint_names, lambda i: cam.project(cyl.keypoints, *poses[i]) if i < 4 else None)
    tr = Tracker(oracle, cyl, cam, TrackerConfig.preset("fast", edge_coast_frames=coast_frames, smoothing=False))
    results = [tr.step(f, i) for i, f in enumerate(frames)]
    assert all(r.status == TRACKING for r in results[:4])
    carried = results[4:4 + coast_frames]
    assert [r.mode for r in carried] == ["coast"] * coast_frames
    for r, (R, t) in zip(carried, poses[4:]):
        assert r.status == TRACKING and r.score == 0.0 and r.pose_std is None
        assert np.linalg.norm(r.t_m2c - t) < 0.01 * t[2] and _axis_error_deg(cyl, r.R_m2c, R) < 1.0
    after = results[4 + coast_frames]
    assert after.status == LOST and not after.has_pose


def test_the_tracker_builds_the_coast_only_when_asked(cam, cyl):
    oracle = OracleHeatmaps(cyl.keypoint_names, lambda i: None)
    assert Tracker(oracle, cyl, cam, TrackerConfig.preset("fast", edge_coast_frames=0)).coast is None
    tr = Tracker(oracle, cyl, cam, TrackerConfig.preset("fast", edge_coast_frames=2))
    assert tr.coast is not None and tr.keypass.refiner is None  # the fast preset's fits stay unrefined
    # a plain box's quarter turns are confusable: an outline cannot tell them from the pose
    box = box_object("box", "box")
    boxed = Tracker(OracleHeatmaps(box.keypoint_names, lambda i: None), box, cam, TrackerConfig.preset("fast", edge_coast_frames=2))
    assert len(boxed.keypass.turns) > 0 and boxed.coast is None
    plain = box_object("box", None)
    assert Tracker(OracleHeatmaps(plain.keypoint_names, lambda i: None), plain, cam,
                   TrackerConfig.preset("fast", edge_coast_frames=2)).coast is not None
    with pytest.raises(KptrackError, match="edge_coast_frames"):
        TrackerConfig.preset("fast", edge_coast_frames=-1)
    with pytest.raises(KptrackError, match="edge_coast_min_score"):
        TrackerConfig.preset("fast", edge_coast_min_score=1.5)
