"""Camera: the frozen pinhole + OpenCV-distortion :class:`Camera`, its calibration file, and
chessboard calibration.

* :mod:`tracker.camera.camera`: :class:`Camera` (intrinsics, derived cameras, undistortion).
* :mod:`tracker.camera.yaml_io`: reading and writing OpenCV FileStorage / ROS YAML files.
* :mod:`tracker.camera.calibration`: ``kptrack calibrate``'s library (not re-exported here: it
  opens video sources, which importing :class:`Camera` should not pull in).
"""

from tracker.camera.camera import Camera
from tracker.camera.yaml_io import read_camera_yaml, write_camera_yaml

__all__ = ["Camera", "read_camera_yaml", "write_camera_yaml"]
