"""Which calibration goes with a source: --camera YAML (rescaled or refused), fov:DEG, none."""

import pytest

from tracker.camera import Camera
from tracker.camera.resolve import resolve_camera
from tracker.errors import KptrackError


def test_webcam_without_camera_file_explains_calibration():
    with pytest.raises(KptrackError, match=r"a camera needs its calibration.*kptrack calibrate --source 0"):
        resolve_camera(None, "0", 640, 480)


def test_camera_rescaled_or_refused(tmp_path):
    cam = Camera.from_fov(60.0, 640, 480)
    cam.to_yaml(tmp_path / "cam.yaml")
    half = resolve_camera(str(tmp_path / "cam.yaml"), "clip.avi", 320, 240)
    assert (half.width, half.height) == (320, 240) and half.fx == pytest.approx(cam.fx / 2)
    with pytest.raises(KptrackError, match="another aspect ratio"):
        resolve_camera(str(tmp_path / "cam.yaml"), "clip.avi", 320, 320)
    guess = resolve_camera("fov:90", "0", 400, 300)
    assert guess.fx == pytest.approx(200.0)
    with pytest.raises(KptrackError, match="fov:60"):
        resolve_camera("fov:wide", "0", 400, 300)
