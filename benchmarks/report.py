"""The bench's report: per-stage percentiles, the targets table, the JSON document and the markdown
section ``kptrack bench`` appends to ``benchmarks/RESULTS.md``.

:func:`percentiles_ms` summarises one stage's per-frame durations; :func:`target_rows` compares a
bench document with the issue's :data:`TARGETS`; :func:`format_markdown` renders the document,
:func:`append_results` appends it to a results file and :func:`dump_json` writes it.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any, Sequence

import numpy as np

from tracker.errors import KptrackError

# The targets, for the table's "target" column.
TARGETS = {
    "fps_tracking": 120.0,  # end to end, tracking mode, p50 <= 8 ms
    "p50_ms_tracking": 8.0,
    "speedup_vs_feature_peer": 5.0,
    "decode_us": 20.0,
    "solve_warm_us": 20.0,
    "render_ms": 2.0,
    "first_frame_s": 3.0,
    "cuda_infer_ms": 1.0,
}
RESULTS_TITLE = "# kptrack benchmark results\n\n"


def percentiles_ms(seconds: Sequence[float]) -> dict[str, float]:
    """p50/p90/p99/mean in milliseconds of a list of durations in seconds (NaN when empty)."""
    a = np.asarray([s for s in seconds if s is not None and np.isfinite(s)], np.float64) * 1e3
    if a.size == 0:
        return {"p50": float("nan"), "p90": float("nan"), "p99": float("nan"), "mean": float("nan"), "n": 0}
    p50, p90, p99 = np.percentile(a, [50, 90, 99])
    return {"p50": float(p50), "p90": float(p90), "p99": float(p99), "mean": float(a.mean()), "n": int(a.size)}


def _json_default(o):
    if isinstance(o, (np.floating, np.integer)):
        return o.item()
    if isinstance(o, np.ndarray):
        return o.tolist()
    if isinstance(o, Path):
        return str(o)
    raise TypeError(f"not JSON serialisable: {type(o)}")


def dump_json(obj: Any, path: str | Path) -> Path:
    """Write ``obj`` as indented JSON (numpy scalars and arrays, paths and NaN allowed); returns the path."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps(obj, indent=2, default=_json_default, allow_nan=True))
    return path


def _f(x, fmt="{:.2f}", none="n/a") -> str:
    """``x`` formatted with ``fmt``; ``none`` for None or a non-finite float."""
    if x is None or (isinstance(x, float) and not np.isfinite(x)):
        return none
    return fmt.format(x)


def _pct(x) -> str:
    """A fraction 0..1 as a percentage with one decimal ("n/a" for None)."""
    return _f(None if x is None else 100.0 * x, "{:.1f}%")


def format_markdown(doc: dict[str, Any]) -> str:
    """The markdown section ``kptrack bench`` appends to RESULTS.md."""
    m = doc["machine"]
    lines = [
        f"### kptrack bench, {doc['date']} (commit {doc.get('commit') or '?'})",
        "",
        f"Command: `{doc['config'].get('command') or 'kptrack bench'}`  ",
        f"Machine: {m['cpu']}, {m['cores']} cores, {m['ram_gb']} GB RAM, {m['os']}, Python {m['python']}, "
        f"onnxruntime {m['onnxruntime']} (available: {', '.join(m['ort_providers_available'])})"
        + (f", GPU {m['gpu']}" if m.get("gpu") else ", no GPU") + "  ",
        f"Sequence: `{doc['sequence']['scene_dir']}`, {doc['sequence']['frames']} frames "
        f"{doc['sequence']['width']}x{doc['sequence']['height']}; model: `{doc['model']}`; preset {doc['config']['preset']}. "
        "Accuracy on frames >= 50 % visible; fps = 1000 / mean (or median) end-to-end ms: frame read + tracker + overlay, "
        "display excluded; the median resists other processes on a shared machine.",
        "",
        "| pipeline | device (provider) | fps (mean) | fps (p50) | fps (p50), tracking frames | p50 / p90 / p99 ms "
        "| ADD(-S)<0.1d | 2D<5px | kptrack / peer fps, p50 (mean) |",
        "|---|---|---:|---:|---:|---:|---:|---:|---:|",
    ]
    main = doc["kptrack"][0] if doc["kptrack"] else None
    for r in doc["kptrack"] + doc.get("peers", []):
        e = r["latency_ms"]["end_to_end"]
        ratio = ""
        if main is not None and r is not main and r in doc.get("peers", []) and r["fps"]:
            ratio = _f(main["fps_p50"] / r["fps_p50"], "{:.2f}x") + " (" + _f(main["fps"] / r["fps"], "{:.2f}x") + ")"
        lines.append(
            f"| {r['name']} | {r['device']} ({r['provider'] or '-'}) | {_f(r['fps'], '{:.1f}')} | {_f(r['fps_p50'], '{:.1f}')} | "
            f"{_f(r['fps_tracking_p50'], '{:.1f}')} | "
            f"{_f(e['p50'])} / {_f(e['p90'])} / {_f(e['p99'])} | {_pct(r['accuracy']['add_lt_0.1d'])} | "
            f"{_pct(r['accuracy']['proj2d_lt_5px'])} | {ratio} |"
        )
    for r in doc["kptrack"]:
        st = r["latency_ms_tracking"] or r["latency_ms"]
        which = "tracking-path frames" if r["latency_ms_tracking"] else "all frames (no tracking-path frame)"
        lines += ["", f"Per-stage latency, {r['name']} on {r['device']}, {which} (ms):", "",
                  "| stage | p50 | p90 | p99 | mean |", "|---|---:|---:|---:|---:|"]
        for k in ("read", "predict", "crop", "infer", "decode", "solve", "smooth", "step", "overlay", "end_to_end"):
            if k in st and st[k]["n"]:
                v = st[k]
                lines.append(f"| {k} | {_f(v['p50'], '{:.3f}')} | {_f(v['p90'], '{:.3f}')} | {_f(v['p99'], '{:.3f}')} | {_f(v['mean'], '{:.3f}')} |")
    lines += ["", "| measure | value | target | met |", "|---|---:|---:|---|"]
    for t in doc.get("targets", []):
        lines.append(f"| {t['what']} | {t['value']} | {t['target']} | {t['met']} |")
    cs = doc.get("cold_start") or {}
    for dev, c in cs.items():
        if isinstance(c, dict) and "breakdown" in c:
            b = c["breakdown"]
            lines.append("")
            lines.append(f"Time to first frame ({dev}, numba cache {c['numba_cache']}): {c['first_frame_s']:.2f} s wall "
                         f"(imports {b['import_s']:.2f} s; load {b['load_s']:.2f} s = model + warm-up {b.get('model_load_warmup_s', 0):.2f}, "
                         f"object {b.get('object_load_s', 0):.2f}, tracker + numba warm-up {b.get('tracker_warmup_s', 0):.2f}, "
                         f"renderer {b.get('renderer_s', 0):.2f}; first frame {b['first_frame_s']:.3f} s; "
                         f"runs {', '.join(f'{x:.2f}' for x in c['runs_s'])} s).")
        elif isinstance(c, dict) and "error" in c:
            lines.append(f"\nTime to first frame ({dev}): not measured ({c['error']}).")
    lines.append(f"Peak RSS after the kptrack runs: {_f(doc.get('peak_rss_mb'), '{:.0f}')} MB.")
    for note in doc.get("notes", []):
        lines.append(f"Note: {note}")
    return "\n".join(lines) + "\n"


def target_rows(doc: dict[str, Any]) -> list[dict[str, str]]:
    """The "measure | value | target | met" rows of a bench document (kptrack runs, peers, cold start)
    against :data:`TARGETS`; values are formatted, "met" says by how much a target is missed."""
    out = []

    def row(what, value, target, ok, unit="", higher_is_better=False):
        val = "n/a" if value is None else f"{value:.3g}{unit}"
        if value is None:
            met = "not measured"
        elif ok:
            met = "yes"
        elif higher_is_better:
            met = f"no ({100.0 * value / target:.0f}% of the target)"
        else:
            met = f"no ({value / target:.2f}x the target)"
        bound = ">= " if higher_is_better else "<= "
        out.append({"what": what, "value": val, "target": f"{bound}{target:g}{unit}", "met": met})

    for r in doc["kptrack"]:
        dev = r["device"]
        st = r["latency_ms_tracking"] or {}
        e2e = st.get("end_to_end", {}).get("p50")
        row(f"end-to-end p50, tracking frames, {dev}", e2e, TARGETS["p50_ms_tracking"], e2e is not None and e2e <= 8.0, " ms")
        dec = st.get("decode", {}).get("p50")
        row(f"decode stage p50 ({dev}; includes mapping to frame px)", None if dec is None else dec * 1e3, TARGETS["decode_us"],
            dec is not None and dec * 1e3 <= 20.0, " us")
        sol = st.get("solve", {}).get("p50")
        row(f"solve stage p50, warm ({dev}; includes undistort + checks)", None if sol is None else sol * 1e3,
            TARGETS["solve_warm_us"], sol is not None and sol * 1e3 <= 20.0, " us")
        ov = st.get("overlay", {}).get("p50")
        row(f"overlay render p50 ({dev})", ov, TARGETS["render_ms"], ov is not None and ov <= 2.0, " ms")
        if dev == "cuda":
            inf = st.get("infer", {}).get("p50")
            row("inference p50 on CUDA, batch 1", inf, TARGETS["cuda_infer_ms"], inf is not None and inf <= 1.0, " ms")
    main = doc["kptrack"][0] if doc["kptrack"] else None
    feat = next((p for p in doc.get("peers", []) if p["name"].startswith("(a)")), None)
    if main and feat and feat["fps_p50"]:
        sp = main["fps_p50"] / feat["fps_p50"]
        acc_ok = (main["accuracy"]["add_lt_0.1d"] or 0) >= (feat["accuracy"]["add_lt_0.1d"] or 0)
        what = "kptrack fps / feature-pipeline fps (p50)" + ("" if acc_ok else " (accuracy BELOW the peer's)")
        row(what, sp, TARGETS["speedup_vs_feature_peer"], sp >= 5.0 and acc_ok, "x", higher_is_better=True)
    for dev, c in (doc.get("cold_start") or {}).items():
        if isinstance(c, dict) and "first_frame_s" in c:
            row(f"time to first frame, {dev} (numba cache warm)", c["first_frame_s"], TARGETS["first_frame_s"],
                c["first_frame_s"] <= 3.0, " s")
    return out


def append_results(path: str | Path, doc: dict[str, Any]) -> Path:
    """Append the document's markdown section to ``path`` (created with a title when new or empty)."""
    res = Path(path)
    try:
        res.parent.mkdir(parents=True, exist_ok=True)
        new = not res.exists() or res.stat().st_size == 0
        with open(res, "a", encoding="utf-8") as f:
            if new:
                f.write(RESULTS_TITLE)
            f.write("\n" + format_markdown(doc))
    except OSError as e:
        raise KptrackError(f"{res}: cannot append the results table ({e.strerror}). Choose a writable --results file.") from None
    return res
