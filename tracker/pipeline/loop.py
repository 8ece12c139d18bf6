"""The frame loop: ``source -> tracker -> draw -> sinks``, with the timings and the interrupts.

:func:`run_loop` takes each frame of a :class:`~tracker.pipeline.source.FrameSource`, steps the
:class:`~tracker.pipeline.tracker.Tracker`, draws the result (:class:`~tracker.pipeline.draw.FrameDrawer`,
only when a sink shows or stores images) and hands a :class:`~tracker.pipeline.state.TrackedFrame`
to every sink. The loop owns the timings: the tracker's stage times come in each (never changed)
FrameResult; drawing and writing are timed here, and :class:`LoopStats` sums them.

Interrupts (:func:`interrupts`): Ctrl-C and SIGTERM set a flag as well as raising
KeyboardInterrupt, and the loop checks the flag before every frame. So an interrupt always stops
the run, even when the exception it raises is swallowed by a library while it loads (numba's
kernel cache was seen to do that during the first second). The caller closes the sinks; a
killed run still leaves flushed poses and a playable video (:mod:`tracker.pipeline.sinks`).

Latency: every frame carries the moment its reader had it decoded (``Frame.captured``,
``time.monotonic()``); the loop records capture -> result handed to the sinks (pose solved, frame
drawn) per frame in ``LoopStats.latency_ms`` and in each TrackedFrame's ``loop_ms['latency']`` (so
the JSONL log carries it). For a file it includes the time a frame waited in the read-ahead queue.
A frame read before the loop began (the reader starts while the model loads, warms up and, on a
first run, compiles) counts from the loop's start: that wait is start-up, not latency.
:func:`run_loop` is the sequential loop (one frame at a time, every stage on this thread);
:mod:`tracker.pipeline.pipelined` overlaps the stages on threads with the same results.
"""

from __future__ import annotations

import contextlib
import logging
import math
import signal
import threading
import time
from dataclasses import dataclass, field
from typing import Callable, Iterator, Sequence

import numpy as np

from tracker.pipeline.draw import FrameDrawer
from tracker.pipeline.sinks import Sink, WindowSink
from tracker.pipeline.source import Frame, FrameSource
from tracker.pipeline.state import LOST, SEARCHING, STAGES, TRACKING, FrameResult, TrackedFrame
from tracker.pipeline.tracker import Tracker

log = logging.getLogger(__name__)

SUMMARY_STAGES = ("crop", "infer", "decode", "solve", "smooth", "render", "write", "total")


@dataclass
class LoopStats:
    """What a run did. fps: frames / processing seconds (display and pauses excluded)."""

    frames: int = 0
    by_status: dict[str, int] = field(default_factory=lambda: {TRACKING: 0, LOST: 0, SEARCHING: 0})
    errors: int = 0
    wall_s: float = 0.0
    display_s: float = 0.0
    stage_ms: dict[str, float] = field(default_factory=lambda: {k: 0.0 for k in (*STAGES, "total", "render", "write")})
    interrupted: bool = False
    stopped_by_user: bool = False
    provider: str = ""
    loop: str = "sequential"
    latency_ms: list[float] = field(default_factory=list)  # per frame: capture -> handed to the sinks, ms
    started: float = field(default_factory=time.monotonic)  # the loop's start (the loops make their stats then)

    @property
    def fps(self) -> float:
        busy = self.wall_s - self.display_s
        return self.frames / busy if busy > 0 and self.frames else float("nan")

    def latency(self, q: float) -> float:
        """The q-th percentile (0..100) of the capture-to-result latency, ms (NaN without frames)."""
        return float(np.percentile(self.latency_ms, q)) if self.latency_ms else float("nan")

    def mean_ms(self) -> dict[str, float]:
        return {k: v / self.frames for k, v in self.stage_ms.items()} if self.frames else {}

    def add(self, r: FrameResult, render_ms: float, write_ms: float, latency_ms: float = float("nan")) -> None:
        self.frames += 1
        if math.isfinite(latency_ms):
            self.latency_ms.append(latency_ms)
        self.by_status[r.status] = self.by_status.get(r.status, 0) + 1
        for s, v in r.timings.items():
            self.stage_ms[s] = self.stage_ms.get(s, 0.0) + v
        self.stage_ms["render"] += render_ms
        self.stage_ms["write"] += write_ms


class Interrupts:
    """Whether Ctrl-C or SIGTERM arrived inside :func:`interrupts` (see the module docstring).

    The first signal raises KeyboardInterrupt; later ones, and any once :attr:`closing` is set,
    only set the flag, so a second Ctrl-C cannot cut the closing of the outputs short.
    """

    def __init__(self) -> None:
        self.requested = False
        self.closing = False

    def _handler(self, signum, frame) -> None:
        first = not self.requested
        self.requested = True
        if first and not self.closing:
            raise KeyboardInterrupt


@contextlib.contextmanager
def interrupts() -> Iterator[Interrupts]:
    """Within the block, SIGINT and SIGTERM raise KeyboardInterrupt and set ``.requested``.

    Off the main thread (where signals cannot be handled) nothing is installed."""
    flag = Interrupts()
    if threading.current_thread() is not threading.main_thread():
        yield flag
        return
    old = {s: signal.signal(s, flag._handler) for s in (signal.SIGINT, signal.SIGTERM)}
    try:
        yield flag
    finally:
        for s, h in old.items():
            signal.signal(s, h)


def run_loop(source: FrameSource, tracker: Tracker, *, sinks: Sequence[Sink] = (), drawer: FrameDrawer | None = None,
             max_frames: int | None = None, on_result: Callable[[FrameResult], None] | None = None,
             stop: Interrupts | None = None) -> LoopStats:
    """Track every frame of ``source`` and write each to every sink. Returns LoopStats.

    drawer: draws each result over its frame; needed when a sink shows or stores images (the demo
    passes one with no such sink, so its frame rate includes what a watching user pays).
    stop: the run's :class:`Interrupts`; a requested stop ends the loop before the next frame.
    Ctrl-C (KeyboardInterrupt) ends the loop with ``stats.interrupted``; sinks are NOT closed here
    (the caller owns them). A frame the tracker fails on is counted (tracker.errors).
    """
    if drawer is None and any(s.needs_image for s in sinks):
        raise ValueError("run_loop: a video or window sink needs a drawer (they show the annotated frame)")
    window = next((s for s in sinks if isinstance(s, WindowSink)), None)
    stats = LoopStats(provider=tracker.provider)
    fps_ema, render_ms = float("nan"), 0.0
    t_start = t_prev = time.perf_counter()
    try:
        for frame in source:
            if (max_frames is not None and stats.frames >= max_frames) or (stop is not None and stop.requested):
                break
            r = tracker.step(frame.image, frame.index, frame.timestamp)
            t0 = time.perf_counter()
            img = drawer(frame.image, r, fps_ema, render_ms) if drawer is not None else None
            t1 = time.perf_counter()
            render_ms = (t1 - t0) * 1e3
            paused = deliver(frame, r, img, render_ms, fps_ema, sinks, window, stats, on_result)
            command = window.command if window is not None else None
            if command == "quit":
                stats.stopped_by_user = True
                break
            if command == "reset":
                log.info("tracker reset by the user at frame %d", frame.index)
                tracker.reset()
            now = time.perf_counter()
            busy = now - t_prev - paused
            t_prev = now
            if busy > 0:
                fps_ema = 1.0 / busy if math.isnan(fps_ema) else 0.9 * fps_ema + 0.1 / busy
        if stop is not None and stop.requested:
            raise KeyboardInterrupt
    except KeyboardInterrupt:
        stats.interrupted = True
        log.warning("interrupted after %d frames; closing outputs", stats.frames)
    stats.wall_s = time.perf_counter() - t_start
    stats.errors = tracker.errors
    return stats


def deliver(frame: Frame, r: FrameResult, img, render_ms: float, fps: float, sinks: Sequence[Sink],
            window: WindowSink | None, stats: LoopStats, on_result: Callable[[FrameResult], None] | None) -> float:
    """Hand one result to every sink, count it, call ``on_result``. Returns the seconds the window
    was paused (display time, excluded from the speed). Both frame loops end each frame here."""
    latency = (time.monotonic() - max(frame.captured, stats.started)) * 1e3
    paused0 = window.paused_s if window is not None else 0.0
    t1 = time.perf_counter()
    tracked = TrackedFrame(r, img, fps, {"render": render_ms, "latency": latency} if math.isfinite(latency) else {"render": render_ms})
    for s in sinks:
        s.write(tracked)
    paused = (window.paused_s - paused0) if window is not None else 0.0
    stats.display_s += paused
    stats.add(r, render_ms, (time.perf_counter() - t1) * 1e3 - paused * 1e3, latency)
    if on_result is not None:
        on_result(r)
    return paused


def format_summary(stats: LoopStats, source: FrameSource | None = None) -> str:
    """The run's summary lines: frames by state, speed and mean ms per stage, source counters."""
    n = max(stats.frames, 1)
    ms = stats.mean_ms()
    lines = [
        f"frames {stats.frames}: tracking {stats.by_status.get(TRACKING, 0)} ({100.0 * stats.by_status.get(TRACKING, 0) / n:.1f} %), "
        f"lost {stats.by_status.get(LOST, 0)}, searching {stats.by_status.get(SEARCHING, 0)}, failed frames {stats.errors}",
        f"speed: {stats.fps:.1f} fps end-to-end (excluding display) on {stats.provider}, {stats.loop} loop; mean ms per frame: "
        + ", ".join(f"{s} {ms.get(s, 0.0):.2f}" for s in SUMMARY_STAGES),
    ]
    if stats.latency_ms:
        lines.append(f"latency, capture to result: p50 {stats.latency(50):.2f} ms, p99 {stats.latency(99):.2f} ms"
                     + ("" if source is None or source.live else " (a file's frames wait in the read-ahead queue)"))
    if source is not None:
        s = source.stats
        extra = [f"{name} {v}" for name, v in (("dropped (live, stale)", s.dropped), ("skipped (size changed)", s.size_skipped),
                                                ("unreadable", s.unreadable)) if v]
        if s.declared and not source.live and s.delivered < s.declared and not stats.interrupted and not stats.stopped_by_user:
            extra.append(f"ended early: {s.delivered} of {s.declared} declared frames")
        if extra:
            lines.append("source: " + ", ".join(extra))
    if stats.interrupted:
        lines.append("interrupted: outputs hold every frame up to here")
    return "\n".join(lines)
