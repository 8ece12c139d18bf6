"""The keypoint pass: one crop of a frame -> heatmaps -> keypoints -> a judged pose.

``KeypointPass(image, A, index, warm)`` reads as the data flows (as rtmlib's ``RTMPose.__call__``
does: preprocess, inference, postprocess):

1. **crop**: warp the frame with the crop affine ``A`` (2, 3) (frame px -> crop px) to the
   network's input size;
2. **infer**: the heatmap backend (ONNX Runtime, or a test double) gives (K, H, H) heatmaps;
3. **decode**: subpixel keypoints in heatmap cells and their confidences (DARK by default,
   :mod:`tracker.pipeline.decode`), NaN confidences set to 0;
4. **to frame**: cells -> crop px -> frame px through the inverse affine (the unbiased UDP
   convention of :mod:`tracker.geometry.crop`), then undistorted when the camera has distortion;
5. **solve**: with a start pose (``warm`` = (R, t)), the robust confidence-weighted LM of
   :mod:`tracker.pipeline.solve_lm`; for an object with discrete symmetries (``equivalents``),
   when that fit is not accepted, the LM again from each symmetric equivalent of the start (a
   network trained with the min-over-equivalents loss labels whichever equivalent it sees, which
   need not be the start's), the accepted fit with the lowest RMS kept; without a start, or
   (``cold_retry``) when no warm fit is accepted, SQPnP in RANSAC
   (:mod:`tracker.pipeline.solve_ransac`) on the same keypoints. With ``ring_fit``, an object with a
   continuous symmetry has its warm fits measure the keypoints off the axis by their distance to
   their circles (:mod:`tracker.pipeline.rings`). When the start is the motion
   prediction (``gate``) and ``predict_gate_cells`` is on, an accepted warm fit is refitted without
   the keypoints found farther than that from where the start projects them, kept when accepted
   (it never rescues a refused fit, which would hold a lost track). For such an object
   (``associate``) the heatmaps' peaks are also matched to the keypoints that the warm start
   projects, whatever channel they came from, and fitted
   (:mod:`tracker.pipeline.peak_fits`); that fit wins when it explains more keypoints. The same
   match and fit also run from the start turned by each of the object's confusable turns
   (:mod:`tracker.objects.confusable`: a plain box's quarter turns), and from a cold fit's pose
   and its turns; a turned fit replaces the start's when it explains ``confusable_margin`` more.
   Without a start (``peak_cold``), P3P hypotheses from the peaks under every channel that fires
   on each (:func:`tracker.pipeline.associate.peak_labels`,
   :func:`tracker.pipeline.solve_ransac.peak_hypothesis`) give one more start for the same match,
   as they do (``peak_recheck``) when a held pose leaves peaks unexplained. With an edge scorer
   (``edge_verify``), a fit of those tried that puts the object elsewhere is reported instead
   when its rendered outline and creases lie better on the crop's edges by ``edge_margin``
   (:mod:`tracker.pipeline.edges`; it may pass the accept test with ``edge_min_inliers``).
   While tracking, the fit of only the keypoints found within ``edge_gate_cells`` of where the
   motion prediction puts them is one more such rival (an occluder's confident guesses left out),
   for continuous symmetries too;
6. **accept**: a fit is accepted when it is finite and in front of the camera, keeps
   >= ``min_inliers`` inliers, their reprojection RMS is <= ``max_rms_cells`` heatmap cells
   of this crop (so the threshold does not depend on the object's size in the image), and the
   object it puts in the crop has a plausible size: the longer side of its projected keypoints'
   box lies between ``min_extent`` and ``max_extent`` of the crop's side. A weak network's
   low-score keypoints can huddle on a few cells; a pose tens of metres away fits them with a
   tiny RMS, and only its size gives it away.
7. **refine** (``edge_refine``, the accurate preset): an accepted fit is moved so the object's
   rendered silhouette and creases land on the crop's edges, its inlier keypoints kept as a prior
   (:mod:`tracker.pipeline.edge_refine`); the refined pose is reported when it holds and still
   passes the accept test.

The tracker, ``kptrack viz`` and the benchmarks' peers all run this one pass. Stage times go to
a :class:`StageClock` the caller owns.
"""

from __future__ import annotations

import dataclasses
import time
from dataclasses import dataclass
from functools import partial
from typing import Any, Callable

import cv2
import numpy as np

from tracker.camera import Camera
from tracker.geometry import project, rotation_error_deg
from tracker.geometry.crop import heatmap_to_frame
from tracker.objects.confusable import confusable_turns
from tracker.objects.symmetry import SymmetryGroup, nearest_equivalent
from tracker.pipeline.config import TrackerConfig
from tracker.pipeline.decode import decode_dark
from tracker.pipeline.edge_refine import EdgeRefiner
from tracker.pipeline.edges import EdgeScorer, crop_intrinsics
from tracker.pipeline.infer import HeatmapBackend
from tracker.pipeline.peak_fits import PeakFits, collect, fits_better
from tracker.pipeline.rings import Rings, RingSolver
from tracker.pipeline.solve_lm import solve_lm
from tracker.pipeline.solve_ransac import solve_pnp_ransac


class StageClock:
    """Milliseconds per named stage, accumulated over one frame.

    ``lap(stage)`` adds the time since the previous lap (or since :meth:`start`) to ``stage``.
    """

    def __init__(self, stages: tuple[str, ...] = ()):
        self.ms: dict[str, float] = {k: 0.0 for k in stages}
        self._t = time.perf_counter()

    def start(self) -> None:
        self._t = time.perf_counter()

    def lap(self, stage: str) -> None:
        now = time.perf_counter()
        self.ms[stage] = self.ms.get(stage, 0.0) + (now - self._t) * 1e3
        self._t = now


@dataclass(frozen=True)
class PassResult:
    """One pass over one crop.

    affine: (2, 3) float64 frame px -> crop px. uv: (K, 2) float64 keypoints, frame px as seen in
    the image (distorted; NaN = none). conf: (K,) float64. pose: the fit (a
    :class:`~tracker.pipeline.pose_result.PoseResult` whose inlier_mask spans all K keypoints) or
    None when too few keypoints were confident. accepted: the fit passed the accept test.
    px_per_cell: frame px per heatmap cell of this crop. crop: (S, S, 3) uint8 BGR and heatmaps:
    (K, H, H) float32, kept for figures (``kptrack viz``).
    """

    affine: np.ndarray
    uv: np.ndarray
    conf: np.ndarray
    pose: Any
    accepted: bool
    px_per_cell: float
    crop: np.ndarray
    heatmaps: np.ndarray


class WarmSolver:
    """The warm start: robust LM from (R0, t0) with the config's loss and iteration cap."""

    def __init__(self, cfg: TrackerConfig):
        self.loss, self.max_iter = cfg.loss, cfg.max_iter

    def __call__(self, xyz, uv, w, K, R0, t0, scale_px: float):
        return solve_lm(xyz, uv, w, K, R0, t0, loss=self.loss, scale_px=scale_px, max_iter=self.max_iter)


class ColdSolver:
    """The cold start: SQPnP in RANSAC (fixed seed, so runs repeat), then robust LM."""

    def __init__(self, cfg: TrackerConfig):
        self.min_conf, self.iters, self.loss = cfg.min_conf, cfg.ransac_iters, cfg.loss

    def __call__(self, xyz, uv, w, K, reproj_px: float, scale_px: float):
        return solve_pnp_ransac(xyz, uv, w, K, min_conf=self.min_conf, reproj_px=reproj_px, iters=self.iters, seed=0,
                                loss=self.loss, scale_px=scale_px)


def _identity(uv: np.ndarray) -> np.ndarray:
    return uv


class KeypointPass:
    """crop -> infer -> decode -> to frame -> solve -> accept (-> refine) (see the module docstring).

    model: heatmap backend; keypoints: (K, 3) float64 mm, the object's; camera: the frames'
    Camera; config: TrackerConfig. decoder ``(heatmaps (K, H, H)) -> (xy cells (K, 2), conf (K,))``
    and the two solvers are chosen here, once (defaults: DARK with the config's blur,
    :class:`WarmSolver`, :class:`ColdSolver`). equivalents: (M, 4, 4) model-frame symmetries,
    identity first (a discrete symmetry group's), or None: the further warm starts of step 5.
    edges: an :class:`~tracker.pipeline.edges.EdgeScorer` for the edge check of step 5 (kept only for
    a symmetric object), or None. symmetry: the object's :class:`~tracker.objects.symmetry.SymmetryGroup`
    (a continuous one included), or None for the group of ``equivalents``: which fits put the
    object in the same place. refiner: an :class:`~tracker.pipeline.edge_refine.EdgeRefiner` for
    step 7, or None (no refinement).
    """

    def __init__(self, model: HeatmapBackend, keypoints: np.ndarray, camera: Camera, config: TrackerConfig, *,
                 decoder: Callable | None = None, solve_warm: Callable | None = None, solve_cold: Callable | None = None,
                 equivalents: np.ndarray | None = None, edges: EdgeScorer | None = None, symmetry: SymmetryGroup | None = None,
                 refiner: EdgeRefiner | None = None):
        self.model, self.config = model, config
        self.equivalents = None if equivalents is None or len(equivalents) < 2 else np.asarray(equivalents, np.float64)
        # near-symmetries beyond the group, tried as further starts of the matched-peak fit
        self.turns = np.zeros((0, 4, 4)) if self.equivalents is None else confusable_turns(keypoints, self.equivalents)
        if symmetry is None and self.equivalents is not None:
            symmetry = SymmetryGroup(self.equivalents)
        self.symmetry = None if symmetry is None or symmetry.is_trivial else symmetry
        self.edges = edges if self.symmetry is not None else None  # ranks the fits tried
        self.refiner = refiner
        self.input_size, self.heatmap_size = int(model.meta.input_size), int(model.meta.heatmap_size)
        # Writable private copies: numba specialises on the read-only flag, and the warm-up must
        # compile/load the same signatures the frame loop uses.
        self.keypoints = np.array(keypoints, np.float64)
        self.K = np.array(camera.K, np.float64)
        self.decode = decoder or partial(decode_dark, blur_ksize=config.blur_ksize)
        self.solve_warm = solve_warm or WarmSolver(config)
        self.solve_cold = solve_cold or ColdSolver(config)
        # keypoints off a continuous symmetry axis are fitted to their circles (ring_fit)
        continuous = self.symmetry is not None and self.symmetry.axis is not None
        self.rings = Rings(self.symmetry) if config.ring_fit and continuous else None
        if self.rings is not None:
            self.solve_warm = RingSolver(self.solve_warm, self.rings)
        self.undistort = camera.undistort_points if camera.has_distortion else _identity
        self.peak_fits = PeakFits(self.keypoints, self.K, config, self.turns, self.solve_warm, self.acceptable,
                                  self.undistort, self.input_size, self.heatmap_size)

    def __call__(self, image: np.ndarray, A: np.ndarray, index: int | None, warm: tuple | None, clock: StageClock,
                 gate: bool = False) -> PassResult:
        """One pass over ``image`` (H, W, 3) uint8 BGR with crop affine A (2, 3); ``warm`` = (R, t)
        starts the fit (None: cold). gate: ``warm`` is the motion prediction, so an accepted warm
        fit is refitted without the keypoints found more than ``predict_gate_cells`` from where it
        projects them (see the module docstring). Adds crop/infer/decode/solve milliseconds to ``clock``."""
        s, hs = self.input_size, self.heatmap_size
        clock.start()
        crop = cv2.warpAffine(image, A, (s, s), flags=cv2.INTER_LINEAR, borderMode=cv2.BORDER_CONSTANT, borderValue=(0, 0, 0))
        clock.lap("crop")
        heat = self._infer(crop, A, index)
        clock.lap("infer")
        xy, conf = self.decode(heat)
        uv = heatmap_to_frame(xy, A, s, hs)
        conf = np.where(np.isfinite(conf), conf, 0.0)
        clock.lap("decode")
        px_per_cell = (1.0 / abs(np.linalg.det(A[:, :2])) ** 0.5) * (s - 1) / (hs - 1)
        pool = [] if self.edges is not None else None
        pose, accepted, matched = self._solve(uv, conf, warm, px_per_cell, heat, A, gate, pool)
        if accepted and pool:
            pose, matched = self._verified(crop, A, pose, matched, pool, px_per_cell)
        if matched is not None:  # the fit is of the matched peaks: report those as the keypoints
            uv, conf = matched
        if accepted and self.refiner is not None:
            pose = self._refined(crop, A, pose, uv, conf, px_per_cell)
        clock.lap("solve")
        return PassResult(A, uv, conf, pose, accepted, px_per_cell, crop, heat)

    def _infer(self, crop: np.ndarray, A: np.ndarray, index: int | None) -> np.ndarray:
        heat = np.asarray(self.model(crop[None], A[None], index))
        if heat.ndim != 4 or heat.shape[0] != 1 or heat.shape[1] != len(self.keypoints):
            raise ValueError(f"heatmap backend returned shape {heat.shape}, expected (1, {len(self.keypoints)}, H, H)")
        return heat[0]

    def _solve(self, uv: np.ndarray, conf: np.ndarray, warm: tuple | None, px_per_cell: float,
               heat: np.ndarray | None = None, A: np.ndarray | None = None, gate: bool = False, pool: list | None = None):
        """(pose or None, accepted, matched) from the confident keypoints, or from the heatmaps'
        peaks matched to the warm start's projection (then matched = their (uv, conf), keypoint
        order, for the PassResult; else None); see the module docstring."""
        cfg = self.config
        ok = (conf >= cfg.min_conf) & np.all(np.isfinite(uv), axis=1)
        scale = cfg.robust_scale_cells * px_per_cell
        peaks = matched = None
        if heat is not None and self.equivalents is not None and cfg.associate:
            peaks = self.peak_fits.peaks(heat, A)
        if warm is not None and peaks is not None:
            matched = self.peak_fits.hypotheses_fit(peaks, warm, px_per_cell, scale, pool)
            if cfg.peak_recheck and (matched is None or matched[0].n_inliers < len(peaks[0])):
                # peaks the held pose leaves unexplained: a fresh start from them may explain more
                fresh = self.peak_fits.cold_fit(peaks, None, px_per_cell, scale, iters=cfg.ransac_iters, pool=pool)
                if fresh is not None and (matched is None or not matched[2]
                                          or fresh[0].n_inliers >= matched[0].n_inliers + cfg.confusable_margin):
                    matched = fresh
        if np.count_nonzero(ok) < cfg.min_keypoints:
            if warm is None:  # too few labelled keypoints for a cold start; the peaks may still do
                matched = self.peak_fits.cold_fit(peaks, None, px_per_cell, scale, pool=pool)
            return (None, False, None) if matched is None else self._with_mask(*matched)
        uv_ideal = self.undistort(uv[ok])
        xyz, w = self.keypoints[ok], conf[ok]
        res, used = None, np.flatnonzero(ok)  # the keypoints res fits: all, unless the gated refit replaces it
        if warm is not None:
            res = self.solve_warm(xyz, uv_ideal, w, self.K, warm[0], warm[1], scale)
        accepted = res is not None and self.acceptable(res, px_per_cell)
        if accepted and gate:  # refit the keypoints found where the prediction puts them
            near = self._gated(uv_ideal, xyz, warm, px_per_cell)
            if near is not None and not near.all():
                g = self.solve_warm(xyz[near], uv_ideal[near], w[near], self.K, warm[0], warm[1], scale)
                if g is not None and self.acceptable(g, px_per_cell):
                    res, used = g, used[near]
        if warm is not None and not accepted and self.equivalents is not None:
            R0, t0 = np.asarray(warm[0], np.float64), np.asarray(warm[1], np.float64)
            for S in self.equivalents[1:]:
                alt = self.solve_warm(xyz, uv_ideal, w, self.K, R0 @ S[:3, :3], t0 + R0 @ S[:3, 3], scale)
                if alt is not None and self.acceptable(alt, px_per_cell) and (not accepted or alt.rms < res.rms):
                    res, accepted = alt, True
        if accepted:
            collect(pool, (res, used, True))
            if pool is not None and gate and cfg.edge_gate_cells > 0.0:
                # the fit of only the keypoints found where the prediction puts them (an occluder's
                # confident guesses left out) is one more rival; the edges judge it
                near = self._near_prediction(uv_ideal, xyz, warm, cfg.edge_gate_cells * px_per_cell)
                if np.count_nonzero(near) >= cfg.edge_min_inliers and not near.all():
                    g = self.solve_warm(xyz[near], uv_ideal[near], w[near], self.K, warm[0], warm[1], scale)
                    if g is not None:
                        collect(pool, (g, np.flatnonzero(ok)[near], self.acceptable(g, px_per_cell)))
        if matched is not None and matched[2] and (not accepted or self._matched_holds(matched[0], res)):
            return self._with_mask(*matched)
        if not accepted and (warm is None or cfg.cold_retry):
            # Cold start; or (cold_retry) a poor warm start (fast motion, a rough search pose)
            # held the fit in a wrong basin or let outliers in, and RANSAC on the same
            # keypoints gets a second say: its pose replaces the warm one only if accepted.
            cold = self.solve_cold(xyz, uv_ideal, w, self.K, cfg.ransac_reproj_cells * px_per_cell, scale)
            cold_ok = cold is not None and self.acceptable(cold, px_per_cell)
            if cold_ok or warm is None:
                res, accepted = cold, cold_ok
            if cold_ok:
                collect(pool, (cold, np.flatnonzero(ok), True))
            if warm is None:
                m = self.peak_fits.cold_fit(peaks, cold, px_per_cell, scale, pool=pool)
                if m is not None and m[2] and (not accepted or fits_better(m[0], res)):
                    return self._with_mask(*m)
        if res is None:
            return None, False, None
        return self._with_mask(res, used, accepted)

    def _verified(self, crop: np.ndarray, A: np.ndarray, pose, matched, pool: list, px_per_cell: float):
        """(pose, matched) of the accepted fit to report: the chosen one, or another fit of this
        pass (``pool``: the hypotheses tried) whose edge score (:mod:`tracker.pipeline.edges`) beats
        the chosen one's by ``edge_margin``, the best such. A rival must pass the accept test, but
        with ``edge_min_inliers`` inliers (a face seen square-on shows four corners, and the labels
        of a confused network may leave the right pose no more). Rivals that put the object where
        the chosen fit or an earlier rival does, up to a symmetry, are not scored; with none left
        the crop is not scored either."""
        cfg, edges = self.config, self.edges
        R, t = np.asarray(pose.R_m2c, np.float64), np.asarray(pose.t_m2c, np.float64)
        rivals, seen = [], [(R, t)]
        for c in pool:
            if not (c[2] or self.acceptable(c[0], px_per_cell, min_inliers=cfg.edge_min_inliers)):
                continue
            Rc, tc = np.asarray(c[0].R_m2c, np.float64), np.asarray(c[0].t_m2c, np.float64)
            if any(self._same_place(Rc, tc, Rs, ts) for Rs, ts in seen):
                continue
            seen.append((Rc, tc))
            rivals.append(c)
        if not rivals:
            return pose, matched
        strength = edges.image(crop)
        Kc = crop_intrinsics(self.K, A)
        need, best = edges.score(strength, Kc, R, t) + cfg.edge_margin, None
        for c in rivals:
            sc = edges.score(strength, Kc, np.asarray(c[0].R_m2c, np.float64), np.asarray(c[0].t_m2c, np.float64))
            if sc >= need:
                need, best = sc, c
        if best is None:
            return pose, matched
        pose, _, matched = self._with_mask(best[0], best[1], True, *best[3:])
        return pose, matched

    def _refined(self, crop: np.ndarray, A: np.ndarray, pose, uv: np.ndarray, conf: np.ndarray, px_per_cell: float):
        """The accepted fit refined on the crop's edges with its inlier keypoints as a prior
        (:mod:`tracker.pipeline.edge_refine`), when the refinement holds and still passes the accept
        test; else the fit. Its RMS is recomputed over the same inliers; the covariance is the fit's."""
        m = np.asarray(pose.inlier_mask, bool) & np.all(np.isfinite(uv), axis=1) & (conf > 0)
        xyz, w = self.keypoints[m], conf[m]
        uv_ideal = self.undistort(uv[m])
        if self.rings is not None:
            xyz = self.rings.place(xyz, uv_ideal, pose.R_m2c, pose.t_m2c, self.K)
        out = self.refiner(crop, A, pose.R_m2c, pose.t_m2c, xyz, uv_ideal, w,
                           self.config.robust_scale_cells * px_per_cell)
        if out is None:
            return pose
        R, t, _ = out
        r2 = np.sum((project(xyz, R, t, self.K) - uv_ideal) ** 2, axis=1)
        rms = float(np.sqrt(np.sum(w * r2) / np.sum(w))) if len(w) and np.sum(w) > 0 else float("inf")
        refined = dataclasses.replace(pose, R_m2c=R, t_m2c=t, rms=rms)
        return refined if self.acceptable(refined, px_per_cell) else pose

    def _same_place(self, R1: np.ndarray, t1: np.ndarray, R2: np.ndarray, t2: np.ndarray) -> bool:
        """Whether two poses put the object in nearly the same place: the second's symmetric
        equivalent nearest the first (which gives the same image) within 5 deg and 5 % of its distance."""
        R2, t2 = nearest_equivalent(R2, t2, self.symmetry, R1)
        return rotation_error_deg(R1, R2) < 5.0 and np.linalg.norm(t1 - t2) < 0.05 * abs(t1[2])

    def _gated(self, uv_ideal: np.ndarray, xyz: np.ndarray, warm: tuple, px_per_cell: float) -> np.ndarray | None:
        """Which keypoints (of those given) lie within ``predict_gate_cells`` of where the
        prediction ``warm`` projects them; None when the gate is off or keeps fewer than
        ``min_keypoints`` (a fast move the prediction missed: the fit then takes them all)."""
        cfg = self.config
        if cfg.predict_gate_cells <= 0.0:
            return None
        near = self._near_prediction(uv_ideal, xyz, warm, cfg.predict_gate_cells * px_per_cell)
        return near if np.count_nonzero(near) >= cfg.min_keypoints else None

    def _near_prediction(self, uv_ideal: np.ndarray, xyz: np.ndarray, warm: tuple, gate_px: float) -> np.ndarray:
        """(N,) bool: the keypoints found within ``gate_px`` of where the pose ``warm`` projects them."""
        R, t = np.asarray(warm[0], np.float64), np.asarray(warm[1], np.float64)
        if self.rings is not None:
            xyz = self.rings.place(xyz, uv_ideal, R, t, self.K)
        d = np.linalg.norm(uv_ideal - project(xyz, R, t, self.K), axis=1)
        return d <= gate_px

    def _matched_holds(self, matched, labelled) -> bool:
        """Whether the accepted matched-peak fit (the warm start's continuation) stands against an
        accepted fit of the labels. It does when it explains more keypoints; and when the labels'
        fit turns the pose by more than ``max_label_turn_deg`` (a jump, from another equivalent
        or the RANSAC retry), unless that fit explains ``confusable_margin`` more keypoints with no
        larger RMS: mixed-up labels otherwise pull a right pose a quarter or half turn away."""
        if fits_better(matched, labelled):
            return True
        cfg = self.config
        if rotation_error_deg(np.asarray(matched.R_m2c), np.asarray(labelled.R_m2c)) <= cfg.max_label_turn_deg:
            return False
        return not (labelled.n_inliers >= matched.n_inliers + cfg.confusable_margin and labelled.rms <= matched.rms)

    def _with_mask(self, res, idx: np.ndarray, accepted: bool, keypoints: tuple | None = None):
        """(the fit with its inlier mask spread over all K keypoints, accepted, keypoints); idx: the
        keypoints it used; keypoints: (uv (K, 2), conf (K,)) of matched peaks, or None."""
        mask = np.zeros(len(self.keypoints), bool)
        mask[idx] = np.asarray(res.inlier_mask, bool)
        pose = dataclasses.replace(res, inlier_mask=mask) if dataclasses.is_dataclass(res) else res
        return pose, accepted, keypoints

    def acceptable(self, res, px_per_cell: float, min_inliers: int | None = None) -> bool:
        """The accept test of a fit (see the module docstring); ``min_inliers`` overrides the config's."""
        cfg = self.config
        R, t = np.asarray(res.R_m2c), np.asarray(res.t_m2c)
        return bool(
            np.all(np.isfinite(R)) and np.all(np.isfinite(t)) and t[2] > 1e-3
            and res.n_inliers >= (cfg.min_inliers if min_inliers is None else min_inliers)
            and np.isfinite(res.rms) and res.rms <= cfg.max_rms_cells * px_per_cell
            and cfg.min_extent <= self.extent(R, t, px_per_cell) <= cfg.max_extent
        )

    def extent(self, R: np.ndarray, t: np.ndarray, px_per_cell: float) -> float:
        """The longer side of the box of the object's keypoints projected with (R, t), as a
        fraction of the crop's side (0 when a keypoint falls behind the camera)."""
        uv = project(self.keypoints, R, t, self.K)
        if not np.all(np.isfinite(uv)):
            return 0.0
        side = float(np.max(uv.max(0) - uv.min(0)))
        return side / (px_per_cell * self.heatmap_size)
