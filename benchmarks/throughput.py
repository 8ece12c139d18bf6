"""Throughput and latency of ``kptrack track`` (#14): ``python -m benchmarks.throughput``.

All in one run, on the demo's 600-frame synthetic sequence (rendered once and cached by
:func:`benchmarks.demo.ensure_demo_sequence`; its ``video.mp4`` is the file, its ``rgb/`` the live
stream's images), with the shipped model (or ``--model``):

1. **Whole process**, as a user runs it: ``kptrack track --source video.mp4 --poses P.csv`` in a
   fresh process, start-up included, numba cache warm (an untimed run first); the sequential and
   the pipelined loop alternate for ``rounds`` rounds and the median wall time of each gives
   ``600 / wall`` fps. The loop's own fps (start-up excluded) is read from the summary.
2. **Streams**: ``kptrack track --source V --source V ...`` with 1, 2, 4, 8 copies of the video
   (files: every frame, as fast as it goes): total fps (whole process and in the loop) and each
   stream's fps, and the ratio to one stream.
3. **Live latency** (:mod:`benchmarks.live_latency`): the same sequence served as MJPEG over HTTP
   on 127.0.0.1 at 30 fps, tracked with each loop; at the highest rate the reader sustains
   (``--fps 0`` to the server); and 1, 2, 4, 8 paced streams at 30 fps each, per-stream latency.

Writes ``<out>/throughput_<time>.json`` and prints a markdown section (``--results FILE`` appends
it). Run it on an otherwise idle machine for absolute figures; the ratios are same-run.
"""

from __future__ import annotations

import argparse
import json
import re
import resource
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from dataclasses import asdict, dataclass
from pathlib import Path

from benchmarks.demo import ensure_demo_sequence
from benchmarks.live_latency import run_live
from benchmarks.machine import git_commit, machine_info
from tracker.paths import default_cache_dir

FRAMES = 600
LOOPS = ("sequential", "pipelined")


@dataclass(frozen=True)
class ThroughputConfig:
    """rounds: whole-process runs per loop. streams: stream counts. seconds: each live run's length.
    live: run the live-latency part. model: ONNX model (None: shipped). cache: sequence cache.
    out: folder for the JSON. results: markdown file to append to (None: print only)."""

    rounds: int = 3
    streams: tuple[int, ...] = (1, 2, 4, 8)
    seconds: float = 15.0
    live: bool = True
    model: str | None = None
    cache: str | None = None
    out: str = "benchmarks/out"
    results: str | None = None


def kptrack_command() -> list[str]:
    """The ``kptrack`` console script of this environment (what a user runs), else ``python -m tracker``."""
    script = Path(sys.executable).parent / "kptrack"
    return [str(script)] if script.exists() else ([shutil.which("kptrack")] if shutil.which("kptrack") else [sys.executable, "-m", "tracker"])


def _child_cpu_s() -> float:
    r = resource.getrusage(resource.RUSAGE_CHILDREN)
    return r.ru_utime + r.ru_stime


def _run_track(args: list[str], model: str | None) -> tuple[float, str, float]:
    """(wall seconds, stdout, CPU seconds of all its threads) of one ``kptrack track`` process."""
    cmd = kptrack_command() + ["track", *args] + (["--model", model] if model else [])
    c0, t0 = _child_cpu_s(), time.perf_counter()
    p = subprocess.run(cmd, capture_output=True, text=True, timeout=900)
    wall, cpu = time.perf_counter() - t0, _child_cpu_s() - c0
    if p.returncode != 0:
        raise RuntimeError(f"{' '.join(cmd)} failed ({p.returncode}): {p.stderr[-2000:]}")
    return wall, p.stdout, cpu


def _loop_fps(stdout: str) -> float:
    m = re.search(r"speed: ([\d.]+) fps", stdout)
    return float(m.group(1)) if m else float("nan")


def _summarise_runs(r: list[dict]) -> dict:
    return {"runs": r, "fps_whole_median": round(statistics.median(x["fps_whole"] for x in r), 1),
            "fps_loop_median": round(statistics.median(x["fps_loop"] for x in r), 1),
            "cpu_ms_per_frame_median": round(statistics.median(x["cpu_ms_per_frame"] for x in r), 2)}


def whole_process(video: Path, rounds: int, model: str | None, tmp: Path) -> dict:
    """Sequential vs pipelined ``kptrack track --poses`` (and with ``--out`` as well: drawing and
    video writing), alternating, start-up included. CPU ms per frame leave out the CPU of a
    one-frame run (start-up)."""
    variants = {(loop, out): [] for out in (False, True) for loop in LOOPS}
    _run_track(["--source", str(video), "--poses", str(tmp / "warm.csv"), "--overwrite", "--max-frames", "5"], model)
    startup = statistics.median(_run_track(["--source", str(video), "--poses", str(tmp / "warm.csv"), "--overwrite", "--max-frames", "1"],
                                           model)[2] for _ in range(2))
    for _ in range(rounds):
        for (loop, out), runs in variants.items():
            extra = ["--out", str(tmp / f"{loop}.avi")] if out else []
            wall, text, cpu = _run_track(["--source", str(video), "--poses", str(tmp / f"{loop}{'_out' if out else ''}.csv"),
                                          "--overwrite", "--loop", loop, *extra], model)
            runs.append({"wall_s": round(wall, 3), "fps_whole": round(FRAMES / wall, 1), "fps_loop": _loop_fps(text),
                         "cpu_s": round(cpu, 2), "cpu_ms_per_frame": round((cpu - startup) / FRAMES * 1e3, 2)})
    doc = {loop: _summarise_runs(variants[(loop, False)]) for loop in LOOPS}
    doc["with_out"] = {loop: _summarise_runs(variants[(loop, True)]) for loop in LOOPS}
    doc["startup_cpu_s"] = round(startup, 2)
    doc["pipelined_over_sequential"] = round(doc["pipelined"]["fps_whole_median"] / doc["sequential"]["fps_whole_median"], 2)
    w = doc["with_out"]
    doc["with_out"]["pipelined_over_sequential"] = round(w["pipelined"]["fps_whole_median"] / w["sequential"]["fps_whole_median"], 2)
    doc["same_poses"] = _poses_equal(tmp / "sequential.csv", tmp / "pipelined.csv") and _poses_equal(tmp / "sequential_out.csv",
                                                                                                     tmp / "pipelined_out.csv")
    return doc


def _poses_equal(a: Path, b: Path) -> bool:
    """Whether two BOP CSVs hold the same rows up to the ``time`` column."""
    def rows(p):
        return [line.rsplit(",", 1)[0] for line in p.read_text().splitlines()]
    return rows(a) == rows(b)


def streams_throughput(video: Path, counts: tuple[int, ...], model: str | None, tmp: Path) -> dict:
    """Total and per-stream fps of ``kptrack track`` with n copies of ``video`` as --source."""
    doc = {}
    for n in counts:
        args = [a for _ in range(n) for a in ("--source", str(video))]
        pattern = "s{i}.csv" if n > 1 else "s0.csv"
        wall, out, cpu = _run_track([*args, "--poses", str(tmp / f"n{n}_{pattern}"), "--overwrite"], model)
        per = [float(x) for x in re.findall(r"^stream \d+ .*?, ([\d.]+) fps", out, re.M)]
        doc[str(n)] = {"wall_s": round(wall, 2), "fps_whole_total": round(n * FRAMES / wall, 1), "fps_loop_total": _loop_fps(out),
                       "fps_per_stream": per or [_loop_fps(out)], "cpu_s": round(cpu, 2), "cores_used": round(cpu / wall, 2),
                       "mean_batch": float(m.group(1)) if (m := re.search(r"mean batch ([\d.]+)", out)) else 1.0}
    if "1" in doc:
        for n, d in doc.items():
            d["over_one_stream"] = round(d["fps_loop_total"] / doc["1"]["fps_loop_total"], 2)
    return doc


def live(scene: Path, counts: tuple[int, ...], seconds: float, model: str | None) -> dict:
    """Live latency: 30 fps with each loop, the highest sustained rate, and N paced streams."""
    doc = {f"30fps_{loop}": run_live(scene, fps=30.0, seconds=seconds, loop=loop, model=model) for loop in LOOPS}
    doc["max_rate_pipelined"] = run_live(scene, fps=0.0, seconds=seconds, loop="pipelined", model=model)
    for n in counts:
        if n > 1:
            doc[f"30fps_{n}_streams"] = run_live(scene, fps=30.0, seconds=seconds, streams=n, model=model)
    for d in doc.values():
        d.pop("summary", None)
    return doc


def run_throughput(cfg: ThroughputConfig) -> dict:
    """Everything of the module docstring, in one run; returns the JSON document (also written)."""
    scene = ensure_demo_sequence(Path(cfg.cache) if cfg.cache else default_cache_dir(), FRAMES)
    video = scene / "video.mp4"
    doc: dict = {"config": asdict(cfg), "machine": machine_info(), "commit": git_commit(), "video": str(video),
                 "started": time.strftime("%Y-%m-%d %H:%M:%S UTC", time.gmtime())}
    with tempfile.TemporaryDirectory(prefix="kptrack_tp_") as tmp:
        doc["whole_process"] = whole_process(video, cfg.rounds, cfg.model, Path(tmp))
        doc["streams"] = streams_throughput(video, cfg.streams, cfg.model, Path(tmp))
    if cfg.live:
        doc["live"] = live(scene, cfg.streams, cfg.seconds, cfg.model)
    out = Path(cfg.out)
    out.mkdir(parents=True, exist_ok=True)
    doc["json"] = str(out / f"throughput_{time.strftime('%Y%m%d_%H%M%S')}.json")
    Path(doc["json"]).write_text(json.dumps(doc, indent=1))
    return doc


def _lat(d: dict | None, key: str = "capture_to_result_ms") -> str:
    v = (d or {}).get(key) or {}
    return f"{v.get('p50')} / {v.get('p99')}" if v else "-"


def format_markdown(doc: dict) -> str:
    """The results section for RESULTS.md (figures only; the caller adds the title and the notes)."""
    m, wp = doc["machine"], doc["whole_process"]
    lines = [f"Run {doc['started']}, commit {doc.get('commit')}; {m['cpu']}, {m['cores']} cores, {m['ram_gb']} GB, "
             f"onnxruntime {m['onnxruntime']}, CPU provider. Command: `python -m benchmarks.throughput`"
             f" (rounds {doc['config']['rounds']}, live runs {doc['config']['seconds']:.0f} s each).", "",
             f"**Whole process**, `kptrack track --source video.mp4 --poses P.csv` on the 600-frame demo video (640x480, "
             f"MPEG-4), start-up included, warm cache, median of {doc['config']['rounds']} alternating runs:", "",
             "| loop | whole process fps | in-loop fps | CPU ms per frame (start-up excluded) | runs (wall s) |", "|---|---|---|---|---|"]
    for label, group in (("", wp), (" + `--out` (drawing, MJPEG writing)", wp.get("with_out") or {})):
        for loop in LOOPS:
            if loop in group:
                d = group[loop]
                lines.append(f"| {loop}{label} | {d['fps_whole_median']} | {d['fps_loop_median']} | {d.get('cpu_ms_per_frame_median', '-')} | "
                             f"{', '.join(str(r['wall_s']) for r in d['runs'])} |")
    with_out = f", with `--out` {wp['with_out']['pipelined_over_sequential']}x" if "with_out" in wp else ""
    lines += ["", f"Pipelined / sequential (whole process): {wp['pipelined_over_sequential']}x{with_out}; identical poses: {wp['same_poses']}.", "",
              "**Streams** (`--source V` repeated, files, every frame; one batched ONNX Runtime session):", "",
              "| streams | total fps (in loop) | total fps (whole process) | per-stream fps | mean batch | total / one stream | cores used |",
              "|---|---|---|---|---|---|---|"]
    for n, d in doc["streams"].items():
        lines.append(f"| {n} | {d['fps_loop_total']} | {d['fps_whole_total']} | {', '.join(f'{x:.0f}' for x in d['fps_per_stream'])} | "
                     f"{d['mean_batch']:.2f} | {d.get('over_one_stream', '-')} | {d.get('cores_used', '-')} |")
    if "live" in doc:
        lines += ["", "**Live latency**, MJPEG over HTTP on 127.0.0.1 (`benchmarks/mjpeg_server.py`), read by `kptrack track` "
                  "through cv2.VideoCapture; ms p50 / p99, first second left out:", "",
                  "| run | frames | fps per stream | capture -> result | server send -> result |", "|---|---|---|---|---|"]
        for name, d in doc["live"].items():
            for i, s in enumerate(d["per_stream"]):
                label = name.replace("_", " ") + (f", stream {i}" if d["streams"] > 1 else "")
                lines.append(f"| {label} | {s.get('frames')} | {s.get('fps')} | {_lat(s)} | {_lat(s, 'send_to_result_ms')} |")
    return "\n".join(lines) + "\n"


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(prog="python -m benchmarks.throughput", description=__doc__.split("\n")[0])
    p.add_argument("--rounds", type=int, default=3, help="whole-process runs per loop (alternating)")
    p.add_argument("--streams", default="1,2,4,8", help="stream counts, comma-separated")
    p.add_argument("--seconds", type=float, default=15.0, help="length of each live run, seconds")
    p.add_argument("--no-live", action="store_true", help="skip the live-latency runs")
    p.add_argument("--model", default=None, help="ONNX model (default: the shipped one)")
    p.add_argument("--cache", default=None, help="where the demo sequence is cached (default ~/.cache/kptrack)")
    p.add_argument("--out", default="benchmarks/out", help="folder for the JSON document")
    p.add_argument("--results", default=None, help="append the markdown section to this file")
    a = p.parse_args(argv)
    cfg = ThroughputConfig(rounds=a.rounds, streams=tuple(int(x) for x in a.streams.split(",")), seconds=a.seconds,
                           live=not a.no_live, model=a.model, cache=a.cache, out=a.out, results=a.results)
    doc = run_throughput(cfg)
    md = format_markdown(doc)
    print(md)
    if cfg.results:
        with open(cfg.results, "a", encoding="utf-8") as f:
            f.write("\n" + md)
    print(f"wrote {doc['json']}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
