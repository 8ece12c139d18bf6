"""The pinhole camera with OpenCV lens distortion: :class:`Camera`, frozen.

A :class:`Camera` holds the intrinsic matrix ``K (3, 3)``, OpenCV distortion coefficients
``dist (n,)`` (n in 0, 4, 5, 8, 12, 14: ``k1, k2, p1, p2[, k3[, k4, k5, k6[, s1..s4[, tau_x,
tau_y]]]]``) and the image size the calibration belongs to. Pixel centres are at integer
coordinates (OpenCV), so an image ``width`` pixels wide spans ``[-0.5, width - 0.5]``.

Projection is :func:`tracker.geometry.projection.project` (its one home); the calibration
file format is in :mod:`tracker.camera.yaml_io`.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from pathlib import Path

import cv2
import numpy as np

from tracker.camera.yaml_io import read_camera_yaml, write_camera_yaml
from tracker.errors import KptrackError
from tracker.geometry.projection import DIST_LENGTHS, project

# Iterations for cv2.undistortPoints: its default (5) leaves ~0.03 px error in the corners of
# a k1 = -0.3 lens; 50 converges to ~1e-12 px at negligible cost.
_UNDISTORT_CRITERIA = (cv2.TERM_CRITERIA_COUNT | cv2.TERM_CRITERIA_EPS, 50, 1e-14)


def _readonly(a: np.ndarray) -> np.ndarray:
    a = np.array(a, dtype=np.float64, copy=True)
    a.setflags(write=False)
    return a


@dataclass(frozen=True, eq=False)
class Camera:
    """Intrinsics of one camera at one image size. Immutable; arrays are read-only copies.

    K: (3, 3) float64, pixels. dist: (n,) float64 OpenCV coefficients, n in 0, 4, 5, 8, 12, 14
    (None means none). width, height: image size in pixels the intrinsics belong to.
    """

    K: np.ndarray
    dist: np.ndarray
    width: int
    height: int

    def __post_init__(self) -> None:
        K = np.asarray(self.K, dtype=np.float64)
        if K.shape != (3, 3) or not np.all(np.isfinite(K)):
            raise ValueError(f"Camera: K must be a finite (3, 3) matrix, got {K!r}")
        if not (K[0, 0] > 0 and K[1, 1] > 0) or not np.allclose(K[2], [0.0, 0.0, 1.0]) or K[1, 0] != 0:
            raise ValueError(f"Camera: K must be [[fx, s, cx], [0, fy, cy], [0, 0, 1]] with fx, fy > 0, got {K.tolist()}")
        dist = np.zeros(0) if self.dist is None else np.asarray(self.dist, dtype=np.float64).ravel()
        if dist.size not in DIST_LENGTHS or not np.all(np.isfinite(dist)):
            raise ValueError(f"Camera: dist must have 0, 4, 5, 8, 12 or 14 finite coefficients, got {dist.size}")
        if int(self.width) != self.width or int(self.height) != self.height or self.width <= 0 or self.height <= 0:
            raise ValueError(f"Camera: width and height must be positive integers, got {self.width}x{self.height}")
        object.__setattr__(self, "K", _readonly(K))
        object.__setattr__(self, "dist", _readonly(dist))
        object.__setattr__(self, "width", int(self.width))
        object.__setattr__(self, "height", int(self.height))

    # ------------------------------------------------------------ accessors
    @property
    def fx(self) -> float:
        return float(self.K[0, 0])

    @property
    def fy(self) -> float:
        return float(self.K[1, 1])

    @property
    def cx(self) -> float:
        return float(self.K[0, 2])

    @property
    def cy(self) -> float:
        return float(self.K[1, 2])

    @property
    def size(self) -> tuple[int, int]:
        """(width, height) in pixels, the order OpenCV takes image sizes in."""
        return self.width, self.height

    @property
    def has_distortion(self) -> bool:
        return bool(np.any(self.dist != 0))

    @property
    def fov_deg(self) -> tuple[float, float]:
        """Horizontal and vertical field of view of the pinhole part, degrees."""
        return (
            math.degrees(2 * math.atan(self.width / (2 * self.fx))),
            math.degrees(2 * math.atan(self.height / (2 * self.fy))),
        )

    def __eq__(self, other: object) -> bool:
        if not isinstance(other, Camera):
            return NotImplemented
        return (
            self.size == other.size
            and np.array_equal(self.K, other.K)
            and np.array_equal(self.dist, other.dist)
        )

    __hash__ = None  # arrays inside: equal cameras need not hash equal, so none hash

    def __repr__(self) -> str:
        d = ", ".join(f"{v:.6g}" for v in self.dist)
        return (
            f"Camera({self.width}x{self.height}, fx={self.fx:.6g}, fy={self.fy:.6g}, "
            f"cx={self.cx:.6g}, cy={self.cy:.6g}, dist=[{d}])"
        )

    # ------------------------------------------------------------ constructors
    @classmethod
    def from_intrinsics(
        cls, fx: float, fy: float, cx: float, cy: float, width: int, height: int, dist: np.ndarray | None = None
    ) -> "Camera":
        """Camera from focal lengths and principal point (pixels), image size and optional dist (n,)."""
        K = np.array([[fx, 0.0, cx], [0.0, fy, cy], [0.0, 0.0, 1.0]], dtype=np.float64)
        return cls(K, dist, width, height)

    @classmethod
    def from_fov(cls, fov_x_deg: float, width: int, height: int) -> "Camera":
        """Distortion-free camera with square pixels from a horizontal field of view.

        ``fx = fy = width / (2 tan(fov_x / 2))`` (the image spans ``width`` pixels edge to edge)
        and the principal point at the image centre ``((width - 1) / 2, (height - 1) / 2)``.
        """
        if not 0.0 < fov_x_deg < 180.0:
            raise ValueError(f"Camera.from_fov: fov_x_deg must be in (0, 180), got {fov_x_deg}")
        f = width / (2.0 * math.tan(math.radians(fov_x_deg) / 2.0))
        return cls.from_intrinsics(f, f, (width - 1) / 2.0, (height - 1) / 2.0, width, height)

    # ------------------------------------------------------------ derived cameras
    def scaled(self, sx: float, sy: float | None = None) -> "Camera":
        """The camera for this image resized by ``sx`` horizontally and ``sy`` (default sx) vertically.

        With pixel centres at integers, a pixel edge ``e`` maps to ``e * s``, so a centre ``c``
        maps to ``(c + 0.5) * s - 0.5``; focal lengths (and skew) scale by s. The new size is
        ``round(width * sx) x round(height * sy)``. Distortion is in normalised coordinates and
        does not change.
        """
        sy = sx if sy is None else sy
        if not (sx > 0 and sy > 0):
            raise ValueError(f"Camera.scaled: scale factors must be > 0, got {sx}, {sy}")
        K = self.K.copy()
        K[0, 0] *= sx
        K[0, 1] *= sx
        K[1, 1] *= sy
        K[0, 2] = (K[0, 2] + 0.5) * sx - 0.5
        K[1, 2] = (K[1, 2] + 0.5) * sy - 0.5
        return Camera(K, self.dist, max(1, round(self.width * sx)), max(1, round(self.height * sy)))

    def resized(self, width: int, height: int) -> "Camera":
        """The camera for this image resized to exactly ``width x height`` pixels."""
        cam = self.scaled(width / self.width, height / self.height)
        return Camera(cam.K, cam.dist, width, height)

    def cropped(self, x0: int, y0: int, w: int, h: int) -> "Camera":
        """The camera for the ``w x h`` window whose top-left pixel is ``(x0, y0)`` of this image.

        Only the principal point moves, by ``-(x0, y0)``. The window may extend past the image.
        """
        if w <= 0 or h <= 0:
            raise ValueError(f"Camera.cropped: window size must be positive, got {w}x{h}")
        K = self.K.copy()
        K[0, 2] -= x0
        K[1, 2] -= y0
        return Camera(K, self.dist, w, h)

    def without_distortion(self) -> "Camera":
        """Same intrinsics, no distortion (the camera of :meth:`undistort_points` output)."""
        return Camera(self.K, None, self.width, self.height)

    # ------------------------------------------------------------ points
    def undistort_points(self, uv: np.ndarray) -> np.ndarray:
        """Observed (distorted) pixels -> ideal pinhole pixels of the same K.

        uv: (N, 2) float pixels. Returns (N, 2) float64 pixels; a row with any NaN comes back all NaN. Uses
        ``cv2.undistortPoints(..., P=K)`` with 50 iterations (the default 5 leaves errors of
        hundredths of a pixel near the corners of strong lenses).
        """
        uv = np.asarray(uv, dtype=np.float64).reshape(-1, 2)
        out = uv.copy()
        ok = np.all(np.isfinite(uv), axis=1)
        out[~ok] = np.nan
        if not self.has_distortion or uv.shape[0] == 0:
            return out
        if np.any(ok):
            und = cv2.undistortPoints(
                uv[ok].reshape(-1, 1, 2), self.K, self.dist, P=self.K, criteria=_UNDISTORT_CRITERIA
            )
            out[ok] = und.reshape(-1, 2)
        return out

    def project(self, xyz_model: np.ndarray, R_m2c: np.ndarray, t_m2c: np.ndarray) -> np.ndarray:
        """Project model points (N, 3) mm through pose (R, t) with this camera's K and distortion.

        Returns (N, 2) float64 pixels, NaN behind the camera (see :func:`tracker.geometry.projection.project`).
        """
        return project(xyz_model, R_m2c, t_m2c, self.K, self.dist)

    # ------------------------------------------------------------ files
    @classmethod
    def from_yaml(cls, path: str | Path) -> "Camera":
        """Read an OpenCV FileStorage calibration file (YAML, also XML/JSON by extension).

        Needs ``camera_matrix`` (3x3) and ``image_width``/``image_height`` (or ``width``/``height``);
        ``distortion_coefficients`` is optional (absent = no distortion). Key case is ignored.
        Raises KptrackError naming the file and the missing or malformed key. See
        :func:`tracker.camera.yaml_io.read_camera_yaml`.
        """
        path = Path(path)
        K, dist, width, height = read_camera_yaml(path)
        try:
            return cls(K, dist, width, height)
        except ValueError as e:
            raise KptrackError(f"{path}: {e}. Fix the calibration file or recalibrate") from None

    def to_yaml(self, path: str | Path) -> Path:
        """Write this camera as OpenCV FileStorage YAML (see :mod:`tracker.camera.yaml_io`).

        The distortion key is left out when there is no distortion vector, so a round trip
        keeps ``dist`` exactly. Creates parent folders. Returns the path.
        """
        return write_camera_yaml(path, self.K, self.dist, self.width, self.height)
