"""What ``kptrack eval`` writes and prints from the scorer's output (a list of scenes of
:func:`tracker.eval.evaluate.evaluate_scene`).

* ``metrics.json``: config, overall and per-scene aggregates, per-frame errors (:func:`write_metrics_json`);
* ``errors_per_frame.csv``: one row per scene and frame (:func:`write_per_frame_csv`);
* ``bop_errors/<type>/errors_<scene_id:06d>.json``: per-frame errors in bop_toolkit's error-file
  layout for ``ad`` (ADD or ADD-S by symmetry), ``mssd``, ``mspd``, ``proj``, ``re`` and ``te`` (:func:`write_bop_errors`);
* the summary lines the command prints (:func:`format_summary`).
"""

from __future__ import annotations

import csv
import json
import math
from pathlib import Path
from typing import Any

PER_FRAME_COLUMNS = ("im_id", "visib_fract", "estimated", "score", "ad_mm", "add_mm", "adds_mm", "mssd_mm", "mspd_px",
                     "proj2d_px", "rot_deg", "trans_mm", "kp_px", "ad_correct", "proj2d_correct")
# bop_toolkit error type -> per-frame key
BOP_ERROR_TYPES = (("ad", "ad_mm"), ("mssd", "mssd_mm"), ("mspd", "mspd_px"), ("proj", "proj2d_px"), ("re", "rot_deg"),
                   ("te", "trans_mm"))


def write_per_frame_csv(scenes: list[dict[str, Any]], path: Path) -> None:
    """``scene_id`` and :data:`PER_FRAME_COLUMNS`, one row per frame; an empty cell where a value is None."""
    with open(path, "w", newline="", encoding="utf-8") as f:
        w = csv.writer(f, lineterminator="\n")
        w.writerow(["scene_id", *PER_FRAME_COLUMNS])
        for s in scenes:
            pf = s["per_frame"]
            for i in range(len(pf["im_id"])):
                w.writerow([s["scene_id"], *("" if pf[c][i] is None else pf[c][i] for c in PER_FRAME_COLUMNS)])


def write_bop_errors(scenes: list[dict[str, Any]], out: Path, obj_id: int) -> None:
    """Errors in the bop_toolkit error-file layout: one JSON list per error type and scene, a row per
    estimated frame ({im_id, obj_id, est_id, score, errors: {'0': [error]}})."""
    for etype, key in BOP_ERROR_TYPES:
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


def _finite_or_none(x: Any) -> Any:
    """x with every inf / NaN float replaced by None, recursively (JSON has neither)."""
    if isinstance(x, float):
        return x if math.isfinite(x) else None
    if isinstance(x, dict):
        return {k: _finite_or_none(v) for k, v in x.items()}
    if isinstance(x, (list, tuple)):
        return [_finite_or_none(v) for v in x]
    return x


def write_metrics_json(doc: dict[str, Any], path: Path) -> None:
    """Write doc as indented JSON. The demo's headline keeps its medians as float (inf when over half
    the frames have no pose, NaN with no frame scored); the file says null there."""
    path.write_text(json.dumps(_finite_or_none(doc), indent=1, allow_nan=False))


def _pct(x: float | None) -> str:
    return "n/a" if x is None else f"{100 * x:.1f}%"


def _median(d: dict[str, float | None]) -> str:
    return "n/a" if d["median"] is None else f"{d['median']:.2f}"


def format_summary(res: dict[str, Any]) -> str:
    """Human-readable summary lines of :func:`tracker.eval.evaluate.run_eval`'s result."""
    lines = []
    for s in res["scenes"]:
        a = s["aggregate"]
        r = a["rates"]["visible"]
        lines.append(
            f"scene {s['scene_id']}: {a['frames']} frames ({r['frames']} >= 50% visible): "
            f"{a['ad_metric']}<0.1d {_pct(r['ad_lt_0.1d'])}, 2D<5px {_pct(r['proj2d_lt_5px'])}, "
            f"MSSD<0.1d {_pct(r.get('mssd_lt_0.1d'))}, MSPD<5px {_pct(r.get('mspd_lt_5px'))}, "
            f"5cm5deg {_pct(r['5cm5deg'])}, estimated {_pct(r['estimated'])}"
        )
        e = a["errors_visible"]
        lines.append(f"  median errors: rot {_median(e['rot_deg'])} deg, trans {_median(e['trans_mm'])} mm, "
                     f"2D {_median(e['proj2d_px'])} px, keypoints {_median(e['kp_px'])} px")
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
