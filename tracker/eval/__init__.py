"""eval: scoring estimated poses against ground truth (see the README's Design section).

metrics (ADD, ADD-S, MSSD, MSPD, 2D projection and keypoint errors), estimates (poses aligned with GT frames),
temporal (jitter, occlusion recovery), evaluate (the one scorer and ``kptrack eval``), plots and
reports (what ``kptrack eval`` writes). viz draws figures of the keypoint pass.
"""

from tracker.eval.estimates import Estimates, align_estimates, estimates_from_poses, unmatched_rows
# not the function `evaluate`: the name would hide the module tracker.eval.evaluate
from tracker.eval.evaluate import EvalConfig, evaluate_scene, headline, run_eval
from tracker.eval.metrics import (
    add_error, add_s_error, adds_error, keypoint_error, mspd_error, mssd_error, proj2d_error, sample_points,
)
from tracker.eval.plots import plot_errors
from tracker.eval.reports import format_summary
from tracker.eval.temporal import acceleration_jitter, jitter, occlusion_episodes, recovery_frames, static_segments

__all__ = [
    "Estimates", "align_estimates", "estimates_from_poses", "unmatched_rows",
    "EvalConfig", "evaluate_scene", "headline", "run_eval",
    "add_error", "add_s_error", "adds_error", "keypoint_error", "mspd_error", "mssd_error", "proj2d_error", "sample_points",
    "plot_errors", "format_summary",
    "acceleration_jitter", "jitter", "occlusion_episodes", "recovery_frames", "static_segments",
]
