"""Pose refinement on image edges (tracker.pipeline.edge_refine) and its use by the keypoint pass."""

import cv2
import numpy as np
import pytest
from kp_meshes import box_object
from kptrack_testing import OracleHeatmaps
from render_scenes import tracking_crop_scene
from tracker.camera import Camera
from tracker.errors import KptrackError
from tracker.geometry import project, so3_exp
from tracker.objects.symmetry import symmetry_group
from tracker.pipeline.config import TrackerConfig
from tracker.pipeline.edge_refine import EdgeRefineConfig, EdgeRefiner, normal_equations
from tracker.pipeline.edges import EdgeScorer, crop_intrinsics
from tracker.pipeline.keypoint_pass import KeypointPass, StageClock
from tracker.pipeline.search import box_crop
from tracker.pipeline.tracker import Tracker
from tracker.render.kernels import edge_pixels_kernel

W, H, S = 640, 480, 256
R_CYL = so3_exp(np.array([1.2, 0.3, 0.2]))
T_CYL = np.array([10.0, -5.0, 380.0])




def _scene(obj, cam, R, t, seed=0):
    return tracking_crop_scene(obj, cam, R, t, S, seed)


def _refiner(obj, cam, **kw):
    return EdgeRefiner(EdgeScorer(obj, S), cam.K, cam.undistort_points, EdgeRefineConfig(**kw))


def test_edge_points_lie_on_the_outline_with_normals_across_it(cam):
    """A box seen face-on: every edge point is on its front face's outline (z of the face), its
    normal is across the side it lies on, and silhouette points are marked half a pixel inward."""
    box = box_object("box", "box")
    scorer = EdgeScorer(box, S)
    K = crop_intrinsics(cam.K, np.array([[0.5, 0.0, 0.0], [0.0, 0.5, 0.0]]))
    K[0, 2], K[1, 2] = S / 2, S / 2
    t = np.array([0.0, 0.0, 400.0])
    px, Xc, n, bias = scorer.edge_points(K, np.eye(3), t, 400)
    half = np.abs(box.vertices).max(0)
    assert np.allclose(Xc[:, 2], t[2] - half[2], atol=0.5)  # the front face
    on_side = np.abs(np.abs(Xc[:, 0]) - half[0]) < 2.0  # the left and right sides
    on_top = np.abs(np.abs(Xc[:, 1]) - half[1]) < 2.0  # the top and bottom (corners: both, normals diagonal)
    assert np.count_nonzero(on_side & ~on_top) > 20 and np.mean(np.abs(n[on_side & ~on_top, 0]) > 0.99) > 0.9
    assert np.count_nonzero(on_top & ~on_side) > 20 and np.mean(np.abs(n[on_top & ~on_side, 1]) > 0.99) > 0.9
    assert np.all((np.linalg.norm(bias, axis=1) > 0.35) & (np.linalg.norm(bias, axis=1) <= 0.5 + 1e-9))
    # the bias points outward: away from the face's centre
    assert np.all(np.einsum("ij,ij->i", bias, px - K[:2, 2]) > 0)


def test_the_edges_pull_a_depth_error_back_without_keypoints(cam, cyl):
    """The cylinder 6 % too far and turned 2 deg: edges alone bring it within 1 % of its depth."""
    _, A, crop = _scene(cyl, cam, R_CYL, T_CYL)
    t0 = T_CYL * 1.06
    R0 = so3_exp(np.array([0.03, -0.02, 0.0])) @ R_CYL
    out = _refiner(cyl, cam, iterations=4)(crop, A, R0, t0, np.zeros((0, 3)), np.zeros((0, 2)), np.zeros(0), 6.0)
    assert out is not None
    R, t, used = out
    assert used >= 20
    assert np.linalg.norm(t - T_CYL) < 0.01 * T_CYL[2] < np.linalg.norm(t0 - T_CYL)


def test_the_true_pose_stays_put(cam, cyl):
    """At the true pose with exact keypoints the refinement moves it by under 0.5 % of its depth (the
    edges of a rendered, unantialiased outline leave about 0.3 %) and tilts its axis by under 0.3 deg."""
    _, A, crop = _scene(cyl, cam, R_CYL, T_CYL)
    uv = project(cyl.keypoints, R_CYL, T_CYL, cam.K)
    R, t, _ = _refiner(cyl, cam)(crop, A, R_CYL, T_CYL, cyl.keypoints, uv, np.ones(len(uv)), 6.0)
    assert np.linalg.norm(t - T_CYL) < 0.005 * T_CYL[2]
    axis = symmetry_group(cyl).axis
    assert np.degrees(np.arccos(np.clip((R @ axis) @ (R_CYL @ axis), -1, 1))) < 0.3


def test_a_flat_crop_or_a_far_move_gives_no_refinement(cam, cyl):
    _, A, crop = _scene(cyl, cam, R_CYL, T_CYL)
    flat = np.full_like(crop, 128)
    assert _refiner(cyl, cam)(flat, A, R_CYL, T_CYL, np.zeros((0, 3)), np.zeros((0, 2)), np.zeros(0), 6.0) is None
    # the edges would move it 6 % of its depth; a refinement may move it 1 %
    out = _refiner(cyl, cam, iterations=4, max_shift=0.01)(crop, A, R_CYL, T_CYL * 1.06, np.zeros((0, 3)),
                                                           np.zeros((0, 2)), np.zeros(0), 6.0)
    assert out is None


def test_the_pass_refines_a_fit_its_keypoints_hold_too_far(cam, cyl):
    """Keypoints shrunk 4 % towards their centre (a network's peaks pulled inward): the keypoint
    fit puts the cylinder about 4 % too far. With edge_refine the edges pull it back most of the
    way (the keypoints, weighted a tenth of the edges, hold it some way off)."""
    frame, A, _ = _scene(cyl, cam, R_CYL, T_CYL)
    uv = cam.project(cyl.keypoints, R_CYL, T_CYL)
    uv = uv.mean(0) + 0.96 * (uv - uv.mean(0))
    err = {}
    for refine in (False, True):
        cfg = TrackerConfig.preset("fast", edge_refine=refine)
        refiner = _refiner(cyl, cam, edge_weight=cfg.edge_refine_weight) if refine else None
        kp = KeypointPass(OracleHeatmaps(cyl.keypoint_names, lambda i: uv), cyl.keypoints, cam, cfg,
                          symmetry=symmetry_group(cyl), refiner=refiner)
        p = kp(frame, A, 0, (R_CYL, T_CYL), StageClock())
        assert p.accepted
        err[refine] = np.linalg.norm(np.asarray(p.pose.t_m2c) - T_CYL) / T_CYL[2]
    assert err[False] > 0.03
    assert err[True] < 0.6 * err[False]


def test_the_tracker_builds_the_refiner_only_when_asked(cam, cyl):
    oracle = OracleHeatmaps(cyl.keypoint_names, lambda i: None)
    assert Tracker(oracle, cyl, cam, TrackerConfig.preset("fast", edge_refine=True)).keypass.refiner is not None
    assert Tracker(oracle, cyl, cam, TrackerConfig.preset("fast", edge_refine=False)).keypass.refiner is None


@pytest.mark.parametrize("bad", [0.0, -1.0, float("nan")])
def test_edge_refine_weight_checked(bad):
    with pytest.raises(KptrackError, match="edge_refine_weight"):
        TrackerConfig.preset("fast", edge_refine_weight=bad)


def _normal_equations_ref(K, R, t, Xo, n, q, w_edge, edge_scale, xyz, uv, w_kp, kp_scale):
    """numpy twin of normal_equations: the rows by central differences of the projection in the
    pose increment (a rotation about the object's origin, then a translation)."""
    def project_inc(X, delta):
        Rn = cv2.Rodrigues(delta[:3].reshape(3, 1))[0] @ R
        return project(X, Rn, t + delta[3:], K)

    def rows(X):
        J = np.zeros((len(X), 2, 6))
        for j in range(6):
            e = np.zeros(6)
            e[j] = 1e-6
            J[:, :, j] = (project_inc(X, e) - project_inc(X, -e)) / 2e-6
        return J, project(X, R, t, K)

    Je, pe = rows(Xo)
    re = np.einsum("ij,ij->i", n, pe - q)
    Je1 = np.einsum("ij,ijk->ik", n, Je)
    ae = w_edge / (1.0 + (re / edge_scale) ** 2)
    Jk, pk = rows(xyz)
    d = pk - uv
    dist = np.linalg.norm(d, axis=1)
    ak = w_kp * np.where(dist <= kp_scale, 1.0, kp_scale / dist)
    J = np.concatenate([Je1, Jk[:, 0], Jk[:, 1]])
    r = np.concatenate([re, d[:, 0], d[:, 1]])
    a = np.concatenate([ae, ak, ak])
    return (J * a[:, None]).T @ J, (J * a[:, None]).T @ r


def test_normal_equations_agree_with_finite_differences():
    rng = np.random.default_rng(3)
    K = np.array([[600.0, 0.5, 320.0], [0.0, 590.0, 240.0], [0.0, 0.0, 1.0]])
    R, t = so3_exp(np.array([0.4, -0.2, 0.7])), np.array([15.0, -20.0, 450.0])
    Xo = rng.uniform(-60, 60, (50, 3))
    n = rng.standard_normal((50, 2))
    n /= np.linalg.norm(n, axis=1, keepdims=True)
    q = project(Xo, R, t, K) + rng.normal(0, 3, (50, 2))
    xyz = rng.uniform(-60, 60, (8, 3))
    uv = project(xyz, R, t, K) + rng.normal(0, 6, (8, 2))  # some beyond the Huber scale
    w_kp = rng.uniform(0.3, 1.0, 8)
    H, g = np.empty((6, 6)), np.empty(6)
    normal_equations(K, R, t, Xo, n, q, 0.7, 1.5, xyz, uv, w_kp, 4.0, H, g)
    H_ref, g_ref = _normal_equations_ref(K, R, t, Xo, n, q, 0.7, 1.5, xyz, uv, w_kp, 4.0)
    np.testing.assert_allclose(H, H_ref, rtol=1e-5, atol=1e-6 * np.abs(H_ref).max())
    np.testing.assert_allclose(g, g_ref, rtol=1e-5, atol=1e-6 * np.abs(g_ref).max())


def test_the_refinement_sees_through_lens_distortion(cyl):
    """A camera with strong barrel distortion (k1 -0.3) and the cylinder off-centre, where the
    outline moves several pixels: the frame is the ideal render warped as the lens would. The
    edges found in the distorted crop are undistorted before the fit, so a 6 % depth error is
    pulled back as far as without distortion."""
    ideal_cam = Camera.from_fov(60.0, W, H)
    cam = Camera(ideal_cam.K, np.array([-0.3, 0.08, 0.0, 0.0, 0.0]), W, H)
    t_true = np.array([90.0, 50.0, 380.0])
    ideal_frame, _, _ = _scene(cyl, ideal_cam, R_CYL, t_true)
    # each distorted pixel shows the ideal pixel it comes from
    ys, xs = np.mgrid[0:H, 0:W].astype(np.float64)
    src = cam.undistort_points(np.stack([xs.ravel(), ys.ravel()], axis=1)).reshape(H, W, 2).astype(np.float32)
    frame = cv2.remap(ideal_frame, src[..., 0], src[..., 1], cv2.INTER_LINEAR)
    uv_seen = cam.project(cyl.keypoints, R_CYL, t_true)
    shift = np.abs(uv_seen - ideal_cam.project(cyl.keypoints, R_CYL, t_true)).max()
    assert shift > 4.0  # the lens moves the outline by more than the fit's errors
    cfg = TrackerConfig.preset("fast")
    A = box_crop(cam, np.array(cyl.box_corners, float), R_CYL, t_true, cfg.roi_margin, cfg.min_roi_px, S)
    crop = cv2.warpAffine(frame, A, (S, S), flags=cv2.INTER_LINEAR)
    # no keypoints: the spin about the axis is free (the bound on turning is not under test here)
    out = _refiner(cyl, cam, iterations=4, max_turn_deg=90.0)(crop, A, R_CYL, t_true * 1.06, np.zeros((0, 3)),
                                                              np.zeros((0, 2)), np.zeros(0), 6.0)
    assert out is not None
    assert np.linalg.norm(out[1] - t_true) < 0.01 * t_true[2]
    axis = symmetry_group(cyl).axis
    assert np.degrees(np.arccos(np.clip((out[0] @ axis) @ (R_CYL @ axis), -1, 1))) < 1.0


def test_the_warmup_compiles_what_a_refinement_runs(cam, cyl):
    """The tracker's warm-up runs the refinement's kernels with the argument types a frame passes
    them, so the first refined frame compiles nothing more (numba adds one signature per new type)."""
    tracker = Tracker(OracleHeatmaps(cyl.keypoint_names, lambda i: None), cyl, cam, TrackerConfig.preset("accurate"))
    tracker.warmup()
    kernels = (normal_equations, edge_pixels_kernel)
    after_warmup = [list(k.signatures) for k in kernels]
    assert all(after_warmup)
    _, A, crop = _scene(cyl, cam, R_CYL, T_CYL)
    uv = project(cyl.keypoints, R_CYL, T_CYL, cam.K)
    keep = np.ones(len(uv), bool)
    out = tracker.keypass.refiner(crop, A, R_CYL, T_CYL * 1.02, cyl.keypoints[keep], uv, np.ones(len(uv)), 3.0)
    assert out is not None
    assert [list(k.signatures) for k in kernels] == after_warmup
