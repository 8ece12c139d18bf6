"""Tracker life cycle with an oracle heatmap backend: start, track, occlusion, loss, recovery;
bad heatmaps; model/object mismatch; prediction; smoothing; distortion."""

import logging

import numpy as np
import pytest
from kptrack_testing import OracleHeatmaps

from tracker.camera import Camera
from tracker.errors import KptrackError
from tracker.geometry import rotation_error_deg, so3_exp
from tracker.formats.modelmeta import ModelMeta
from tracker.objects import load_object
from tracker.pipeline.config import TrackerConfig
from tracker.pipeline.smoothing import OneEuroPose
from tracker.pipeline.state import LOST, SEARCHING, STATUSES, TRACKING, FrameResult
from tracker.pipeline.tracker import Tracker

W, H = 640, 480


@pytest.fixture(scope="module")
def obj():
    return load_object("default")


@pytest.fixture(scope="module")
def cam():
    return Camera.from_fov(60.0, W, H)


def gt_pose(i):
    """A smooth trajectory: turning and drifting in front of the camera, ~450-550 mm away."""
    R = so3_exp(np.array([0.4 + 0.01 * i, 0.6 + 0.02 * i, 0.1]))
    t = np.array([40.0 * np.sin(i / 20), 25.0 * np.cos(i / 25), 500.0 + 50.0 * np.sin(i / 30)])
    return R, t


def make_oracle(obj, cam, hidden=lambda i: False, **kw):
    def uv_of(i):
        if hidden(i):
            return None
        R, t = gt_pose(i)
        return cam.project(obj.keypoints, R, t)

    return OracleHeatmaps(obj.keypoint_names, uv_of, **kw)


BLACK = np.zeros((H, W, 3), np.uint8)


def run(tracker, frames):
    return [tracker.step(BLACK, i, i / 30.0) for i in frames]


def test_scenario_start_track_occlusion_lost_recovery(obj, cam):
    occluded = range(20, 50)  # 30 frames of full occlusion
    oracle = make_oracle(obj, cam, hidden=lambda i: i in occluded)
    tr = Tracker(oracle, obj, cam, TrackerConfig.preset("fast", smoothing=False))
    res = run(tr, range(80))
    st = [r.status for r in res]
    assert all(s in STATUSES for s in st)
    # start: found by the full-frame search on the very first frame, then tracked in crops
    assert res[0].status == TRACKING and res[0].mode == "search"
    assert all(r.status == TRACKING and r.mode == "track" for r in res[1:20])
    for r in res[:20]:
        R, t = gt_pose(r.index)
        assert rotation_error_deg(r.R_m2c, R) < 0.5 and np.linalg.norm(r.t_m2c - t) < 2.0
    # occlusion: lost at once, then back to full-frame search; never a pose while hidden
    assert res[20].status == LOST
    assert all(not r.has_pose and r.score == 0.0 for r in res[20:50])
    assert res[49].status == SEARCHING and res[49].mode == "search"
    # reappearance: tracking again within 5 frames, and accurate
    back = next(i for i in range(50, 80) if res[i].status == TRACKING)
    assert back - 50 < 5
    assert all(r.status == TRACKING for r in res[back:])
    R, t = gt_pose(79)
    assert rotation_error_deg(res[79].R_m2c, R) < 0.5 and np.linalg.norm(res[79].t_m2c - t) < 2.0
    assert tr.errors == 0


def test_tracking_crop_follows_prediction(obj, cam):
    oracle = make_oracle(obj, cam)
    tr = Tracker(oracle, obj, cam, TrackerConfig.preset("fast", smoothing=False))
    run(tr, range(10))
    # the crop of frame 9 came from the constant-velocity prediction of frames 7, 8: its
    # centre must sit on the object's projected box centre within a few pixels
    idx, A = oracle.calls[-1]
    assert idx == 9
    R, t = gt_pose(9)
    box = cam.project(obj.box_corners, R, t)
    centre = (box.min(0) + box.max(0)) / 2
    crop_centre = np.linalg.solve(A[:, :2], np.array([127.5, 127.5]) - A[:, 2])
    assert np.linalg.norm(crop_centre - centre) < 3.0
    side = 256 / np.sqrt(abs(np.linalg.det(A[:, :2])))
    assert side == pytest.approx(1.25 * max(box.max(0) - box.min(0)), rel=0.05)


def test_constant_velocity_prediction_is_exact_for_constant_motion(obj, cam):
    tr = Tracker(make_oracle(obj, cam), obj, cam)
    w = np.array([0.01, -0.02, 0.015])
    R0, t0 = so3_exp(np.array([0.2, 0.3, 0.1])), np.array([10.0, 5.0, 500.0])
    v = np.array([1.0, -2.0, 3.0])
    pose = lambda k: (so3_exp(k * w) @ R0, t0 + k * v)  # noqa: E731
    tr.state.history.extend([(4, *pose(4)), (6, *pose(6))])  # a dropped frame between: span 2
    R, t = tr._predict(9)
    Rg, tg = pose(9)
    assert rotation_error_deg(R, Rg) < 1e-6 and np.allclose(t, tg)


def test_nan_and_empty_heatmaps_mean_lost_not_a_pose(obj, cam):
    oracle = make_oracle(obj, cam, nan_frames={5, 6})
    tr = Tracker(oracle, obj, cam, TrackerConfig.preset("fast", smoothing=False, lost_patience=0))
    res = run(tr, range(12))
    assert [r.status for r in res[:5]] == [TRACKING] * 5
    assert res[5].status == LOST and not res[5].has_pose and np.all(res[5].conf == 0)
    assert res[6].status == SEARCHING and not res[6].has_pose
    assert res[7].status == TRACKING
    assert tr.errors == 0  # NaN heatmaps are data, not an exception


def test_object_out_of_view_for_1000_frames(obj, cam):
    oracle = make_oracle(obj, cam, hidden=lambda i: 3 <= i < 1003)
    tr = Tracker(oracle, obj, cam, TrackerConfig.preset("fast", smoothing=False))
    res = run(tr, range(1006))
    assert all(not r.has_pose for r in res[3:1003])
    assert {r.status for r in res[5:1003]} == {SEARCHING}
    assert res[1005].status == TRACKING
    # searching cycles through the letterbox and the window crops, one per frame
    n_views = len(tr.search_views)
    assert n_views == 5
    affs = [a for i, a in oracle.calls if 10 <= i < 10 + n_views]
    assert len({a.tobytes() for a in affs}) == n_views


def test_backend_exception_is_logged_counted_and_survived(obj, cam, caplog):
    oracle = make_oracle(obj, cam)

    class Flaky:
        meta, provider, path = oracle.meta, "flaky", "flaky"

        def __call__(self, crops, affines=None, frame_index=None):
            if frame_index == 4:
                raise RuntimeError("GPU hiccup")
            return oracle(crops, affines, frame_index)

    tr = Tracker(Flaky(), obj, cam, TrackerConfig.preset("fast", smoothing=False))
    with caplog.at_level(logging.ERROR, logger="tracker.pipeline.tracker"):
        res = run(tr, range(10))
    assert tr.errors == 1
    assert res[4].mode == "error" and "GPU hiccup" in res[4].error and not res[4].has_pose and res[4].status == LOST
    assert any("frame 4 failed" in r.getMessage() for r in caplog.records)
    assert res[9].status == TRACKING


def test_backend_failing_every_frame_is_raised(obj, cam):
    class Broken:
        meta, provider, path = ModelMeta(keypoint_names=obj.keypoint_names), "broken", "broken"

        def __call__(self, crops, affines=None, frame_index=None):
            raise RuntimeError("session died")

    tr = Tracker(Broken(), obj, cam, TrackerConfig.preset("fast", max_consecutive_errors=5))
    with pytest.raises(RuntimeError, match="5 frames in a row.*session died"):
        run(tr, range(10))


def test_model_object_mismatch(obj, cam):
    fewer = OracleHeatmaps(obj.keypoint_names[:-1], lambda i: None)
    with pytest.raises(KptrackError, match=r"predicts 9 keypoints .* has 10"):
        Tracker(fewer, obj, cam)
    renamed = OracleHeatmaps(("wrong",) + obj.keypoint_names[1:], lambda i: None)
    with pytest.raises(KptrackError, match=r"names differ .*0: model 'wrong' vs object 'nozzle_tip'"):
        Tracker(renamed, obj, cam)


def test_frame_size_must_match_camera(obj, cam):
    tr = Tracker(make_oracle(obj, cam), obj, cam)
    with pytest.raises(KptrackError, match="320x240 does not match the camera calibration 640x480"):
        tr.step(np.zeros((240, 320, 3), np.uint8))


def test_reset_goes_back_to_search(obj, cam):
    tr = Tracker(make_oracle(obj, cam), obj, cam)
    run(tr, range(3))
    assert tr.state.status == TRACKING
    tr.reset()
    assert tr.state.status == SEARCHING and not tr.state.history
    assert tr.step(BLACK, 3).mode == "search"


def test_distorted_camera(obj):
    dist = np.array([-0.25, 0.08, 0.001, -0.0005, 0.0])
    cam = Camera.from_intrinsics(520.0, 522.0, 318.0, 243.0, W, H, dist=dist)
    oracle = make_oracle(obj, cam)  # keypoints projected through the lens, as an image shows them
    tr = Tracker(oracle, obj, cam, TrackerConfig.preset("fast", smoothing=False))
    res = run(tr, range(5))
    R, t = gt_pose(4)
    assert res[4].status == TRACKING
    assert rotation_error_deg(res[4].R_m2c, R) < 0.5 and np.linalg.norm(res[4].t_m2c - t) < 2.0


def test_smoothing_reduces_jitter_and_can_be_switched_off(obj, cam):
    rng = np.random.default_rng(0)
    noise = {i: rng.normal(0, 1.0, (len(obj.keypoints), 2)) for i in range(60)}
    R, t = gt_pose(0)

    def uv_of(i):  # a still object, keypoints jittering by 1 px
        return cam.project(obj.keypoints, R, t) + noise[i]

    def run_cfg(smoothing):
        tr = Tracker(OracleHeatmaps(obj.keypoint_names, uv_of), obj, cam, TrackerConfig.preset("fast", smoothing=smoothing))
        res = run(tr, range(60))
        assert all(r.status == TRACKING for r in res)
        return np.array([r.t_m2c for r in res[10:]])

    raw, smooth = run_cfg(False), run_cfg(True)
    assert np.linalg.norm(np.diff(smooth, axis=0), axis=1).mean() < 0.5 * np.linalg.norm(np.diff(raw, axis=0), axis=1).mean()
    assert np.linalg.norm(smooth.mean(0) - t) < 2.0  # no bias


def test_one_euro_follows_fast_motion():
    f = OneEuroPose(min_cutoff_hz=3.0, beta_t=0.02, beta_r=2.0, d_cutoff_hz=1.0)
    R = np.eye(3)
    outs = [f(R, np.array([0.0, 0.0, 500.0 + 10.0 * i]), i / 30.0)[1][2] for i in range(60)]
    # moving at 300 mm/s: the filter lags by well under 2 frames of motion once it adapts
    assert 500.0 + 10.0 * 59 - outs[-1] < 20.0


def test_presets():
    fast, acc = TrackerConfig.preset("fast"), TrackerConfig.preset("accurate")
    assert fast.track_passes == acc.track_passes == 1
    assert not fast.edge_refine and acc.edge_refine  # the accurate preset refines on image edges
    assert TrackerConfig.preset("fast", smoothing=False).smoothing is False
    with pytest.raises(KptrackError, match="--preset turbo"):
        TrackerConfig.preset("turbo")


def test_result_to_dict_is_json_ready(obj, cam):
    import json

    tr = Tracker(make_oracle(obj, cam, hidden=lambda i: i == 1), obj, cam)
    r0, r1 = run(tr, range(2))
    for r in (r0, r1):
        assert isinstance(r, FrameResult)
        d = json.loads(json.dumps(r.to_dict()))
        assert d["status"] == r.status and set(d["timings_ms"]) >= {"crop", "infer", "decode", "solve", "total"}
    assert d["R_m2c"] is None and len(json.loads(json.dumps(r0.to_dict()))["R_m2c"]) == 9


def test_cold_retry_recovers_a_sudden_flip_in_the_same_frame(obj, cam):
    """The object turns 150 degrees out of plane between two frames (a hand flips it): the warm
    fit from the prediction fails; RANSAC on the same keypoints still finds the pose at once."""
    def pose(i):
        R, t = gt_pose(i)
        return (so3_exp(np.array([np.radians(150.0), 0.0, 0.0])) @ R if i >= 10 else R), t

    def uv_of(i):
        R, t = pose(i)
        return cam.project(obj.keypoints, R, t)

    out = {}
    for retry in (False, True):
        tr = Tracker(OracleHeatmaps(obj.keypoint_names, uv_of), obj, cam,
                     TrackerConfig.preset("fast", smoothing=False, cold_retry=retry))
        out[retry] = run(tr, range(12))
    R, t = pose(10)
    with_retry = out[True][10]
    assert with_retry.status == TRACKING and with_retry.mode == "track"
    assert rotation_error_deg(with_retry.R_m2c, R) < 0.5 and np.linalg.norm(with_retry.t_m2c - t) < 2.0
    assert out[False][10].status == LOST and not out[False][10].has_pose  # what the retry fixes


class _FarSighted(OracleHeatmaps):
    """Like the oracle, but in a wide view (a search crop, object small) only the first ``shown``
    keypoints show; a crop at tracking scale shows all of them."""

    def __init__(self, *a, shown=4, **kw):
        super().__init__(*a, **kw)
        self.shown = shown

    def __call__(self, crops, affines=None, frame_index=None):
        out = super().__call__(crops, affines, frame_index)
        for i, A in enumerate(affines):
            if abs(np.linalg.det(np.asarray(A)[:, :2])) < 0.6:  # crop px per frame px: a wide view
                out[i, self.shown:] = 0.0
        return out


def test_search_aims_a_closer_crop_from_a_four_keypoint_rough_pose(obj, cam):
    def uv_of(i):
        R, t = gt_pose(i)
        return cam.project(obj.keypoints, R, t)

    first = {}
    for n in (4, 5):
        tr = Tracker(_FarSighted(obj.keypoint_names, uv_of), obj, cam,
                     TrackerConfig.preset("fast", smoothing=False, recrop_min_inliers=n, keypoint_recrop=False))
        first[n] = run(tr, range(6))
    # four keypoints pin a rough pose: the closer crop sees all ten and the frame is tracked
    assert first[4][0].status == TRACKING and first[4][0].n_inliers == 10
    R, t = gt_pose(0)
    assert rotation_error_deg(first[4][0].R_m2c, R) < 0.5
    # demanding 5 inliers of the wide view never aims the closer crop: the object is never found
    assert all(not r.has_pose for r in first[5])
    with pytest.raises(KptrackError, match="recrop_min_inliers"):
        TrackerConfig.preset("fast", recrop_min_inliers=2)


def test_search_looks_closer_where_three_keypoints_gather(obj, cam):
    """Three keypoints pin no pose, but they say where the object is: a crop there finds it."""
    def uv_of(i):
        R, t = gt_pose(i)
        return cam.project(obj.keypoints, R, t)

    res = {}
    for on in (False, True):
        tr = Tracker(_FarSighted(obj.keypoint_names, uv_of, shown=3), obj, cam,
                     TrackerConfig.preset("fast", smoothing=False, keypoint_recrop=on))
        res[on] = run(tr, range(6))
    assert all(not r.has_pose for r in res[False])
    r0 = res[True][0]
    assert r0.status == TRACKING and r0.mode == "search" and r0.n_inliers >= 5
    assert res[True][1].mode == "track" and res[True][1].n_inliers == 10
    R, t = gt_pose(0)
    assert rotation_error_deg(r0.R_m2c, R) < 5.0  # keypoints near that crop's edge: rough, not wrong
    R, t = gt_pose(1)
    assert rotation_error_deg(res[True][1].R_m2c, R) < 0.5 and np.linalg.norm(res[True][1].t_m2c - t) < 2.0
    # the accepted crop is the close one, at about tracking scale
    assert abs(np.linalg.det(r0.affine[:, :2])) > 0.6


def test_a_tracked_fit_that_jumps_in_depth_fails_the_frame_until_the_search_confirms_it(obj, cam):
    """Frames 10-11 show the keypoints of the object twice as far away (what a degenerate fit of a
    few keypoints gives); from frame 12 on the object really sits there. With max_depth_step the
    tracked fits at 10 and 11 fail (no pose, the crop stays on the prediction); the search of
    frame 12, which is not checked, takes the new depth, and tracking goes on from it."""
    def pose(i, far_from):
        R, t = gt_pose(i)
        return (R, t * np.array([1.0, 1.0, 2.0])) if i >= far_from else (R, t)

    def results(far_from, **kw):
        oracle = OracleHeatmaps(obj.keypoint_names, lambda i: cam.project(obj.keypoints, *pose(i, far_from)))
        return run(Tracker(oracle, obj, cam, TrackerConfig.preset("fast", smoothing=False, **kw)), range(16))

    res = results(10)
    assert all(r.status == TRACKING for r in res[:10])
    assert [res[i].status for i in (10, 11)] == [LOST, SEARCHING] and not res[10].has_pose and not res[11].has_pose
    assert res[12].status == TRACKING and res[12].mode == "search"
    for r in res[12:]:
        R, t = pose(r.index, 10)
        assert r.status == TRACKING and np.linalg.norm(r.t_m2c - t) < 4.0
    off = results(10, max_depth_step=0)  # without the check the jump is tracked at once
    assert off[10].status == TRACKING and off[10].t_m2c[2] > 1.8 * gt_pose(10)[1][2]
    steady = results(99)  # the trajectory's own depth changes (~1.7 mm a frame) pass the check
    assert all(r.status == TRACKING for r in steady)


def test_max_depth_step_must_be_off_or_a_factor_above_one():
    with pytest.raises(KptrackError, match="max_depth_step"):
        TrackerConfig.preset("fast", max_depth_step=0.9)
    assert TrackerConfig.preset("fast", max_depth_step=0).max_depth_step == 0
