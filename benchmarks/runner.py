"""``kptrack bench``'s library half: end-to-end latency and accuracy on a test sequence, with peer
baselines in the same run (:func:`run_bench`, configured by a frozen :class:`BenchConfig`).

On the default synthetic sequence (generated and cached like the demo's) or any BOP scene, it runs:

* kptrack (the tracking loop, :class:`tracker.pipeline.tracker.Tracker`) on CPU, and on CUDA when the CUDA
  provider loads; per frame it times the source read (``cv2.imread`` of the frame), every tracker
  stage (predict, crop, infer, decode, solve, smooth; from ``FrameResult.timings``) and the drawing
  (:class:`tracker.pipeline.draw.FrameDrawer`, as ``kptrack track`` draws), and reports p50/p90/p99 per
  stage, over all frames and over tracking-path frames (keypoint fits and edge-coasted frames), and
  frames per second (``1000 / mean`` and ``1000 / median`` end-to-end ms, display excluded; the
  median resists other processes on a shared machine, and the peer speed ratios use it)
  (:mod:`benchmarks.runs`, :mod:`benchmarks.summary`);
* peak RSS (``resource.getrusage``, after the kptrack runs, before the peers);
* time to first frame: a fresh ``python`` subprocess that imports kptrack, loads the model and the
  object and tracks one frame (numba kernels load from their cache; the cache is warmed by an
  untimed run first), timed from before the interpreter starts (:mod:`benchmarks.cold_start`);
* the peers of :mod:`benchmarks.peers` on the same frames: (a) the OpenCV-tutorial ORB/FLANN/PnP
  pipeline, (b) kptrack cold-starting every frame, (c) kptrack with argmax decoding; their fps,
  accuracy (ADD(-S) < 0.1 d and 2D projection < 5 px on frames >= 50 % visible, scored by
  :mod:`tracker.eval.evaluate`) and the ratios kptrack / peer.

It writes ``<out>/bench_<time>.json``, one BOP results CSV per pipeline (so ``kptrack eval`` can
replay any of them), and appends a markdown section with the machine's description (CPU model,
cores, RAM, OS, python, onnxruntime version and provider) to ``results`` (:mod:`benchmarks.report`).
"""

from __future__ import annotations

import dataclasses
import logging
import subprocess
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Callable

import onnxruntime as ort

from benchmarks.cold_start import measure_cold_start
from benchmarks.machine import git_commit, machine_info, peak_rss_mb
from benchmarks.peers import ColdStartTracker, make_argmax_tracker
from benchmarks.report import append_results, dump_json, target_rows
from benchmarks.runs import PipelineRun, time_feature_peer, time_tracker
from benchmarks.sequence import BenchSequence, default_sequence_dir, load_sequence
from benchmarks.summary import summarise, write_poses_csvs
from tracker.errors import KptrackError
from tracker.objects import load_object
from tracker.paths import BUILTIN_OBJECTS, default_model_path
from tracker.pipeline.config import TrackerConfig
from tracker.pipeline.draw import FrameDrawer
from tracker.pipeline.infer import CUDA, HeatmapBackend, OnnxHeatmapModel, nvidia_driver_present
from tracker.pipeline.tracker import Tracker
from tracker.render import Renderer

log = logging.getLogger(__name__)

WARMUP_FRAMES = 3
COLD_PEER_NAME = "(b) kptrack, cold start every frame (no warm start, no ROI tracking)"
ARGMAX_PEER_NAME = "(c) kptrack, plain argmax decoding"

BackendFactory = Callable[[str, BenchSequence], HeatmapBackend]


@dataclass(frozen=True)
class BenchConfig:
    """Options of ``kptrack bench``.

    frames: frames of the sequence to run (the sequence is generated with at least this many).
    model: ONNX model (None: the shipped models/default/model.onnx, :func:`tracker.paths.default_model_path`).
    device: auto | cpu | cuda (auto: CPU, plus CUDA when it loads). out: folder for JSON and CSVs.
    results: markdown file to append to (None: do not append). peers: run the peer baselines.
    sequence: a BOP scene folder to run on instead of the default synthetic sequence; cache: where
    that one is cached. preset: tracker preset. threads: ONNX Runtime intra-op threads. cold_start:
    measure time to first frame (subprocesses), cold_start_runs times. overlay: time the drawing
    per frame. object: 'default' or an object directory (the sequence's object). command: how it
    was invoked (for the results table).
    """

    frames: int = 300
    model: str | None = None
    device: str = "auto"
    out: str = "benchmarks/out"
    results: str | None = "benchmarks/RESULTS.md"
    peers: bool = True
    sequence: str | None = None
    cache: str | None = None
    preset: str = "fast"
    threads: int | None = None
    cold_start: bool = True
    cold_start_runs: int = 3
    overlay: bool = True
    object: str = "default"
    command: str = ""


def devices(device: str) -> list[str]:
    """The devices ``--device`` asks to run on: cpu | cuda as given; auto: cpu, plus cuda when it can load."""
    if device in ("cpu", "cuda"):
        return [device]
    if device != "auto":
        raise KptrackError(f"--device {device}: unknown device. Use auto, cpu or cuda.")
    return ["cpu", "cuda"] if CUDA in ort.get_available_providers() and nvidia_driver_present() else ["cpu"]


def _backends(cfg: BenchConfig, seq: BenchSequence, model_path: Path, factory: BackendFactory | None,
              notes: list[str]) -> dict[str, HeatmapBackend]:
    """{device: warmed-up heatmap backend}. With --device auto a CUDA that fails to load is a note, not an error."""
    out = {}
    for dev in devices(cfg.device):
        try:
            if factory is not None:
                out[dev] = factory(dev, seq)
            else:
                out[dev] = OnnxHeatmapModel(model_path, device=dev, threads=cfg.threads)
                out[dev].warmup(10)
        except KptrackError as e:
            if cfg.device == "auto" and dev == "cuda":
                notes.append(f"CUDA not measured: {e}")
                continue
            raise
    return out


def _drawer(cfg: BenchConfig, obj, seq: BenchSequence, backend: HeatmapBackend, tcfg: TrackerConfig) -> FrameDrawer | None:
    """The pipeline's drawing for runs on ``backend`` (None when the overlay is not timed)."""
    if not cfg.overlay:
        return None
    return FrameDrawer(obj, seq.camera, provider=str(getattr(backend, "provider", "?")), preset=tcfg.name)


def _kptrack_run(backend: HeatmapBackend, device: str, seq: BenchSequence, obj, tcfg: TrackerConfig,
                 drawer: FrameDrawer | None) -> PipelineRun:
    """kptrack's timed pass on one device, after an untimed pass over a few frames with another
    tracker, so the numba kernels (decode, solve, render) load or compile outside the timing."""
    n = len(seq)
    time_tracker("warmup", Tracker(backend, obj, seq.camera, tcfg), seq, min(n, WARMUP_FRAMES), drawer=drawer)
    log.info("bench: kptrack on %s (%s), %d frames", device, getattr(backend, "provider", "?"), n)
    return time_tracker("kptrack", Tracker(backend, obj, seq.camera, tcfg), seq, n, drawer=drawer, device=device)


def _peer_runs(backends: dict[str, HeatmapBackend], drawers: dict[str, FrameDrawer | None], seq: BenchSequence, obj,
               tcfg: TrackerConfig) -> list[PipelineRun]:
    """Peers (a), (b), (c) on the same frames; (b) and (c) on the CPU backend (else the first one)."""
    dev = "cpu" if "cpu" in backends else next(iter(backends))
    be, drawer, n = backends[dev], drawers[dev], len(seq)
    log.info("bench: peer (a) feature pipeline")
    runs = [time_feature_peer(seq, obj, n, Renderer(obj))]
    log.info("bench: peer (b) kptrack cold every frame")
    runs.append(time_tracker(COLD_PEER_NAME, ColdStartTracker(be, obj, seq.camera, tcfg), seq, n, drawer=drawer, device=dev))
    log.info("bench: peer (c) kptrack with argmax decoding")
    runs.append(time_tracker(ARGMAX_PEER_NAME, make_argmax_tracker(be, obj, seq.camera, tcfg), seq, n, drawer=drawer,
                             device=dev))
    return runs


def _cold_starts(cfg: BenchConfig, device_names: list[str], model_path: Path, seq: BenchSequence) -> dict[str, Any]:
    """{device: time to first frame, or {'error': why not}} (:func:`benchmarks.cold_start.measure_cold_start`)."""
    cold: dict[str, Any] = {}
    for dev in device_names:
        if not model_path.is_file():
            cold[dev] = {"error": f"no ONNX model at {model_path}"}
            continue
        try:
            cold[dev] = measure_cold_start(model_path, seq.image_paths[0], seq.camera, object=cfg.object, device=dev,
                                           preset=cfg.preset, threads=cfg.threads, runs=cfg.cold_start_runs)
        except (KptrackError, subprocess.SubprocessError) as e:
            cold[dev] = {"error": str(e)}
    return cold


def _compare_peers(doc: dict[str, Any]) -> None:
    """Add to each peer's entry the ratios of kptrack's (first run's) fps to its own and the ADD(-S) rate difference."""
    main = doc["kptrack"][0] if doc["kptrack"] else None
    if not main:
        return
    for p in doc["peers"]:
        p["ratio_fps_kptrack_over_peer"] = main["fps"] / p["fps"] if p["fps"] else None
        p["ratio_fps_p50_kptrack_over_peer"] = main["fps_p50"] / p["fps_p50"] if p["fps_p50"] else None
        p["delta_add_kptrack_minus_peer"] = (
            None if p["accuracy"]["add_lt_0.1d"] is None or main["accuracy"]["add_lt_0.1d"] is None
            else main["accuracy"]["add_lt_0.1d"] - p["accuracy"]["add_lt_0.1d"])


def _out_dir(path: str) -> Path:
    out = Path(path)
    try:
        out.mkdir(parents=True, exist_ok=True)
    except OSError as e:
        raise KptrackError(f"{out}: cannot create the --out folder ({e.strerror}). Choose a writable folder.") from None
    return out


def run_bench(cfg: BenchConfig, *, backend_factory: BackendFactory | None = None) -> dict[str, Any]:
    """Run the benchmark (see the module docstring). Returns the JSON document (also written to
    ``cfg.out``). ``backend_factory(device, sequence) -> heatmap backend`` replaces the ONNX model
    (tests use an oracle); cold start then still needs ``cfg.model``."""
    # 1. the sequence, the object, the model
    if cfg.frames < 1:
        raise KptrackError(f"--frames {cfg.frames}: must be >= 1.")
    builtin = cfg.object if cfg.object in BUILTIN_OBJECTS else "default"  # its sequence and shipped model
    seq = load_sequence(Path(cfg.sequence) if cfg.sequence else default_sequence_dir(cfg.frames, cfg.cache, builtin), cfg.frames)
    n = len(seq)
    if n < cfg.frames:
        log.warning("%s has %d frames; running on those (asked for %d)", seq.scene_dir, n, cfg.frames)
    obj = load_object(cfg.object)
    model_path = Path(cfg.model) if cfg.model else default_model_path() if builtin == "default" else default_model_path(builtin)
    if backend_factory is None and not model_path.is_file():
        raise KptrackError(f"{model_path}: model not found. Pass --model M.onnx (train and export one with "
                           "`kptrack train` and `kptrack export`).")
    tcfg = TrackerConfig.preset(cfg.preset)

    # 2. kptrack on each device, then the peers, then time to first frame in fresh processes
    notes: list[str] = []
    backends = _backends(cfg, seq, model_path, backend_factory, notes)
    drawers = {dev: _drawer(cfg, obj, seq, be, tcfg) for dev, be in backends.items()}
    kp_runs = [_kptrack_run(be, dev, seq, obj, tcfg, drawers[dev]) for dev, be in backends.items()]
    peak_rss = peak_rss_mb()
    peer_runs = _peer_runs(backends, drawers, seq, obj, tcfg) if cfg.peers else []
    cold = _cold_starts(cfg, list(backends), model_path, seq) if cfg.cold_start else {}

    # 3. the document: runs summarised and scored, compared with the peers and the targets
    doc: dict[str, Any] = {
        "date": time.strftime("%Y-%m-%d %H:%M:%S"),
        "commit": git_commit(),
        "machine": machine_info(),
        "config": dataclasses.asdict(cfg),
        "model": "oracle backend (test)" if backend_factory is not None else str(model_path),
        "sequence": {"scene_dir": str(seq.scene_dir), "frames": n, "width": seq.camera.width, "height": seq.camera.height},
        "kptrack": [summarise(r, seq, obj, n) for r in kp_runs],
        "peers": [summarise(r, seq, obj, n) for r in peer_runs],
        "peak_rss_mb": peak_rss,
        "cold_start": cold,
        "notes": notes,
    }
    _compare_peers(doc)
    doc["targets"] = target_rows(doc)

    # 4. outputs: the CSVs, the JSON, the markdown section
    out = _out_dir(cfg.out)
    stamp = time.strftime("%Y%m%d-%H%M%S")
    doc["poses_csv"] = write_poses_csvs(kp_runs + peer_runs, seq, out)
    doc["json"] = str(dump_json(doc, out / f"bench_{stamp}.json"))
    if cfg.results:
        doc["results_md"] = str(append_results(cfg.results, doc))
    return doc
