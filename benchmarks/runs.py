"""One pipeline's timed pass over a bench sequence: :class:`PipelineRun`, from a tracker
(:func:`time_tracker`: kptrack and peers (b), (c)) or from the feature peer (:func:`time_feature_peer`).

Per frame the source read (``cv2.imread`` of the frame), the tracker's own stage times
(``FrameResult.timings``), the whole step and the drawing are timed; the end-to-end time is read +
step + drawing, display excluded. Drawing is the pipeline's
:class:`~tracker.pipeline.draw.FrameDrawer`, as ``kptrack track`` and ``kptrack demo`` draw every
frame (CAD overlay with confidence-coloured keypoints, or the keypoints alone, and the HUD).
"""

from __future__ import annotations

import time
from dataclasses import dataclass

import numpy as np

from benchmarks.peers import FeaturePeer
from benchmarks.sequence import BenchSequence
from tracker.pipeline.draw import FrameDrawer
from tracker.pipeline.state import STAGES
from tracker.pipeline.tracker import Tracker
from tracker.render import Renderer

FEATURE_PEER_NAME = "(a) ORB + FLANN LSH + solvePnPRansac (OpenCV tutorial)"


@dataclass
class PipelineRun:
    """One pipeline's pass over the sequence: poses per frame (None = no pose), timings in ms
    per stage (lists over frames), the mode of each frame ('track' / 'search' / ...)."""

    name: str
    device: str
    poses: list[tuple[np.ndarray, np.ndarray, float] | None]
    timings: dict[str, list[float]]
    modes: list[str]
    wall_s: float
    provider: str = ""
    note: str = ""


def time_tracker(name: str, tracker: Tracker, seq: BenchSequence, n: int, *, drawer: FrameDrawer | None = None,
                 device: str = "cpu") -> PipelineRun:
    """Step ``tracker`` through the first ``n`` frames of ``seq``, drawing each result with ``drawer``
    (None: no drawing, 'overlay' NaN). Timings per frame, ms: read, the tracker's STAGES, step,
    overlay, end_to_end."""
    timings: dict[str, list[float]] = {k: [] for k in ("read", *STAGES, "step", "overlay", "end_to_end")}
    poses, modes = [], []
    fps, render_ms = float("nan"), 0.0  # the HUD shows the previous frame's, as in the frame loop
    wall0 = time.perf_counter()
    for i in range(n):
        t0 = time.perf_counter()
        img = seq.read(i)
        t1 = time.perf_counter()
        r = tracker.step(img, i, i / 30.0)
        t2 = time.perf_counter()
        if drawer is not None:
            drawer(img, r, fps, render_ms)
        t3 = time.perf_counter()
        timings["read"].append((t1 - t0) * 1e3)
        for k in STAGES:
            timings[k].append(float(r.timings.get(k, 0.0)))
        timings["step"].append((t2 - t1) * 1e3)
        render_ms = (t3 - t2) * 1e3
        timings["overlay"].append(render_ms if drawer is not None else float("nan"))
        timings["end_to_end"].append((t3 - t0) * 1e3)
        fps = 1e3 / timings["end_to_end"][-1]
        modes.append(r.mode)
        poses.append((r.R_m2c, r.t_m2c, float(r.score)) if r.has_pose else None)
    return PipelineRun(name, device, poses, timings, modes, time.perf_counter() - wall0,
                       provider=str(getattr(tracker.model, "provider", "")))


def time_feature_peer(seq: BenchSequence, obj, n: int, renderer: Renderer | None = None) -> PipelineRun:
    """Peer (a) on the first ``n`` frames of ``seq``, registered (untimed) on the first frame at least
    50 % visible, at its ground-truth pose. Timings per frame, ms: read, step, end_to_end; the
    score of a pose is its inlier fraction."""
    vis = np.nan_to_num(seq.gt.visib_fract, nan=1.0)
    first = int(np.argmax(vis[:n] >= 0.5)) if np.any(vis[:n] >= 0.5) else 0
    peer = FeaturePeer(obj, seq.camera, renderer=renderer)
    peer.register(seq.gt.R_m2c[first], seq.gt.t_m2c[first], image=seq.read(first))
    timings: dict[str, list[float]] = {"read": [], "step": [], "end_to_end": []}
    poses = []
    wall0 = time.perf_counter()
    for i in range(n):
        t0 = time.perf_counter()
        img = seq.read(i)
        t1 = time.perf_counter()
        p = peer(img)
        t2 = time.perf_counter()
        timings["read"].append((t1 - t0) * 1e3)
        timings["step"].append((t2 - t1) * 1e3)
        timings["end_to_end"].append((t2 - t0) * 1e3)
        poses.append(None if p is None else (p.R_m2c, p.t_m2c, float(p.n_inliers) / max(1, p.n_matches)))
    return PipelineRun(FEATURE_PEER_NAME, "cpu", poses, timings, ["feature"] * n, time.perf_counter() - wall0,
                       note=f"registered on frame {first} at its GT pose, {len(peer.points_model)} model points")
