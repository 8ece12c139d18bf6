"""Scoring tracked poses on hand-labelled real frames: ``kptrack eval --labels``.

Real footage has no ground-truth pose, only 2D keypoint labels (``kptrack annotate``, a COCO
keypoints file whose image ids are the video's frame indices). So the scorer beside
:mod:`tracker.eval.evaluate` compares in the image, per labelled frame (a frame with >= 1 label):

* **keypoint error**: pixel distance between each labelled keypoint and the object's 3D keypoint
  projected at the tracked pose (with the camera's distortion, against the labels as clicked);
  per frame its mean, RMS (the reprojection error of the labels under the tracked pose) and max.
* **PCK@T px** (percentage of correct keypoints, Yang & Ramanan, "Articulated Human Detection with
  Flexible Mixtures of Parts", TPAMI 2013): the fraction of labels within T pixels; a frame
  without a pose counts all its labels as misses (``pck``), and also over posed frames only
  (``pck_posed``).
* **frames with a pose**: the fraction of labelled frames the tracker gave a pose for.
* **the labels' own fit**: the RMS of the labels under the pose fitted to them alone (SQPnP +
  LM, :func:`tracker.labels.pose.fit_label_pose`, on frames with >= 4 labels): the floor that
  click noise and CAD/keypoint mismatch put under any tracker, and the rotation (deg) and
  translation (mm) between that pose and the tracked one.

Aggregates: per-frame mean keypoint error summarised over posed frames (mean, median, p90);
its median over all labelled frames with a missing pose as an infinite error (as the demo's
headline counts); and the fraction of labelled frames whose mean error is below each threshold.

Tracked poses: the BOP results CSV or the JSONL log that ``kptrack track --poses`` writes
(``im_id`` / ``index`` = frame index). Writes, under ``--out``: ``metrics.json``,
``labelled_per_frame.csv`` and ``errors_labelled.png`` (errors over the labelled frames).
"""

from __future__ import annotations

import csv
import json
import logging
import math
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any, Sequence

import cv2
import numpy as np

from tracker.camera.camera import Camera
from tracker.camera.resolve import resolve_camera
from tracker.errors import KptrackError
from tracker.eval.plots import _COLORS, _nice_step, _panel  # the one panel drawer of the eval plots
from tracker.eval.reports import write_metrics_json
from tracker.formats.bop_results import read_results_csv
from tracker.formats.coco import read_coco
from tracker.geometry import rotation_error_deg, translation_error
from tracker.labels.pose import fit_label_pose, label_residuals, rms
from tracker.labels.store import labels_path
from tracker.objects import load_object
from tracker.pipeline.sinks import read_jsonl

log = logging.getLogger(__name__)

PER_FRAME_COLUMNS = ("frame", "labels", "estimated", "score", "kp_mean_px", "kp_rms_px", "kp_max_px", "pck_5px",
                     "pck_10px", "label_fit_rms_px", "rot_deg_vs_labels", "trans_mm_vs_labels")


@dataclass(frozen=True)
class LabelledEvalConfig:
    """Options of ``kptrack eval --labels``. poses: results CSV or JSONL; labels: COCO keypoints
    file (or its folder); camera: OpenCV YAML (None: camera.yaml in or beside the labels folder);
    pck_px: PCK thresholds, px."""

    poses: str
    labels: str
    object: str = "default"
    camera: str | None = None
    out: str | None = None
    obj_id: int = 1
    pck_px: tuple[float, ...] = (5.0, 10.0)
    plot: bool = True


# ----------------------------------------------------------------------------- inputs
def read_tracked_poses(path: str | Path, obj_id: int = 1) -> dict[int, tuple[np.ndarray, np.ndarray, float]]:
    """{frame index: (R_m2c (3, 3), t_m2c (3,) mm, score)} from a BOP results CSV (rows of
    ``obj_id`` with score > 0, the best per im_id) or a ``kptrack track`` JSONL log (lines with a pose)."""
    p = Path(path)
    out: dict[int, tuple[np.ndarray, np.ndarray, float]] = {}
    if p.suffix.lower() == ".jsonl":
        try:
            rows = read_jsonl(p)
        except FileNotFoundError:
            raise KptrackError(f"--poses {p}: no such file. Pass the CSV or .jsonl that kptrack track --poses wrote.") from None
        for j, d in enumerate(rows):
            if not isinstance(d, dict) or d.get("R_m2c") is None or d.get("t_m2c") is None:
                continue
            try:
                R = np.asarray(d["R_m2c"], np.float64).reshape(3, 3)
                t = np.asarray(d["t_m2c"], np.float64).reshape(3)
                out[int(d["index"])] = (R, t, float(d.get("score", 1.0)))
            except (KeyError, TypeError, ValueError):
                raise KptrackError(f"--poses {p}, line {j + 1}: needs index, R_m2c (9 numbers) and t_m2c (3). "
                                   "Pass a log written by kptrack track --poses.") from None
        return out
    for r in read_results_csv(p):
        if r.obj_id != obj_id or not r.score > 0:
            continue
        if int(r.im_id) not in out or r.score > out[int(r.im_id)][2]:
            out[int(r.im_id)] = (r.R_m2c, r.t_m2c, float(r.score))
    return out


# ----------------------------------------------------------------------------- scoring
def _summary(a: np.ndarray) -> dict[str, float | None]:
    a = np.asarray(a, np.float64)
    a = a[np.isfinite(a)]
    if a.size == 0:
        return {"mean": None, "median": None, "p90": None}
    return {"mean": float(a.mean()), "median": float(np.median(a)), "p90": float(np.percentile(a, 90))}


def score_labelled(xyz_model: np.ndarray, names: Sequence[str], camera: Camera, labels: Sequence[tuple[int, np.ndarray, np.ndarray]],
                   poses: dict[int, tuple[np.ndarray, np.ndarray, float]], pck_px: Sequence[float] = (5.0, 10.0)) -> dict[str, Any]:
    """Score tracked poses on labelled frames (see the module docstring).

    xyz_model: (K, 3) mm keypoints; labels: (frame, uv (K, 2) px, v (K,)) per labelled frame;
    poses: {frame: (R_m2c, t_m2c mm, score)}. Returns {'aggregate': {...}, 'per_frame': {column: list}}
    with NaN (None in JSON) where a value does not exist.
    """
    rows = sorted((int(f), np.asarray(uv, np.float64), np.asarray(v)) for f, uv, v in labels if np.count_nonzero(np.asarray(v) > 0))
    n = len(rows)
    pf: dict[str, list] = {c: [] for c in ("frame", "labels", "estimated", "score", "kp_mean_px", "kp_rms_px", "kp_max_px",
                                           "label_fit_rms_px", "rot_deg_vs_labels", "trans_mm_vs_labels")}
    hits = {float(T): [] for T in pck_px}
    hits_posed = {float(T): [] for T in pck_px}
    per_frame_pck = {float(T): [] for T in pck_px}
    for f, uv, v in rows:
        nl = int(np.count_nonzero(v > 0))
        pose = poses.get(f)
        fit = fit_label_pose(xyz_model, names, camera, uv, v)
        pf["frame"].append(f)
        pf["labels"].append(nl)
        pf["estimated"].append(pose is not None)
        pf["score"].append(pose[2] if pose else 0.0)
        pf["label_fit_rms_px"].append(fit.rms_px)
        if pose is None:
            for k in ("kp_mean_px", "kp_rms_px", "kp_max_px", "rot_deg_vs_labels", "trans_mm_vs_labels"):
                pf[k].append(math.nan)
            for T in hits:
                hits[T] += [False] * nl
                per_frame_pck[T].append(math.nan)  # no pose: its misses count in the aggregate
            continue
        R, t, _ = pose
        r = label_residuals(xyz_model, camera, R, t, uv, v)[v > 0]
        pf["kp_mean_px"].append(float(np.mean(r)))
        pf["kp_rms_px"].append(rms(r))
        pf["kp_max_px"].append(float(np.max(r)))
        pf["rot_deg_vs_labels"].append(rotation_error_deg(R, fit.R_m2c) if fit.ok else math.nan)
        pf["trans_mm_vs_labels"].append(translation_error(t, fit.t_m2c) if fit.ok else math.nan)
        for T in hits:
            ok = (r < T).tolist()
            hits[T] += ok
            hits_posed[T] += ok
            per_frame_pck[T].append(float(np.mean(ok)))
    kp_mean = np.asarray(pf["kp_mean_px"], np.float64)
    est = np.asarray(pf["estimated"], bool)
    kp_all = np.where(est, kp_mean, np.inf)
    agg: dict[str, Any] = {
        "frames": n,
        "labels": int(sum(pf["labels"])),
        "with_pose": int(est.sum()),
        "frac_with_pose": float(est.mean()) if n else None,
        "kp_error_px": _summary(kp_mean),
        "kp_rms_px": _summary(np.asarray(pf["kp_rms_px"], np.float64)),
        # as the demo's headline: a labelled frame without a pose is an infinite error
        "median_kp_px_all_frames": float(np.median(kp_all)) if n else None,
        "frac_frames_kp_lt": {f"{T:g}px": float(np.mean(kp_all < T)) if n else None for T in hits},
        "pck": {f"{T:g}px": float(np.mean(h)) if h else None for T, h in hits.items()},
        "pck_posed": {f"{T:g}px": float(np.mean(h)) if h else None for T, h in hits_posed.items()},
        "label_fit_rms_px": _summary(np.asarray(pf["label_fit_rms_px"], np.float64)),
        "rot_deg_vs_labels": _summary(np.asarray(pf["rot_deg_vs_labels"], np.float64)),
        "trans_mm_vs_labels": _summary(np.asarray(pf["trans_mm_vs_labels"], np.float64)),
    }
    for T, vals in per_frame_pck.items():
        pf[f"pck_{T:g}px"] = vals
    return {"aggregate": agg, "per_frame": pf}


# ----------------------------------------------------------------------------- outputs
def _json_ready(pf: dict[str, list]) -> dict[str, list]:
    return {k: [None if isinstance(x, float) and not math.isfinite(x) else x for x in v] for k, v in pf.items()}


def write_labelled_csv(per_frame: dict[str, list], path: Path) -> Path:
    """One row per labelled frame; the columns of :data:`PER_FRAME_COLUMNS` present, empty where NaN."""
    cols = [c for c in PER_FRAME_COLUMNS if c in per_frame] + sorted(c for c in per_frame if c not in PER_FRAME_COLUMNS)
    with open(path, "w", newline="", encoding="utf-8") as fh:
        w = csv.writer(fh, lineterminator="\n")
        w.writerow(cols)
        for i in range(len(per_frame["frame"])):
            w.writerow(["" if isinstance(x, float) and not math.isfinite(x) else x for x in (per_frame[c][i] for c in cols)])
    return path


def plot_labelled(res: dict[str, Any], path: str | Path, pck_px: Sequence[float] = (5.0, 10.0), title: str = "") -> Path:
    """PNG of the errors over the labelled frames (x: labelled frames in order, ticks give frame
    indices): keypoint error and the labels' own RMS (px), PCK per frame, rotation and
    translation against the labels' pose. Red ticks: frames without a pose; red lines: thresholds."""
    pf = res["per_frame"]
    n = len(pf["frame"])
    arr = {k: np.asarray([math.nan if x is None else x for x in pf[k]], np.float64) for k in pf if k not in ("frame", "estimated")}
    missing = ~np.asarray(pf["estimated"], bool)
    W, x0, ph, gap, top = 1100, 48, 130, 22, 34
    img = np.full((top + 4 * (ph + gap) + 24, W, 3), 255, np.uint8)
    w = W - x0 - 16
    cv2.putText(img, title or f"labelled frames: errors of the tracked pose ({n} frames)", (x0, 22), cv2.FONT_HERSHEY_SIMPLEX,
                0.55, (0, 0, 0), 1, cv2.LINE_AA)
    y = top
    _panel(img, y, ph, x0, w, n, [(arr["kp_mean_px"], _COLORS["kp"], "keypoints (mean)"),
                                  (arr["label_fit_rms_px"], _COLORS["vis"], "labels' own fit (RMS)")],
           30.0, f"pixels (lines: {', '.join(f'{T:g}' for T in pck_px)} px)", tuple(pck_px), (), missing)
    y += ph + gap
    pcks = [(arr[f"pck_{T:g}px"], c, f"PCK@{T:g}px") for T, c in zip(pck_px, (_COLORS["proj"], _COLORS["ad"], _COLORS["trans"]))]
    _panel(img, y, ph, x0, w, n, pcks, 1.0, "PCK per frame", (), (), missing)
    y += ph + gap
    _panel(img, y, ph, x0, w, n, [(arr["rot_deg_vs_labels"], _COLORS["rot"], "")], 20.0,
           "rotation vs the labels' pose, deg (line: 5)", (5.0,), (), missing)
    y += ph + gap
    _panel(img, y, ph, x0, w, n, [(arr["trans_mm_vs_labels"], _COLORS["trans"], "")], 100.0,
           "translation vs the labels' pose, mm (line: 50)", (50.0,), (), missing)
    step = max(1, int(_nice_step(max(1, n - 1))))
    for k in range(0, n, step):
        x = x0 + int(round(k / max(1, n - 1) * w))
        cv2.line(img, (x, y + ph), (x, y + ph + 4), (0, 0, 0), 1)
        cv2.putText(img, str(pf["frame"][k]), (x - 8, y + ph + 16), cv2.FONT_HERSHEY_SIMPLEX, 0.35, (0, 0, 0), 1, cv2.LINE_AA)
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    if not cv2.imwrite(str(path), img):
        raise KptrackError(f"{path}: cannot write the plot PNG. Choose a writable --out folder.")
    return path


def _pct(x: float | None) -> str:
    return "n/a" if x is None else f"{100 * x:.1f}%"


def _px(d: dict[str, float | None], key: str = "median") -> str:
    return "n/a" if d[key] is None else f"{d[key]:.2f} px"


def format_labelled_summary(res: dict[str, Any]) -> str:
    """Summary lines of :func:`run_labelled_eval`'s result."""
    a = res["aggregate"]
    pck = ", ".join(f"PCK@{k} {_pct(v)}" for k, v in a["pck"].items())
    within = ", ".join(f"< {k} on {_pct(v)}" for k, v in a["frac_frames_kp_lt"].items())
    return "\n".join([
        f"{a['frames']} labelled frames ({a['labels']} labels): a pose on {a['with_pose']} ({_pct(a['frac_with_pose'])})",
        f"  keypoint error of the tracked pose: median {_px(a['kp_error_px'])}, mean {_px(a['kp_error_px'], 'mean')}, "
        f"p90 {_px(a['kp_error_px'], 'p90')} over posed frames; frames with mean error {within}",
        f"  {pck} (a frame without a pose misses all its labels)",
        f"  reprojection RMS of the labels: under the tracked pose {_px(a['kp_rms_px'])}, "
        f"under their own fit {_px(a['label_fit_rms_px'])} (median)",
    ])


def _labelled_rows(coco, names: Sequence[str], path: Path) -> list[tuple[int, np.ndarray, np.ndarray]]:
    if tuple(coco.keypoint_names) != tuple(names):
        raise KptrackError(f"{path}: labels for keypoints ({', '.join(coco.keypoint_names)}) but the object has "
                           f"({', '.join(names)}). Pass the --object the labels were made for.")
    return [(a.image_id, a.uv, a.v) for a in coco.annotations]


def run_labelled_eval(cfg: LabelledEvalConfig) -> dict[str, Any]:
    """Load labels, object, camera and tracked poses, score, and write metrics.json,
    labelled_per_frame.csv and the plot into ``cfg.out`` (default ``<poses stem>_eval_labels``
    beside the poses). Returns :func:`score_labelled`'s result with 'out' and 'plots'."""
    lp = labels_path(cfg.labels)
    coco = read_coco(lp)
    obj = load_object(cfg.object)
    rows = _labelled_rows(coco, obj.keypoint_names, lp)
    if not coco.images:
        raise KptrackError(f"{lp}: no images, so no labelled frames. Label frames with kptrack annotate first.")
    w, h = coco.images[0].width, coco.images[0].height
    camera = resolve_camera(cfg.camera, str(lp.parent), w, h)
    poses = read_tracked_poses(cfg.poses, cfg.obj_id)
    res = score_labelled(np.asarray(obj.keypoints, np.float64), obj.keypoint_names, camera, rows, poses, cfg.pck_px)
    if poses and res["aggregate"]["frames"] and not res["aggregate"]["with_pose"]:
        log.warning("%s: none of its %d poses is on a labelled frame of %s; are they for another video?", cfg.poses, len(poses), lp)
    out = Path(cfg.out) if cfg.out else Path(cfg.poses).with_name(Path(cfg.poses).stem + "_eval_labels")
    try:
        out.mkdir(parents=True, exist_ok=True)
    except OSError as e:
        raise KptrackError(f"{out}: cannot create the output folder ({e.strerror}). Choose a writable --out.") from None
    plots = [str(plot_labelled(res, out / "errors_labelled.png", cfg.pck_px))] if cfg.plot and res["per_frame"]["frame"] else []
    write_labelled_csv(res["per_frame"], out / "labelled_per_frame.csv")
    doc = {"config": asdict(cfg), "object": obj.name, "labels_file": str(lp), "camera": {"K": np.asarray(camera.K).tolist()},
           "aggregate": res["aggregate"], "per_frame": _json_ready(res["per_frame"]), "plots": plots}
    write_metrics_json(json.loads(json.dumps(doc, default=float)), out / "metrics.json")
    res["out"], res["plots"] = str(out), plots
    return res
