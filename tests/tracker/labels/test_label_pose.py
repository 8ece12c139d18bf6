"""A pose from a frame's labels: exact labels give the known pose (with lens distortion too),
noise gives its RMS, and frames that cannot hold a pose say why."""

import numpy as np
from label_box import NAMES, box_object, camera, corners_uv, pose

from tracker.geometry import rotation_error_deg
from tracker.labels.pose import fit_label_pose

ALL = np.full(8, 2)


def test_labels_through_a_distorting_lens_give_the_known_pose():
    obj, cam = box_object(), camera(dist=np.array([-0.25, 0.08, 0.001, -0.002, 0.0]))
    uv = corners_uv(obj, cam, 5)
    v = ALL.copy()
    v[[1, 6]] = 0
    uv[[1, 6]] = np.nan  # not labelled
    fit = fit_label_pose(np.asarray(obj.keypoints), NAMES, cam, uv, v)
    R, t = pose(5)
    assert fit.ok and fit.n_labels == 6 and fit.rms_px < 1e-6
    assert rotation_error_deg(fit.R_m2c, R) < 1e-6 and np.allclose(fit.t_m2c, t, atol=1e-5)
    assert np.isnan(fit.residuals_px[[1, 6]]).all() and np.allclose(fit.projected, corners_uv(obj, cam, 5), atol=1e-6)


def test_click_noise_shows_as_its_rms():
    obj, cam = box_object(), camera()
    rng = np.random.default_rng(1)
    uv = corners_uv(obj, cam, 2) + rng.normal(0, 1.0, (8, 2))
    fit = fit_label_pose(np.asarray(obj.keypoints), NAMES, cam, uv, ALL)
    # 16 residual numbers, 6 pose parameters: RMS distance near sqrt(2 * 10 / 16) * 1 px
    assert 0.4 < fit.rms_px < 1.6 and fit.worst in NAMES


def test_frames_that_cannot_hold_a_pose_say_why():
    obj, cam = box_object(), camera()
    uv = corners_uv(obj, cam, 2)
    v = np.array([2, 2, 2, 0, 0, 0, 0, 0])
    fit = fit_label_pose(np.asarray(obj.keypoints), NAMES, cam, uv, v)
    assert not fit.ok and fit.reason == "3 label(s), a pose needs 4" and np.isnan(fit.rms_px)
    line = np.array([[100.0 + 10 * i, 200.0] for i in range(8)])  # every label on one image line
    fit = fit_label_pose(np.asarray(obj.keypoints), NAMES, cam, line, ALL)
    assert fit.rms_px > 5  # the best pose shows that such labels do not fit the box
