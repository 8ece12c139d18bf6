"""Edge evidence of a pose (tracker.pipeline.edges) and its use by the keypoint pass."""

import numpy as np
import pytest
from kp_meshes import box_object, cylinder_object
from kptrack_testing import OracleHeatmaps
from render_scenes import tracking_crop_scene
from tracker.errors import KptrackError
from tracker.geometry import project, rotation_error_deg, so3_exp
from tracker.objects import load_object
from tracker.objects.symmetry import symmetry_group
from tracker.pipeline.config import TrackerConfig
from tracker.pipeline.edges import EdgeScorer, crop_intrinsics
from tracker.pipeline.keypoint_pass import KeypointPass, StageClock
from tracker.pipeline.pose_result import PoseResult
from tracker.pipeline.tracker import Tracker

S = 256  # the crop side, px (the camera is the 640x480 one of conftest.py)
R_TRUE = so3_exp(np.array([0.5, -0.4, 0.3]))
T = np.array([20.0, -10.0, 420.0])
QUARTER = so3_exp(np.array([np.pi / 2, 0.0, 0.0]))  # about the box's long axis: its 60 and 40 mm sides swapped



@pytest.fixture(scope="module", name="box")
def plain_box():
    return box_object("box", "box")


def _scene(obj, cam, R, t, seed=0):
    return tracking_crop_scene(obj, cam, R, t, S, seed)


def test_crop_intrinsics_project_as_the_crop_does(cam, box):
    A = np.array([[0.8, 0.0, -100.0], [0.0, 0.8, -40.0]])
    uv = project(box.keypoints, R_TRUE, T, cam.K)
    in_crop = uv @ A[:, :2].T + A[:, 2]
    np.testing.assert_allclose(project(box.keypoints, R_TRUE, T, crop_intrinsics(cam.K, A)), in_crop, atol=1e-9)


def test_the_model_edges_are_the_silhouette_and_the_creases_between_visible_faces(cam, box):
    scorer = EdgeScorer(box, S)
    K = crop_intrinsics(cam.K, np.array([[0.5, 0.0, 0.0], [0.0, 0.5, 0.0]]))
    K[0, 2], K[1, 2] = S / 2, S / 2
    face_on = scorer.model_edges(K, np.eye(3), np.array([0.0, 0.0, 400.0]))
    ys, xs = np.nonzero(face_on)
    # one face seen: only its outline, a rectangle 80 x 60 mm wide (width / height = 4 / 3)
    inner = face_on[ys.min() + 3: ys.max() - 2, xs.min() + 3: xs.max() - 2]
    assert not inner.any()
    assert (xs.max() - xs.min()) / (ys.max() - ys.min()) == pytest.approx(4 / 3, rel=0.05)
    # turned: the creases between the faces now seen lie inside the outline
    tilted = scorer.model_edges(K, R_TRUE, np.array([0.0, 0.0, 400.0]))
    ys, xs = np.nonzero(tilted)
    assert tilted[ys.min() + 3: ys.max() - 2, xs.min() + 3: xs.max() - 2].sum() > 20


def test_the_true_pose_outscores_a_confusable_turn_and_a_flat_crop_scores_nothing(cam, box):
    scorer = EdgeScorer(box, S)
    _, A, crop = _scene(box, cam, R_TRUE, T)
    K = crop_intrinsics(cam.K, A)
    strength = scorer.image(crop)
    right = scorer.score(strength, K, R_TRUE, T)
    turned = scorer.score(strength, K, R_TRUE @ QUARTER, T)
    assert right > 0.8
    assert right - turned > TrackerConfig().edge_margin
    flat = scorer.image(np.full((S, S, 3), 128, np.uint8))
    assert scorer.score(flat, K, R_TRUE, T) == 0.0


def _fit(R, t, n=5):
    mask = np.ones(n, bool)
    return PoseResult(np.asarray(R, float), np.asarray(t, float), 0.5, n, mask, np.eye(6), 3, True)


@pytest.mark.parametrize("margin, rival_inliers, switches", [(0.05, 5, True), (0.05, 4, True), (0.05, 3, False), (1.0, 5, False)])
def test_the_pass_reports_the_hypothesis_the_image_edges_support(cam, box, margin, rival_inliers, switches):
    """The fit chosen from the keypoints is a quarter turn off. A rival fit whose outline lies on
    the crop's edges by more than edge_margin is reported instead, when it passes the accept test
    with edge_min_inliers (4) inliers."""
    frame, A, crop = _scene(box, cam, R_TRUE, T)
    cfg = TrackerConfig.preset("fast", edge_verify=True, edge_margin=margin)
    kp = KeypointPass(OracleHeatmaps(box.keypoint_names, lambda i: None), box.keypoints, cam, cfg,
                      equivalents=symmetry_group(box).discrete, edges=EdgeScorer(box, S))
    px_per_cell = (1.0 / abs(np.linalg.det(A[:, :2])) ** 0.5) * (S - 1) / (kp.heatmap_size - 1)
    chosen = _fit(R_TRUE @ QUARTER, T)
    rival = _fit(R_TRUE, T, rival_inliers)
    pool = [(chosen, np.arange(5), True), (rival, np.arange(rival_inliers), kp.acceptable(rival, px_per_cell))]
    pose, _ = kp._verified(crop, A, chosen, None, pool, px_per_cell)
    assert (rotation_error_deg(pose.R_m2c, R_TRUE) < 1e-6) == switches


def test_only_a_symmetric_object_gets_the_edge_check(cam, box):
    """The drill runs the same code as before the check; a box and the bottle get it."""
    cfg = TrackerConfig.preset("fast", edge_verify=True)
    for obj in (box, load_object("bottle")):
        assert Tracker(OracleHeatmaps(obj.keypoint_names, lambda i: None), obj, cam, cfg).keypass.edges is not None
    assert Tracker(OracleHeatmaps(box.keypoint_names, lambda i: None), box, cam, TrackerConfig.preset("fast", edge_verify=False)).keypass.edges is None
    drill = load_object("default")
    assert Tracker(OracleHeatmaps(drill.keypoint_names, lambda i: None), drill, cam, cfg).keypass.edges is None


@pytest.mark.parametrize("edge_verify, gate_cells, fixed", [(True, 3.0, True), (False, 3.0, False), (True, 0.0, False)])
def test_keypoints_an_occluder_displaced_are_left_out_when_the_edges_agree(cam, edge_verify, gate_cells, fixed):
    """A cylinder (continuous symmetry) whose top five keypoints an occluder's guesses put 22 px
    off: the labelled fit is pulled several degrees away. While tracking, the fit of the keypoints
    found where the prediction puts them is a rival; its outline lies on the rendered cylinder's
    edges, so with the edge check it is reported (not with the check off, nor with no gate)."""
    cyl = cylinder_object()
    group = symmetry_group(cyl)
    R, t = so3_exp(np.array([1.2, 0.3, 0.2])), np.array([10.0, -5.0, 380.0])
    frame, A, _ = _scene(cyl, cam, R, t)
    uv = cam.project(cyl.keypoints, R, t).copy()
    uv[cyl.keypoints[:, 2] > 40] += [20.0, 10.0]
    cfg = TrackerConfig.preset("fast", edge_verify=edge_verify, edge_gate_cells=gate_cells)
    kp = KeypointPass(OracleHeatmaps(cyl.keypoint_names, lambda i: uv), cyl.keypoints, cam, cfg,
                      edges=EdgeScorer(cyl, S) if edge_verify else None, symmetry=group)
    p = kp(frame, A, 0, (R, t), StageClock(), gate=True)
    axis_err = np.degrees(np.arccos(np.clip((p.pose.R_m2c @ group.axis) @ (R @ group.axis), -1.0, 1.0)))
    assert p.accepted
    if fixed:
        assert axis_err < 0.5 and np.linalg.norm(np.asarray(p.pose.t_m2c) - t) < 1.0 and p.pose.n_inliers == 5
    else:
        assert axis_err > 5.0


def test_edge_gate_cells_checked():
    with pytest.raises(KptrackError, match="edge_gate_cells"):
        TrackerConfig.preset("fast", edge_gate_cells=-1.0)


@pytest.mark.parametrize("bad", [-0.1, 1.5])
def test_edge_margin_checked(bad):
    with pytest.raises(KptrackError, match="edge_margin"):
        TrackerConfig.preset("fast", edge_margin=bad)


def test_edge_min_inliers_checked():
    with pytest.raises(KptrackError, match="edge_min_inliers 3 must be >= 4"):
        TrackerConfig.preset("fast", edge_min_inliers=3)


def test_a_pass_with_the_edge_check_still_tracks_the_box(cam, box):
    """End to end through the pass: the oracle's heatmaps and the rendered frame agree, and the
    fit with the check on is the true pose."""
    frame, A, _ = _scene(box, cam, R_TRUE, T)
    oracle = OracleHeatmaps(box.keypoint_names, lambda i: cam.project(box.keypoints, R_TRUE, T))
    cfg = TrackerConfig.preset("fast", edge_verify=True)
    kp = KeypointPass(oracle, box.keypoints, cam, cfg, equivalents=symmetry_group(box).discrete, edges=EdgeScorer(box, S))
    p = kp(frame, A, 0, (R_TRUE @ so3_exp(np.array([0.05, 0.0, 0.0])), T), StageClock())
    group = symmetry_group(box).discrete
    assert p.accepted
    assert min(rotation_error_deg(p.pose.R_m2c, R_TRUE @ E[:3, :3]) for E in group) < 0.5


def test_a_rival_that_is_a_symmetric_equivalent_of_the_chosen_fit_is_not_taken(cam, box):
    """A half turn of the box gives the same image, so the same edge score: even at margin 0 it
    does not replace the chosen fit (and is not scored)."""
    _, A, crop = _scene(box, cam, R_TRUE, T)
    cfg = TrackerConfig.preset("fast", edge_verify=True, edge_margin=0.0)
    group = symmetry_group(box).discrete
    kp = KeypointPass(OracleHeatmaps(box.keypoint_names, lambda i: None), box.keypoints, cam, cfg,
                      equivalents=group, edges=EdgeScorer(box, S))
    px_per_cell = (1.0 / abs(np.linalg.det(A[:, :2])) ** 0.5) * (S - 1) / (kp.heatmap_size - 1)
    chosen = _fit(R_TRUE, T)
    half = group[1]
    twin = _fit(R_TRUE @ half[:3, :3], T + R_TRUE @ half[:3, 3])
    pose, _ = kp._verified(crop, A, chosen, None, [(twin, np.arange(5), True)], px_per_cell)
    assert pose is chosen
