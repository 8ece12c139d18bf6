"""What a :class:`~benchmarks.runs.PipelineRun` leaves in the bench's outputs: its entry in the
JSON document (:func:`summarise`: speed, per-stage percentiles, accuracy) and its poses as a BOP
results CSV (:func:`write_poses_csvs`), which ``kptrack eval`` replays with the same score.

Accuracy comes from the one scorer, :func:`tracker.eval.evaluate.evaluate_scene`, on the poses
aligned with the ground truth by :func:`tracker.eval.estimates.estimates_from_poses`: ADD(-S)
< 0.1 d and 2D projection < 5 px over the frames >= 50 % visible, a missing pose counting as a
failure.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any, Sequence

import numpy as np

from benchmarks.report import percentiles_ms
from benchmarks.runs import PipelineRun
from benchmarks.sequence import BenchSequence, first_frames
from tracker.eval.estimates import MIN_POSE_SCORE, estimates_from_poses
from tracker.eval.evaluate import EvalConfig, evaluate_scene
from tracker.formats.bop_results import BopResult, write_results_csv

OBJ_ID = 1
# the modes of frames on the tracking path (the predicted crop): keypoint fits and edge-coasted frames
TRACKING_MODES = ("track", "coast")


def accuracy(run: PipelineRun, seq: BenchSequence, obj, n: int) -> dict[str, Any]:
    """The scorer's rates and error medians for the run's first ``n`` poses (see the module docstring)."""
    gt = first_frames(seq.gt, n)
    s = evaluate_scene(obj, gt, estimates_from_poses(gt, run.poses[:n]), EvalConfig(poses="", dataset=""))
    a = s["aggregate"]
    r = a["rates"]["visible"]
    return {
        "frames_scored": r["frames"],
        "metric": a["ad_metric"],
        "add_lt_0.1d": r["ad_lt_0.1d"],
        "proj2d_lt_5px": r["proj2d_lt_5px"],
        "5cm5deg": r["5cm5deg"],
        "estimated": r["estimated"],
        "median_rot_deg": a["errors_visible"]["rot_deg"]["median"],
        "median_trans_mm": a["errors_visible"]["trans_mm"]["median"],
        "jitter": a["jitter"],
        "jitter_acceleration": a["jitter_acceleration"],
        "recovery_frames": a["occlusion"]["recovery_frames"],
    }


def summarise(run: PipelineRun, seq: BenchSequence, obj, n: int) -> dict[str, Any]:
    """The run's entry in the bench document: fps (1000 / mean and / median end-to-end ms, all and
    tracking-path frames, :data:`TRACKING_MODES`), per-stage percentiles (all and tracking-path
    frames) and accuracy."""
    tracking = [m in TRACKING_MODES for m in run.modes]
    stages = {k: percentiles_ms([x / 1e3 for x in v]) for k, v in run.timings.items()}
    stages_track = {
        k: percentiles_ms([x / 1e3 for x, tr in zip(v, tracking) if tr]) for k, v in run.timings.items()
    } if any(tracking) else {}
    e2e = np.asarray(run.timings["end_to_end"], np.float64)
    step = np.asarray(run.timings["step"], np.float64)
    e2e_tr = e2e[np.asarray(tracking, bool)] if any(tracking) else np.zeros(0)
    return {
        "name": run.name,
        "device": run.device,
        "provider": run.provider,
        "note": run.note,
        "frames": n,
        "tracking_frames": int(sum(tracking)),
        "fps": 1e3 / float(e2e.mean()) if e2e.size else None,
        # the median is robust to other processes stealing the CPU on a shared machine
        "fps_p50": 1e3 / float(np.median(e2e)) if e2e.size else None,
        "fps_step_only": 1e3 / float(step.mean()) if step.size else None,
        "fps_tracking": 1e3 / float(e2e_tr.mean()) if e2e_tr.size else None,
        "fps_tracking_p50": 1e3 / float(np.median(e2e_tr)) if e2e_tr.size else None,
        "wall_fps": n / run.wall_s if run.wall_s > 0 else None,
        "latency_ms": stages,
        "latency_ms_tracking": stages_track,
        "accuracy": accuracy(run, seq, obj, n),
    }


def write_poses_csv(run: PipelineRun, seq: BenchSequence, path: Path) -> Path:
    """The run's poses as a BOP results CSV (time: the step's seconds); frames without a pose have no row."""
    rows = []
    for i, p in enumerate(run.poses):
        if p is None:
            continue
        rows.append(BopResult(seq.gt.scene_id, int(seq.gt.im_ids[i]), OBJ_ID, max(float(p[2]), MIN_POSE_SCORE), p[0], p[1],
                              run.timings["step"][i] / 1e3))
    return write_results_csv(path, rows)


def write_poses_csvs(runs: Sequence[PipelineRun], seq: BenchSequence, out: Path) -> dict[str, str]:
    """One CSV per run in ``out``: ``poses_kptrack_<device>.csv`` for kptrack, ``poses_<letter>.csv``
    for peer (letter). Returns {'kptrack [<device>]' or the peer's name: path}."""
    csvs = {}
    for r in runs:
        peer = r.name.startswith("(")
        tag = r.name.split(")")[0].strip("(") if peer else f"kptrack_{r.device}"
        key = r.name if peer else f"{r.name} [{r.device}]"
        csvs[key] = str(write_poses_csv(r, seq, out / f"poses_{tag}.csv"))
    return csvs
