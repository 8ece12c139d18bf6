"""Camera calibration files: reading and writing OpenCV FileStorage YAML (and ROS camera_info).

The file is the one OpenCV's calibration sample and ``kptrack calibrate`` write::

    %YAML 1.2
    ---
    image_width: 640
    image_height: 480
    camera_matrix: !!opencv-matrix {rows: 3, cols: 3, dt: d, data: [...]}
    distortion_coefficients: !!opencv-matrix {rows: 5, cols: 1, dt: d, data: [...]}

Reading accepts any capitalisation of the keys (``Camera_Matrix``,
``Distortion_Coefficients`` from OpenCV's older tutorial), ``width``/``height`` for the
size, and ROS ``camera_info`` files (plain ``rows/cols/data`` maps without ``dt``).

These functions work on plain arrays; :meth:`tracker.camera.Camera.from_yaml` and
:meth:`tracker.camera.Camera.to_yaml` wrap them. Errors a user can cause raise
:class:`tracker.errors.KptrackError` naming the file, the key and the fix.
"""

from __future__ import annotations

import logging
import re
from pathlib import Path

import cv2
import numpy as np

from tracker.errors import KptrackError
from tracker.geometry.projection import DIST_LENGTHS

log = logging.getLogger(__name__)

_MATRIX_KEYS = ("camera_matrix",)
_DIST_KEYS = ("distortion_coefficients",)
_WIDTH_KEYS = ("image_width", "width")
_HEIGHT_KEYS = ("image_height", "height")
# Files already reported as having no distortion key (resolved paths). A missing key is normal
# (a guessed or undistorted camera) and the same file is read on every run, so it is worth one
# debug line per file per process, not a line a user sees each time.
_NO_DIST_REPORTED: set[str] = set()


def read_camera_yaml(path: str | Path) -> tuple[np.ndarray, np.ndarray, int, int]:
    """Read an OpenCV FileStorage calibration file (YAML, also XML/JSON by extension).

    Needs ``camera_matrix`` (3x3) and ``image_width``/``image_height`` (or ``width``/``height``);
    ``distortion_coefficients`` is optional (absent = no distortion). Key case is ignored.
    Returns ``(K (3, 3) float64 pixels, dist (n,) float64 OpenCV order with n in 0, 4, 5, 8,
    12, 14, width, height)``; K itself is not checked beyond its size (the Camera does that).
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

        kname, knode = _find_key(fs, keys, _MATRIX_KEYS)
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

        dname, dnode = _find_key(fs, keys, _DIST_KEYS)
        if dnode is None:
            _report_no_distortion(path)
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
            name, n = _find_key(fs, keys, names)
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
    return K, dist, size[0], size[1]


def write_camera_yaml(path: str | Path, K: np.ndarray, dist: np.ndarray | None, width: int, height: int) -> Path:
    """Write a calibration as OpenCV FileStorage YAML (keys as in the module docstring).

    K: (3, 3) float64 pixels. dist: None or (n,) float64 OpenCV coefficients; the distortion
    key is left out when there are none, so a round trip keeps ``dist`` exactly. width, height:
    image size in pixels. Creates parent folders. Returns the path.
    """
    path = Path(path)
    dist = np.zeros(0) if dist is None else np.asarray(dist, dtype=np.float64).ravel()
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        fs = cv2.FileStorage(str(path), cv2.FILE_STORAGE_WRITE)
    except (OSError, cv2.error, SystemError) as e:
        raise KptrackError(f"{path}: cannot write the camera file ({e}). Choose a writable --out path") from None
    if not fs.isOpened():
        raise KptrackError(f"{path}: cannot write the camera file. Choose a writable path ending in .yaml")
    try:
        fs.write("image_width", int(width))
        fs.write("image_height", int(height))
        fs.write("camera_matrix", np.ascontiguousarray(K, dtype=np.float64))
        if dist.size:
            fs.write("distortion_coefficients", np.ascontiguousarray(dist.reshape(-1, 1)))
    finally:
        fs.release()
    return path


def _report_no_distortion(path: Path) -> None:
    """One debug line per file per process for a calibration without distortion coefficients."""
    key = str(path.resolve())
    if key in _NO_DIST_REPORTED:
        return
    _NO_DIST_REPORTED.add(key)
    log.debug("%s: no distortion_coefficients; assuming an undistorted camera", path)


def _find_key(fs: cv2.FileStorage, keys: dict[str, str], names: tuple[str, ...]):
    """(key as spelled in the file, its node) for the first of ``names`` present, else (None, None).

    keys: {lower-case key: key as spelled} of the file's top level."""
    for n in names:
        if n in keys:
            return keys[n], fs.getNode(keys[n])
    return None, None


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
