"""Geometry: pure numpy functions over float64 arrays, one concept per module.

* :mod:`tracker.geometry.so3`: rotations (so(3) exp/log, quaternions, slerp, random
  rotations, angular error).
* :mod:`tracker.geometry.se3`: rigid transforms (compose, invert, 4x4, apply, look-at).
* :mod:`tracker.geometry.projection`: OpenCV distortion, pinhole projection, its Jacobian.
* :mod:`tracker.geometry.crop`: crop affines and the heatmap coordinate convention.

Conventions: 3D in millimetres; 2D in pixels with pixel centres at integer coordinates;
camera frame as OpenCV (x right, y down, z forward); a pose is model-to-camera,
``x_cam = R_m2c @ x_model + t_m2c``. Each module's docstring gives the details.

This package only re-exports the rotation, transform and projection functions, so callers
write ``from tracker.geometry import project``; the crop functions are imported from
:mod:`tracker.geometry.crop`. Modules of the package import each other by module path.
"""

from tracker.geometry.projection import (
    DIST_LENGTHS,
    MIN_DEPTH_MM,
    distort,
    project,
    project_cam,
    project_jacobian,
)
from tracker.geometry.se3 import (
    look_at,
    se3_compose,
    se3_from_matrix,
    se3_invert,
    se3_to_matrix,
    transform,
    translation_error,
)
from tracker.geometry.so3 import (
    hat,
    matrix_from_quat,
    quat_from_matrix,
    quat_multiply,
    random_rotation,
    rotation_error_deg,
    rotation_slerp,
    so3_exp,
    so3_log,
)

__all__ = [
    "DIST_LENGTHS",
    "MIN_DEPTH_MM",
    "distort",
    "hat",
    "look_at",
    "matrix_from_quat",
    "project",
    "project_cam",
    "project_jacobian",
    "quat_from_matrix",
    "quat_multiply",
    "random_rotation",
    "rotation_error_deg",
    "rotation_slerp",
    "se3_compose",
    "se3_from_matrix",
    "se3_invert",
    "se3_to_matrix",
    "so3_exp",
    "so3_log",
    "transform",
    "translation_error",
]
