"""The labelling state machine, the magnifier's mapping and the window shell, with no window."""

import cv2
import numpy as np
import pytest

from tracker.labels.pose import LabelFit
from tracker.labels.session import FrameLabels, LabelSession, Magnifier
from tracker.labels.window import AnnotateWindow

NAMES = ("a", "b", "c")


def test_clicks_fill_a_frame_then_move_to_the_next():
    s = LabelSession([10, 20], NAMES)
    assert (s.frame, s.keypoint_name) == (10, "a")
    assert s.click(1.5, 2.5) and s.skip() and s.click(3, 4)
    assert (s.frame, s.keypoint_name) == (20, "a")
    lab = s.labels[10]
    assert lab.v.tolist() == [2, 0, 2] and np.isnan(lab.uv[1]).all() and lab.uv[0].tolist() == [1.5, 2.5]
    assert list(s.visited()) == [10]


def test_undo_restores_the_label_and_the_cursor_across_frames():
    s = LabelSession([0, 1], NAMES)
    s.click(1, 1), s.click(2, 2), s.click(3, 3)  # frame 0 done, cursor on frame 1
    assert s.undo()
    assert (s.frame, s.keypoint_name) == (0, "c") and s.labels[0].v.tolist() == [2, 2, 0]
    s.undo(), s.undo()
    assert not s.labels[0].visited and (s.frame, s.kp) == (0, 0)
    assert not s.undo()  # nothing left to undo


def test_next_and_prev_keep_the_labels_and_resume_after_the_last_placed():
    s = LabelSession([0, 5, 9], NAMES)
    s.click(1, 1)
    assert s.next_frame() is False and s.frame == 5 and s.kp == 0
    s.next_frame(), s.next_frame()  # stays on the last frame
    assert s.frame == 9
    s.prev_frame(), s.prev_frame()
    assert (s.frame, s.keypoint_name) == (0, "b")


def test_past_the_last_keypoint_of_the_last_frame_clicks_do_nothing():
    s = LabelSession([3], NAMES)
    for _ in NAMES:
        s.click(0, 0)
    assert s.keypoint_name is None and not s.click(5, 5) and not s.skip()


def test_a_session_resumes_at_the_first_unfinished_frame():
    done = FrameLabels(np.ones((3, 2)), np.array([2, 2, 2], np.int8), True)
    part = FrameLabels(np.array([[1, 1], [np.nan, np.nan], [np.nan, np.nan]]), np.array([2, 0, 0], np.int8), True)
    s = LabelSession([1, 2, 3], NAMES, {1: done, 2: part})
    assert (s.frame, s.keypoint_name) == (2, "b")
    s2 = LabelSession([1], NAMES, {1: done})
    assert s2.keypoint_name is None


def test_keys_map_to_actions_and_report_changes():
    s = LabelSession([0, 1], NAMES)
    assert s.handle_key(ord("s")) == ("skip", True)
    assert s.handle_key(ord("u")) == ("undo", True)
    assert s.handle_key(ord("n")) == ("next", False) and s.frame == 1
    assert s.handle_key(ord("p")) == ("prev", False) and s.frame == 0
    assert s.handle_key(ord("?")) == (None, False)
    assert s.handle_key(27) == ("quit", False) and s.finished


@pytest.mark.parametrize("zoom,radius", [(8, 12), (5, 3)])
def test_the_magnifier_maps_inset_pixels_to_subpixel_frame_points(zoom, radius):
    m = Magnifier((100.0, 50.0), zoom, radius, origin=(400, 300))
    size = (2 * radius + 1) * zoom
    assert m.size == size and m.contains(400, 300) and not m.contains(400 + size, 300)
    # the middle of the centre block is the centre pixel, and one block is one frame pixel
    c = radius * zoom + zoom / 2 - 0.5
    np.testing.assert_allclose(m.to_frame(400 + c, 300 + c), (100.0, 50.0))
    np.testing.assert_allclose(np.subtract(m.to_frame(400 + c + zoom, 300 + c), (100.0, 50.0)), (1.0, 0.0))
    img = np.zeros((120, 200, 3), np.uint8)
    img[50, 100] = (0, 0, 255)
    inset = m.render(img)
    assert inset.shape == (size, size, 3)
    assert tuple(inset[radius * zoom + 1, radius * zoom + 1]) == (0, 0, 255)  # the centre pixel, zoomed


def test_the_window_shell_places_clicks_saves_and_quits_with_injected_cv2():
    s = LabelSession([0, 1], NAMES)
    saves, shown = [], []
    keys = iter([ord("m"), ord("s"), ord("q")])
    img = np.zeros((240, 320, 3), np.uint8)
    no_pose = LabelFit(0, None, None, np.full(3, np.nan), np.nan, None, "no")
    w = AnnotateWindow(s, lambda f: img, lambda f: no_pose, lambda im, fit, f: im.copy(), lambda sess: saves.append(1),
                       imshow=lambda t, im: shown.append(im.shape), waitkey=lambda ms: -1)
    w.on_mouse(cv2.EVENT_MOUSEMOVE, 30, 40)
    w.on_mouse(cv2.EVENT_LBUTTONDOWN, 30, 40)
    assert s.labels[0].uv[0].tolist() == [30.0, 40.0] and len(saves) == 1
    w._waitkey = lambda ms: next(keys)
    assert w.step()  # m: lock the magnifier at the mouse (30, 40)
    mag = w.locked
    assert mag is not None and mag.center == (30.0, 40.0) and mag.origin == (320, 0)
    w.on_mouse(cv2.EVENT_MOUSEMOVE, 200, 100)
    assert w.magnifier() is mag  # a locked magnifier stays put
    w.on_mouse(cv2.EVENT_LBUTTONDOWN, 330, 300)  # the side panel, outside the inset: no label
    assert s.labels[0].v[1] == 0 and len(saves) == 1
    ox, oy = mag.origin
    w.on_mouse(cv2.EVENT_LBUTTONDOWN, ox + 12 * 8 + 2, oy + 12 * 8 + 6)  # inside the inset: sub-pixel
    np.testing.assert_allclose(s.labels[0].uv[1], (29.5 + 2.5 / 8, 29.5 + 10 + 6.5 / 8))
    assert w.locked is None and len(saves) == 2
    assert w.step() and s.labels[0].v.tolist() == [2, 2, 0] and len(saves) == 3  # s: skip
    assert not w.step()  # q
    assert shown and shown[0][1] == 320 + 25 * 8  # the frame, and the magnifier's side panel
