"""The pipelined frame loop: reading, tracking, drawing and writing overlap on threads.

:func:`run_pipelined` does what :func:`tracker.pipeline.loop.run_loop` does (same arguments, same
:class:`~tracker.pipeline.loop.LoopStats`, every result handed to every sink in frame order) with
the stages on four threads joined by bounded queues::

    reader thread      track thread               draw thread        calling thread
    (FrameSource)  ->  crop, infer, decode,   ->  FrameDrawer    ->  sinks, window, stats
    read + decode      solve, smooth (Tracker)    (only when drawing)

**Why the keypoint pass is one stage.** The tracker warm-starts every frame from the last: frame
t+1's crop is cut around the pose predicted from frame t's solved pose, and its fit starts there.
So crop + inference of frame t+1 cannot begin before frame t is solved without changing what the
tracker computes (cropping from a motion-model prediction one frame further back would, and the
poses would then differ from the sequential loop's). We keep the tracker exact: one thread runs
:meth:`Tracker.step` frame after frame, and everything that does not feed the next crop (decoding
the source, drawing, JPEG encoding, writing poses) runs beside it. ONNX Runtime, OpenCV
(``warpAffine``, ``imencode``, video decoding) and the numba kernels (``nogil=True`` in
:mod:`tracker.render.kernels`, :mod:`tracker.pipeline.decode`, :mod:`tracker.pipeline.solve_lm`)
release the GIL, so those stages really do run in parallel; only Python glue holds it. The poses
are identical to the sequential loop's (a test holds that); only the HUD's frame-rate figure and
where a window 'reset' lands (the next frame the track thread starts) can differ.

**Files vs live sources.** For a file the reader decodes ahead into its bounded queue and every
stage waits for the next (backpressure), so nothing is dropped and throughput is what counts.
For a live source the track thread always takes the newest frame from the source's one-slot
mailbox (:mod:`tracker.pipeline.source`): stale frames are dropped there and never queued, and
since the track thread asks for a frame as soon as the previous one is solved, a fresh frame waits
at most one tracking step. The result queues are short (``queue_size``) so a slow sink pushes back
on the tracker instead of piling up old results.

Latency: each result carries its frame's capture time to the sinks (``LoopStats.latency_ms``).
Ctrl-C / SIGTERM arrive on the calling thread; it stops the other threads (they check a stop event
at every queue wait) and returns the stats so far with ``interrupted`` set. An exception on the
track or draw thread is re-raised on the calling thread.
"""

from __future__ import annotations

import logging
import math
import queue
import threading
import time
from typing import Any, Callable, Sequence

from tracker.pipeline.draw import FrameDrawer
from tracker.pipeline.loop import Interrupts, LoopStats, deliver
from tracker.pipeline.sinks import Sink, WindowSink
from tracker.pipeline.source import FrameSource
from tracker.pipeline.state import FrameResult
from tracker.pipeline.tracker import Tracker

log = logging.getLogger(__name__)

_END = object()  # sentinel: the stage before has no more items
_POLL_S = 0.05  # how often a waiting stage looks at the stop event


class _Failed:
    """Passed down the queues when a stage raised, so the calling thread re-raises it."""

    def __init__(self, error: BaseException):
        self.error = error


class _Pipe:
    """One bounded queue between two stages; put/get give up when the run is stopping."""

    def __init__(self, size: int, stop: threading.Event):
        self.q: queue.Queue = queue.Queue(maxsize=max(1, size))
        self.stop = stop

    def put(self, item: Any) -> bool:
        while not self.stop.is_set():
            try:
                self.q.put(item, timeout=_POLL_S)
                return True
            except queue.Full:
                continue
        return False

    def get(self, give_up: Callable[[], bool] = lambda: False) -> Any:
        """The next item; ``_END`` when stopping (or once ``give_up()`` is true)."""
        while not self.stop.is_set() and not give_up():
            try:
                return self.q.get(timeout=_POLL_S)
            except queue.Empty:
                continue
        return _END


class _FpsMeter:
    """Frames per second from the interval between consecutive results (an EMA, as the HUD shows)."""

    def __init__(self) -> None:
        self.fps, self._last = float("nan"), None

    def tick(self) -> float:
        now = time.perf_counter()
        if self._last is not None and now > self._last:
            rate = 1.0 / (now - self._last)
            self.fps = rate if math.isnan(self.fps) else 0.9 * self.fps + 0.1 * rate
        self._last = now
        return self.fps


def _track_stage(source: FrameSource, tracker: Tracker, out: _Pipe, max_frames: int | None, reset: threading.Event,
                 stop: threading.Event) -> None:
    """Track thread: frames in source order -> (frame, result), until the source ends or the run stops."""
    n = 0
    try:
        while not stop.is_set() and (max_frames is None or n < max_frames):
            try:
                frame = source.read(timeout=_POLL_S)
            except TimeoutError:
                continue
            if frame is None:
                break
            if reset.is_set():
                reset.clear()
                log.info("tracker reset by the user at frame %d", frame.index)
                tracker.reset()
            r = tracker.step(frame.image, frame.index, frame.timestamp)
            n += 1
            if not out.put((frame, r)):
                return
    except BaseException as e:  # re-raised on the calling thread
        out.put(_Failed(e))
        return
    out.put(_END)


def _draw_stage(drawer: FrameDrawer, inp: _Pipe, out: _Pipe) -> None:
    """Draw thread: (frame, result) -> (frame, result, annotated image, render ms, fps)."""
    meter, render_ms = _FpsMeter(), 0.0
    try:
        while True:
            item = inp.get()
            if item is _END or isinstance(item, _Failed):
                out.put(item)
                return
            frame, r = item
            fps = meter.tick()
            t0 = time.perf_counter()
            img = drawer(frame.image, r, fps, render_ms)
            render_ms = (time.perf_counter() - t0) * 1e3
            if not out.put((frame, r, img, render_ms, fps)):
                return
    except BaseException as e:
        out.put(_Failed(e))


def run_pipelined(source: FrameSource, tracker: Tracker, *, sinks: Sequence[Sink] = (), drawer: FrameDrawer | None = None,
                  max_frames: int | None = None, on_result: Callable[[FrameResult], None] | None = None,
                  stop: Interrupts | None = None, queue_size: int = 4) -> LoopStats:
    """Track every frame of ``source`` into every sink with the stages on threads (module docstring).

    Arguments and result as :func:`tracker.pipeline.loop.run_loop`; queue_size: the bound of each
    queue between stages. The sinks are written, and ``on_result`` called, on the calling thread,
    in frame order. Sinks are not closed here (the caller owns them).
    """
    if drawer is None and any(s.needs_image for s in sinks):
        raise ValueError("run_pipelined: a video or window sink needs a drawer (they show the annotated frame)")
    window = next((s for s in sinks if isinstance(s, WindowSink)), None)
    stats = LoopStats(provider=tracker.provider, loop="pipelined")
    halt, reset = threading.Event(), threading.Event()
    tracked = _Pipe(queue_size, halt)
    results = _Pipe(queue_size, halt) if drawer is not None else tracked
    threads = [threading.Thread(target=_track_stage, args=(source, tracker, tracked, max_frames, reset, halt),
                                name="kptrack-track", daemon=True)]
    if drawer is not None:
        threads.append(threading.Thread(target=_draw_stage, args=(drawer, tracked, results), name="kptrack-draw", daemon=True))
    meter = _FpsMeter()
    stopping = (lambda: stop.requested) if stop is not None else (lambda: False)
    t_start = time.perf_counter()
    for t in threads:
        t.start()
    try:
        while not stopping():
            item = results.get(stopping)
            if item is _END:
                break
            if isinstance(item, _Failed):
                raise item.error
            if drawer is not None:
                frame, r, img, render_ms, fps = item
            else:
                (frame, r), img, render_ms, fps = item, None, 0.0, meter.tick()
            deliver(frame, r, img, render_ms, fps, sinks, window, stats, on_result)
            command = window.command if window is not None else None
            if command == "quit":
                stats.stopped_by_user = True
                break
            if command == "reset":
                reset.set()
        if stopping():
            raise KeyboardInterrupt
    except KeyboardInterrupt:
        stats.interrupted = True
        log.warning("interrupted after %d frames; closing outputs", stats.frames)
    finally:
        halt.set()
        for t in threads:
            t.join(timeout=5.0)
    stats.wall_s = time.perf_counter() - t_start
    stats.errors = tracker.errors
    return stats
