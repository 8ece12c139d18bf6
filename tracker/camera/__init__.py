"""Pinhole camera with OpenCV lens distortion, and its OpenCV FileStorage YAML file.

A :class:`Camera` holds the intrinsic matrix ``K (3, 3)``, OpenCV distortion coefficients
``dist (n,)`` (n in 0, 4, 5, 8, 12, 14: ``k1, k2, p1, p2[, k3[, k4, k5, k6[, s1..s4[, tau_x,
tau_y]]]]``) and the image size the calibration belongs to. Pixel centres are at integer
coordinates (OpenCV), so an image ``width`` pixels wide spans ``[-0.5, width - 0.5]``.

The YAML file is the one OpenCV's calibration sample and ``kptrack calibrate`` write::

    %YAML 1.2
    ---
    image_width: 640
    image_height: 480
    camera_matrix: !!opencv-matrix {rows: 3, cols: 3, dt: d, data: [...]}
    distortion_coefficients: !!opencv-matrix {rows: 5, cols: 1, dt: d, data: [...]}

Reading accepts any capitalisation of the keys (``Camera_Matrix``,
``Distortion_Coefficients`` from OpenCV's older tutorial), ``width``/``height`` for the
size, and ROS ``camera_info`` files (plain ``rows/cols/data`` maps without ``dt``).
"""

from __future__ import annotations

import logging
import math
import re
from dataclasses import dataclass
from pathlib import Path

import cv2
import numpy as np

from tracker import geometry
from tracker.errors import KptrackError

log = logging.getLogger(__name__)

DIST_LENGTHS = (0, 4, 5, 8, 12, 14)
_MATRIX_KEYS = ("camera_matrix",)
_DIST_KEYS = ("distortion_coefficients",)
_WIDTH_KEYS = ("image_width", "width")
_HEIGHT_KEYS = ("image_height", "height")
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

        Returns (N, 2) float64 pixels, NaN behind the camera (see :func:`tracker.geometry.project`).
        """
        return geometry.project(xyz_model, R_m2c, t_m2c, self.K, self.dist)

    # ------------------------------------------------------------ files
    @classmethod
    def from_yaml(cls, path: str | Path) -> "Camera":
        """Read an OpenCV FileStorage calibration file (YAML, also XML/JSON by extension).

        Needs ``camera_matrix`` (3x3) and ``image_width``/``image_height`` (or ``width``/``height``);
        ``distortion_coefficients`` is optional (absent = no distortion). Key case is ignored.
        Raises KptrackError naming the file and the missing or malformed key.
        """
        path = Path(path)
        if not path.is_file():
            raise KptrackError(
                f"{path}: camera calibration file not found. Pass an OpenCV YAML written by "
                f"'kptrack calibrate --out {path.name}' (or omit --camera to use a default guess)"
            )
        if path.stat().st_size == 0:
            raise KptrackError(f"{path}: the camera calibration file is empty. Recalibrate with 'kptrack calibrate'")
        try:
            fs = cv2.FileStorage(str(path), cv2.FILE_STORAGE_READ)
        except (cv2.error, SystemError) as e:
            raise KptrackError(
                f"{path}: not a readable OpenCV FileStorage file ({_parse_error(e)}). "
                "Write it with 'kptrack calibrate' or cv2.FileStorage"
            ) from None
        if not fs.isOpened():
            raise KptrackError(f"{path}: cannot open the camera calibration file. Check its permissions and format")
        try:
            root = fs.root()
            keys = {k.lower(): k for k in (root.keys() if root.isMap() else ())}

            def node(names: tuple[str, ...]):
                for n in names:
                    if n in keys:
                        return keys[n], fs.getNode(keys[n])
                return None, None

            kname, knode = node(_MATRIX_KEYS)
            if knode is None:
                raise KptrackError(
                    f"{path}: no 'camera_matrix' key (also accepted: 'Camera_Matrix'); found keys "
                    f"{sorted(keys.values())}. Add the 3x3 intrinsics as 'camera_matrix: !!opencv-matrix' "
                    "or recalibrate with 'kptrack calibrate'"
                )
            K = _read_matrix(knode, path, kname)
            if K.size != 9:
                raise KptrackError(f"{path}: '{kname}' has {K.size} numbers; it must be a 3x3 matrix")
            K = K.reshape(3, 3)

            dname, dnode = node(_DIST_KEYS)
            if dnode is None:
                log.info("%s: no distortion_coefficients; assuming an undistorted camera", path)
                dist = np.zeros(0)
            else:
                dist = _read_matrix(dnode, path, dname).ravel()
                if dist.size not in DIST_LENGTHS:
                    raise KptrackError(
                        f"{path}: '{dname}' has {dist.size} coefficients; OpenCV takes 4, 5, 8, 12 or 14 "
                        "(k1, k2, p1, p2[, k3[, k4, k5, k6[, s1..s4[, tau_x, tau_y]]]])"
                    )

            size = []
            for names in (_WIDTH_KEYS, _HEIGHT_KEYS):
                name, n = node(names)
                if n is None:
                    raise KptrackError(
                        f"{path}: no '{names[0]}' key (also accepted: '{names[1]}'). Add the image size "
                        "the calibration was made at as 'image_width: W' and 'image_height: H'"
                    )
                v = n.real()
                if not (n.isInt() or n.isReal()) or v <= 0 or v != int(v):
                    raise KptrackError(f"{path}: '{name}' must be a positive integer number of pixels")
                size.append(int(v))
        finally:
            fs.release()
        try:
            return cls(K, dist, size[0], size[1])
        except ValueError as e:
            raise KptrackError(f"{path}: {e}. Fix the calibration file or recalibrate") from None

    def to_yaml(self, path: str | Path) -> Path:
        """Write this camera as OpenCV FileStorage YAML (keys as in the module docstring).

        The distortion key is left out when there is no distortion vector, so a round trip
        keeps ``dist`` exactly. Creates parent folders. Returns the path.
        """
        path = Path(path)
        try:
            path.parent.mkdir(parents=True, exist_ok=True)
            fs = cv2.FileStorage(str(path), cv2.FILE_STORAGE_WRITE)
        except (OSError, cv2.error, SystemError) as e:
            raise KptrackError(f"{path}: cannot write the camera file ({e}). Choose a writable --out path") from None
        if not fs.isOpened():
            raise KptrackError(f"{path}: cannot write the camera file. Choose a writable path ending in .yaml")
        try:
            fs.write("image_width", self.width)
            fs.write("image_height", self.height)
            fs.write("camera_matrix", np.ascontiguousarray(self.K))
            if self.dist.size:
                fs.write("distortion_coefficients", np.ascontiguousarray(self.dist.reshape(-1, 1)))
        finally:
            fs.release()
        return path


def _parse_error(e: BaseException) -> str:
    """The useful part of an OpenCV FileStorage parse error: 'line N: reason'."""
    # The Python binding wraps the cv2.error in a SystemError; the detail is on the cause.
    msg = str(e.__cause__ or e.__context__ or e)
    m = re.search(r"\((\d+)\): ([^']+)'", msg)
    if m:
        return f"line {m.group(1)}: {m.group(2).strip()}"
    lines = [ln for ln in msg.strip().splitlines() if ln.strip()]
    return lines[-1] if lines else type(e).__name__


def _read_matrix(node, path: Path, name: str) -> np.ndarray:
    """A FileStorage node as a float64 array: an opencv-matrix, a ROS {rows, cols, data} map,
    or a plain sequence of numbers."""
    arr = None
    if node.isMap():
        sub = set(node.keys())
        if "dt" in sub:
            try:
                arr = node.mat()
            except cv2.error:
                arr = None
        elif "data" in sub:
            arr = _read_seq(node.getNode("data"))
            if arr is not None and "rows" in sub and "cols" in sub:
                r, c = int(node.getNode("rows").real()), int(node.getNode("cols").real())
                arr = arr.reshape(r, c) if r * c == arr.size else None
    elif node.isSeq():
        arr = _read_seq(node)
    if arr is None:
        raise KptrackError(
            f"{path}: '{name}' is not a matrix. Write it as '!!opencv-matrix' with rows, cols, dt and data "
            "(cv2.FileStorage does this)"
        )
    arr = np.asarray(arr, dtype=np.float64)
    if not np.all(np.isfinite(arr)):
        raise KptrackError(f"{path}: '{name}' holds non-finite numbers")
    return arr


def _read_seq(node) -> np.ndarray | None:
    if not node.isSeq():
        return None
    vals = []
    for i in range(node.size()):
        item = node.at(i)
        if item.isSeq():  # nested rows, e.g. [[fx, 0, cx], ...]
            row = _read_seq(item)
            if row is None:
                return None
            vals.extend(row.tolist())
        elif item.isInt() or item.isReal():
            vals.append(item.real())
        else:
            return None
    return np.array(vals, dtype=np.float64)
