"""Many streams in one process: ``kptrack track --source A --source B ...``.

Each stream has its own source, camera, :class:`~tracker.pipeline.tracker.Tracker` (so its own
TrackState), drawer and sinks, and runs on its own thread. All trackers share one network through
:class:`~tracker.pipeline.batching.BatchingBackend`, so the crops of the streams that are at the
same point go through one batched inference call per tick (ONNX Runtime and the numba kernels
release the GIL, so one stream crops, decodes or solves while another's batch runs).

Outputs are per stream: ``--out`` / ``--poses`` given once per ``--source`` (in order), or once as
a pattern with ``{i}`` (stream number from 0) or ``{name}`` (the source's file stem, camera index
or URL host and path, made file-safe). Two streams that would write the same file are refused with
one :class:`~tracker.errors.KptrackError` before anything opens. ``--show`` is single-stream only.
"""

from __future__ import annotations

import logging
import math
import re
import threading
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Sequence

from tracker.camera.resolve import resolve_camera
from tracker.errors import KptrackError
from tracker.objects import load_object
from tracker.pipeline.batching import BatchingBackend
from tracker.pipeline.config import TrackerConfig
from tracker.pipeline.draw import FrameDrawer
from tracker.pipeline.infer import OnnxHeatmapModel, check_model_matches_object
from tracker.pipeline.loop import Interrupts, LoopStats, deliver, format_summary, interrupts
from tracker.pipeline.session import TrackConfig, TrackReport, check_outputs, open_model, pose_paths
from tracker.pipeline.sinks import JsonlSink, PoseCsvSink, Sink, VideoSink
from tracker.pipeline.source import FrameSource, open_source
from tracker.pipeline.tracker import Tracker
from tracker.pipeline.warmup import announce_compilation

log = logging.getLogger(__name__)

_POLL_S = 0.05
STREAM_CALLS = 2  # inference calls in flight at once (two groups of streams alternate; see tracker.pipeline.batching)


@dataclass(frozen=True)
class StreamsConfig:
    """Options of ``kptrack track`` with several ``--source``.

    base: the options every stream shares (model, device, object, camera, preset, ...; its
    source/out/poses/show are not used). sources: one entry per stream. outs, poses: empty, one
    pattern (``{i}``, ``{name}``), or one per source (see the module docstring).
    """

    base: TrackConfig
    sources: tuple[str, ...]
    outs: tuple[str, ...] = ()
    poses: tuple[str, ...] = ()


@dataclass
class Stream:
    """One stream's pieces: name (the --source), source, tracker, sinks, drawer (None: no images)."""

    name: str
    source: FrameSource
    tracker: Tracker
    sinks: list[Sink]
    drawer: FrameDrawer | None = None
    stats: LoopStats = field(default_factory=LoopStats)


def source_name(spec: str) -> str:
    """A file-safe short name of a --source: file stem, camera index, or URL host and path."""
    s = str(spec).strip()
    if "://" in s:
        s = s.split("://", 1)[1]
    elif not s.isdigit():
        s = Path(s).stem or Path(s).name
    return re.sub(r"[^A-Za-z0-9._-]+", "_", s).strip("_") or "stream"


def stream_paths(flag: str, given: Sequence[str], sources: Sequence[str]) -> list[str | None]:
    """Per-stream output paths from ``--out``/``--poses`` values (module docstring). Refuses a path
    two streams would share, or a count that is neither 0, 1 nor one per source."""
    n = len(sources)
    if not given:
        return [None] * n
    if len(given) == 1 and n > 1:
        paths = [given[0].format(i=i, name=source_name(s)) if ("{i}" in given[0] or "{name}" in given[0]) else given[0]
                 for i, s in enumerate(sources)]
    elif len(given) == n:
        paths = list(given)
    else:
        raise KptrackError(f"{flag}: given {len(given)} times for {n} --source values. Give it once per --source, "
                           "or once as a pattern with {i} or {name}.")
    seen: dict[Path, str] = {}
    for p, s in zip(paths, sources):
        key = Path(p).expanduser().resolve()
        if key in seen:
            raise KptrackError(f"{flag} {p}: --source {seen[key]} and --source {s} would both write it. Give {flag} once per "
                               "--source, or a pattern with {i} (stream number) or {name} (source name), e.g. "
                               f"{flag} out/{{name}}{Path(p).suffix}.")
        seen[key] = s
    return paths


def _stream_worker(st: Stream, batcher: BatchingBackend, max_frames: int | None, halt: threading.Event,
                   errors: list[BaseException]) -> None:
    """One stream's thread: read, step (inside the batcher's step span), draw, write, in frame order."""
    render_ms, t_prev, fps = 0.0, time.perf_counter(), float("nan")
    try:
        while not halt.is_set() and (max_frames is None or st.stats.frames < max_frames):
            try:
                frame = st.source.read(timeout=_POLL_S)
            except TimeoutError:
                continue
            if frame is None:
                break
            with batcher.stepping():
                r = st.tracker.step(frame.image, frame.index, frame.timestamp)
            img = None
            if st.drawer is not None:
                t0 = time.perf_counter()
                img = st.drawer(frame.image, r, fps, render_ms)
                render_ms = (time.perf_counter() - t0) * 1e3
            deliver(frame, r, img, render_ms, fps, st.sinks, None, st.stats, None)
            now = time.perf_counter()
            rate, t_prev = 1.0 / max(now - t_prev, 1e-9), now
            fps = rate if math.isnan(fps) else 0.9 * fps + 0.1 * rate
    except BaseException as e:  # re-raised on the calling thread
        errors.append(e)
        halt.set()


def run_streams(streams: Sequence[Stream], batcher: BatchingBackend, *, max_frames: int | None = None,
                stop: Interrupts | None = None) -> LoopStats:
    """Run every stream on its own thread until all end (or ``stop``); returns the combined LoopStats
    (frames, latencies and stage times of all streams; ``fps`` = all frames / wall time). Each
    stream's own stats are in ``stream.stats``. Sinks and sources are not closed here."""
    halt, errors = threading.Event(), []
    for st in streams:
        st.stats = LoopStats(provider=batcher.provider, loop="streams")
    threads = [threading.Thread(target=_stream_worker, args=(st, batcher, max_frames, halt, errors), name=f"kptrack-stream-{i}",
                                daemon=True) for i, st in enumerate(streams)]
    total = LoopStats(provider=batcher.provider, loop=f"{len(streams)} streams, batched")
    t0 = time.perf_counter()
    for t in threads:
        t.start()
    try:
        while alive := [t for t in threads if t.is_alive()]:
            if stop is not None and stop.requested:
                raise KeyboardInterrupt
            alive[0].join(timeout=_POLL_S)
    except KeyboardInterrupt:
        total.interrupted = True
        log.warning("interrupted; closing outputs")
    finally:
        halt.set()
        for t in threads:
            t.join(timeout=5.0)
    total.wall_s = time.perf_counter() - t0
    for st in streams:
        st.stats.wall_s = total.wall_s
        st.stats.errors = st.tracker.errors
        total.frames += st.stats.frames
        total.errors += st.stats.errors
        total.latency_ms += st.stats.latency_ms
        for k, v in st.stats.by_status.items():
            total.by_status[k] = total.by_status.get(k, 0) + v
        for k, v in st.stats.stage_ms.items():
            total.stage_ms[k] = total.stage_ms.get(k, 0.0) + v
    if errors:
        raise errors[0]
    return total


def format_streams_summary(streams: Sequence[Stream], total: LoopStats, batcher: BatchingBackend) -> str:
    """The combined summary, then one line per stream (frames, speed, latency)."""
    lines = [format_summary(total), f"inference: {batcher.calls} batched calls, mean batch {batcher.mean_batch:.2f} crops"]
    for i, st in enumerate(streams):
        s = st.stats
        lines.append(f"stream {i} ({st.name}): {s.frames} frames, tracking {s.by_status.get('tracking', 0)}, "
                     f"{s.fps:.1f} fps, latency p50 {s.latency(50):.2f} ms, p99 {s.latency(99):.2f} ms")
    return "\n".join(lines)


def _open_stream(i: int, spec: str, out: str | None, poses: str | None, cfg: TrackConfig, batcher: BatchingBackend, obj,
                 config: TrackerConfig) -> Stream:
    source = open_source(spec)
    sinks: list[Sink] = []
    try:
        camera = resolve_camera(cfg.camera, spec, source.width, source.height)
        csv_path, jsonl_path = pose_paths(poses)
        if out:
            sinks.append(VideoSink(out, fps=source.fps or 30.0))
        sinks += [s for s in (PoseCsvSink(csv_path) if csv_path else None, JsonlSink(jsonl_path) if jsonl_path else None) if s]
        tracker = Tracker(batcher, obj, camera, config)
        drawer = FrameDrawer(obj, camera, provider=batcher.provider, preset=config.name) if out else None
    except BaseException:
        for s in sinks:
            s.close()
        source.close()
        raise
    return Stream(spec, source, tracker, sinks, drawer)


def track_streams(cfg: StreamsConfig) -> TrackReport:
    """Track every source of ``cfg`` in this process, one batched network (see the module docstring)."""
    base = cfg.base
    if not cfg.sources:
        raise KptrackError("--source: give at least one.")
    if base.show and len(cfg.sources) > 1:
        raise KptrackError("--show: one window per stream is not supported; with several --source write --out per stream instead.")
    if base.max_frames is not None and base.max_frames < 1:
        raise KptrackError(f"--max-frames {base.max_frames}: must be >= 1.")
    config = TrackerConfig.preset(base.preset, **({} if base.smoothing else {"smoothing": False}))
    outs = stream_paths("--out", cfg.outs, cfg.sources)
    poses = stream_paths("--poses", cfg.poses, cfg.sources)
    for spec, out, pose in zip(cfg.sources, outs, poses):
        csv_path, jsonl_path = pose_paths(pose)
        check_outputs(spec, {f: p for f, p in (("--out", Path(out) if out else None), ("--poses", csv_path),
                                               ("--poses (its .jsonl log)", jsonl_path)) if p is not None}, base.overwrite)
    model, model_path = open_model(base)
    obj = load_object(base.object)
    check_model_matches_object(model.meta, obj, str(model_path))
    # Two calls at once only on a local ONNX Runtime session (documented as safe to run from several
    # threads); another backend (e.g. a Triton client) gets one call at a time.
    batcher = BatchingBackend(model, max_concurrent=STREAM_CALLS if isinstance(model, OnnxHeatmapModel) else 1)
    streams: list[Stream] = []
    with interrupts() as stop:
        try:
            for i, (spec, out, pose) in enumerate(zip(cfg.sources, outs, poses)):
                streams.append(_open_stream(i, spec, out, pose, base, batcher, obj, config))
            with announce_compilation():
                batcher.warmup(3, len(streams))
                for st in streams:
                    st.tracker.warmup()
            log.info("tracking %d streams with %s on %s (%s preset)", len(streams), model_path.name, batcher.provider, config.name)
            total = run_streams(streams, batcher, max_frames=base.max_frames, stop=stop)
        except KeyboardInterrupt:
            total = LoopStats(provider=batcher.provider, interrupted=True)
        finally:
            stop.closing = True
            for st in streams:
                for s in st.sinks:
                    s.close()
                st.source.close()
    written: dict[str, Path] = {}
    for i, (out, pose) in enumerate(zip(outs, poses)):
        csv_path, jsonl_path = pose_paths(pose)
        for what, p in (("annotated video", out), ("poses (BOP CSV)", csv_path), ("per-frame log (JSONL)", jsonl_path)):
            if p is not None:
                written[f"stream {i} {what}"] = Path(p)
    return TrackReport(total, format_streams_summary(streams, total, batcher), written)
