"""A pose per labelled frame, and what ``kptrack annotate`` writes from it.

:func:`fit_label_pose`: on a frame with at least 4 labelled keypoints, SQPnP (Terzakis &
Lourakis, "A Consistently Fast and Globally Optimal Solution to the Perspective-n-Point
Problem", ECCV 2020; OpenCV ``SOLVEPNP_SQPNP``) on all labels, refined by the project's LM
(:func:`tracker.pipeline.solve_lm.solve_lm`) with a plain least-squares loss, so that every
label counts and the RMS says how well the clicks agree with the CAD keypoints. No RANSAC:
with a handful of hand labels a dropped label would hide a swapped click instead of showing it.
The worst keypoint's name is reported, since swapped or misplaced clicks are the usual cause of
a large RMS.

Labels are pixels of the frame as stored (distorted when the camera has distortion); they are
undistorted for the solve, and residuals (:func:`label_residuals`) are measured by projecting
with the camera's distortion, against the labels as clicked.

:func:`write_label_scene` writes the BOP scene files (scene_camera.json for every frame,
scene_gt.json for every frame with a pose) and ``labels_report.json``; :func:`draw_check`
draws a check picture: the CAD's edges at the fitted pose, the labels (circles) and the
projected keypoints (crosses).
"""

from __future__ import annotations

import json
import math
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Mapping, Sequence

import cv2
import numpy as np

from tracker.atomic import atomic_write
from tracker.camera.camera import Camera
from tracker.formats.bop_scene import BopGt, write_scene_camera, write_scene_gt
from tracker.pipeline.solve_lm import solve_lm
from tracker.render.draw import draw_hud, draw_overlay

MIN_LABELS = 4
REPORT_FILE = "labels_report.json"


@dataclass(frozen=True)
class LabelFit:
    """A frame's pose from its labels. R_m2c (3, 3), t_m2c (3,) mm, or None with ``reason``;
    residuals_px (K,) float64 (NaN where not labelled or no pose); rms_px: RMS of the labelled
    residuals (NaN without a pose); worst: name of the keypoint with the largest residual;
    projected: (K, 2) float64 pixels of every keypoint at the pose (with distortion), or None."""

    n_labels: int
    R_m2c: np.ndarray | None
    t_m2c: np.ndarray | None
    residuals_px: np.ndarray
    rms_px: float
    worst: str | None
    reason: str | None = None
    projected: np.ndarray | None = None

    @property
    def ok(self) -> bool:
        return self.R_m2c is not None


def label_residuals(xyz_model: np.ndarray, camera: Camera, R_m2c: np.ndarray, t_m2c: np.ndarray, uv: np.ndarray,
                    v: np.ndarray) -> np.ndarray:
    """(K,) float64 pixel distances between the keypoints xyz_model (K, 3) mm projected at the
    pose (with the camera's distortion) and the labels uv (K, 2) frame pixels; NaN where v == 0."""
    proj = camera.project(np.asarray(xyz_model, np.float64), R_m2c, t_m2c)
    d = np.linalg.norm(proj - np.asarray(uv, np.float64), axis=1)
    return np.where(np.asarray(v) > 0, d, np.nan)


def rms(residuals_px: np.ndarray) -> float:
    """RMS of the finite residuals (NaN when none)."""
    r = np.asarray(residuals_px, np.float64)
    r = r[np.isfinite(r)]
    return float(np.sqrt(np.mean(r * r))) if r.size else math.nan


def fit_label_pose(xyz_model: np.ndarray, names: Sequence[str], camera: Camera, uv: np.ndarray, v: np.ndarray,
                   min_labels: int = MIN_LABELS) -> LabelFit:
    """Pose of the object from one frame's labels (see the module docstring).

    xyz_model: (K, 3) mm keypoints; uv: (K, 2) frame pixels; v: (K,) COCO flags (> 0 labelled).
    Returns a LabelFit; without a pose (fewer than ``min_labels`` labels, PnP failure, object
    behind the camera) ``reason`` says why.
    """
    X = np.asarray(xyz_model, np.float64)
    uv = np.asarray(uv, np.float64)
    sel = (np.asarray(v) > 0) & np.isfinite(uv).all(1)
    n = int(np.count_nonzero(sel))
    nan = np.full(len(X), np.nan)
    if n < min_labels:
        return LabelFit(n, None, None, nan, math.nan, None, f"{n} label(s), a pose needs {min_labels}")
    ideal = camera.undistort_points(uv)
    K = np.asarray(camera.K, np.float64)
    try:
        ok, rvec, tvec = cv2.solvePnP(X[sel], ideal[sel], K, None, flags=cv2.SOLVEPNP_SQPNP)
    except cv2.error as e:
        ok, rvec, tvec = False, None, None
        why = f"PnP failed ({str(e).strip().splitlines()[-1][:80]})"
    else:
        why = "PnP found no pose (labels degenerate, e.g. all on one line)"
    if not ok or not np.all(np.isfinite(tvec)):
        return LabelFit(n, None, None, nan, math.nan, None, why)
    R0, _ = cv2.Rodrigues(rvec)
    res = solve_lm(X, ideal, sel.astype(np.float64), K, R0, tvec.ravel(), loss="l2")
    R, t = np.asarray(res.R_m2c, np.float64), np.asarray(res.t_m2c, np.float64)
    if not (np.all(np.isfinite(R)) and np.all(np.isfinite(t))) or np.any((X[sel] @ R.T + t)[:, 2] <= 0):
        return LabelFit(n, None, None, nan, math.nan, None, "the fitted pose puts keypoints behind the camera")
    r = label_residuals(X, camera, R, t, uv, sel.astype(np.int8))
    worst = str(names[int(np.nanargmax(r))])
    return LabelFit(n, R, t, r, rms(r), worst, projected=camera.project(X, R, t))


def fit_all(xyz_model: np.ndarray, names: Sequence[str], camera: Camera, labels: Mapping[int, Any]) -> dict[int, LabelFit]:
    """{frame: LabelFit} for every visited frame of labels ({frame: FrameLabels})."""
    return {f: fit_label_pose(xyz_model, names, camera, lab.uv, lab.v) for f, lab in sorted(labels.items()) if lab.visited}


def report_dict(fits: Mapping[int, LabelFit], names: Sequence[str], frames: Sequence[int]) -> dict[str, Any]:
    """labels_report.json content: per frame (labels, pose, RMS, worst keypoint, residuals by
    name), the frames without a pose and why, and a summary."""
    per = []
    for f, fit in sorted(fits.items()):
        per.append({
            "frame": int(f), "labels": fit.n_labels, "pose": fit.ok,
            "rms_px": None if not fit.ok else fit.rms_px, "worst_keypoint": fit.worst, "reason": fit.reason,
            "residuals_px": {str(n): float(x) for n, x in zip(names, fit.residuals_px) if np.isfinite(x)},
        })
    rmss = [fit.rms_px for fit in fits.values() if fit.ok]
    return {
        "summary": {
            "frames": len(frames), "visited": len(fits), "with_pose": len(rmss),
            "labels": int(sum(fit.n_labels for fit in fits.values())),
            "rms_px_median": float(np.median(rmss)) if rmss else None, "rms_px_max": float(np.max(rmss)) if rmss else None,
        },
        "without_pose": [{"frame": int(f), "reason": fit.reason} for f, fit in sorted(fits.items()) if not fit.ok],
        "not_visited": [int(f) for f in frames if f not in fits],
        "frames": per,
    }


def write_label_scene(out: Path, camera: Camera, fits: Mapping[int, LabelFit], names: Sequence[str], frames: Sequence[int],
                      obj_id: int = 1) -> dict[str, Any]:
    """Write scene_camera.json (every frame, K), scene_gt.json (frames with a pose) and
    labels_report.json into ``out``; returns the report dict."""
    K = np.asarray(camera.K, np.float64)
    write_scene_camera(out / "scene_camera.json", {int(f): K for f in frames})
    write_scene_gt(out / "scene_gt.json", {int(f): [BopGt(obj_id, fit.R_m2c, fit.t_m2c)] for f, fit in fits.items() if fit.ok})
    rep = report_dict(fits, names, frames)
    with atomic_write(out / REPORT_FILE) as fh:
        fh.write((json.dumps(rep, indent=1) + "\n").encode("utf-8"))
    return rep


def draw_check(image: np.ndarray, obj: Any, camera: Camera, fit: LabelFit, uv: np.ndarray, v: np.ndarray,
               frame: int) -> np.ndarray:
    """A check picture (H, W, 3) uint8 BGR: a copy of ``image`` with the CAD's edges at the
    fitted pose (green), the labels (yellow circles with names) and the projected keypoints (red
    crosses), and a line giving the frame, label count and RMS, or why there is no pose."""
    img = np.ascontiguousarray(image).copy()
    names = obj.keypoint_names
    if fit.ok:
        draw_overlay(img, obj, camera.without_distortion(), fit.R_m2c, fit.t_m2c, mode="edges", axes=False)
        for (x, y), lab in zip(fit.projected, v):
            if lab > 0 and np.all(np.isfinite((x, y))) and abs(x) < 1e5 and abs(y) < 1e5:
                cv2.drawMarker(img, (int(round(x)), int(round(y))), (0, 0, 255), cv2.MARKER_CROSS, 9, 1, cv2.LINE_AA)
    for (x, y), lab, name in zip(np.asarray(uv), v, names):
        if lab > 0:
            p = (int(round(x)), int(round(y)))
            cv2.circle(img, p, 5, (0, 255, 255), 1, cv2.LINE_AA)
            cv2.putText(img, name, (p[0] + 6, p[1] - 6), cv2.FONT_HERSHEY_SIMPLEX, 0.4, (0, 255, 255), 1, cv2.LINE_AA)
    if fit.ok:
        line = f"frame {frame}: {fit.n_labels} labels, RMS {fit.rms_px:.2f} px (worst {fit.worst} {np.nanmax(fit.residuals_px):.2f} px)"
    else:
        line = f"frame {frame}: no pose, {fit.reason}"
    return draw_hud(img, [line])
