"""``kptrack eval``: score estimated poses (BOP results CSV) against a BOP dataset's ground truth.

Per frame and in aggregate:

* ADD and ADD-S (Hinterstoisser et al., "Model Based Training, Detection and Pose Estimation of
  Texture-Less 3D Objects in Heavily Cluttered Scenes", ACCV 2012): mean distance of the model's
  vertices under the two poses (ADD), or to the nearest transformed vertex (ADD-S, used for objects
  with symmetries in models_info). A frame is correct when the error is below 0.1 x diameter.
* 2D projection error (Brachmann et al., "Uncertainty-Driven 6D Pose Estimation of Objects and
  Scenes from a Single RGB Image", CVPR 2016): mean pixel distance of the projected vertices, < 5 px.
* rotation (geodesic, degrees) and translation (mm) errors, and 5cm5deg (Shotton et al., "Scene
  Coordinate Regression Forests for Camera Relocalization in RGB-D Images", CVPR 2013).
* keypoint error: mean pixel distance of the object's keypoints projected with the estimated and
  the GT pose.
* jitter: on static segments of the GT (runs of >= ``static_min_frames`` frames whose GT moves
  less than ``static_trans_mm`` and ``static_rot_deg`` between frames), the frame-to-frame change of
  the estimate beyond the GT's own change: ``|dt_est - dt_gt|`` (mm) and the angle of
  ``dR_est dR_gt^T`` (deg), with ``dR = R_i R_{i-1}^T``, ``dt = t_i - t_{i-1}``.
* acceleration jitter: the same idea on every frame, static or not: the second difference of
  the estimate beyond the GT's (:func:`acceleration_jitter`), so sequences that never hold still
  still get a noise figure.
* recovery after occlusion: for every full-occlusion episode (``visib_fract < 0.1`` for >= 10
  consecutive frames) that ends before the sequence does, the number of frames from the first
  visible frame after it to the first frame with ADD(-S) < 0.1 d (0 = correct at once; None =
  never recovered).

A missing estimate (no CSV row, or a row with score <= 0, as ``kptrack track`` writes for a lost
object) counts as a failure in every rate. Headline rates count frames where the object is
>= ``min_visib`` (50 %) visible, as in the demo's targets; rates over all frames are given too.

Reads BOP (scene_gt.json, scene_gt_info.json, scene_camera.json, results CSV). Writes, under
``--out``: ``metrics.json`` (config, aggregate, per-frame errors), ``errors_per_frame.csv``,
one ``errors_<scene_id>.png`` plot per scene (drawn with cv2), and per-frame errors in the
bop_toolkit error-file layout, ``bop_errors/<type>/errors_<scene_id:06d>.json`` for
``ad`` (ADD or ADD-S by symmetry), ``proj``, ``re`` and ``te``.
"""

from __future__ import annotations

import csv
import json
import logging
import math
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any, Sequence

import cv2
import numpy as np

from tracker.formats import bop
from tracker.formats.bop_scene import SceneGt, load_scene_gt
from tracker.errors import KptrackError
from tracker.geometry import project, rotation_error_deg

log = logging.getLogger(__name__)


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


@dataclass
class Estimates:
    """Estimated poses aligned with a SceneGt: R_m2c (N, 3, 3), t_m2c (N, 3) mm (NaN where missing),
    score (N,), valid (N,) bool, time_s (N,) (-1 unknown)."""

    R_m2c: np.ndarray
    t_m2c: np.ndarray
    score: np.ndarray
    valid: np.ndarray
    time_s: np.ndarray = field(default_factory=lambda: np.zeros(0))


# ----------------------------------------------------------------------------- loading
def _scene_dirs(dataset: str | Path) -> list[Path]:
    root = Path(dataset)
    try:
        return bop.find_scene_dirs(root)
    except KptrackError:
        # A root holding several splits (training images and a test sequence, as `kptrack synth`
        # writes them): poses are scored against the test split when there is exactly one.
        tests = sorted(p for p in root.iterdir() if p.is_dir() and p.name.startswith("test")) if root.is_dir() else []
        if len(tests) == 1:
            return bop.find_scene_dirs(tests[0])
        raise


def align_estimates(gt: SceneGt, results: Sequence[bop.BopResult], obj_id: int = 1) -> Estimates:
    """Pick, for each GT frame, the highest-scoring result row of (scene, im_id, obj_id) with score > 0."""
    n = len(gt.im_ids)
    R = np.full((n, 3, 3), np.nan)
    t = np.full((n, 3), np.nan)
    score = np.zeros(n)
    tm = np.full(n, -1.0)
    index = {int(i): k for k, i in enumerate(gt.im_ids)}
    for r in results:
        if r.scene_id != gt.scene_id or r.obj_id != obj_id or not r.score > 0:
            continue
        k = index.get(int(r.im_id))
        if k is None or r.score <= score[k]:
            continue
        if not (np.all(np.isfinite(r.R_m2c)) and np.all(np.isfinite(r.t_m2c))):
            continue
        R[k], t[k], score[k], tm[k] = r.R_m2c, r.t_m2c, r.score, r.time
    return Estimates(R, t, score, score > 0, tm)


# ----------------------------------------------------------------------------- per-frame errors
def _pose_errors(obj, gt: SceneGt, est: Estimates) -> dict[str, np.ndarray]:
    """Per-frame errors (N,) float64, NaN where there is no estimate."""
    from tracker.eval import metrics

    n = len(gt.im_ids)
    # the same point subset tracker.eval.metrics.PoseAccuracy uses, so `kptrack eval` and `kptrack demo` agree
    pts = metrics.sample_points(obj.vertices, 1000)
    syms = list(obj.symmetries_discrete or [])
    kps = np.asarray(obj.keypoints, np.float64)
    out = {k: np.full(n, np.nan) for k in ("add_mm", "adds_mm", "ad_mm", "proj2d_px", "rot_deg", "trans_mm", "kp_px")}
    sym = bool(obj.is_symmetric)
    for i in np.flatnonzero(est.valid):
        Re, te, Rg, tg, K = est.R_m2c[i], est.t_m2c[i], gt.R_m2c[i], gt.t_m2c[i], gt.K[i]
        out["add_mm"][i] = metrics.add_error(Re, te, Rg, tg, pts)
        out["adds_mm"][i] = metrics.adds_error(Re, te, Rg, tg, pts)
        out["ad_mm"][i] = out["adds_mm"][i] if sym else out["add_mm"][i]
        out["proj2d_px"][i] = metrics.proj2d_error(Re, te, Rg, tg, pts, K, syms)
        out["rot_deg"][i] = rotation_error_deg(Re, Rg)
        out["trans_mm"][i] = float(np.linalg.norm(te - tg))
        if len(kps):
            d = np.linalg.norm(project(kps, Re, te, K) - project(kps, Rg, tg, K), axis=1)
            out["kp_px"][i] = float(np.nanmean(d)) if np.any(np.isfinite(d)) else math.inf
    return out


# ----------------------------------------------------------------------------- temporal metrics
def _runs(mask: np.ndarray, min_len: int) -> list[tuple[int, int]]:
    """Maximal runs [start, end) of True in mask (N,) bool with length >= min_len."""
    m = np.concatenate([[False], np.asarray(mask, bool), [False]])
    d = np.diff(m.astype(np.int8))
    starts, ends = np.flatnonzero(d == 1), np.flatnonzero(d == -1)
    return [(int(s), int(e)) for s, e in zip(starts, ends) if e - s >= min_len]


def _relative_motion(R: np.ndarray, t: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Frame-to-frame motion: dR (N-1, 3, 3) = R_i R_{i-1}^T, dt (N-1, 3) = t_i - t_{i-1}."""
    return R[1:] @ np.swapaxes(R[:-1], -1, -2), t[1:] - t[:-1]


def static_segments(R_m2c: np.ndarray, t_m2c: np.ndarray, *, trans_mm: float = 0.5, rot_deg: float = 0.1,
                    min_frames: int = 5) -> list[tuple[int, int]]:
    """Frame ranges [start, end) where the GT pose is still: every consecutive pair moves less than
    ``trans_mm`` and ``rot_deg``, for at least ``min_frames`` frames. R_m2c (N, 3, 3); t_m2c (N, 3) mm."""
    n = len(t_m2c)
    if n < 2:
        return []
    dR, dt = _relative_motion(R_m2c, t_m2c)
    still = (np.linalg.norm(dt, axis=1) < trans_mm) & (np.asarray(rotation_error_deg(np.eye(3), dR)).reshape(-1) < rot_deg)
    # pair k joins frames k and k+1: a run of m still pairs is a static segment of m+1 frames
    return [(s, e + 1) for s, e in _runs(still, max(1, min_frames - 1))]


def jitter(gt: SceneGt, est: Estimates, segments: Sequence[tuple[int, int]]) -> dict[str, Any]:
    """Frame-to-frame change of the estimate beyond the GT's on static segments (see module doc)."""
    dt_err, dr_err = [], []
    if len(gt.im_ids) >= 2:
        dRg, dtg = _relative_motion(gt.R_m2c, gt.t_m2c)
        Re = np.where(est.valid[:, None, None], est.R_m2c, np.eye(3))
        te = np.where(est.valid[:, None], est.t_m2c, 0.0)
        dRe, dte = _relative_motion(Re, te)
        for s, e in segments:
            for k in range(s, e - 1):  # pair (k, k+1)
                if est.valid[k] and est.valid[k + 1]:
                    dt_err.append(float(np.linalg.norm(dte[k] - dtg[k])))
                    dr_err.append(rotation_error_deg(dRg[k], dRe[k]))
    a_t, a_r = np.asarray(dt_err), np.asarray(dr_err)

    def stats(a):
        if a.size == 0:
            return {"mean": None, "rms": None, "p90": None}
        return {"mean": float(a.mean()), "rms": float(np.sqrt(np.mean(a**2))), "p90": float(np.percentile(a, 90))}

    return {"pairs": int(a_t.size), "segments": [list(s) for s in segments], "trans_mm": stats(a_t), "rot_deg": stats(a_r)}


def acceleration_jitter(gt: SceneGt, est: Estimates) -> dict[str, Any]:
    """Frame-to-frame noise on moving segments too: the second difference of the estimate beyond
    the GT's, over every run of three consecutive estimated frames. Translation: RMS of
    ``|(t_{i+1} - 2 t_i + t_{i-1})_est - (same)_gt|`` (mm); rotation: RMS angle between
    ``dR_{i+1} dR_i^T`` of the estimate and of the GT (deg), ``dR_i = R_i R_{i-1}^T``. A smooth
    trajectory tracked exactly gives 0 whatever its speed; per-frame noise of sigma gives ~sqrt(6) sigma."""
    n = len(gt.im_ids)
    if n < 3:
        return {"triples": 0, "trans_mm_rms": None, "rot_deg_rms": None}
    v = est.valid
    ok = v[:-2] & v[1:-1] & v[2:]
    if not ok.any():
        return {"triples": 0, "trans_mm_rms": None, "rot_deg_rms": None}
    Re = np.where(v[:, None, None], est.R_m2c, np.eye(3))
    te = np.where(v[:, None], est.t_m2c, 0.0)
    a_t = (te[2:] - 2 * te[1:-1] + te[:-2]) - (gt.t_m2c[2:] - 2 * gt.t_m2c[1:-1] + gt.t_m2c[:-2])
    dRe, _ = _relative_motion(Re, te)
    dRg, _ = _relative_motion(gt.R_m2c, gt.t_m2c)
    ddRe = dRe[1:] @ np.swapaxes(dRe[:-1], -1, -2)
    ddRg = dRg[1:] @ np.swapaxes(dRg[:-1], -1, -2)
    a_r = np.asarray(rotation_error_deg(ddRg[ok], ddRe[ok])).reshape(-1)
    return {"triples": int(ok.sum()), "trans_mm_rms": float(np.sqrt(np.mean(np.sum(a_t[ok] ** 2, axis=1)))),
            "rot_deg_rms": float(np.sqrt(np.mean(a_r**2)))}


def occlusion_episodes(visib_fract: np.ndarray, *, thr: float = 0.1, min_frames: int = 10) -> list[tuple[int, int]]:
    """Full-occlusion episodes [start, end): visib_fract (N,) below ``thr`` for >= ``min_frames`` frames."""
    v = np.asarray(visib_fract, np.float64)
    return _runs(np.isfinite(v) & (v < thr), min_frames)


def recovery_frames(episodes: Sequence[tuple[int, int]], correct: np.ndarray) -> list[int | None]:
    """For each episode that ends inside the sequence: frames from its end (the first visible frame)
    to the first correct frame (0 = correct at once), or None if never. correct: (N,) bool."""
    correct = np.asarray(correct, bool)
    out: list[int | None] = []
    for _, e in episodes:
        if e >= len(correct):
            continue  # occluded until the end: nothing to recover from
        hits = np.flatnonzero(correct[e:])
        out.append(int(hits[0]) if hits.size else None)
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


def evaluate_scene(obj, gt: SceneGt, est: Estimates, cfg: EvalConfig) -> dict[str, Any]:
    """All metrics of one scene: {'scene_id', 'aggregate': {...}, 'per_frame': {name: list}}."""
    err = _pose_errors(obj, gt, est)
    d = float(obj.diameter)
    with np.errstate(invalid="ignore"):
        ad_ok = est.valid & (err["ad_mm"] < cfg.add_frac * d)
        add_ok = est.valid & (err["add_mm"] < cfg.add_frac * d)
        adds_ok = est.valid & (err["adds_mm"] < cfg.add_frac * d)
        proj_ok = est.valid & (err["proj2d_px"] < cfg.proj_px)
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
        "occlusion": {
            "episodes": [list(e) for e in episodes],
            "recovery_frames": rec,
            "recovered": len(rec_ok),
            "not_recovered": len(rec) - len(rec_ok),
            "recovery_mean": float(np.mean(rec_ok)) if rec_ok else None,
            "recovery_max": int(max(rec_ok)) if rec_ok else None,
        },
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


# ----------------------------------------------------------------------------- plot (cv2)
_COLORS = {"ad": (220, 40, 40), "proj": (200, 120, 0), "rot": (0, 140, 0), "trans": (160, 0, 160), "kp": (0, 140, 255),
           "vis": (90, 90, 90)}


def _nice_step(span: float, target: int = 8) -> float:
    raw = span / max(1, target)
    mag = 10 ** math.floor(math.log10(raw)) if raw > 0 else 1.0
    for m in (1, 2, 5, 10):
        if raw <= m * mag:
            return m * mag
    return 10 * mag


def _panel(img: np.ndarray, y0: int, h: int, x0: int, w: int, n: int, series, ymax: float, label: str,
           thresholds=(), shade=(), missing=None) -> None:
    """Draw one panel: frame index on x (0..n-1), values clipped to [0, ymax] on y."""
    font = cv2.FONT_HERSHEY_SIMPLEX
    for s, e in shade:  # occlusion episodes
        xa = x0 + int(round(s / max(1, n - 1) * w))
        xb = x0 + int(round((e - 1) / max(1, n - 1) * w))
        cv2.rectangle(img, (xa, y0), (max(xa + 1, xb), y0 + h), (225, 225, 225), -1)
    cv2.rectangle(img, (x0, y0), (x0 + w, y0 + h), (0, 0, 0), 1)
    for frac in (0.0, 0.5, 1.0):
        yy = y0 + h - int(round(frac * h))
        cv2.putText(img, f"{frac * ymax:g}", (4, yy + 4), font, 0.35, (0, 0, 0), 1, cv2.LINE_AA)
        cv2.line(img, (x0 - 4, yy), (x0, yy), (0, 0, 0), 1)
    for thr in thresholds:
        yy = y0 + h - int(round(min(thr, ymax) / ymax * h))
        cv2.line(img, (x0, yy), (x0 + w, yy), (0, 0, 200), 1, cv2.LINE_AA)
    cv2.putText(img, label, (x0 + 6, y0 + 14), font, 0.42, (0, 0, 0), 1, cv2.LINE_AA)
    ty = y0 + 14
    for values, color, name in series:
        v = np.asarray(values, np.float64)
        xs = x0 + np.round(np.arange(n) / max(1, n - 1) * w).astype(np.int32)
        ys = y0 + h - np.round(np.clip(np.nan_to_num(v, nan=0.0), 0, ymax) / ymax * h).astype(np.int32)
        ok = np.isfinite(v)
        # polylines broken at missing values
        for s, e in _runs(ok, 1):
            pts = np.stack([xs[s:e], ys[s:e]], 1).reshape(-1, 1, 2)
            if e - s == 1:
                cv2.circle(img, tuple(int(c) for c in pts[0, 0]), 1, color, -1)
            else:
                cv2.polylines(img, [pts], False, color, 1, cv2.LINE_AA)
        if name:
            cv2.putText(img, name, (x0 + w - 150, ty), font, 0.38, color, 1, cv2.LINE_AA)
            ty += 13
    if missing is not None:  # red ticks under frames without an estimate
        for i in np.flatnonzero(missing):
            x = x0 + int(round(i / max(1, n - 1) * w))
            cv2.line(img, (x, y0 + h - 4), (x, y0 + h), (0, 0, 255), 1)


def plot_errors(scene: dict[str, Any], path: str | Path, *, diameter_mm: float, add_frac: float = 0.1,
                proj_px: float = 5.0, title: str = "") -> Path:
    """Write a PNG of the per-frame errors of one scene (output of :func:`evaluate_scene`) with cv2.

    Panels: ADD(-S)/diameter, 2D projection and keypoint errors (px), rotation (deg) and
    translation (mm) errors, visible fraction. Grey bands: full-occlusion episodes; red ticks:
    frames with no estimate; red lines: the thresholds."""
    pf = scene["per_frame"]
    n = len(pf["im_id"])
    arr = {k: np.array([np.nan if x is None else x for x in pf[k]], np.float64) for k in
           ("ad_mm", "proj2d_px", "kp_px", "rot_deg", "trans_mm", "visib_fract")}
    missing = ~np.asarray(pf["estimated"], bool)
    shade = [tuple(e) for e in scene["aggregate"]["occlusion"]["episodes"]]
    W, x0, ph, gap, top = 1100, 48, 130, 22, 34
    panels = 5
    img = np.full((top + panels * (ph + gap) + 24, W, 3), 255, np.uint8)
    w = W - x0 - 16
    cv2.putText(img, title or f"scene {scene['scene_id']}: errors per frame ({n} frames)", (x0, 22),
                cv2.FONT_HERSHEY_SIMPLEX, 0.55, (0, 0, 0), 1, cv2.LINE_AA)
    metric = scene["aggregate"]["ad_metric"]
    y = top
    _panel(img, y, ph, x0, w, n, [(arr["ad_mm"] / diameter_mm, _COLORS["ad"], "")], 0.5,
           f"{metric} / diameter (line: {add_frac:g})", (add_frac,), shade, missing)
    y += ph + gap
    _panel(img, y, ph, x0, w, n, [(arr["proj2d_px"], _COLORS["proj"], "2D projection"), (arr["kp_px"], _COLORS["kp"], "keypoints")],
           30.0, f"pixels (line: {proj_px:g} px)", (proj_px,), shade, missing)
    y += ph + gap
    _panel(img, y, ph, x0, w, n, [(arr["rot_deg"], _COLORS["rot"], "")], 20.0, "rotation error, deg (line: 5)", (5.0,), shade, missing)
    y += ph + gap
    _panel(img, y, ph, x0, w, n, [(arr["trans_mm"], _COLORS["trans"], "")], 100.0, "translation error, mm (line: 50)", (50.0,), shade, missing)
    y += ph + gap
    _panel(img, y, ph, x0, w, n, [(arr["visib_fract"], _COLORS["vis"], "")], 1.0, "visible fraction (line: 0.1)", (0.1,), shade)
    # frame ticks under the last panel
    step = _nice_step(max(1, n - 1))
    k = 0.0
    while k <= n - 1:
        x = x0 + int(round(k / max(1, n - 1) * w))
        cv2.line(img, (x, y + ph), (x, y + ph + 4), (0, 0, 0), 1)
        cv2.putText(img, f"{int(k)}", (x - 8, y + ph + 16), cv2.FONT_HERSHEY_SIMPLEX, 0.35, (0, 0, 0), 1, cv2.LINE_AA)
        k += step
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    if not cv2.imwrite(str(path), img):
        raise KptrackError(f"{path}: cannot write the plot PNG. Choose a writable --out folder.")
    return path


# ----------------------------------------------------------------------------- writers
def _write_per_frame_csv(scenes: list[dict[str, Any]], path: Path) -> None:
    cols = ["im_id", "visib_fract", "estimated", "score", "ad_mm", "add_mm", "adds_mm", "proj2d_px", "rot_deg",
            "trans_mm", "kp_px", "ad_correct", "proj2d_correct"]
    with open(path, "w", newline="", encoding="utf-8") as f:
        w = csv.writer(f, lineterminator="\n")
        w.writerow(["scene_id", *cols])
        for s in scenes:
            pf = s["per_frame"]
            for i in range(len(pf["im_id"])):
                w.writerow([s["scene_id"], *("" if pf[c][i] is None else pf[c][i] for c in cols)])


def _write_bop_errors(scenes: list[dict[str, Any]], out: Path, obj_id: int) -> None:
    """Errors in the bop_toolkit error-file layout: one JSON list per error type and scene."""
    for etype, key in (("ad", "ad_mm"), ("proj", "proj2d_px"), ("re", "rot_deg"), ("te", "trans_mm")):
        for s in scenes:
            pf = s["per_frame"]
            rows = [
                {"im_id": int(pf["im_id"][i]), "obj_id": int(obj_id), "est_id": 0, "score": float(pf["score"][i]),
                 "errors": {"0": [float(pf[key][i])]}}
                for i in range(len(pf["im_id"])) if pf["estimated"][i] and pf[key][i] is not None
            ]
            p = out / "bop_errors" / etype / f"errors_{int(s['scene_id']):06d}.json"
            p.parent.mkdir(parents=True, exist_ok=True)
            p.write_text(json.dumps(rows))


# ----------------------------------------------------------------------------- entry points
def evaluate(obj, scenes_gt: Sequence[SceneGt], results: Sequence[bop.BopResult], cfg: EvalConfig) -> dict[str, Any]:
    """Score results against several scenes' GT. Returns {'scenes': [...], 'overall': {...}}."""
    scenes = [evaluate_scene(obj, g, align_estimates(g, results, cfg.obj_id), cfg) for g in scenes_gt]
    return {"scenes": scenes, "overall": _combine(scenes)}


def run_eval(cfg: EvalConfig) -> dict[str, Any]:
    """Load the CSV, dataset and object, score, and write metrics.json, errors_per_frame.csv, the PNGs
    and the bop_toolkit-style error files into ``cfg.out`` (default: ``<poses stem>_eval`` beside the CSV)."""
    from tracker.objects import load_object

    results = bop.read_results_csv(cfg.poses)
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
    _write_per_frame_csv(res["scenes"], out / "errors_per_frame.csv")
    _write_bop_errors(res["scenes"], out, cfg.obj_id)
    doc = {"config": asdict(cfg), "object": getattr(obj, "name", str(cfg.object)), "overall": res["overall"],
           "scenes": res["scenes"], "plots": pngs}
    (out / "metrics.json").write_text(json.dumps(doc, indent=1, allow_nan=False))
    res["out"] = str(out)
    res["plots"] = pngs
    return res


def format_summary(res: dict[str, Any]) -> str:
    """Human-readable summary lines of :func:`run_eval`'s result."""
    lines = []
    for s in res["scenes"]:
        a = s["aggregate"]
        r = a["rates"]["visible"]

        def pct(x):
            return "n/a" if x is None else f"{100 * x:.1f}%"

        lines.append(
            f"scene {s['scene_id']}: {a['frames']} frames ({r['frames']} >= 50% visible): "
            f"{a['ad_metric']}<0.1d {pct(r['ad_lt_0.1d'])}, 2D<5px {pct(r['proj2d_lt_5px'])}, "
            f"5cm5deg {pct(r['5cm5deg'])}, estimated {pct(r['estimated'])}"
        )
        e = a["errors_visible"]
        fmt = lambda d: "n/a" if d["median"] is None else f"{d['median']:.2f}"  # noqa: E731
        lines.append(f"  median errors: rot {fmt(e['rot_deg'])} deg, trans {fmt(e['trans_mm'])} mm, "
                     f"2D {fmt(e['proj2d_px'])} px, keypoints {fmt(e['kp_px'])} px")
        j = a["jitter"]
        if j["pairs"]:
            lines.append(f"  jitter on {len(j['segments'])} static segments ({j['pairs']} pairs): "
                         f"{j['trans_mm']['rms']:.3f} mm, {j['rot_deg']['rms']:.3f} deg RMS")
        ja = a["jitter_acceleration"]
        if ja["triples"]:
            lines.append(f"  jitter beyond the GT's motion (second differences, {ja['triples']} triples): "
                         f"{ja['trans_mm_rms']:.3f} mm, {ja['rot_deg_rms']:.3f} deg RMS")
        o = a["occlusion"]
        if o["episodes"]:
            lines.append(f"  occlusion episodes {len(o['episodes'])}: recovery frames {o['recovery_frames']}")
    return "\n".join(lines)


def run_eval_from_args(args) -> int:
    cfg = EvalConfig(poses=args.poses, dataset=args.dataset, object=args.object, out=args.out,
                     obj_id=getattr(args, "obj_id", 1))
    res = run_eval(cfg)
    print(format_summary(res))
    print(f"wrote {res['out']}/metrics.json, errors_per_frame.csv, {len(res['plots'])} plot(s)")
    return 0
