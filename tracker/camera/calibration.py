"""Camera calibration from chessboard views: ``kptrack calibrate``.

Corners are found with ``cv2.findChessboardCorners`` and refined with ``cv2.cornerSubPix``;
intrinsics come from ``cv2.calibrateCamera``, Zhang's method ("A flexible new technique for
camera calibration", IEEE TPAMI 2000) with Brown-Conrady distortion k1, k2, p1, p2 and, only
when asked (``--k3``, wide-angle lenses), k3: with boards that do not reach the image corners a
free k3 fits noise and bends the model wildly just outside the covered area (ROS's
camera_calibration fixes it by default for the same reason). The YAML always holds 5
coefficients (k3 = 0 when fixed).

Views are chosen to be well spread, because near-duplicate views add no constraint and a
calibration from one pose family is biased: each detection gets a small descriptor (board
centre, apparent size, and perspective tilt along both board axes) and

* for a video or an image folder, every detection is a candidate and the final set is picked
  by farthest-point sampling in descriptor space (largest board first);
* for a live camera, a detection is kept only if it is far enough from every view kept so
  far, until ``max_views`` are kept (or the user stops with q / Ctrl-C).

Long videos are sampled with a stride so that about ``5 * max_views`` frames are searched.

The command (:mod:`tracker.commands.calibrate`) parses its options into a :class:`CalibrateConfig`
and calls :func:`calibrate`; the steps are also usable one by one (:func:`find_board`,
:func:`collect_views`, :func:`calibrate_views`, :func:`calibrate_source`).
"""

from __future__ import annotations

import logging
import re
from dataclasses import dataclass, field
from pathlib import Path
from typing import Iterable, Iterator

import cv2
import numpy as np
from tqdm import tqdm

from tracker.camera.camera import Camera
from tracker.camera.resolve import is_live
from tracker.errors import KptrackError
from tracker.pipeline.source import list_images, open_source

log = logging.getLogger(__name__)

MIN_VIEWS = 5
# Descriptor distance under which a live view counts as a near-duplicate of a kept one.
LIVE_NOVELTY = 0.12
# Detection runs on a copy whose long side is at most this (speed); corners are then refined
# at full resolution, so accuracy is unaffected.
DETECT_MAX_SIDE = 1024
_FIND_FLAGS = cv2.CALIB_CB_ADAPTIVE_THRESH | cv2.CALIB_CB_NORMALIZE_IMAGE | cv2.CALIB_CB_FAST_CHECK
_SUBPIX_CRITERIA = (cv2.TERM_CRITERIA_EPS | cv2.TERM_CRITERIA_COUNT, 40, 1e-3)


# ------------------------------------------------------------------ board
def parse_board(spec: str) -> tuple[int, int]:
    """``"9x6"`` -> (9, 6): inner corners per row (cols) and per column (rows)."""
    m = re.fullmatch(r"\s*(\d+)\s*[xX*]\s*(\d+)\s*", str(spec))
    if not m or int(m.group(1)) < 2 or int(m.group(2)) < 2:
        raise KptrackError(
            f"--board {spec}: expected inner-corner counts as COLSxROWS, e.g. 9x6 (a board of 10 x 7 "
            "squares has 9 x 6 inner corners), each at least 2"
        )
    return int(m.group(1)), int(m.group(2))


def board_points(board: tuple[int, int], square_mm: float) -> np.ndarray:
    """Inner-corner positions on the board plane, in the order findChessboardCorners returns them.

    board: (cols, rows) inner corners. Returns (cols * rows, 3) float32 mm, z = 0, row by row.
    """
    cols, rows = board
    xy = np.stack(np.meshgrid(np.arange(cols), np.arange(rows)), -1).reshape(-1, 2)
    return np.hstack([xy * float(square_mm), np.zeros((len(xy), 1))]).astype(np.float32)


def find_board(image: np.ndarray, board: tuple[int, int]) -> np.ndarray | None:
    """Chessboard inner corners of one image, refined to subpixel.

    image: (H, W, 3) uint8 BGR or (H, W) gray. board: (cols, rows).
    Returns (cols * rows, 2) float32 pixels, or None when the whole board is not found.
    """
    gray = image if image.ndim == 2 else cv2.cvtColor(image, cv2.COLOR_BGR2GRAY)
    h, w = gray.shape
    s = min(1.0, DETECT_MAX_SIDE / max(h, w))
    small = gray if s == 1.0 else cv2.resize(gray, (round(w * s), round(h * s)), interpolation=cv2.INTER_AREA)
    found, corners = cv2.findChessboardCorners(small, board, flags=_FIND_FLAGS)
    if not found or corners is None:
        return None
    corners = corners.reshape(-1, 2).astype(np.float32)
    if s != 1.0:
        corners = ((corners + 0.5) / s - 0.5).astype(np.float32)  # pixel-centre convention
    # The refinement window must stay inside one square, or it locks onto a neighbouring corner.
    grid = corners.reshape(board[1], board[0], 2)
    spacing = min(
        np.linalg.norm(np.diff(grid, axis=1), axis=-1).min() if board[0] > 1 else np.inf,
        np.linalg.norm(np.diff(grid, axis=0), axis=-1).min() if board[1] > 1 else np.inf,
    )
    half = int(np.clip(spacing * 0.4, 2, 11))
    corners = cv2.cornerSubPix(gray, corners.reshape(-1, 1, 2), (half, half), (-1, -1), _SUBPIX_CRITERIA)
    return corners.reshape(-1, 2).astype(np.float32)


def view_descriptor(corners: np.ndarray, board: tuple[int, int], image_size: tuple[int, int]) -> np.ndarray:
    """A 5-vector saying where and how a board was seen, for choosing well-spread views.

    corners: (cols * rows, 2) pixels. image_size: (width, height).
    Returns (5,) float64: centre x, y (fractions of the image), apparent size (sqrt of the outer
    quad's area over the image's), and log ratios of opposite outer edges along both board axes
    (0 for a board facing the camera; the sign says which way it is tilted).
    """
    cols, rows = board
    w, h = image_size
    g = np.asarray(corners, dtype=np.float64).reshape(rows, cols, 2)
    quad = np.array([g[0, 0], g[0, -1], g[-1, -1], g[-1, 0]])
    area = abs(cv2.contourArea(quad.astype(np.float32)))
    top, bottom = np.linalg.norm(g[0, -1] - g[0, 0]), np.linalg.norm(g[-1, -1] - g[-1, 0])
    left, right = np.linalg.norm(g[-1, 0] - g[0, 0]), np.linalg.norm(g[-1, -1] - g[0, -1])
    eps = 1e-6
    return np.array(
        [
            g[..., 0].mean() / w,
            g[..., 1].mean() / h,
            np.sqrt(area / (w * h)),
            np.log((top + eps) / (bottom + eps)),
            np.log((left + eps) / (right + eps)),
        ]
    )


def select_views(descriptors: np.ndarray, max_views: int) -> list[int]:
    """Farthest-point sampling of views in descriptor space, starting from the largest board.

    descriptors: (N, 5) from :func:`view_descriptor`. Returns up to ``max_views`` indices.
    """
    d = np.asarray(descriptors, dtype=np.float64)
    n = len(d)
    if n <= max_views:
        return list(range(n))
    chosen = [int(np.argmax(d[:, 2]))]
    dmin = np.linalg.norm(d - d[chosen[0]], axis=1)
    while len(chosen) < max_views:
        i = int(np.argmax(dmin))
        chosen.append(i)
        dmin = np.minimum(dmin, np.linalg.norm(d - d[i], axis=1))
    return sorted(chosen)


# ------------------------------------------------------------------ collecting views
@dataclass
class Views:
    """Chessboard detections kept for calibration."""

    corners: list[np.ndarray] = field(default_factory=list)  # each (cols*rows, 2) float32 px
    frame_indices: list[int] = field(default_factory=list)
    image_size: tuple[int, int] | None = None  # (width, height)
    frames_searched: int = 0
    found: int = 0  # detections, before selection


def collect_views(
    frames: Iterable[tuple[int, np.ndarray]],
    board: tuple[int, int],
    max_views: int,
    *,
    live: bool = False,
    stride: int = 1,
    show: bool = False,
) -> Views:
    """Search frames for the board and keep well-spread detections.

    frames: iterable of (index, (H, W, 3) uint8 BGR image), all one size. live: keep a view only
    when it differs from all kept ones (see module docstring) and stop at ``max_views``;
    otherwise keep every detection and pick ``max_views`` by farthest-point sampling at the end.
    stride: search every stride-th frame. show: draw detections in a window (q / Esc stops).
    """
    views = Views()
    descs: list[np.ndarray] = []
    try:
        for k, (index, image) in enumerate(frames):
            if k % stride:
                continue
            if views.image_size is None:
                views.image_size = (image.shape[1], image.shape[0])
            views.frames_searched += 1
            corners = find_board(image, board)
            kept = False
            if corners is not None:
                views.found += 1
                desc = view_descriptor(corners, board, views.image_size)
                if not live or not descs or np.min(np.linalg.norm(np.array(descs) - desc, axis=1)) > LIVE_NOVELTY:
                    descs.append(desc)
                    views.corners.append(corners)
                    views.frame_indices.append(int(index))
                    kept = True
                    if live:
                        log.info("view %d/%d kept (frame %d)", len(views.corners), max_views, index)
            if show and _show(image, board, corners, kept, len(views.corners), max_views):
                break
            if live and len(views.corners) >= max_views:
                break
    except KeyboardInterrupt:
        log.info("stopped by the user; calibrating with the %d views kept", len(views.corners))
    finally:
        if show:
            cv2.destroyAllWindows()
    if not live and len(views.corners) > max_views:
        pick = select_views(np.array(descs), max_views)
        views.corners = [views.corners[i] for i in pick]
        views.frame_indices = [views.frame_indices[i] for i in pick]
    return views


def _show(image, board, corners, kept, n, max_views) -> bool:
    """Draw one frame of the live view; True when the user asks to stop (q or Esc)."""
    vis = image.copy()
    if corners is not None:
        cv2.drawChessboardCorners(vis, board, corners.reshape(-1, 1, 2), True)
    msg = f"views {n}/{max_views}" + ("  kept" if kept else "") + "   q: finish"
    cv2.putText(vis, msg, (10, 25), cv2.FONT_HERSHEY_SIMPLEX, 0.7, (0, 255, 0) if kept else (0, 200, 255), 2)
    cv2.imshow("kptrack calibrate", vis)
    return (cv2.waitKey(1) & 0xFF) in (ord("q"), 27)


# ------------------------------------------------------------------ calibration
@dataclass(frozen=True)
class CalibrationResult:
    """camera: the calibrated Camera. rms: overall reprojection RMS, pixels.
    per_view_rms: (n_views,) float64 pixels. frame_indices: the frames the views came from."""

    camera: Camera
    rms: float
    per_view_rms: np.ndarray
    frame_indices: tuple[int, ...]
    frames_searched: int
    boards_found: int


def calibrate_views(
    views: Views, board: tuple[int, int], square_mm: float, *, source: str = "views", k3: bool = False
) -> CalibrationResult:
    """Run ``cv2.calibrateCamera`` on collected views (k3 fixed at 0 unless ``k3``).
    Raises KptrackError with fewer than 5 views."""
    n = len(views.corners)
    if n < MIN_VIEWS:
        raise KptrackError(
            f"--source {source}: the {board[0]}x{board[1]} chessboard was found in {views.found} of "
            f"{views.frames_searched} frames searched; calibration needs at least {MIN_VIEWS} views. "
            "Check that --board gives the INNER corners (a 10x7-square board is 9x6), that the whole "
            "board is visible and sharp, and show it at several positions and tilts"
        )
    obj = board_points(board, square_mm)
    rms, K, dist, _, _, _, _, per_view = cv2.calibrateCameraExtended(
        [obj] * n,
        [c.reshape(-1, 1, 2).astype(np.float32) for c in views.corners],
        views.image_size,
        None,
        None,
        flags=0 if k3 else cv2.CALIB_FIX_K3,
        criteria=(cv2.TERM_CRITERIA_COUNT | cv2.TERM_CRITERIA_EPS, 100, 1e-12),
    )
    if not np.all(np.isfinite(K)) or K[0, 0] <= 0 or K[1, 1] <= 0:
        raise KptrackError(
            f"--source {source}: calibration did not converge (K = {K.tolist()}). Use more views with "
            "the board tilted in different directions"
        )
    cam = Camera(K, np.asarray(dist).ravel(), views.image_size[0], views.image_size[1])
    return CalibrationResult(
        camera=cam,
        rms=float(rms),
        per_view_rms=np.asarray(per_view, dtype=np.float64).ravel(),
        frame_indices=tuple(views.frame_indices),
        frames_searched=views.frames_searched,
        boards_found=views.found,
    )


def _count_frames(spec: str) -> int | None:
    """Number of frames of a video file or image folder (None for live sources or unknown)."""
    if is_live(spec):
        return None
    p = Path(str(spec).strip()).expanduser()
    if p.is_dir():
        return len(list_images(p))
    if p.is_file():
        cap = cv2.VideoCapture(str(p))
        try:
            n = int(cap.get(cv2.CAP_PROP_FRAME_COUNT)) if cap.isOpened() else 0
        finally:
            cap.release()
        return n if n > 0 else None
    return None


def calibrate_source(
    source: str, board: tuple[int, int], square_mm: float, max_views: int = 40, *, show: bool = False, k3: bool = False
) -> CalibrationResult:
    """Calibrate from a camera index, video file or image folder (see :func:`tracker.pipeline.source.open_source`)."""
    if max_views < MIN_VIEWS:
        raise KptrackError(f"--max-views {max_views}: calibration needs at least {MIN_VIEWS} views; use 20-40")
    if not square_mm > 0:
        raise KptrackError(f"--square {square_mm}: the square side must be a positive length in mm")
    n_frames = _count_frames(source)
    with open_source(source) as src:
        stride = 1
        if not src.live and n_frames:
            stride = max(1, n_frames // (5 * max_views))
        log.info("searching %s for a %dx%d chessboard%s", source, board[0], board[1], f" (every {stride}th frame)" if stride > 1 else "")
        frames: Iterator[tuple[int, np.ndarray]] = ((f.index, f.image) for f in src)
        if not src.live:
            frames = tqdm(frames, total=n_frames, desc="frames", unit="frame", disable=None)
        views = collect_views(frames, board, max_views, live=src.live, stride=stride, show=show)
    log.info("board found in %d of %d frames searched; calibrating with %d views", views.found, views.frames_searched, len(views.corners))
    return calibrate_views(views, board, square_mm, source=source, k3=k3)


@dataclass(frozen=True)
class CalibrateConfig:
    """One ``kptrack calibrate`` run.

    source: camera index, video file or image folder (see :func:`tracker.pipeline.source.open_source`).
    out: the camera YAML to write. board: (cols, rows) inner corners (:func:`parse_board`).
    square_mm: square side, mm. max_views: views kept for calibration (at least 5).
    show: draw detections in a window (q finishes early). k3: also estimate k3 (wide-angle lenses).
    """

    source: str
    out: Path
    board: tuple[int, int] = (9, 6)
    square_mm: float = 25.0
    max_views: int = 40
    show: bool = False
    k3: bool = False


def calibrate(cfg: CalibrateConfig) -> CalibrationResult:
    """Calibrate from ``cfg.source`` (:func:`calibrate_source`) and write the camera to ``cfg.out``
    as OpenCV YAML. Returns the result; raises KptrackError for what the user can fix."""
    res = calibrate_source(cfg.source, cfg.board, cfg.square_mm, cfg.max_views, show=cfg.show, k3=cfg.k3)
    res.camera.to_yaml(cfg.out)
    return res
