"""Peer baselines: the OpenCV-tutorial feature pipeline (a) and the kptrack configurations (b), (c)."""

from __future__ import annotations

import cv2
import numpy as np
import pytest
from kptrack_testing import OracleHeatmaps

from benchmarks.peers import ColdStartTracker, FeaturePeer, FeaturePeerConfig, make_argmax_tracker, run_feature_peer
from tracker.camera import Camera
from tracker.errors import KptrackError
from tracker.geometry import look_at, rotation_error_deg, so3_exp
from tracker.objects import keypoint_surface_distance, load_object
from tracker.pipeline.config import TrackerConfig
from tracker.pipeline.tracker import Tracker
from tracker.render import Renderer


@pytest.fixture(scope="module")
def setup():
    obj = load_object("default")
    cam = Camera.from_fov(60, 640, 480)
    R0, t0 = look_at(np.array([300.0, -250.0, 200.0]), np.zeros(3))
    rend = Renderer(obj)
    # smooth background: a gradient with a few soft blobs (clutter that is not corner-rich)
    yy, xx = np.mgrid[0:480, 0:640]
    bg = np.stack([60 + 0.2 * xx, 80 + 0.2 * yy, 100 + 0.1 * (xx + yy)], -1)
    bg = cv2.GaussianBlur(bg.astype(np.float32), (0, 0), 5).clip(0, 255).astype(np.uint8)
    return obj, cam, rend, R0, t0, bg


def _moved(R0, t0, deg, axis=(0.3, 1.0, 0.2), dt=(12.0, -8.0, 15.0)):
    a = np.asarray(axis, float)
    return so3_exp(np.radians(deg) * a / np.linalg.norm(a)) @ R0, t0 + np.asarray(dt)


def test_registration_lifts_features_onto_the_surface(setup):
    obj, cam, rend, R0, t0, _ = setup
    peer = FeaturePeer(obj, cam, renderer=rend)
    n = peer.register(R0, t0)
    assert n >= 50 and peer.points_model.shape == (n, 3) and peer.descriptors.shape == (n, 32)
    # every lifted point lies on the mesh (depth + pose back-projection is exact up to a pixel)
    d = keypoint_surface_distance(obj.vertices, obj.faces, peer.points_model)
    assert np.percentile(d, 95) < 1.5


def test_recovers_pose_at_a_nearby_pose(setup):
    obj, cam, rend, R0, t0, bg = setup
    peer = FeaturePeer(obj, cam, renderer=rend)
    # registered on the first frame (the object over its background), inside the model rendered at its pose
    peer.register(R0, t0, image=rend.render(cam, R0, t0, background=bg).color)
    for deg in (4.0, 7.0):
        R1, t1 = _moved(R0, t0, deg)
        frame = rend.render(cam, R1, t1, background=bg).color
        p = peer(frame)
        assert p is not None, f"no pose at {deg} deg"
        assert rotation_error_deg(p.R_m2c, R1) < 5.0
        assert np.linalg.norm(p.t_m2c - t1) < 0.1 * obj.diameter
        assert p.n_inliers >= FeaturePeerConfig().min_inliers and p.n_inliers <= p.n_matches


def test_no_object_gives_none_and_register_first(setup):
    obj, cam, rend, R0, t0, bg = setup
    peer = FeaturePeer(obj, cam, renderer=rend)
    with pytest.raises(KptrackError, match="register"):
        peer(bg)
    peer.register(R0, t0)
    assert peer(bg) is None  # background only: nothing passes ratio test + RANSAC
    with pytest.raises(KptrackError, match="camera"):
        peer.register(R0, t0, image=np.zeros((100, 100, 3), np.uint8))


def test_run_feature_peer_times_every_frame(setup):
    obj, cam, rend, R0, t0, bg = setup
    poses_gt = [(R0, t0), _moved(R0, t0, 3.0)]
    frames = [rend.render(cam, R, t, background=bg).color for R, t in poses_gt]
    poses, times = run_feature_peer(frames, obj, cam, R0, t0, renderer=rend)
    assert len(poses) == len(times) == 2 and all(t > 0 for t in times)
    for p, (R, t) in zip(poses, poses_gt):
        assert p is not None and rotation_error_deg(p.R_m2c, R) < 2.0


# ----------------------------------------------------------------------------- (b), (c) with an oracle backend
def _oracle(obj, cam, pose_of):
    return OracleHeatmaps(obj.keypoint_names, lambda i: cam.project(obj.keypoints, *pose_of(i)))


def _traj(i):
    return so3_exp(np.array([0.4 + 0.01 * i, 0.6 + 0.02 * i, 0.1])), np.array([30.0 + i, -20.0 + 0.5 * i, 500.0 + i])


def test_cold_start_peer_searches_every_frame(setup):
    obj, cam, _, _, _, _ = setup
    black = np.zeros((cam.height, cam.width, 3), np.uint8)
    cold = ColdStartTracker(_oracle(obj, cam, _traj), obj, cam)
    assert isinstance(cold, Tracker) and not cold.config.smoothing  # a configuration of the tracker itself
    res = [cold.step(black, i) for i in range(6)]
    assert all(r.mode == "search" for r in res)  # never the predicted-ROI path
    for i, r in enumerate(res):
        assert r.has_pose and rotation_error_deg(r.R_m2c, _traj(i)[0]) < 1.0
    warm = Tracker(_oracle(obj, cam, _traj), obj, cam)
    modes = [warm.step(black, i).mode for i in range(6)]
    assert modes[0] == "search" and modes[1:] == ["track"] * 5  # what (b) gives up


def test_argmax_peer_decodes_coarser_than_dark(setup):
    obj, cam, _, _, _, _ = setup
    black = np.zeros((cam.height, cam.width, 3), np.uint8)
    cfg = TrackerConfig.preset("fast", smoothing=False)

    def kp_err(tr):
        errs = []
        for i in range(8):
            r = tr.step(black, i)
            errs.append(np.nanmean(np.linalg.norm(r.uv - cam.project(obj.keypoints, *_traj(i)), axis=1)))
        return float(np.mean(errs[1:]))  # tracking frames

    e_dark = kp_err(Tracker(_oracle(obj, cam, _traj), obj, cam, cfg))
    e_arg = kp_err(make_argmax_tracker(_oracle(obj, cam, _traj), obj, cam, cfg))
    assert e_arg > 3 * e_dark and e_arg > 0.3  # integer cells: ~0.3-0.4 cell error, a px or more in the frame
