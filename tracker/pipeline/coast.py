"""Edges carry a track through frames where the keypoints fail.

While tracking, a frame's keypoint fit can fail with the object in plain view: a bottle seen along
its axis (its axis keypoints stack, its rim keypoints fade to 0.1-0.4), a hand over half of it,
motion blur. The motion prediction is then still close, and the object's outline is still in the
crop. :class:`EdgeCoast` refines the prediction on the crop's edges alone
(:class:`tracker.pipeline.edge_refine.EdgeRefiner` with no keypoints: RAPiD's step, Harris and
Stennett 1990) and reports it when the refinement holds (enough edge points found, a bounded
move) and the refined outline lies on the crop's edges (:meth:`tracker.pipeline.edges.EdgeScorer.score`
at least ``min_score``). A pose from edges alone can slide along an outline that does not pin it
(a bar over one end of a bottle), so at most ``max_frames`` frames in a row are carried this way;
the keypoints must take the track back before then. An object with confusable turns (a plain
box, :mod:`tracker.objects.confusable`) never coasts: a turned pose's outline fits the same edges,
so a wrong track that losing it and searching again would have mended is held instead (the plain
box's development sequences lost 1.1 points of ADD-S that way, benchmarks/RESULTS.md).

A carried frame has no keypoint fit: its pose has no inliers, an infinite RMS and an undetermined
covariance, so its score is 0 and it reports no standard deviations. The tracker marks it
``mode = 'coast'``.
"""

from __future__ import annotations

import dataclasses

import numpy as np

from tracker.pipeline.edge_refine import EdgeRefiner
from tracker.pipeline.edges import crop_intrinsics
from tracker.pipeline.pose_result import PoseResult

_NO_POINTS = (np.zeros((0, 3)), np.zeros((0, 2)), np.zeros(0))


class EdgeCoast:
    """The motion prediction refined on a failed pass's crop edges (see the module docstring).

    refiner: the :class:`EdgeRefiner` (its scorer renders the object's edges). max_frames: frames
    in a row a track may be carried. min_score: the least edge score (0..1) of a carried pose.
    """

    def __init__(self, refiner: EdgeRefiner, max_frames: int, min_score: float):
        self.refiner, self.max_frames, self.min_score = refiner, int(max_frames), float(min_score)

    def __call__(self, p, R: np.ndarray, t: np.ndarray, carried: int):
        """The failed pass ``p`` (a :class:`~tracker.pipeline.keypoint_pass.PassResult`, its crop
        cut around the prediction) with the prediction (R (3, 3), t (3,) mm) refined on its crop's
        edges as an accepted pose, or None: ``carried`` frames in a row already carried (the
        limit reached), too few edges found, a move past the refinement's bounds, or an outline
        that scores below ``min_score``."""
        if carried >= self.max_frames:
            return None
        out = self.refiner(p.crop, p.affine, R, t, *_NO_POINTS, 1.0)
        if out is None:
            return None
        R2, t2, _ = out
        edges = self.refiner.edges
        if edges.score(edges.image(p.crop), crop_intrinsics(self.refiner.K, p.affine), R2, t2) < self.min_score:
            return None
        k = len(p.conf)
        pose = PoseResult(R2, t2, float("inf"), 0, np.zeros(k, bool), np.full((6, 6), np.inf), 0, False)
        return dataclasses.replace(p, pose=pose, accepted=True)
