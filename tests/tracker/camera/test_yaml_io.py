"""Tests for tracker.camera.yaml_io: OpenCV FileStorage / ROS YAML calibration files, read
through Camera.from_yaml / Camera.to_yaml and directly."""

from __future__ import annotations

import logging

import cv2
import numpy as np
import pytest

from tracker.camera import Camera
from tracker.camera.yaml_io import read_camera_yaml, write_camera_yaml
from tracker.errors import KptrackError

DIST5 = np.array([-0.3, 0.1, 1e-3, -1e-3, -0.02])


def _cam(dist=DIST5):
    return Camera.from_intrinsics(610.0, 605.0, 322.3, 241.7, 640, 480, dist)


@pytest.mark.parametrize("dist", [None, DIST5, np.arange(1, 9) * 0.01, np.arange(1, 15) * 0.001])
def test_yaml_round_trip(tmp_path, dist):
    c = _cam(dist)
    p = c.to_yaml(tmp_path / "sub" / "cam.yaml")
    assert p.is_file()
    back = Camera.from_yaml(p)
    assert back == c
    # readable by plain OpenCV with the standard keys
    fs = cv2.FileStorage(str(p), cv2.FILE_STORAGE_READ)
    np.testing.assert_array_equal(fs.getNode("camera_matrix").mat(), c.K)
    assert int(fs.getNode("image_width").real()) == 640
    fs.release()


def test_yaml_second_spelling_written_by_cv2(tmp_path):
    p = tmp_path / "out_camera_data.yml"
    K = np.array([[700.0, 0, 330.0], [0, 702.0, 250.0], [0, 0, 1]])
    fs = cv2.FileStorage(str(p), cv2.FILE_STORAGE_WRITE)
    fs.write("width", 800)
    fs.write("height", 600)
    fs.write("Camera_Matrix", K)
    fs.write("Distortion_Coefficients", np.array([[0.1, -0.2, 0.0, 0.0]]))
    fs.release()
    c = Camera.from_yaml(p)
    np.testing.assert_array_equal(c.K, K)
    np.testing.assert_array_equal(c.dist, [0.1, -0.2, 0.0, 0.0])
    assert c.size == (800, 600)


def test_yaml_ros_camera_info(tmp_path):
    p = tmp_path / "ros.yaml"
    p.write_text(
        "image_width: 640\nimage_height: 480\ncamera_name: cam\n"
        "camera_matrix:\n  rows: 3\n  cols: 3\n  data: [500, 0, 320, 0, 501, 240, 0, 0, 1]\n"
        "distortion_model: plumb_bob\n"
        "distortion_coefficients:\n  rows: 1\n  cols: 5\n  data: [0.1, 0.01, 0, 0, 0]\n"
    )
    c = Camera.from_yaml(p)
    assert (c.fx, c.fy, c.cx, c.cy) == (500.0, 501.0, 320.0, 240.0)
    np.testing.assert_array_equal(c.dist, [0.1, 0.01, 0, 0, 0])


def test_yaml_without_distortion_is_undistorted(tmp_path):
    p = tmp_path / "c.yaml"
    fs = cv2.FileStorage(str(p), cv2.FILE_STORAGE_WRITE)
    fs.write("image_width", 320)
    fs.write("image_height", 240)
    fs.write("camera_matrix", np.array([[300.0, 0, 160], [0, 300, 120], [0, 0, 1]]))
    fs.release()
    c = Camera.from_yaml(p)
    assert c.dist.shape == (0,) and c.size == (320, 240)


def test_yaml_missing_matrix_names_file_and_key(tmp_path):
    p = tmp_path / "nomatrix.yaml"
    fs = cv2.FileStorage(str(p), cv2.FILE_STORAGE_WRITE)
    fs.write("image_width", 640)
    fs.write("image_height", 480)
    fs.write("distortion_coefficients", np.zeros((5, 1)))
    fs.release()
    with pytest.raises(KptrackError) as e:
        Camera.from_yaml(p)
    msg = str(e.value)
    assert str(p) in msg and "camera_matrix" in msg and "Camera_Matrix" in msg


def test_yaml_missing_size_names_key(tmp_path):
    p = tmp_path / "nosize.yaml"
    fs = cv2.FileStorage(str(p), cv2.FILE_STORAGE_WRITE)
    fs.write("camera_matrix", np.eye(3))
    fs.release()
    with pytest.raises(KptrackError, match="image_width"):
        Camera.from_yaml(p)


def test_yaml_missing_file(tmp_path):
    p = tmp_path / "absent.yaml"
    with pytest.raises(KptrackError) as e:
        Camera.from_yaml(p)
    assert str(p) in str(e.value) and "not found" in str(e.value)


@pytest.mark.parametrize(
    "text, match",
    [
        ("foo: [1, 2\n bar: }", "not a readable"),
        ("", "empty"),
        ("image_width: 640\nimage_height: 480\ncamera_matrix: hello\n", "not a matrix"),
        ("image_width: 640\nimage_height: 480\ncamera_matrix: [1, 2, 3]\n", "3x3"),
        ("image_width: 640\nimage_height: 480\ncamera_matrix: [[1, 0, 0], [0, 1, 0], [0, 0, 1]]\n"
         "distortion_coefficients: [1, 2, 3]\n", "3 coefficients"),
        ("image_width: -5\nimage_height: 480\ncamera_matrix: [1, 0, 0, 0, 1, 0, 0, 0, 1]\n", "positive integer"),
        ("image_width: 640\nimage_height: 480\ncamera_matrix: [-1, 0, 0, 0, 1, 0, 0, 0, 1]\n", "fx, fy > 0"),
    ],
)
def test_yaml_malformed(tmp_path, text, match):
    p = tmp_path / "bad.yaml"
    p.write_text(text)
    with pytest.raises(KptrackError, match=match) as e:
        Camera.from_yaml(p)
    assert str(p) in str(e.value)


def test_to_yaml_unwritable(tmp_path):
    blocker = tmp_path / "file"
    blocker.write_text("x")
    with pytest.raises(KptrackError, match="cannot write"):
        _cam().to_yaml(blocker / "cam.yaml")


def _write_undistorted_yaml(p):
    fs = cv2.FileStorage(str(p), cv2.FILE_STORAGE_WRITE)
    fs.write("image_width", 320)
    fs.write("image_height", 240)
    fs.write("camera_matrix", np.array([[300.0, 0, 160], [0, 300, 120], [0, 0, 1]]))
    fs.release()
    return p


def test_missing_distortion_is_one_debug_line_not_info(tmp_path, caplog):
    """Issue #9 item 6: a camera file without distortion_coefficients is normal; users must not
    see an INFO line on every run. It is a DEBUG line, once per file per process."""
    p = _write_undistorted_yaml(tmp_path / "nodist.yaml")
    with caplog.at_level(logging.INFO, logger="tracker.camera"):
        Camera.from_yaml(p)
    assert not [r for r in caplog.records if r.name.startswith("tracker.camera") and r.levelno >= logging.INFO]
    caplog.clear()
    p2 = _write_undistorted_yaml(tmp_path / "nodist2.yaml")
    with caplog.at_level(logging.DEBUG, logger="tracker.camera"):
        Camera.from_yaml(p2)
        Camera.from_yaml(p2)
        read_camera_yaml(str(p2))
    hits = [r for r in caplog.records if r.name.startswith("tracker.camera") and "distortion_coefficients" in r.getMessage()]
    assert len(hits) == 1
    assert hits[0].levelno == logging.DEBUG and str(p2) in hits[0].getMessage()


def test_read_and_write_arrays_directly(tmp_path):
    K = np.array([[500.0, 0.5, 320.0], [0.0, 501.0, 240.0], [0.0, 0.0, 1.0]])
    p = write_camera_yaml(tmp_path / "a" / "cam.yaml", K, DIST5, 640, 480)
    assert p == tmp_path / "a" / "cam.yaml"
    K2, d2, w, h = read_camera_yaml(p)
    np.testing.assert_array_equal(K2, K)
    np.testing.assert_array_equal(d2, DIST5)
    assert (w, h) == (640, 480) and K2.dtype == np.float64 and d2.dtype == np.float64
    p0 = write_camera_yaml(tmp_path / "b.yaml", K, None, 64, 48)
    _, d0, _, _ = read_camera_yaml(p0)
    assert d0.shape == (0,)
