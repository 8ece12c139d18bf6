"""The one scorer: estimated poses against one BOP scene's ground truth, for ``kptrack eval``,
``kptrack bench`` and ``kptrack demo`` (:func:`evaluate_scene`), and the ``kptrack eval`` run
around it (:func:`run_eval`).

Per frame (formulas in :mod:`tracker.eval.metrics` and :mod:`tracker.geometry`) and in aggregate:

* ADD and ADD-S (Hinterstoisser et al., "Model Based Training, Detection and Pose Estimation of
  Texture-Less 3D Objects in Heavily Cluttered Scenes", ACCV 2012): mean distance of the model's
  vertices under the two poses (ADD), or to the nearest transformed vertex (ADD-S, used for objects
  with symmetries in models_info). A frame is correct when the error is below 0.1 x diameter.
* 2D projection error (Brachmann et al., "Uncertainty-Driven 6D Pose Estimation of Objects and
  Scenes from a Single RGB Image", CVPR 2016): mean pixel distance of the projected vertices, < 5 px.
* MSSD (mm) and MSPD (px) of the BOP Challenge (Hodaň et al., ECCVW 2020): the largest point
  distance, minimised over the symmetries (continuous ones discretised as bop_toolkit does,
  :func:`tracker.objects.symmetry.bop_continuous_steps`); rates at 0.1 d and 5 px.
* rotation (geodesic, degrees) and translation (mm) errors, and 5cm5deg (Shotton et al., "Scene
  Coordinate Regression Forests for Camera Relocalization in RGB-D Images", CVPR 2013).
* keypoint error: mean pixel distance of the object's keypoints projected with the estimated and
  the GT pose.
* jitter on static GT segments, acceleration jitter on every frame, and recovery after full
  occlusion (``visib_fract < 0.1`` for >= 10 frames): see :mod:`tracker.eval.temporal`.
* headline: the demo's summary (:func:`headline`): ADD(-S) and 2D rates and medians over the frames
  at least ``min_visib`` visible, a frame without a pose counting as an infinite error.

A missing estimate (no CSV row, or a row with score <= 0, as ``kptrack track`` writes for a lost
object) counts as a failure in every rate. The 'visible' rates count frames where the object is
>= ``min_visib`` (50 %) visible, as in the demo's targets; rates over all frames are given too.
Result rows that fit no GT frame (another sequence's CSV, the wrong --dataset) are counted and
warned about once (:func:`evaluate`).

Reads BOP (scene_gt.json, scene_gt_info.json, scene_camera.json, results CSV). Writes, under
``--out``: ``metrics.json`` (config, aggregate, per-frame errors), ``errors_per_frame.csv``,
one ``errors_<scene_id>.png`` plot per scene (drawn with cv2), and per-frame errors in the
bop_toolkit error-file layout (:mod:`tracker.eval.reports`, :mod:`tracker.eval.plots`).
"""

from __future__ import annotations

import logging
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any, Sequence

import numpy as np

from tracker.errors import KptrackError
from tracker.eval import metrics
from tracker.eval.estimates import Estimates, align_estimates, estimates_from_poses, unmatched_rows
from tracker.eval.plots import plot_errors
from tracker.eval.reports import write_bop_errors, write_metrics_json, write_per_frame_csv
from tracker.eval.temporal import acceleration_jitter, jitter, occlusion_episodes, pose_jumps, recovery_frames, static_segments
from tracker.formats.bop_results import BopResult, read_results_csv
from tracker.formats.bop_scene import SceneGt, find_scene_dirs, load_scene_gt
from tracker.geometry import rotation_error_deg, translation_error
from tracker.objects import load_object
from tracker.objects.symmetry import bop_continuous_steps, symmetry_transforms

log = logging.getLogger(__name__)

# the point subset every score uses, so eval, bench and demo agree
N_POINTS = 1000


@dataclass(frozen=True)
class EvalConfig:
    """Options of ``kptrack eval``. Thresholds: ``add_frac`` of the diameter, ``proj_px`` pixels."""

    poses: str
    dataset: str
    object: str = "default"
    out: str | None = None
    obj_id: int = 1
    add_frac: float = 0.1
    proj_px: float = 5.0
    min_visib: float = 0.5
    static_trans_mm: float = 0.5
    static_rot_deg: float = 0.1
    static_min_frames: int = 5
    occl_visib: float = 0.1
    occl_min_frames: int = 10
    plot: bool = True


# ----------------------------------------------------------------------------- per-frame errors
def _pose_errors(obj, gt: SceneGt, est: Estimates) -> dict[str, np.ndarray]:
    """Per-frame errors (N,) float64, NaN where there is no estimate."""
    n = len(gt.im_ids)
    pts = metrics.sample_points(obj.vertices, N_POINTS)
    syms = symmetry_transforms(obj, bop_continuous_steps())  # (M, 4, 4), identity first
    kps = np.asarray(obj.keypoints, np.float64)
    out = {k: np.full(n, np.nan) for k in ("add_mm", "adds_mm", "ad_mm", "mssd_mm", "mspd_px", "proj2d_px", "rot_deg",
                                           "trans_mm", "kp_px")}
    sym = bool(obj.is_symmetric)
    for i in np.flatnonzero(est.valid):
        Re, te, Rg, tg, K = est.R_m2c[i], est.t_m2c[i], gt.R_m2c[i], gt.t_m2c[i], gt.K[i]
        out["add_mm"][i] = metrics.add_error(Re, te, Rg, tg, pts)
        out["adds_mm"][i] = metrics.adds_error(Re, te, Rg, tg, pts)
        # metrics.add_s_error's choice, without computing ADD-S a second time
        out["ad_mm"][i] = out["adds_mm"][i] if sym else out["add_mm"][i]
        out["mssd_mm"][i] = metrics.mssd_error(Re, te, Rg, tg, pts, syms)
        d = metrics.projected_distances(Re, te, Rg, tg, K, pts, syms)  # MSPD and 2D error from one projection
        out["mspd_px"][i] = metrics.mspd_from_distances(d)
        out["proj2d_px"][i] = metrics.proj2d_from_distances(d)
        out["rot_deg"][i] = rotation_error_deg(Re, Rg)
        out["trans_mm"][i] = translation_error(te, tg)
        if len(kps):
            out["kp_px"][i] = metrics.keypoint_error(Re, te, Rg, tg, kps, K)
    return out


# ----------------------------------------------------------------------------- aggregation
def _rate(ok: np.ndarray, mask: np.ndarray) -> float | None:
    n = int(np.count_nonzero(mask))
    return float(np.count_nonzero(ok & mask) / n) if n else None


def _summary(a: np.ndarray) -> dict[str, float | None]:
    a = a[np.isfinite(a)]
    if a.size == 0:
        return {"mean": None, "median": None, "p90": None}
    return {"mean": float(a.mean()), "median": float(np.median(a)), "p90": float(np.percentile(a, 90))}


def headline(ad_mm: np.ndarray, proj2d_px: np.ndarray, valid: np.ndarray, visib_fract: np.ndarray, *,
             diameter_mm: float, symmetric: bool, cfg: EvalConfig) -> dict[str, Any]:
    """The demo's accuracy summary, per frame as the demo always counted it (a missing pose is an infinite error).

    ad_mm, proj2d_px: (N,) per-frame ADD(-S) mm and 2D projection px; valid: (N,) bool (has a pose);
    visib_fract: (N,), NaN counting as fully visible (a frame without scene_gt_info). Frames below
    ``cfg.min_visib`` are counted in 'n_low_visibility' and not scored; a scored frame without a
    pose has an infinite error, so it fails both rates and weighs in the medians (inf when over half
    the frames miss). With no frame scored the rates and medians are NaN.
    """
    with np.errstate(invalid="ignore"):
        scored = ~(np.asarray(visib_fract, np.float64) < cfg.min_visib)
    a = np.where(valid, ad_mm, np.inf)[scored]
    p = np.where(valid, proj2d_px, np.inf)[scored]
    n = len(a)
    thr = cfg.add_frac * diameter_mm
    return {
        "n_scored": n,
        "n_low_visibility": int(np.count_nonzero(~scored)),
        "n_missing": int(np.count_nonzero(~np.isfinite(a))),
        "metric": "ADD-S" if symmetric else "ADD",
        "add_threshold_mm": thr,
        "frac_add": float(np.mean(a < thr)) if n else float("nan"),
        "frac_proj": float(np.mean(p < cfg.proj_px)) if n else float("nan"),
        "median_add_mm": float(np.median(a)) if n else float("nan"),
        "median_proj_px": float(np.median(p)) if n else float("nan"),
    }


def evaluate_scene(obj, gt: SceneGt, est: Estimates, cfg: EvalConfig) -> dict[str, Any]:
    """All metrics of one scene: {'scene_id', 'scene_dir', 'aggregate': {...}, 'per_frame': {name: list}}.

    obj: an ObjectModel (vertices, keypoints, diameter mm, is_symmetric, symmetries_discrete).
    'aggregate' holds 'rates' (visible / all frames), 'errors_visible', 'jitter',
    'jitter_acceleration', 'jumps' (rotations > 30 deg beyond the GT's between frames, sorted by whether the
    two poses pass ADD(-S)), 'occlusion' and 'headline' (:func:`headline`)."""
    err = _pose_errors(obj, gt, est)
    d = float(obj.diameter)
    with np.errstate(invalid="ignore"):
        ad_ok = est.valid & (err["ad_mm"] < cfg.add_frac * d)
        add_ok = est.valid & (err["add_mm"] < cfg.add_frac * d)
        adds_ok = est.valid & (err["adds_mm"] < cfg.add_frac * d)
        proj_ok = est.valid & (err["proj2d_px"] < cfg.proj_px)
        mssd_ok = est.valid & (err["mssd_mm"] < cfg.add_frac * d)
        mspd_ok = est.valid & (err["mspd_px"] < cfg.proj_px)
        cm5_ok = est.valid & (err["rot_deg"] < 5.0) & (err["trans_mm"] < 50.0)
    n = len(gt.im_ids)
    all_mask = np.ones(n, bool)
    vis = gt.visib_fract
    has_vis = bool(np.any(np.isfinite(vis)))
    # without scene_gt_info.json every frame counts as visible
    vis_mask = (np.nan_to_num(vis, nan=0.0) >= cfg.min_visib) if has_vis else all_mask
    rates = {}
    for name, mask in (("visible", vis_mask), ("all", all_mask)):
        rates[name] = {
            "frames": int(np.count_nonzero(mask)),
            "estimated": _rate(est.valid, mask),
            "ad_lt_0.1d": _rate(ad_ok, mask),
            "add_lt_0.1d": _rate(add_ok, mask),
            "adds_lt_0.1d": _rate(adds_ok, mask),
            "proj2d_lt_5px": _rate(proj_ok, mask),
            "mssd_lt_0.1d": _rate(mssd_ok, mask),
            "mspd_lt_5px": _rate(mspd_ok, mask),
            "5cm5deg": _rate(cm5_ok, mask),
        }
    segs = static_segments(gt.R_m2c, gt.t_m2c, trans_mm=cfg.static_trans_mm, rot_deg=cfg.static_rot_deg,
                           min_frames=cfg.static_min_frames)
    episodes = occlusion_episodes(vis, thr=cfg.occl_visib, min_frames=cfg.occl_min_frames) if has_vis else []
    rec = recovery_frames(episodes, ad_ok)
    rec_ok = [r for r in rec if r is not None]
    aggregate = {
        "frames": n,
        "symmetric": bool(obj.is_symmetric),
        "ad_metric": "ADD-S" if obj.is_symmetric else "ADD",
        "diameter_mm": d,
        "rates": rates,
        "errors_visible": {k: _summary(v[vis_mask]) for k, v in err.items()},
        "jitter": jitter(gt, est, segs),
        "jitter_acceleration": acceleration_jitter(gt, est),
        "jumps": pose_jumps(gt, est, correct=ad_ok),
        "occlusion": {
            "episodes": [list(e) for e in episodes],
            "recovery_frames": rec,
            "recovered": len(rec_ok),
            "not_recovered": len(rec) - len(rec_ok),
            "recovery_mean": float(np.mean(rec_ok)) if rec_ok else None,
            "recovery_max": int(max(rec_ok)) if rec_ok else None,
        },
        "headline": headline(err["ad_mm"], err["proj2d_px"], est.valid, vis, diameter_mm=d,
                             symmetric=bool(obj.is_symmetric), cfg=cfg),
    }
    per_frame = {
        "im_id": gt.im_ids.tolist(),
        "visib_fract": [None if not np.isfinite(v) else float(v) for v in vis],
        "estimated": est.valid.tolist(),
        "score": est.score.tolist(),
        **{k: [None if not np.isfinite(x) else float(x) for x in v] for k, v in err.items()},
        "ad_correct": ad_ok.tolist(),
        "proj2d_correct": proj_ok.tolist(),
    }
    return {"scene_id": gt.scene_id, "scene_dir": str(gt.scene_dir), "aggregate": aggregate, "per_frame": per_frame}


def score_tracked(results: Sequence, scene: str | Path, obj) -> dict[str, Any]:
    """The scorer's headline for a tracker's per-frame results against a BOP scene's ground truth
    (``kptrack demo``, ``kptrack adapt``). results: objects with ``index``, ``has_pose``,
    ``R_m2c``, ``t_m2c`` and ``score`` (the pipeline's ``FrameResult``); a frame without one has no pose.
    The headline's keys, plus 'jumps': :func:`tracker.eval.temporal.pose_jumps`'s count ('jumps', 'pairs',
    'kinds': every jump by the poses it joins; 'between_correct' are flips between two ADD(-S)-correct poses)."""
    gt = load_scene_gt(scene)
    by_index = {r.index: r for r in results}
    poses = [None if (r := by_index.get(int(i))) is None or not r.has_pose else (r.R_m2c, r.t_m2c, r.score) for i in gt.im_ids]
    scene_doc = evaluate_scene(obj, gt, estimates_from_poses(gt, poses), EvalConfig(poses="", dataset=str(scene)))
    jumps = scene_doc["aggregate"]["jumps"]
    return {**scene_doc["aggregate"]["headline"],
            "jumps": {"jumps": jumps["jumps"], "pairs": jumps["pairs"], "kinds": dict(jumps["kinds"])}}


def _combine(scenes: list[dict[str, Any]]) -> dict[str, Any]:
    """Frame-weighted rates over all scenes."""
    out: dict[str, Any] = {}
    for part in ("visible", "all"):
        tot = sum(s["aggregate"]["rates"][part]["frames"] for s in scenes)
        r: dict[str, Any] = {"frames": tot}
        for key in scenes[0]["aggregate"]["rates"][part]:
            if key == "frames":
                continue
            num = sum((s["aggregate"]["rates"][part][key] or 0.0) * s["aggregate"]["rates"][part]["frames"] for s in scenes)
            r[key] = num / tot if tot else None
        out[part] = r
    rec = [x for s in scenes for x in s["aggregate"]["occlusion"]["recovery_frames"]]
    ok = [x for x in rec if x is not None]
    out["recovery_frames"] = rec
    out["recovery_mean"] = float(np.mean(ok)) if ok else None
    return out


# ----------------------------------------------------------------------------- entry points
def evaluate(obj, scenes_gt: Sequence[SceneGt], results: Sequence[BopResult], cfg: EvalConfig) -> dict[str, Any]:
    """Score results against several scenes' GT. Returns {'scenes': [...], 'overall': {...},
    'unmatched_rows': {'unknown_im_id', 'unknown_scene_id'}}; warns once when rows fit no GT frame."""
    unmatched = unmatched_rows(scenes_gt, results, cfg.obj_id)
    if any(unmatched.values()):
        log.warning(
            "%s: %d row(s) of obj_id %d have an im_id that is not a ground-truth frame of their scene, and %d a "
            "scene_id not among the dataset's scenes %s; they are not scored. The CSV is for another sequence, "
            "or --dataset is wrong.", cfg.poses or "poses", unmatched["unknown_im_id"], cfg.obj_id,
            unmatched["unknown_scene_id"], sorted(g.scene_id for g in scenes_gt))
    scenes = [evaluate_scene(obj, g, align_estimates(g, results, cfg.obj_id), cfg) for g in scenes_gt]
    return {"scenes": scenes, "overall": _combine(scenes), "unmatched_rows": unmatched}


def _scene_dirs(dataset: str | Path) -> list[Path]:
    root = Path(dataset)
    try:
        return find_scene_dirs(root)
    except KptrackError:
        # A root holding several splits (training images and a test sequence, as `kptrack synth`
        # writes them): poses are scored against the test split when there is exactly one.
        tests = sorted(p for p in root.iterdir() if p.is_dir() and p.name.startswith("test")) if root.is_dir() else []
        if len(tests) == 1:
            return find_scene_dirs(tests[0])
        raise


def run_eval(cfg: EvalConfig) -> dict[str, Any]:
    """Load the CSV, dataset and object, score, and write metrics.json, errors_per_frame.csv, the PNGs
    and the bop_toolkit-style error files into ``cfg.out`` (default: ``<poses stem>_eval`` beside the CSV).
    Returns :func:`evaluate`'s result with 'out' (the folder) and 'plots' (PNG paths)."""
    results = read_results_csv(cfg.poses)
    obj = load_object(cfg.object)
    scene_dirs = _scene_dirs(cfg.dataset)
    wanted = {r.scene_id for r in results if r.obj_id == cfg.obj_id}
    if len(scene_dirs) > 1 and wanted:
        chosen = [d for d in scene_dirs if d.name.isdigit() and int(d.name) in wanted]
        scene_dirs = chosen or scene_dirs
    gts = [load_scene_gt(d, cfg.obj_id) for d in scene_dirs]
    if results and not any(r.scene_id in {g.scene_id for g in gts} for r in results):
        raise KptrackError(
            f"{cfg.poses}: no row's scene_id matches the dataset's scenes ({sorted(g.scene_id for g in gts)}). "
            "Pass the dataset the poses were computed on."
        )
    res = evaluate(obj, gts, results, cfg)
    out = Path(cfg.out) if cfg.out else Path(cfg.poses).with_name(Path(cfg.poses).stem + "_eval")
    try:
        out.mkdir(parents=True, exist_ok=True)
    except OSError as e:
        raise KptrackError(f"{out}: cannot create the output folder ({e.strerror}). Choose a writable --out.") from None
    pngs = []
    if cfg.plot:
        for s in res["scenes"]:
            pngs.append(str(plot_errors(s, out / f"errors_{int(s['scene_id']):06d}.png", diameter_mm=float(obj.diameter),
                                        add_frac=cfg.add_frac, proj_px=cfg.proj_px)))
    write_per_frame_csv(res["scenes"], out / "errors_per_frame.csv")
    write_bop_errors(res["scenes"], out, cfg.obj_id)
    doc = {"config": asdict(cfg), "object": getattr(obj, "name", str(cfg.object)), "overall": res["overall"],
           "unmatched_rows": res["unmatched_rows"], "scenes": res["scenes"], "plots": pngs}
    write_metrics_json(doc, out / "metrics.json")
    res["out"] = str(out)
    res["plots"] = pngs
    return res
