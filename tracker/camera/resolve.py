"""Which camera calibration goes with a frame source (``--camera``).

``--camera CAM.yaml`` (OpenCV FileStorage, from ``kptrack calibrate``); ``--camera fov:DEG`` for a
rough pinhole guess from a horizontal field of view; or nothing, for a video or image folder
with a ``camera.yaml`` beside it (as ``kptrack synth --sequence`` writes). A live camera without
one is refused with the way to calibrate. A calibration for another resolution of the same
aspect ratio is rescaled (logged); another aspect ratio is an error.
"""

from __future__ import annotations

import logging
from pathlib import Path

from tracker.camera.camera import Camera
from tracker.errors import KptrackError

log = logging.getLogger(__name__)


def is_live(spec: str) -> bool:
    """Whether a --source value is a live camera or stream (index, /dev/video*, URL)."""
    s = str(spec).strip()
    return s.isdigit() or "://" in s or s.startswith("/dev/video")


def _camera_beside(source_spec: str) -> Path | None:
    """camera.yaml next to a video, inside a frame folder, or beside that folder (BOP scene/rgb)."""
    p = Path(source_spec).expanduser()
    cands = [p / "camera.yaml", p.parent / "camera.yaml"] if p.is_dir() else [p.parent / "camera.yaml"]
    return next((c for c in cands if c.is_file()), None)


def resolve_camera(spec: str | None, source_spec: str, width: int, height: int) -> Camera:
    """The camera for frames of ``width x height`` from ``--camera`` (see the module docstring)."""
    if spec is not None and str(spec).startswith("fov:"):
        try:
            fov = float(str(spec)[4:])
            cam = Camera.from_fov(fov, width, height)
        except ValueError:
            raise KptrackError(f"--camera {spec}: give a horizontal field of view in degrees, e.g. --camera fov:60.") from None
        log.warning("camera guessed from a %.1f deg field of view: depth will be off by the focal length's error. "
                    "Calibrate with `kptrack calibrate` for real poses.", fov)
        return cam
    if spec is None:
        found = None if is_live(source_spec) else _camera_beside(source_spec)
        if found is None:
            what = "a camera" if is_live(source_spec) else "this video"
            raise KptrackError(
                f"--camera: {what} needs its calibration. Print a chessboard (9x6 inner corners), film it from "
                f"several angles and run `kptrack calibrate --source {source_spec} --out cam.yaml`, then pass "
                "--camera cam.yaml. For a rough first try, --camera fov:60 guesses a 60 degree field of view."
            )
        log.info("using the camera calibration %s found beside the source", found)
        spec = str(found)
    cam = Camera.from_yaml(spec)
    if (cam.width, cam.height) != (width, height):
        if abs(cam.width / cam.height - width / height) > 0.01:
            raise KptrackError(
                f"--camera {spec}: calibrated for {cam.width}x{cam.height} but the source gives {width}x{height}, another "
                "aspect ratio. Calibrate the camera at this resolution with `kptrack calibrate`."
            )
        log.warning("camera %s is for %dx%d; rescaled to the source's %dx%d", spec, cam.width, cam.height, width, height)
        cam = cam.resized(width, height)
    return cam
