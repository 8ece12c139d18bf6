"""Tests for tracker/render/draw.py: the shaded and edge overlays, axes, keypoints by
confidence, and the HUD, all drawn in place on BGR frames."""

from __future__ import annotations

import numpy as np
import pytest
from render_scenes import make_camera, make_object, quad, rot

from tracker.errors import KptrackError
from tracker.render import Renderer, draw_axes, draw_hud, draw_keypoints, draw_overlay
from tracker.render.draw import confidence_color


def test_shaded_overlay_changes_only_pixels_where_model_projects():
    cam = make_camera(120, 100)
    v, f = quad(25.0)
    obj = make_object(v, f, colors=np.full((4, 3), 250))
    R, t = rot([1, 0.5, 0], 30), np.array([2.0, 1.0, 140.0])
    frame = np.random.default_rng(1).integers(0, 120, (cam.height, cam.width, 3), dtype=np.uint8)
    before = frame.copy()
    rend = Renderer(obj)
    res = draw_overlay(frame, obj, cam, R, t, renderer=rend, mode="shaded", axes=False)
    assert res is frame
    _, mask = rend.render_depth(cam, R, t)
    changed = np.any(frame != before, axis=2)
    assert changed.any()
    assert not np.any(changed & ~mask)
    assert changed[mask].mean() > 0.9
    # The blend is alpha * model + (1 - alpha) * frame inside the mask.
    shaded = rend.render(cam, R, t).color.astype(float)
    expect = 0.45 * shaded + 0.55 * before
    assert np.max(np.abs(frame[mask] - expect[mask])) <= 1.0
    # Without a renderer argument it builds (and caches) its own, and draws the same.
    frame2 = before.copy()
    draw_overlay(frame2, obj, cam, R, t, mode="shaded", axes=False)
    assert np.array_equal(frame2, frame)


def test_edges_overlay_axes_keypoints_and_hud_draw_something():
    cam = make_camera(120, 100)
    v, f = quad(25.0)
    obj = make_object(v, f)
    R, t = rot([1, 0.5, 0], 30), np.array([0.0, 0.0, 140.0])
    frame = np.zeros((cam.height, cam.width, 3), np.uint8)
    out = draw_overlay(frame, obj, cam, R, t, mode="edges", axes=False, color=(0, 255, 0))
    assert out is frame and frame[:, :, 1].max() > 0 and frame[:, :, 0].max() == 0
    frame[:] = 0
    draw_overlay(frame, obj, cam, R, t, mode="edges", axes=True)
    assert frame[:, :, 2].max() > 0 and frame[:, :, 0].max() > 0  # X red and Z blue axes
    frame[:] = 0
    kuv = np.array([[20.0, 20.0], [np.nan, np.nan], [90.0, 70.0]])
    draw_overlay(frame, obj, cam, R, t, mode="edges", axes=False, keypoints_uv=kuv, confidences=[0.0, 0.5, 1.0])
    assert tuple(frame[20, 20]) == (0, 0, 255)  # confidence 0: red
    assert tuple(frame[70, 90]) == (0, 255, 0)  # confidence 1: green
    hud = np.full((60, 200, 3), 200, np.uint8)
    assert draw_hud(hud, ["fps 30.0", "tracking"]) is hud
    assert hud[5:40, 5:60].min() < 100
    with pytest.raises(KptrackError, match="frame"):
        draw_overlay(np.zeros((10, 10, 3), np.uint8), obj, cam, R, t)
    with pytest.raises(KptrackError, match="mode"):
        draw_overlay(frame, obj, cam, R, t, mode="wire")


def test_axes_and_keypoints_draw_alone_and_check_their_inputs():
    cam = make_camera(120, 100)
    frame = np.zeros((cam.height, cam.width, 3), np.uint8)
    assert draw_axes(frame, cam.K, np.eye(3), np.array([0.0, 0.0, 100.0]), 30.0) is frame
    assert frame[:, :, 2].max() > 0 and frame[:, :, 1].max() > 0 and frame[:, :, 0].max() > 0  # X, Y, Z
    frame[:] = 0
    draw_axes(frame, cam.K, np.eye(3), np.array([0.0, 0.0, -100.0]), 30.0)  # behind the camera
    assert frame.max() == 0
    assert draw_keypoints(frame, np.array([[30.0, 40.0]])) is frame
    assert tuple(frame[40, 30]) == confidence_color(1.0) == (0, 255, 0)
    assert confidence_color(0.5) == (0, 255, 255) and confidence_color(-3.0) == (0, 0, 255)
    with pytest.raises(KptrackError, match="confidences"):
        draw_keypoints(frame, np.zeros((3, 2)), [1.0, 1.0])
