"""What the tracker remembers between frames (:class:`TrackState`) and says about each one (:class:`FrameResult`).

States: ``searching`` (no pose; full-frame search), ``tracking`` (this frame's pose was accepted),
``lost`` (this frame failed while tracking; the predicted crop is retried for a few frames). A
FrameResult is made once, complete with the tracker's stage timings, and never changed after.
"""

from __future__ import annotations

import math
from collections import deque
from dataclasses import dataclass, field
from typing import Any, Mapping

import numpy as np

SEARCHING, TRACKING, LOST = "searching", "tracking", "lost"
STATUSES = (SEARCHING, TRACKING, LOST)
STAGES = ("predict", "crop", "infer", "decode", "solve", "smooth")


@dataclass(frozen=True)
class FrameResult:
    """What the tracker says about one frame.

    index, timestamp: from the source (s). status: state after this frame (searching | tracking |
    lost). mode: path that produced it ('track' = predicted crop, 'search' = full-frame search,
    'coast' = the prediction refined on the crop's edges, the keypoint fit having failed,
    :mod:`tracker.pipeline.coast`; 'error' = the frame raised; see error).
    R_m2c (3, 3) float64, t_m2c (3,) float64 mm: the (smoothed) pose, None without a pose.
    score: 0..1 (mean inlier confidence x inlier fraction; 0 without a pose).
    uv: (K, 2) float64 decoded keypoints, frame pixels as seen in the image (NaN = none);
    conf: (K,) float64. rms: inlier reprojection RMS, frame px (NaN if no fit). n_inliers.
    affine: (2, 3) float64 frame px -> crop px of the crop the keypoints came from.
    timings: ms per stage (predict, crop, infer, decode, solve, smooth) and 'total'.
    error: the exception text if the frame failed with one, else None.
    pose_std: the solve's standard deviations (:func:`tracker.pipeline.pose_result.pose_std`:
    rotation deg and translation mm per camera axis, a free symmetry angle marked), or None.
    """

    index: int
    timestamp: float
    status: str
    mode: str
    R_m2c: np.ndarray | None
    t_m2c: np.ndarray | None
    score: float
    uv: np.ndarray
    conf: np.ndarray
    rms: float
    n_inliers: int
    affine: np.ndarray | None
    timings: Mapping[str, float]
    error: str | None = None
    pose_std: Mapping[str, Any] | None = None

    @property
    def has_pose(self) -> bool:
        return self.R_m2c is not None

    def to_dict(self) -> dict[str, Any]:
        """JSON-ready dict (lists, floats; NaN written as None)."""

        def fl(x):
            return None if x is None or not math.isfinite(float(x)) else float(x)

        return {
            "index": int(self.index),
            "timestamp": float(self.timestamp),
            "status": self.status,
            "mode": self.mode,
            "score": float(self.score),
            "R_m2c": None if self.R_m2c is None else [float(v) for v in self.R_m2c.ravel()],
            "t_m2c": None if self.t_m2c is None else [float(v) for v in self.t_m2c],
            "rms_px": fl(self.rms),
            "n_inliers": int(self.n_inliers),
            "uv": [[fl(u), fl(v)] for u, v in self.uv],
            "conf": [float(c) for c in self.conf],
            "timings_ms": {k: round(float(v), 4) for k, v in self.timings.items()},
            "error": self.error,
            "pose_std": None if self.pose_std is None else {
                k: (None if v is None else [fl(x) for x in v] if isinstance(v, list) else v if isinstance(v, str) else fl(v))
                for k, v in self.pose_std.items()},
        }


@dataclass
class TrackState:
    """Everything the tracker remembers between frames.

    status: searching | tracking | lost. history: the last two solved (unsmoothed) poses as
    (frame index, R (3, 3), t (3,) mm), for constant-velocity prediction (the next crop comes
    from it; each FrameResult carries the crop it used). misses: consecutive failed frames (0
    while tracking). coasted: consecutive frames carried by edges alone
    (:mod:`tracker.pipeline.coast`). search_count: full-frame searches since the last pose.
    frames: frames stepped.
    """

    status: str = SEARCHING
    history: deque = field(default_factory=lambda: deque(maxlen=2))
    misses: int = 0
    coasted: int = 0
    search_count: int = 0
    frames: int = 0


@dataclass(frozen=True)
class TrackedFrame:
    """One frame as the frame loop hands it to every sink.

    result: the tracker's FrameResult. image: (H, W, 3) uint8 BGR, the annotated frame (None when
    the loop does not draw). fps: the loop's frame rate so far (NaN at first). loop_ms: the loop's
    own timings of this frame, ms (e.g. 'render').
    """

    result: FrameResult
    image: np.ndarray | None = None
    fps: float = float("nan")
    loop_ms: Mapping[str, float] = field(default_factory=dict)
