"""Turn a ``pytest benchmarks/ --benchmark-json=JSON`` file into the markdown tables of benchmarks/RESULTS.md.

Usage: ``python benchmarks/results_table.py JSON`` prints one table per stage: the median (per frame or
per image where a round handles several), the baseline measured in the same run and the ratio
median / baseline (< 1 is faster), and, where issue 5 sets one, the target and whether it was met and
by how much. Every figure comes from the JSON (``stats.median`` and the ``extra_info`` that
benchmarks/benchutil.py writes), so the tables can be re-made from any run.
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path
from typing import Any

# Stage order and titles; a group not listed here is printed after these under its own name.
GROUPS = {
    "video-decode": "Video decode (source stage, 640x480)",
    "crop": "Crop (cv2.warpAffine 640x480 -> 256x256)",
    "infer": "Inference (ONNX Runtime, batch 1)",
    "decode": "Heatmap decoding (K x 64 x 64): DARK (numba) vs its numpy reference vs plain argmax",
    "pose": "Pose, warm-started LM (numba) vs OpenCV solvePnP / solvePnPRansac",
    "render": "Render (numba z-buffer, 640x480)",
    "overlay": "Overlay (draw_overlay on a 640x480 frame, frame copy included)",
    "render-cache": "Numba on-disk cache (fresh process: import + first render)",
    "synth": "Synthetic data generation (run_synth, default drill)",
    "peers": "Peers, one 640x480 frame",
}
# Issue 5 targets that the benchmarks do not carry in extra_info: name -> (extra_info key, target, unit, higher is better).
EXTRA_TARGETS = {
    "kptrack_tracking_step": ("speedup_vs_feature_peer", 5.0, "x", True),
    "infer_cuda": ("ms", 1.0, " ms", False),
}
# extra_info keys worth a word in the notes column, with how to print them.
NOTES = {
    "k": "K={}", "triangles": "{} triangles", "object_pixels": "{} object px", "items_per_round": "{} frames/round",
    "images": "{} images", "size": "size {}", "workers": "{} worker(s)", "images_per_s": "{:.1f} img/s",
    "items_per_s": "{:.0f} frames/s", "model": "model {}", "provider": "{}", "backend": "heatmaps: {}",
    "mode": "mode {}", "iterations": "{} LM iterations", "speedup_vs_feature_peer": "{:.2f}x the speed of peer (a)",
}


def fmt_s(s: float | None) -> str:
    """Seconds as us / ms / s with sensible digits."""
    if s is None:
        return "-"
    if s < 1e-3:
        return f"{s * 1e6:.1f} us"
    if s < 1.0:
        return f"{s * 1e3:.2f} ms"
    return f"{s:.2f} s"


def verdict(value: float, target: float, unit: str, higher_is_better: bool) -> tuple[str, str, str]:
    """(target text, met text saying by how much, value text)."""
    v = f"{value:.3g}{unit}"
    if higher_is_better:
        t = f">= {target:g}{unit}"
        if value >= target:
            return t, f"met ({100 * value / target:.0f}% of the target)", v
        return t, f"missed by {target - value:.3g}{unit} ({100 * value / target:.0f}% of the target)", v
    t = f"<= {target:g}{unit}"
    if value <= target:
        return t, f"met ({value / target:.2f}x the target)", v
    return t, f"missed by {value - target:.3g}{unit} ({value / target:.2f}x the target)", v


def target_of(name: str, info: dict[str, Any]) -> tuple[str, str, str]:
    """(target, met, value) for one benchmark, or ('', '', '') where issue 5 sets no target."""
    if "target_us" in info and "us" in info:
        return verdict(info["us"], info["target_us"], " us", False)
    if "target_ms" in info and "ms" in info:
        return verdict(info["ms"], info["target_ms"], " ms", False)
    if "target_images_per_s" in info and "images_per_s" in info:
        return verdict(info["images_per_s"], info["target_images_per_s"], " img/s", True)
    if name in EXTRA_TARGETS:
        key, target, unit, higher = EXTRA_TARGETS[name]
        if key in info:
            return verdict(info[key], target, unit, higher)
    return "", "", ""


def notes_of(info: dict[str, Any]) -> str:
    parts = [fmt.format(info[k]) for k, fmt in NOTES.items() if k in info and not (k == "items_per_round" and info[k] == 1)]
    if "first_total_s" in info:  # the numba cache probe: in-process figures of both processes
        parts.append(f"in-process import + first render: compiling {info['first_total_s']:.2f} s "
                     f"(render {info['first_render_s']:.2f} s), cached {info['second_total_s']:.2f} s "
                     f"(render {info['second_render_s']:.2f} s); timed median is the cached process's wall time "
                     "including interpreter start")
    return ", ".join(parts)


def short(name: str) -> str:
    return name.removeprefix("test_bench_")


def table_single(rows: list[dict[str, Any]]) -> list[str]:
    """Benchmarks with one baseline (benchutil.record)."""
    out = ["| benchmark | median | baseline (same run) | baseline median | ratio | target | met | notes |",
           "|---|---:|---|---:|---:|---|---|---|"]
    for b in rows:
        info, name = b["extra_info"], short(b["name"])
        per = info.get("items_per_round") or info.get("images") or 1
        med = info["us"] * 1e-6 if "us" in info else b["stats"]["median"] / per
        med_txt = fmt_s(med) + (" /frame" if "items_per_round" in info and per > 1 else "") + (" /image" if "images" in info else "")
        base = info.get("baseline_us")
        base_txt = fmt_s(None if base is None else base * 1e-6)
        ratio = info.get("ratio_vs_baseline")
        target, met, _ = target_of(name, info)
        out.append(f"| {name} | {med_txt} | {info.get('baseline', '-')} | {base_txt} | "
                   f"{'-' if ratio is None else f'{ratio:.3g}'} | {target} | {met} | {notes_of(info)} |")
    return out


def table_multi(rows: list[dict[str, Any]]) -> list[str]:
    """Benchmarks with several named baselines (benchutil.record_vs): one line per method."""
    out = ["| benchmark | method | median | ours / method | rot. error (deg, pose) | target | met | notes |",
           "|---|---|---:|---:|---:|---|---|---|"]
    for b in rows:
        info, name = b["extra_info"], short(b["name"])
        methods = [k[len("ratio_vs_"):] for k in info if k.startswith("ratio_vs_")]
        target, met, _ = target_of(name, info)
        err = info.get("rot_err_deg_lm")
        out.append(f"| {name} | **ours** | **{fmt_s(info['us'] * 1e-6)}** | 1 | {'' if err is None else f'{err:.3f}'} | "
                   f"{target} | {met} | {notes_of(info)} |")
        for m in methods:
            err = info.get(f"rot_err_deg_{m}")
            out.append(f"| | {m} | {fmt_s(info[f'{m}_us'] * 1e-6)} | {info[f'ratio_vs_{m}']:.3g} | "
                       f"{'' if err is None else f'{err:.3f}'} | | | |")
    return out


def render_tables(doc: dict[str, Any]) -> str:
    by_group: dict[str, list[dict[str, Any]]] = {}
    for b in doc["benchmarks"]:
        by_group.setdefault(b.get("group") or "(no group)", []).append(b)
    order = [g for g in GROUPS if g in by_group] + [g for g in by_group if g not in GROUPS]
    commit = (doc.get("commit_info") or {}).get("id", "?")
    cpu = ((doc.get("machine_info") or {}).get("cpu") or {})
    lines = [f"Run {doc.get('datetime', '?')}, commit {commit[:7]}"
             f"{' (dirty)' if (doc.get('commit_info') or {}).get('dirty') else ''}, "
             f"{cpu.get('brand_raw', '?')} x{cpu.get('count', '?')}, pytest-benchmark {doc.get('version', '?')}."]
    lines += ["", "### Targets (issue 5)", "", "| stage | benchmark | measured | target | met |", "|---|---|---:|---|---|"]
    for g in order:
        for b in by_group[g]:
            target, met, value = target_of(short(b["name"]), b["extra_info"])
            if target:
                lines.append(f"| {g} | {short(b['name'])} | {value} | {target} | {met} |")
    for g in order:
        rows = by_group[g]
        lines += ["", f"### {GROUPS.get(g, g)}", ""]
        multi = any(k.startswith("ratio_vs_") and k != "ratio_vs_baseline" and k != "ratio_vs_feature_peer"
                    for b in rows for k in b["extra_info"])
        lines += table_multi(rows) if multi else table_single(rows)
    return "\n".join(lines) + "\n"


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("json", help="the file written by pytest benchmarks/ --benchmark-json=JSON")
    args = ap.parse_args(argv)
    try:
        doc = json.loads(Path(args.json).read_text(encoding="utf-8"))
        doc["benchmarks"]
    except (OSError, ValueError, KeyError, TypeError) as e:
        print(f"{args.json}: not a pytest-benchmark JSON file ({e}). Make one with "
              "`python -m pytest benchmarks/ --benchmark-only --benchmark-json=JSON`.", file=sys.stderr)
        return 2
    sys.stdout.write(render_tables(doc))
    return 0


if __name__ == "__main__":
    sys.exit(main())
