"""Temporal metrics of a tracked sequence: jitter on static and moving frames, recovery after occlusion.

* jitter: on static segments of the GT (runs of >= ``min_frames`` frames whose GT moves less than
  ``trans_mm`` and ``rot_deg`` between frames, :func:`static_segments`), the frame-to-frame change
  of the estimate beyond the GT's own change: ``|dt_est - dt_gt|`` (mm) and the angle of
  ``dR_est dR_gt^T`` (deg), with ``dR = R_i R_{i-1}^T``, ``dt = t_i - t_{i-1}`` (:func:`jitter`).
* acceleration jitter: the same idea on every frame, static or not: the second difference of the
  estimate beyond the GT's (:func:`acceleration_jitter`), so sequences that never hold still still
  get a noise figure.
* pose jumps: consecutive estimated frames whose relative rotation differs from the GT's by more
  than ``thr_deg`` (:func:`pose_jumps`). On a symmetric object two equivalent poses score the same
  ADD-S, so this is what shows a track flipping between equivalents (#12: > 30 deg on <= 1 %). Given
  which frames are correct, each jump is sorted: a flip between two correct poses (equivalents, on a
  symmetric object), a correct track lost, a wrong pose corrected, or between two wrong poses.
* recovery after occlusion: for every full-occlusion episode (``visib_fract < thr`` for
  >= ``min_frames`` consecutive frames, :func:`occlusion_episodes`) that ends before the sequence
  does, the number of frames from the first visible frame after it to the first correct frame
  (:func:`recovery_frames`; 0 = correct at once, None = never recovered).

Poses are model-to-camera, R_m2c (N, 3, 3) float64 and t_m2c (N, 3) float64 mm, one row per frame
in frame order; angles come from :func:`tracker.geometry.rotation_error_deg`.
"""

from __future__ import annotations

from typing import Any, Sequence

import numpy as np

from tracker.eval.estimates import Estimates
from tracker.formats.bop_scene import SceneGt
from tracker.geometry import rotation_error_deg, translation_error


# How pose_jumps sorts a jump by the correctness of the two poses it joins.
JUMP_KINDS = ("between_correct", "to_wrong", "to_correct", "between_wrong")


def runs(mask: np.ndarray, min_len: int) -> list[tuple[int, int]]:
    """Maximal runs [start, end) of True in mask (N,) bool with length >= min_len."""
    m = np.concatenate([[False], np.asarray(mask, bool), [False]])
    d = np.diff(m.astype(np.int8))
    starts, ends = np.flatnonzero(d == 1), np.flatnonzero(d == -1)
    return [(int(s), int(e)) for s, e in zip(starts, ends) if e - s >= min_len]


def _relative_motion(R: np.ndarray, t: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Frame-to-frame motion: dR (N-1, 3, 3) = R_i R_{i-1}^T, dt (N-1, 3) = t_i - t_{i-1}."""
    return R[1:] @ np.swapaxes(R[:-1], -1, -2), t[1:] - t[:-1]


def _filled(est: Estimates) -> tuple[np.ndarray, np.ndarray]:
    """The estimate with identity / zero where missing, so differences stay finite (and unused)."""
    return (np.where(est.valid[:, None, None], est.R_m2c, np.eye(3)),
            np.where(est.valid[:, None], est.t_m2c, 0.0))


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
    return [(s, e + 1) for s, e in runs(still, max(1, min_frames - 1))]


def _stats(a: np.ndarray) -> dict[str, float | None]:
    if a.size == 0:
        return {"mean": None, "rms": None, "p90": None}
    return {"mean": float(a.mean()), "rms": float(np.sqrt(np.mean(a**2))), "p90": float(np.percentile(a, 90))}


def jitter(gt: SceneGt, est: Estimates, segments: Sequence[tuple[int, int]]) -> dict[str, Any]:
    """Frame-to-frame change of the estimate beyond the GT's on static segments (see module doc).

    Returns {'pairs', 'segments', 'trans_mm': {mean, rms, p90}, 'rot_deg': {mean, rms, p90}} over the
    pairs of consecutive frames inside ``segments`` that both have an estimate."""
    dt_err, dr_err = [], []
    if len(gt.im_ids) >= 2:
        dRg, dtg = _relative_motion(gt.R_m2c, gt.t_m2c)
        dRe, dte = _relative_motion(*_filled(est))
        for s, e in segments:
            for k in range(s, e - 1):  # pair (k, k+1)
                if est.valid[k] and est.valid[k + 1]:
                    dt_err.append(translation_error(dte[k], dtg[k]))
                    dr_err.append(rotation_error_deg(dRg[k], dRe[k]))
    return {"pairs": len(dt_err), "segments": [list(s) for s in segments],
            "trans_mm": _stats(np.asarray(dt_err)), "rot_deg": _stats(np.asarray(dr_err))}


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
    Re, te = _filled(est)
    a_t = (te[2:] - 2 * te[1:-1] + te[:-2]) - (gt.t_m2c[2:] - 2 * gt.t_m2c[1:-1] + gt.t_m2c[:-2])
    dRe, _ = _relative_motion(Re, te)
    dRg, _ = _relative_motion(gt.R_m2c, gt.t_m2c)
    ddRe = dRe[1:] @ np.swapaxes(dRe[:-1], -1, -2)
    ddRg = dRg[1:] @ np.swapaxes(dRg[:-1], -1, -2)
    a_r = np.asarray(rotation_error_deg(ddRg[ok], ddRe[ok])).reshape(-1)
    return {"triples": int(ok.sum()), "trans_mm_rms": float(np.sqrt(np.mean(np.sum(a_t[ok] ** 2, axis=1)))),
            "rot_deg_rms": float(np.sqrt(np.mean(a_r**2)))}


def pose_jumps(gt: SceneGt, est: Estimates, thr_deg: float = 30.0, correct: np.ndarray | None = None) -> dict[str, Any]:
    """Pairs of consecutive estimated frames where the estimate turned more than ``thr_deg`` beyond
    the GT's own turn: angle of ``dR_est dR_gt^T`` > thr, ``dR_i = R_i R_{i-1}^T``.

    correct: (N,) bool, the frames whose pose passes the accuracy criterion (ADD-S < 0.1 d for a
    symmetric object). With it, each jump is also sorted by what it joins: 'between_correct' (both
    poses correct: on a symmetric object, a flip from one equivalent to another, #12's criterion),
    'to_wrong' (a correct track lost), 'to_correct' (a wrong pose corrected) and 'between_wrong'.

    Returns {'pairs': pairs with both estimates, 'jumps': how many jumped, 'frac': jumps / pairs
    (None without pairs), 'thr_deg', 'frames': the second frame index of each jump, and with
    ``correct`` 'kinds': {kind: count}}."""
    if len(gt.im_ids) < 2:
        out = {"pairs": 0, "jumps": 0, "frac": None, "thr_deg": thr_deg, "frames": []}
        return out if correct is None else {**out, "kinds": dict.fromkeys(JUMP_KINDS, 0)}
    ok = est.valid[1:] & est.valid[:-1]
    dRg, _ = _relative_motion(gt.R_m2c, gt.t_m2c)
    dRe, _ = _relative_motion(*_filled(est))
    ang = np.asarray(rotation_error_deg(dRg, dRe)).reshape(-1)
    jump = ok & (ang > thr_deg)
    n = int(ok.sum())
    out = {"pairs": n, "jumps": int(jump.sum()), "frac": float(jump.sum() / n) if n else None, "thr_deg": thr_deg,
           "frames": (np.flatnonzero(jump) + 1).tolist()}
    if correct is not None:
        c = np.asarray(correct, bool)
        before, after = c[:-1][jump], c[1:][jump]
        out["kinds"] = {"between_correct": int(np.sum(before & after)), "to_wrong": int(np.sum(before & ~after)),
                        "to_correct": int(np.sum(~before & after)), "between_wrong": int(np.sum(~before & ~after))}
    return out


def occlusion_episodes(visib_fract: np.ndarray, *, thr: float = 0.1, min_frames: int = 10) -> list[tuple[int, int]]:
    """Full-occlusion episodes [start, end): visib_fract (N,) below ``thr`` for >= ``min_frames`` frames."""
    v = np.asarray(visib_fract, np.float64)
    return runs(np.isfinite(v) & (v < thr), min_frames)


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
