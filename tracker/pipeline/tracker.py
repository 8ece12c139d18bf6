"""The per-frame tracker: where to look, one or more keypoint passes, and a small state machine.

One :class:`Tracker` owns one :class:`~tracker.pipeline.state.TrackState`. Its stages (the
:class:`~tracker.pipeline.keypoint_pass.KeypointPass` with its backend, decoder and solvers, and
the smoother) are chosen once in the constructor; :meth:`Tracker.step` runs them in a fixed order
with no type switches. The tracker knows nothing of sources, drawing or sinks
(:mod:`tracker.pipeline.loop` wires those).

Per frame (``mode`` in the result says which path produced it):

* ``track``: the pose is predicted from the last two solved poses at constant velocity
  (rotation in the camera frame about the object's origin, ``R = exp(s w) R1``, translation
  linearly, ``t = t1 + s (t1 - t0)``, s = elapsed frames / frames between the two poses); the
  crop is the square around the object's 3D box projected with it
  (:func:`tracker.pipeline.search.box_crop`), and the keypoint pass refines the pose warm-started
  from the prediction (with ``predict_gate_cells``, an accepted fit is refitted without the
  keypoints found far from where the prediction puts them; off by default).
* ``coast`` (``edge_coast_frames``): the tracked pass's fit failed, and the prediction refined on
  that crop's edges alone holds and scores ``edge_coast_min_score`` (:mod:`tracker.pipeline.coast`);
  at most ``edge_coast_frames`` frames in a row, then the frame fails as it would have. Not for an
  object with confusable turns (:mod:`tracker.objects.confusable`), whose wrong poses' outlines fit.
* ``search``: with no pose (at start, or after losing the object) one full-frame search view per
  frame, in turn (:func:`tracker.pipeline.search.search_views`), with a cold solve; a rough pose
  there (``recrop_min_inliers``) aims a tracking crop around the object, whose refined pass is
  the frame's result; failing that (``keypoint_recrop``), a closer crop where the view's
  keypoints gather gets one more pass.

States (``status`` of each result = the state after that frame):

* ``searching``: no pose; full-frame search every frame. A confident pose -> ``tracking``.
* ``tracking``: the pose of this frame was accepted. A failed frame -> ``lost``. A tracked fit
  whose depth jumps from the prediction's by more than a factor ``max_depth_step`` fails the frame.
* ``lost``: this frame failed while tracking. For ``lost_patience`` more frames the predicted
  crop is tried again (cheap, rides over motion blur or a brief occlusion); then ``searching``.

Symmetric objects (:mod:`tracker.objects.symmetry`): the network is trained on the symmetric
equivalent that is canonical for the view, so the warm start handed to the keypoint pass is the
prediction's canonical equivalent (a discrete group's other equivalents are tried next when that
fit fails: a network trained with the min-over-equivalents loss may label any; and between fits that
put a symmetric object in different places, image edges may decide: ``edge_verify``,
:mod:`tracker.pipeline.edges`); the solved pose is then replaced by its equivalent nearest
the last solved pose (discrete: the same equivalent from frame to frame, no flips; continuous:
the angle about the axis is held, so the pose does not spin). History, prediction and smoothing
all see these aligned poses, so the smoothing works modulo the symmetry. Each result carries the
solve's standard deviations (:func:`tracker.pipeline.pose_result.pose_std`), with the angle about
a continuous axis marked free.

NaN or empty heatmaps give confidence 0 (the decoder's contract), so they end in
``lost``/``searching``, never in a pose. The reported pose is smoothed
(:mod:`tracker.pipeline.smoothing`); prediction always uses the unsmoothed poses.

An exception inside a frame (a backend failure, a degenerate solve) is logged, counted in
``Tracker.errors``, and turns that frame into a ``lost`` row with ``error`` set; after
``max_consecutive_errors`` failing frames in a row it is raised, since it is no longer a bad
frame but a broken setup.
"""

from __future__ import annotations

import dataclasses
import logging
import time
from types import MappingProxyType
from typing import Callable

import numpy as np

from tracker.camera import Camera
from tracker.errors import KptrackError
from tracker.geometry import project, so3_exp, so3_log
from tracker.objects.symmetry import canonical_pose, nearest_equivalent, symmetry_group
from tracker.pipeline.config import TrackerConfig
from tracker.pipeline.coast import EdgeCoast
from tracker.pipeline.edge_refine import EdgeRefineConfig, EdgeRefiner
from tracker.pipeline.edges import EdgeScorer
from tracker.pipeline.keypoint_pass import KeypointPass, PassResult, StageClock
from tracker.pipeline.infer import HeatmapBackend, check_model_matches_object
from tracker.pipeline.search import box_crop, keypoint_crop, search_views
from tracker.pipeline.pose_result import pose_std
from tracker.pipeline.smoothing import NoSmoothing, OneEuroPose
from tracker.pipeline.state import LOST, SEARCHING, STAGES, TRACKING, FrameResult, TrackState

log = logging.getLogger(__name__)


class Tracker:
    """Tracks one object through frames. See the module docstring.

    model: heatmap backend (tracker.pipeline.infer.OnnxHeatmapModel or any HeatmapBackend).
    obj: ObjectModel (keypoints, box corners). camera: Camera whose size is the frames' size.
    config: TrackerConfig. decoder / solve_warm / solve_cold: stage overrides for the keypoint
    pass (defaults: DARK, :class:`~tracker.pipeline.keypoint_pass.WarmSolver`,
    :class:`~tracker.pipeline.keypoint_pass.ColdSolver`).
    """

    def __init__(self, model: HeatmapBackend, obj, camera: Camera, config: TrackerConfig | None = None, *,
                 decoder: Callable | None = None, solve_warm: Callable | None = None, solve_cold: Callable | None = None):
        self.config = cfg = config or TrackerConfig.preset("fast")
        self.model, self.obj, self.camera = model, obj, camera
        check_model_matches_object(model.meta, obj, str(getattr(model, "path", "model")))
        self.provider = str(getattr(model, "provider", "?"))
        self.symmetry = symmetry_group(obj)
        g = self.symmetry
        discrete = g.discrete if g.axis is None else None
        checked = cfg.edge_verify and not g.is_trivial  # the edge check ranks a symmetric object's fits
        on_edges = cfg.edge_refine or cfg.edge_coast_frames > 0
        scorer = EdgeScorer(obj, int(model.meta.input_size)) if checked or on_edges else None
        edges = scorer if checked else None
        self._refiner = EdgeRefiner(scorer, camera.K, camera.undistort_points,
                                    EdgeRefineConfig(edge_weight=cfg.edge_refine_weight)) if on_edges else None
        self.keypass = KeypointPass(model, obj.keypoints, camera, cfg, decoder=decoder, solve_warm=solve_warm,
                                    solve_cold=solve_cold, equivalents=discrete, edges=edges, symmetry=g,
                                    refiner=self._refiner if cfg.edge_refine else None)
        # an outline cannot tell a confusable turn (a plain box's quarter turn) from the pose: carried
        # on edges, a wrong track that the search would have re-found is held instead
        coasts = cfg.edge_coast_frames > 0 and len(self.keypass.turns) == 0
        self.coast = EdgeCoast(self._refiner, cfg.edge_coast_frames, cfg.edge_coast_min_score) if coasts else None
        self.input_size, self.heatmap_size = self.keypass.input_size, self.keypass.heatmap_size
        self.keypoints = self.keypass.keypoints
        self.box = np.array(obj.box_corners, np.float64)
        self._smoother = OneEuroPose(cfg.min_cutoff_hz, cfg.beta_t, cfg.beta_r, cfg.d_cutoff_hz) if cfg.smoothing else NoSmoothing()
        self.search_views = search_views(camera.width, camera.height, self.input_size, cfg.search_windows)
        self.state = TrackState()
        self._sym_ref: np.ndarray | None = None  # the last solved rotation, which equivalents are aligned to
        self.errors = 0
        self._consecutive_errors = 0
        self._next_index = 0
        self._warned: set[str] = set()

    # ------------------------------------------------------------------ public
    def warmup(self) -> None:
        """Run the decoder, both solvers and the edge refinement (when on) once on synthetic data
        (numba compile or cache load), so the first real frame is not slow. Leaves the state untouched."""
        kp = self.keypass
        k, hm = len(self.keypoints), self.heatmap_size
        g = np.arange(hm, dtype=np.float32)
        cells = np.linspace(hm * 0.3, hm * 0.7, k)
        heat = np.exp(-((g[None, None, :] - cells[:, None, None]) ** 2 + (g[None, :, None] - cells[:, None, None]) ** 2) / 8.0)
        kp.decode(heat.astype(np.float32))
        R = so3_exp(np.array([0.3, 0.2, 0.1]))
        t = np.array([0.0, 0.0, 3.0 * max(float(getattr(self.obj, "diameter", 100.0)), 1.0) * kp.K[0, 0] / max(self.camera.width, 1)])
        uv = project(self.keypoints, R, t, kp.K)
        w = np.ones(k)
        xyz = self.keypoints[np.ones(k, bool)]  # a fancy-indexed copy, as in the frame loop
        if k >= 4:
            kp.solve_cold(xyz, uv, w, kp.K, 5.0, 2.0)
        if k >= 3:
            kp.solve_warm(xyz, uv, w, kp.K, R, t, 2.0)
        if self._refiner is not None:
            self._refiner.warmup()

    def reset(self) -> None:
        """Forget the object: back to full-frame search (the window's 'r' key)."""
        self.state = TrackState()
        self._smoother.reset()
        self._sym_ref = None

    def step(self, image: np.ndarray, index: int | None = None, timestamp: float | None = None) -> FrameResult:
        """Process one frame. image: (H, W, 3) uint8 BGR of the camera's size.

        index: frame number (default: one more than the last); timestamp: seconds (default
        index / 30). Returns the frame's FrameResult, its timings (ms per stage and 'total') final.
        """
        if image is None or image.ndim != 3 or image.shape[2] != 3 or image.dtype != np.uint8:
            raise ValueError(f"frame must be (H, W, 3) uint8 BGR, got {None if image is None else (image.shape, image.dtype)}")
        if image.shape[0] != self.camera.height or image.shape[1] != self.camera.width:
            raise KptrackError(
                f"frame {image.shape[1]}x{image.shape[0]} does not match the camera calibration "
                f"{self.camera.width}x{self.camera.height}. Use the calibration made for this resolution."
            )
        index = self._next_index if index is None else int(index)
        self._next_index = index + 1
        timestamp = index / 30.0 if timestamp is None else float(timestamp)
        clock = StageClock(STAGES)
        t0 = time.perf_counter()
        try:
            mode, p, pose = self._step(image, index, timestamp, clock)
            self._consecutive_errors = 0
            error = None
        except KptrackError:
            raise
        except Exception as e:
            self._count_error(index, e)
            self._fail()
            mode, p, pose, error = "error", None, None, repr(e)
        clock.ms["total"] = (time.perf_counter() - t0) * 1e3
        self.state.frames += 1
        return self._result(index, timestamp, mode, p, pose, MappingProxyType(clock.ms), error)

    # ------------------------------------------------------------------ one frame
    def _step(self, image: np.ndarray, index: int, timestamp: float, clock: StageClock):
        """(mode, the deciding pass or None, the reported (R, t) or None) of one frame."""
        st, cfg = self.state, self.config
        clock.start()
        pred = self._predict(index) if st.status in (TRACKING, LOST) else None
        clock.lap("predict")
        mode, p = "track", None
        if pred is not None:
            p = self._track(image, index, pred[0], pred[1], max(1, cfg.track_passes), clock, gate=True)
            if p is not None and p.accepted and not self._plausible_depth(p, pred[1]):
                p = _rejected(p)
            if p is not None and not p.accepted and self.coast is not None:
                carried = self.coast(p, pred[0], pred[1], st.coasted)
                if carried is not None:
                    mode, p = "coast", carried
        if p is None:  # no prediction, or it left the frame: search
            mode, p = "search", self._search(image, index, clock)
        if not p.accepted:
            self._fail()
            return mode, p, None
        R, t = self._aligned(np.asarray(p.pose.R_m2c, np.float64), np.asarray(p.pose.t_m2c, np.float64))
        if st.status != TRACKING:
            st.history.clear()
            self._smoother.reset()
        st.history.append((index, R.copy(), t.copy()))
        st.status, st.misses, st.search_count = TRACKING, 0, 0
        st.coasted = st.coasted + 1 if mode == "coast" else 0
        clock.start()
        pose = self._smoother(R, t, timestamp)
        clock.lap("smooth")
        return mode, p, pose

    def _predict(self, index: int) -> tuple[np.ndarray, np.ndarray] | None:
        hist = self.state.history
        if not hist:
            return None
        i1, R1, t1 = hist[-1]
        if len(hist) == 1:
            return R1, t1
        i0, R0, t0 = hist[0]
        span = max(1, i1 - i0)
        s = min(index - i1, self.config.max_predict_frames) / span
        w = so3_log(R1 @ R0.T)
        return so3_exp(s * w) @ R1, t1 + s * (t1 - t0)

    def _plausible_depth(self, p: PassResult, t_pred: np.ndarray) -> bool:
        """Whether a tracked fit's depth lies within a factor ``max_depth_step`` of the predicted
        depth (always, with the check off; after missed frames too: a real jump is taken by the
        search, which is not checked). A fit of a few keypoints can explain them with the object
        twice as far away and turned; its crop next frame would then miss the object."""
        step = self.config.max_depth_step
        if step == 0.0:
            return True
        z, z_pred = float(np.asarray(p.pose.t_m2c)[2]), float(t_pred[2])
        return z_pred > 0.0 and z_pred / step <= z <= z_pred * step

    def _aligned(self, R: np.ndarray, t: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """The symmetric equivalent of a solved pose nearest the last solved one (see the module docstring)."""
        if self.symmetry.is_trivial:
            return R, t
        if self._sym_ref is not None:
            R, t = nearest_equivalent(R, t, self.symmetry, self._sym_ref)
        self._sym_ref = R
        return R, t

    def _track(self, image, index, R, t, passes: int, clock: StageClock, gate: bool = False) -> PassResult | None:
        """Crop around (R, t) and refine, ``passes`` times (each re-crops at the last pose).
        gate: (R, t) is the motion prediction, whose first pass gates the keypoints by it
        (``predict_gate_cells``); a search pose is too rough to gate by.

        Returns the last accepted pass, else the first failed one, else None (no crop possible)."""
        cfg, best = self.config, None
        for _ in range(passes):
            clock.start()
            A = box_crop(self.camera, self.box, R, t, cfg.roi_margin, cfg.min_roi_px, self.input_size)
            clock.lap("crop")
            if A is None:
                break
            # the network labels the equivalent canonical for the view: warm-start from that one
            p = self.keypass(image, A, index, canonical_pose(R, t, self.symmetry), clock, gate=gate)
            if not p.accepted:
                best = best or p
                break
            best, gate = p, False
            R, t = p.pose.R_m2c, p.pose.t_m2c
        return best

    def _search(self, image, index, clock: StageClock) -> PassResult:
        """This frame's search view, then a closer look where it found something."""
        st, cfg = self.state, self.config
        A = self.search_views[st.search_count % len(self.search_views)]
        st.search_count += 1
        first = p = self.keypass(image, A, index, None, clock)
        if p.pose is not None and p.pose.n_inliers >= cfg.recrop_min_inliers:
            # Re-crop around what was found; that refined pass decides.
            refined = self._track(image, index, p.pose.R_m2c, p.pose.t_m2c, 1, clock)
            p = refined if refined is not None else _rejected(p)
        else:
            p = _rejected(p)
        if p.accepted and pass_score(p) < cfg.min_acquire_score:
            p = _rejected(p)  # too weak to start a track on: background clutter, not the object
        if not p.accepted and cfg.keypoint_recrop:
            # No pose, but keypoints gather somewhere: look closer there (the object is
            # small in a search view, and the network reads it better at tracking scale).
            clock.start()
            A2 = keypoint_crop(first.uv, first.conf, first.affine, 0.5 * cfg.min_conf, cfg.roi_margin * 1.5,
                               cfg.min_roi_px, self.input_size)
            clock.lap("crop")
            if A2 is not None:
                q = self.keypass(image, A2, index, None, clock)
                if q.accepted and pass_score(q) >= cfg.min_acquire_score:
                    p = q
        return p

    def _fail(self) -> None:
        """A frame without an accepted pose: tracking -> lost; lost past lost_patience -> searching."""
        st = self.state
        st.misses += 1
        if st.status == TRACKING:
            st.status = LOST
        elif st.status == LOST and st.misses > self.config.lost_patience:
            st.status = SEARCHING
            st.history.clear()
            st.search_count = 0

    def _count_error(self, index: int, e: Exception) -> None:
        self.errors += 1
        self._consecutive_errors += 1
        key = type(e).__name__
        if key not in self._warned:
            self._warned.add(key)
            log.error("frame %d failed; counted, and the tracker goes back to searching", index, exc_info=e)
        else:
            log.warning("frame %d failed: %r (counted: %d so far)", index, e, self.errors)
        if self._consecutive_errors >= self.config.max_consecutive_errors:
            raise RuntimeError(f"tracker failed on {self._consecutive_errors} frames in a row; last error: {e!r}") from e

    def _result(self, index, timestamp, mode, p: PassResult | None, pose, timings, error) -> FrameResult:
        k = len(self.keypoints)
        res = p.pose if p is not None else None
        score = pass_score(p) if pose is not None and res is not None else 0.0
        return FrameResult(
            index=index, timestamp=timestamp, status=self.state.status, mode=mode,
            R_m2c=None if pose is None else np.asarray(pose[0], np.float64),
            t_m2c=None if pose is None else np.asarray(pose[1], np.float64),
            score=score,
            uv=np.full((k, 2), np.nan) if p is None else np.asarray(p.uv, np.float64),
            conf=np.zeros(k) if p is None else np.asarray(p.conf, np.float64),
            rms=float(res.rms) if res is not None else float("nan"),
            n_inliers=int(res.n_inliers) if res is not None else 0,
            affine=None if p is None else p.affine, timings=timings, error=error,
            pose_std=None if pose is None or res is None else self._pose_std(res.cov, pose[0], pose[1]),
        )

    def _pose_std(self, cov: np.ndarray, R: np.ndarray, t: np.ndarray) -> dict | None:
        """The result's standard deviations; for a continuous symmetry, of its axis point, the angle about it free."""
        g = self.symmetry
        if g.axis is None:
            return pose_std(cov, t)
        return pose_std(cov, R @ g.offset + t, R @ g.axis)


def pass_score(p: PassResult) -> float:
    """A pass's score, 0..1: the mean confidence of its fit's inliers times their fraction of the keypoints."""
    inl = np.asarray(p.pose.inlier_mask, bool)
    return float(np.clip(np.mean(np.clip(p.conf[inl], 0, 1)) if inl.any() else 0.0, 0, 1) * inl.sum() / len(inl))


def _rejected(p: PassResult) -> PassResult:
    """The same pass, marked not accepted (a search view's pose only aims the next crop)."""
    return dataclasses.replace(p, accepted=False)
