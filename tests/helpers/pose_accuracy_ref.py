"""An independent reference for the scorer's headline: the per-frame accumulator the demo used
before it scored with :func:`tracker.eval.evaluate.evaluate_scene`. Tests only."""

from dataclasses import dataclass, field

import numpy as np

from tracker.eval.metrics import ADD_THRESHOLD, MIN_VISIB_FRACT, PROJ_THRESHOLD_PX, add_s_error, proj2d_error, sample_points


@dataclass
class PoseAccuracy:
    """Accumulates per-frame errors over a sequence and summarises them.

    pts: (N, 3) mm model points; diameter: mm; symmetric: use ADD-S; symmetries: discrete (4, 4)
    transforms for the projection error. Frames with visib_fract < min_visib_fract are counted
    but not scored. A frame with no estimate counts as a failure on both criteria.
    """

    pts: np.ndarray
    diameter: float
    symmetric: bool = False
    symmetries: list = field(default_factory=list)
    min_visib_fract: float = MIN_VISIB_FRACT
    add: list[float] = field(default_factory=list)  # mm, inf for a missing estimate
    proj: list[float] = field(default_factory=list)  # px, inf for a missing estimate
    skipped_low_visibility: int = 0

    @classmethod
    def for_object(cls, obj, n_points: int = 1000, **kw) -> "PoseAccuracy":
        """From an ObjectModel (vertices, diameter, is_symmetric, symmetries_discrete)."""
        return cls(
            pts=sample_points(obj.vertices, n_points), diameter=float(obj.diameter), symmetric=bool(obj.is_symmetric),
            symmetries=list(obj.symmetries_discrete or []), **kw,
        )

    def update(self, R_est, t_est, R_gt, t_gt, K, visib_fract: float = 1.0) -> None:
        """Score one frame. R_est/t_est None = no estimate (lost)."""
        if visib_fract < self.min_visib_fract:
            self.skipped_low_visibility += 1
            return
        if R_est is None or t_est is None:
            self.add.append(np.inf)
            self.proj.append(np.inf)
            return
        self.add.append(add_s_error(R_est, t_est, R_gt, t_gt, self.pts, self.symmetric))
        self.proj.append(proj2d_error(R_est, t_est, R_gt, t_gt, self.pts, K, self.symmetries))

    def summary(self) -> dict:
        """n_scored, frac_add (ADD(-S) < 0.1 d), frac_proj (< 5 px), median errors, missing count."""
        a = np.asarray(self.add, np.float64)
        p = np.asarray(self.proj, np.float64)
        n = len(a)
        return {
            "n_scored": n,
            "n_low_visibility": self.skipped_low_visibility,
            "n_missing": int(np.count_nonzero(~np.isfinite(a))),
            "metric": "ADD-S" if self.symmetric else "ADD",
            "add_threshold_mm": ADD_THRESHOLD * self.diameter,
            "frac_add": float(np.mean(a < ADD_THRESHOLD * self.diameter)) if n else float("nan"),
            "frac_proj": float(np.mean(p < PROJ_THRESHOLD_PX)) if n else float("nan"),
            "median_add_mm": float(np.median(a)) if n else float("nan"),
            "median_proj_px": float(np.median(p)) if n else float("nan"),
        }
