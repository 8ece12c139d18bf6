"""Tests for tracker/render/visibility.py: COCO visibility flags of keypoints against a
rendered depth map (visible, hidden, outside, behind the camera) and its input checks."""

from __future__ import annotations

import numpy as np
import pytest
from render_scenes import make_camera, make_object, quad

from tracker.errors import KptrackError
from tracker.render import Renderer, keypoint_visibility


def test_keypoint_visibility_visible_hidden_outside_behind():
    cam = make_camera()
    v, f = quad(30.0)
    R, t = np.eye(3), np.array([0, 0, 150.0])
    depth, _ = Renderer(make_object(v, f)).render_depth(cam, R, t)
    kps = np.array([
        [5.0, 3.0, 0.0],     # on the surface
        [-8.0, 2.0, -20.0],  # in front of it
        [4.0, -6.0, 25.0],   # behind the plane, inside its silhouette
        [900.0, 0.0, 0.0],   # projects outside the image
        [0.0, 0.0, -400.0],  # behind the camera
        [29.9, 29.9, 0.0],   # on the silhouette corner
    ])
    vis = keypoint_visibility(kps, cam, R, t, depth)
    assert vis.dtype == np.int8
    assert vis.tolist() == [2, 2, 1, 0, 0, 2]
    # A tighter tolerance than the gap still hides; a looser one sees through.
    assert keypoint_visibility(kps[2:3], cam, R, t, depth, tol_mm=30.0).tolist() == [2]


def test_keypoint_visibility_rejects_wrong_shapes():
    cam = make_camera()
    with pytest.raises(KptrackError, match="keypoints_mm"):
        keypoint_visibility(np.zeros((3, 2)), cam, np.eye(3), np.zeros(3), np.zeros((cam.height, cam.width)))
    with pytest.raises(KptrackError, match="depth"):
        keypoint_visibility(np.zeros((3, 3)), cam, np.eye(3), np.zeros(3), np.zeros((5, 5)))
