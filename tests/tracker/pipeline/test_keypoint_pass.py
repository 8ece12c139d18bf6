"""The keypoint pass's accept test (a fit must also put an object of plausible size in the crop) and
its further warm starts from a discrete symmetry's equivalents."""

import numpy as np
import pytest
from kptrack_testing import OracleHeatmaps

from kp_meshes import box_object
from tracker.errors import KptrackError
from tracker.geometry import rotation_error_deg, so3_exp
from tracker.objects import load_object
from tracker.objects.symmetry import symmetry_group
from tracker.pipeline.config import TrackerConfig
from tracker.pipeline.keypoint_pass import KeypointPass, StageClock
from tracker.pipeline.pose_result import PoseResult
from tracker.pipeline.search import box_crop
from tracker.pipeline.state import TRACKING
from tracker.pipeline.tracker import Tracker

W, H = 640, 480
R0 = so3_exp(np.array([0.4, 0.6, 0.1]))


@pytest.fixture(scope="module", name="obj")
def drill():
    return load_object("default")



def _fit(t, rms=0.5, n=10):
    return PoseResult(R0, np.asarray(t, float), rms, n, np.ones(n, bool), np.eye(6), 3, True)


def _pass(obj, cam, **cfg):
    oracle = OracleHeatmaps(obj.keypoint_names, lambda i: None)
    return KeypointPass(oracle, obj.keypoints, cam, TrackerConfig.preset("fast", **cfg))


def test_a_fit_far_beyond_the_crops_scale_is_refused(obj, cam):
    kp = _pass(obj, cam)
    near = np.array([0.0, 0.0, 500.0])
    side_px = np.ptp(cam.project(obj.keypoints, R0, near), axis=0).max()
    px_per_cell = 1.25 * side_px / 64  # a tracked crop: roi_margin 1.25 around the object
    assert 0.7 < kp.extent(R0, near, px_per_cell) < 0.9
    assert kp.acceptable(_fit(near), px_per_cell)
    far = near * 100  # 50 m: the same keypoints fitted with a tiny RMS would huddle on one cell
    assert kp.extent(R0, far, px_per_cell) < 0.01
    assert not kp.acceptable(_fit(far), px_per_cell)
    assert not kp.acceptable(_fit(near * 0.1), px_per_cell)  # 5 cm away: 8 crops wide
    assert _pass(obj, cam, min_extent=0.0, max_extent=1e9).acceptable(_fit(far), px_per_cell)


def test_a_keypoint_behind_the_camera_gives_no_extent(obj, cam):
    assert _pass(obj, cam).extent(R0, np.array([0.0, 0.0, 10.0]), 1.0) == 0.0


def test_the_tracker_accepts_only_fits_within_the_extent_range(obj, cam):
    t = np.array([0.0, 0.0, 500.0])

    def run(**cfg):
        oracle = OracleHeatmaps(obj.keypoint_names, lambda i: cam.project(obj.keypoints, R0, t))
        tr = Tracker(oracle, obj, cam, TrackerConfig.preset("fast", smoothing=False, **cfg))
        frame = np.zeros((H, W, 3), np.uint8)
        return [tr.step(frame, i, i / 30.0).status for i in range(10)]

    assert run().count(TRACKING) >= 8
    # Tracked crops frame the object at ~1 / roi_margin of their side: a floor above that refuses them all.
    assert TRACKING not in run(min_extent=0.95)
    assert TRACKING not in run(max_extent=0.3)


@pytest.mark.parametrize("lo,hi", [(-0.1, 4.0), (0.5, 0.5), (2.0, 1.0)])
def test_extent_range_must_be_ordered(lo, hi):
    with pytest.raises(KptrackError, match="min_extent"):
        TrackerConfig.preset("fast", min_extent=lo, max_extent=hi)


def _box_with_symmetry():
    return box_object("box", "box")


@pytest.mark.parametrize("cold_retry", [False, True])
def test_a_warm_start_from_another_equivalent_still_fits_a_discrete_symmetric_object(cam, cold_retry):
    """The network labelled the half-turned equivalent (as a min-loss network may): the warm start
    from the previous pose's equivalent alone fails, the group's other starts find the fit."""
    box = _box_with_symmetry()
    S = symmetry_group(box).discrete[2]
    t = np.array([20.0, -10.0, 450.0])
    R_seen, t_seen = R0 @ S[:3, :3], t + R0 @ S[:3, 3]
    oracle = OracleHeatmaps(box.keypoint_names, lambda i: cam.project(box.keypoints, R_seen, t_seen))
    cfg = TrackerConfig.preset("fast", cold_retry=cold_retry)
    A = box_crop(cam, np.array(box.box_corners, float), R0, t, cfg.roi_margin, cfg.min_roi_px)
    frame = np.zeros((H, W, 3), np.uint8)
    plain = KeypointPass(oracle, box.keypoints, cam, cfg)(frame, A, 0, (R0, t), StageClock())
    multi = KeypointPass(oracle, box.keypoints, cam, cfg, equivalents=symmetry_group(box).discrete)(frame, A, 0, (R0, t), StageClock())
    assert multi.accepted
    # the fitted pose is one of the equivalents of what was seen (they give the same image)
    errs = [(rotation_error_deg(multi.pose.R_m2c, R_seen @ E[:3, :3]), np.linalg.norm(multi.pose.t_m2c - (t_seen + R_seen @ E[:3, 3])))
            for E in symmetry_group(box).discrete]
    assert min(e[0] for e in errs) < 0.5 and min(e[1] for e in errs) < 1.0
    if not cold_retry:
        assert not plain.accepted


def test_peaks_matched_by_the_warm_start_fix_mixed_up_labels(cam):
    """Channels that mix up the corners (no symmetry explains the labels) defeat the labelled fit;
    matching the peaks to the warm start's projection recovers the pose."""
    box = _box_with_symmetry()
    t = np.array([20.0, -10.0, 450.0])
    mix = np.array([1, 0, 2, 6, 4, 7, 3, 5])  # channel k shows corner mix[k]
    oracle = OracleHeatmaps(box.keypoint_names, lambda i: cam.project(box.keypoints, R0, t)[mix])
    warm = (so3_exp(np.array([0.03, -0.02, 0.02])) @ R0, t + [4.0, -3.0, 8.0])
    frame = np.zeros((H, W, 3), np.uint8)

    def run(**cfg):
        c = TrackerConfig.preset("fast", cold_retry=False, **cfg)
        A = box_crop(cam, np.array(box.box_corners, float), R0, t, c.roi_margin, c.min_roi_px)
        kp = KeypointPass(oracle, box.keypoints, cam, c, equivalents=symmetry_group(box).discrete)
        return kp(frame, A, 0, warm, StageClock())

    matched = run()
    assert matched.accepted and matched.pose.n_inliers == 8
    assert rotation_error_deg(matched.pose.R_m2c, R0) < 0.3 and np.linalg.norm(matched.pose.t_m2c - t) < 1.0
    # the pass reports the matched peaks as the keypoints, in the fit's order (so the HUD and the score follow it)
    np.testing.assert_allclose(matched.uv, cam.project(box.keypoints, R0, t), atol=0.5)
    assert np.all(matched.conf > 0.5)
    labelled = run(associate=False)
    assert not labelled.accepted or rotation_error_deg(labelled.pose.R_m2c, R0) > 1.0


class _Confused:
    """A heatmap backend whose channels fire strongest on the next corner (source -> target) and
    only at 0.6 on their own: as a plain box's network does when it cannot tell corners apart."""

    def __init__(self, oracle, pairs):
        self.oracle, self.pairs, self.meta = oracle, pairs, oracle.meta

    def __call__(self, crops, affines=None, frame_index=None):
        heat = self.oracle(crops, affines, frame_index)
        out = heat.copy()
        for a, b in self.pairs:
            out[:, a] = np.maximum(0.6 * heat[:, a], heat[:, b])
        return out


def test_a_cold_start_from_the_peaks_finds_corners_the_labels_mix_up(cam):
    """Five of eight channels peak on another corner, so the labels fit no pose; RANSAC on the
    peaks under every channel firing on them (peak_cold) finds the pose from scratch."""
    box = _box_with_symmetry()
    t = np.array([20.0, -10.0, 450.0])
    oracle = OracleHeatmaps(box.keypoint_names, lambda i: cam.project(box.keypoints, R0, t))
    confused = _Confused(oracle, [(0, 1), (1, 2), (2, 3), (4, 5), (6, 7)])
    frame = np.zeros((H, W, 3), np.uint8)

    def run(**over):
        c = TrackerConfig.preset("fast", confusable=False, **over)
        A = box_crop(cam, np.array(box.box_corners, float), R0, t, c.roi_margin, c.min_roi_px)
        return KeypointPass(confused, box.keypoints, cam, c, equivalents=symmetry_group(box).discrete)(frame, A, 0, None, StageClock())

    def right(p):
        return p.accepted and min(rotation_error_deg(p.pose.R_m2c, R0 @ S[:3, :3]) for S in symmetry_group(box).discrete) < 0.5

    found = run()
    assert right(found) and found.pose.n_inliers == 8
    assert not right(run(peak_cold=False))


def test_a_held_pose_that_leaves_peaks_unexplained_is_replaced_by_a_fresh_start_from_them(cam):
    """A held pose 40 deg off (no symmetry or turn of the truth) explains few peaks and the labels
    are mixed up: only a fresh hypothesis from the peaks (peak_recheck) recovers the pose."""
    box = _box_with_symmetry()
    t = np.array([20.0, -10.0, 450.0])
    oracle = OracleHeatmaps(box.keypoint_names, lambda i: cam.project(box.keypoints, R0, t))
    confused = _Confused(oracle, [(0, 1), (1, 2), (2, 3), (4, 5), (6, 7)])
    held = (so3_exp(np.array([0.0, 0.7, 0.0])) @ R0, t + [15.0, 0.0, 0.0])
    frame = np.zeros((H, W, 3), np.uint8)

    def run(**over):
        c = TrackerConfig.preset("fast", **over)
        A = box_crop(cam, np.array(box.box_corners, float), R0, t, c.roi_margin, c.min_roi_px)
        return KeypointPass(confused, box.keypoints, cam, c, equivalents=symmetry_group(box).discrete)(frame, A, 0, held, StageClock())

    def right(p):
        return p.accepted and min(rotation_error_deg(p.pose.R_m2c, R0 @ S[:3, :3]) for S in symmetry_group(box).discrete) < 0.5

    assert right(run(peak_recheck=True))
    assert not right(run(peak_recheck=False))


def test_the_matched_fit_holds_against_a_labelled_fit_that_jumps_without_a_clear_margin(obj, cam):
    """A right pose held by the matched peaks (6 inliers, 1 px) is not given up for a fit of mixed-up
    labels a quarter turn away with one more loose inlier (7, 4.7 px); the labels' fit still wins
    when it stays near (a refinement) or explains more keypoints with no larger RMS."""
    kp = _pass(obj, cam)
    t = [0.0, 0.0, 400.0]
    matched = PoseResult(R0, np.asarray(t), 1.0, 6, np.ones(6, bool), np.eye(6), 3, True)

    def labelled(turn_deg, n, rms):
        R = so3_exp(np.array([np.radians(turn_deg), 0.0, 0.0])) @ R0
        return PoseResult(R, np.asarray(t), rms, n, np.ones(n, bool), np.eye(6), 3, True)

    assert kp._matched_holds(matched, labelled(90.0, 7, 4.7))
    assert not kp._matched_holds(matched, labelled(90.0, 7, 0.8))
    assert not kp._matched_holds(matched, labelled(5.0, 7, 4.7))
    assert kp._matched_holds(matched, labelled(5.0, 5, 0.5))


@pytest.mark.parametrize("peak,acquires", [(0.9, True), (0.25, False)])
def test_a_weak_search_pose_does_not_start_a_track(obj, cam, peak, acquires):
    """Background clutter gives search poses with faint keypoints; they must not start a track
    (and, once tracked, be held), while the same pose with confident keypoints does."""
    t = np.array([0.0, 0.0, 500.0])
    oracle = OracleHeatmaps(obj.keypoint_names, lambda i: cam.project(obj.keypoints, R0, t), peak=peak)
    frame = np.zeros((H, W, 3), np.uint8)

    def statuses(**cfg):
        tr = Tracker(oracle, obj, cam, TrackerConfig.preset("fast", smoothing=False, min_conf=0.1, **cfg))
        return [tr.step(frame, i, i / 30.0).status for i in range(6)]

    assert (TRACKING in statuses()) == acquires
    assert TRACKING in statuses(min_acquire_score=0.0)  # the gate, not the fit, refused the weak one


@pytest.mark.parametrize("bad", [dict(min_acquire_score=1.5), dict(min_acquire_score=-0.1), dict(associate_gate_cells=0.0),
                                 dict(confusable_margin=0), dict(peak_ransac_iters=0), dict(max_label_turn_deg=0.0)])
def test_acquire_score_and_gate_checked(bad):
    with pytest.raises(KptrackError, match="tracker config"):
        TrackerConfig.preset("fast", **bad)


def _quarter_turned(box, R, t):
    """(R, t) turned a quarter about the box's long axis: 60 and 40 mm sides swapped."""
    Q = so3_exp(np.array([np.pi / 2, 0.0, 0.0]))
    return R @ Q, t


@pytest.mark.parametrize("warm_start", [True, False])
def test_a_start_a_quarter_turn_off_is_corrected_by_the_confusable_turns(cam, warm_start):
    """A plain box's pose a quarter turn off still explains some corners. Fitting the heatmaps'
    peaks from each confusable turn of the start finds the pose that explains them all, whether
    the start came from tracking (warm) or from a cold fit of the labels (here a stand-in RANSAC
    that returns the quarter-turned pose with 5 inliers, as mixed-up labels can give)."""
    box = _box_with_symmetry()
    group = symmetry_group(box).discrete
    t = np.array([20.0, -10.0, 420.0])
    R_true = so3_exp(np.array([0.5, -0.4, 0.3]))
    R_bad = R_true @ so3_exp(np.array([np.pi / 2, 0.0, 0.0]))  # 60 and 40 mm sides swapped
    mix = np.array([1, 0, 2, 6, 4, 7, 3, 5])  # channels mixed up: the labels fit no pose
    oracle = OracleHeatmaps(box.keypoint_names, lambda i: cam.project(box.keypoints, R_true, t)[mix])

    def cold(xyz, *_):
        mask = np.arange(len(xyz)) < 5
        return PoseResult(R_bad, t.copy(), 0.5, int(mask.sum()), mask, np.eye(6), 3, True)

    frame = np.zeros((H, W, 3), np.uint8)

    def run(**over):
        c = TrackerConfig.preset("fast", cold_retry=False, **over)
        A = box_crop(cam, np.array(box.box_corners, float), R_true, t, c.roi_margin, c.min_roi_px)
        kp = KeypointPass(oracle, box.keypoints, cam, c, equivalents=group, solve_cold=cold)
        return kp(frame, A, 0, (R_bad, t) if warm_start else None, StageClock())

    def right(p):
        return p.accepted and min(rotation_error_deg(p.pose.R_m2c, R_true @ S[:3, :3]) for S in group) < 0.5

    fixed = run()
    assert right(fixed) and fixed.pose.n_inliers == 8
    assert not right(run(confusable=False))


T_OCCLUDED = np.array([10.0, -5.0, 450.0])


def _occluded_oracle(obj, cam):
    """The drill at (R0, T_OCCLUDED) whose first three keypoints are hidden and detected,
    confidently, 8 cells (about 25 px) away from where they are: an occluder's confident guesses."""
    uv = cam.project(obj.keypoints, R0, T_OCCLUDED)
    uv[:3] += [20.0, 16.0]
    return OracleHeatmaps(obj.keypoint_names, lambda i: uv)


def _occluded_pass(obj, cam, warm, **cfg):
    """One tracked pass over :func:`_occluded_oracle`'s drill: (pass, rotation error deg, translation error mm)."""
    t = T_OCCLUDED
    oracle = _occluded_oracle(obj, cam)
    c = TrackerConfig.preset("fast", cold_retry=False, **cfg)
    A = box_crop(cam, np.array(obj.box_corners, float), R0, t, c.roi_margin, c.min_roi_px)
    p = KeypointPass(oracle, obj.keypoints, cam, c)(np.zeros((H, W, 3), np.uint8), A, 0, warm, StageClock(), gate=True)
    return p, rotation_error_deg(p.pose.R_m2c, R0), float(np.linalg.norm(p.pose.t_m2c - t))


def test_the_prediction_gate_leaves_out_keypoints_found_far_from_where_it_puts_them(obj, cam):
    """A good prediction (1 deg, 4 mm off): with the gate, the three far keypoints are left out of
    the fit and the pose is right; without it, they pull the fit off."""
    warm = (so3_exp(np.array([0.015, -0.01, 0.0])) @ R0, np.array([13.0, -3.0, 452.0]))
    gated, rot_g, tr_g = _occluded_pass(obj, cam, warm, predict_gate_cells=3.0)
    _, rot_o, tr_o = _occluded_pass(obj, cam, warm)
    assert gated.accepted and rot_g < 0.3 and tr_g < 2.0
    assert rot_o > 3 * rot_g + 0.3 or tr_o > 3 * tr_g + 2.0
    assert not gated.pose.inlier_mask[:3].any() and gated.pose.inlier_mask[3:].sum() >= 5


def test_a_prediction_that_missed_a_fast_move_gates_nothing_out(obj, cam):
    """The prediction 40 px off puts every keypoint outside the gate: the fit takes them all, as
    without the gate, rather than leaving too few to fit."""
    warm = (R0, np.array([10.0 + 40.0 * 450.0 / cam.K[0, 0], -5.0, 450.0]))
    gated, rot_g, tr_g = _occluded_pass(obj, cam, warm, predict_gate_cells=3.0)
    plain, rot_o, tr_o = _occluded_pass(obj, cam, warm)
    assert gated.pose is not None and gated.pose.inlier_mask.sum() >= 5
    assert (rot_g, tr_g) == (pytest.approx(rot_o, abs=1e-9), pytest.approx(tr_o, abs=1e-9))
    np.testing.assert_array_equal(gated.pose.inlier_mask, plain.pose.inlier_mask)


def test_the_prediction_gate_must_not_be_negative():
    with pytest.raises(KptrackError, match="predict_gate_cells"):
        TrackerConfig.preset("fast", predict_gate_cells=-1.0)


def test_the_prediction_gate_never_rescues_a_fit_that_was_refused(obj, cam):
    """The gate only refines an accepted fit: when the fit of all the keypoints is refused (the
    object is lost, or the prediction is wrong), a fit of the few that agree with the prediction
    must not keep the track alive on it. A stand-in solver refuses every fit of all ten keypoints
    (RMS 50 px) and fits any fewer perfectly; the gate would leave out three."""
    t = T_OCCLUDED
    oracle = _occluded_oracle(obj, cam)
    calls = []

    def solver(xyz, uv_, w, K, R, t0, scale):
        calls.append(len(xyz))
        n = len(xyz)
        return PoseResult(R0, t, 50.0 if n == len(obj.keypoints) else 0.1, n, np.ones(n, bool), np.eye(6), 3, True)

    c = TrackerConfig.preset("fast", cold_retry=False, predict_gate_cells=3.0)
    A = box_crop(cam, np.array(obj.box_corners, float), R0, t, c.roi_margin, c.min_roi_px)
    kp = KeypointPass(oracle, obj.keypoints, cam, c, solve_warm=solver)
    p = kp(np.zeros((H, W, 3), np.uint8), A, 0, (R0, t), StageClock(), gate=True)
    assert not p.accepted and calls == [len(obj.keypoints)]
