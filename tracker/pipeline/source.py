"""Frame sources: webcam, video file, image folder or network stream, decoded on a reader thread.

:func:`open_source` turns the ``--source`` argument into a :class:`FrameSource`, an iterator of
:class:`Frame` (index, timestamp, image). A reader thread decodes frames ahead of the tracking
loop so decoding never stalls it. Two delivery policies, fixed by the kind of source:

* **live** (camera index, ``/dev/videoN``, ``rtsp://``/``http(s)://`` URL): the loop always gets
  the newest frame. A frame the loop has not taken before the next one arrives is dropped and
  counted (``stats.dropped``); the frame index counts every captured frame, so gaps in the
  indices show the drops. Timestamps are ``time.monotonic()`` at capture, seconds.
* **file** (video file, image folder): every frame is delivered, in order, through a bounded
  queue; when the loop is slower than decoding the reader waits (backpressure), so nothing is
  lost and memory stays bounded. Indices count from 0; timestamps are ``index / fps``, seconds
  (image folders use ``fps`` given to :func:`open_source`, default 30).

A frame whose size differs from the first frame's is *skipped*: the first one is reported once
through ``logging`` (a warning naming the source and both sizes), every one is counted in
``stats.size_skipped``. Resizing silently would change the camera intrinsics the poses rely on,
and one wrong-size frame in a stream (a camera renegotiating, a stray image in a folder) should
not stop a run. An image in a folder that cannot be decoded is skipped, logged and counted in
``stats.unreadable``.

Opening errors are user errors (:class:`tracker.errors.KptrackError`): a camera that does not
open, a path that does not exist, a video OpenCV cannot read, a video or folder with no frames.
The first frame is read while opening, so these surface at once rather than on the reader thread.
"""

from __future__ import annotations

import contextlib
import logging
import queue
import re
import threading
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Callable, Iterator

import cv2
import numpy as np

from tracker.errors import KptrackError

log = logging.getLogger(__name__)

IMAGE_EXTENSIONS = (".jpg", ".jpeg", ".png", ".bmp", ".tif", ".tiff", ".webp", ".ppm", ".pgm")
# Consecutive failed reads after which a live source is taken to have ended (unplugged camera,
# dropped stream). A few failures in a row are normal while a camera settles.
LIVE_MAX_FAILED_READS = 50


@dataclass(frozen=True)
class Frame:
    """One decoded frame.

    index: frame number from 0 (file: position in the file/folder; live: count of captured frames).
    timestamp: seconds (file: ``index / fps``; live: ``time.monotonic()`` at capture).
    image: (H, W, 3) uint8 BGR.
    captured: ``time.monotonic()`` seconds when the reader had the frame decoded, for every kind of
    source (live: equal to ``timestamp``); the frame loops measure capture-to-result latency from it.
    """

    index: int
    timestamp: float
    image: np.ndarray
    captured: float = float("nan")


@dataclass
class SourceStats:
    """Counters a source keeps while it runs (read by the loop's summary)."""

    decoded: int = 0  # frames decoded by the reader, all of them
    delivered: int = 0  # frames handed to the loop
    dropped: int = 0  # live only: stale frames replaced by a newer one before the loop took them
    size_skipped: int = 0  # frames whose size differed from the first frame's
    unreadable: int = 0  # image-folder files that could not be decoded
    failed_reads: int = 0  # live only: reads that returned no frame
    declared: int | None = None  # video files: the frame count the file's header declares


@dataclass
class _Reader:
    """What the reader thread calls: ``read() -> (ok, image or None)``; ok False = end of stream."""

    read: Callable[[], tuple[bool, np.ndarray | None]]
    release: Callable[[], None] = lambda: None
    fps: float | None = None
    declared: int | None = None  # frames the container declares (video files), None if unknown


class FrameSource:
    """Iterator of :class:`Frame` fed by a reader thread. Use as a context manager or call close().

    name: the source as the user gave it. live: whether stale frames are dropped.
    width, height: frame size in pixels (from the first frame). fps: frames per second if known.
    """

    def __init__(
        self, name: str, reader: _Reader, first: np.ndarray, *, live: bool, fps: float | None, queue_size: int = 8, first_index: int = 0
    ):
        self.name = name
        self.live = live
        self.fps = fps if fps and fps > 0 else None
        self.height, self.width = int(first.shape[0]), int(first.shape[1])
        self.stats = SourceStats(declared=reader.declared)
        self._reader = reader
        self._stop = threading.Event()
        self._error: BaseException | None = None
        self._warned_size = False
        self._closed = False
        # file: bounded FIFO (backpressure). live: a one-slot mailbox holding the newest frame.
        self._queue: queue.Queue = queue.Queue(maxsize=max(1, queue_size))
        self._latest: Frame | None = None
        self._ended = False
        self._cond = threading.Condition()
        self._t0 = time.monotonic()
        self._push(self._make_frame(first_index, first))
        self._next_index = first_index + 1
        self._thread = threading.Thread(target=self._run, name=f"kptrack-source:{name}", daemon=True)
        self._thread.start()

    # ------------------------------------------------------------------ reader thread
    def _make_frame(self, index: int, image: np.ndarray) -> Frame:
        self.stats.decoded += 1
        now = time.monotonic()
        ts = now if self.live else index / (self.fps or 30.0)
        return Frame(index=index, timestamp=ts, image=image, captured=now)

    def _size_ok(self, image: np.ndarray) -> bool:
        if image.shape[0] == self.height and image.shape[1] == self.width:
            return True
        self.stats.size_skipped += 1
        if not self._warned_size:
            self._warned_size = True
            log.warning(
                "%s: frame size changed from %dx%d to %dx%d; skipping frames of the wrong size "
                "(counted in the summary) because the camera calibration is for %dx%d",
                self.name, self.width, self.height, image.shape[1], image.shape[0], self.width, self.height,
            )
        return False

    def _push(self, frame: Frame) -> bool:
        """Hand a frame to the loop. Returns False when the source is being closed."""
        if self.live:
            with self._cond:
                if self._latest is not None:
                    self.stats.dropped += 1
                self._latest = frame
                self._cond.notify_all()
            return True
        return self._put(frame)

    def _put(self, item: Frame | None) -> bool:
        """Queue ``item`` for the loop, waiting while the queue is full; False once closing."""
        while not self._stop.is_set():
            try:
                self._queue.put(item, timeout=0.1)
                return True
            except queue.Full:
                continue
        return False

    def _end(self) -> None:
        if self.live:
            with self._cond:
                self._ended = True
                self._cond.notify_all()
        else:
            self._put(None)

    def _run(self) -> None:
        failed = 0
        try:
            while not self._stop.is_set():
                ok, image = self._reader.read()
                if not ok:
                    break
                if image is None:  # a live read that failed, or an unreadable file in a folder
                    if self.live:
                        self.stats.failed_reads += 1
                        failed += 1
                        if failed >= LIVE_MAX_FAILED_READS:
                            log.warning("%s: %d reads in a row returned no frame; taking the stream as ended", self.name, failed)
                            break
                        time.sleep(0.005)
                    else:  # a file that did not decode: its index is used up, so indices match positions
                        self.stats.unreadable += 1
                        self._next_index += 1
                    continue
                failed = 0
                index = self._next_index
                self._next_index += 1
                if image.ndim == 2:
                    image = cv2.cvtColor(image, cv2.COLOR_GRAY2BGR)
                elif image.shape[2] == 4:
                    image = cv2.cvtColor(image, cv2.COLOR_BGRA2BGR)
                if not self._size_ok(image):
                    continue
                if not self._push(self._make_frame(index, image)):
                    break
        except BaseException as e:  # handed to the loop, which raises it: never lost on this thread
            self._error = e
        finally:
            self._end()

    # ------------------------------------------------------------------ consumer side
    def __iter__(self) -> Iterator[Frame]:
        return self

    def __next__(self) -> Frame:
        frame = self.read(timeout=None)
        if frame is None:
            raise StopIteration
        return frame

    def read(self, timeout: float | None = None) -> Frame | None:
        """The next frame (file) or the newest one (live); None at the end of the stream.

        timeout: seconds to wait; None waits until a frame or the end arrives. On timeout
        raises TimeoutError. An error on the reader thread is raised here.
        """
        if self._closed:
            return None
        if self.live:
            with self._cond:
                if not self._cond.wait_for(lambda: self._latest is not None or self._ended, timeout=timeout):
                    raise TimeoutError(f"{self.name}: no frame within {timeout} s")
                frame, self._latest = self._latest, None
        else:
            try:
                frame = self._queue.get(timeout=timeout)
            except queue.Empty:
                raise TimeoutError(f"{self.name}: no frame within {timeout} s") from None
        if frame is None:
            if self._error is not None:
                err, self._error = self._error, None
                if isinstance(err, KptrackError):
                    raise err
                raise RuntimeError(f"{self.name}: frame reader failed: {err!r}") from err
            self._ended = True
            self._check_complete()
            return None
        self.stats.delivered += 1
        return frame

    def _check_complete(self) -> None:
        """At the end of a file: warn when it delivered fewer frames than its header declares."""
        d, n = self.stats.declared, self.stats.decoded + self.stats.unreadable + self.stats.size_skipped
        if not self.live and d and n < d:
            log.warning("%s: the video ended after %d of the %d frames its header declares (corrupt or cut short); "
                        "the outputs cover the %d frames read. Re-encode or re-copy the file to track all of it.",
                        self.name, n, d, n)

    def close(self) -> None:
        """Stop the reader thread and release the capture. Safe to call twice."""
        if self._closed:
            return
        self._closed = True
        self._stop.set()
        # unblock a file reader waiting on a full queue
        try:
            while True:
                self._queue.get_nowait()
        except queue.Empty:
            pass
        self._thread.join(timeout=2.0)
        try:
            self._reader.release()
        except Exception:  # releasing a dead capture must not mask the run's own outcome
            log.debug("%s: release failed", self.name, exc_info=True)

    def __enter__(self) -> "FrameSource":
        return self

    def __exit__(self, *exc) -> None:
        self.close()

    def __repr__(self) -> str:
        kind = "live" if self.live else "file"
        return f"FrameSource({self.name!r}, {kind}, {self.width}x{self.height}, fps={self.fps})"


# ---------------------------------------------------------------------- opening
def _natural_key(p: Path):
    return [int(s) if s.isdigit() else s.lower() for s in re.split(r"(\d+)", p.name)]


def list_images(folder: Path) -> list[Path]:
    """Image files of a folder (not recursive), in natural sort order (2.png before 10.png)."""
    return sorted((p for p in folder.iterdir() if p.is_file() and p.suffix.lower() in IMAGE_EXTENSIONS), key=_natural_key)


@contextlib.contextmanager
def _quiet_opencv():
    """Silence OpenCV's own log while probing a source: a failure gets our one clear error instead
    of the backends' multi-line warnings (FFmpeg's own stderr messages are not affected)."""
    try:
        from cv2.utils import logging as cvlog

        level = cvlog.getLogLevel()
        cvlog.setLogLevel(cvlog.LOG_LEVEL_SILENT if not log.isEnabledFor(logging.DEBUG) else level)
    except (ImportError, AttributeError):  # an OpenCV build without the logging utils
        yield
        return
    try:
        yield
    finally:
        cvlog.setLogLevel(level)


def _open_capture(target, name: str, what: str, fix: str) -> cv2.VideoCapture:
    with _quiet_opencv():
        cap = cv2.VideoCapture(target)
    if not cap.isOpened():
        cap.release()
        raise KptrackError(f"{name}: {what} could not be opened. {fix}")
    return cap


def _capture_reader(cap: cv2.VideoCapture, live: bool = False) -> _Reader:
    # A failed read ends a file; a live one that fails is not the end (the reader counts and
    # retries), only release ends it.
    def read():
        ok, img = cap.read()
        return ok or live, (img if ok else None)

    fps = cap.get(cv2.CAP_PROP_FPS)
    count = 0 if live else int(cap.get(cv2.CAP_PROP_FRAME_COUNT) or 0)
    return _Reader(read=read, release=cap.release, fps=fps if fps and 0 < fps < 1000 else None,
                   declared=count if count > 0 else None)


def _first_live_frame(reader: _Reader, name: str, tries: int = LIVE_MAX_FAILED_READS) -> np.ndarray:
    for _ in range(tries):
        _, img = reader.read()
        if img is not None:
            return img
        time.sleep(0.02)
    reader.release()
    raise KptrackError(f"{name}: opened but delivered no frame. Check that no other program is using it and that it streams.")


def open_camera(index_or_path: int | str, *, width: int | None = None, height: int | None = None) -> FrameSource:
    """Open a webcam by index (0, 1, ...) or device path (/dev/video0) as a live source."""
    name = str(index_or_path)
    if isinstance(index_or_path, str) and not Path(index_or_path).exists():
        raise KptrackError(f"--source {name}: no such camera device. List cameras with `ls /dev/video*`.")
    cap = _open_capture(
        index_or_path, f"--source {name}", "camera",
        "Check the camera index (0 is the first camera; `ls /dev/video*` lists them) and that no other program holds it.",
    )
    if width:
        cap.set(cv2.CAP_PROP_FRAME_WIDTH, width)
    if height:
        cap.set(cv2.CAP_PROP_FRAME_HEIGHT, height)
    reader = _capture_reader(cap, live=True)
    first = _first_live_frame(reader, f"--source {name}: camera")
    return FrameSource(name, reader, first, live=True, fps=reader.fps)


def open_url(url: str) -> FrameSource:
    """Open an RTSP/HTTP(S) stream through OpenCV's FFmpeg backend as a live source."""
    cap = _open_capture(url, f"--source {url}", "stream", "Check the URL, that the server is reachable, and the stream's codec.")
    reader = _capture_reader(cap, live=True)
    first = _first_live_frame(reader, f"--source {url}: stream")
    return FrameSource(url, reader, first, live=True, fps=reader.fps)


def open_video(path: str | Path, *, queue_size: int = 8) -> FrameSource:
    """Open a video file; every frame is delivered in order."""
    p = Path(path)
    if not p.is_file():
        raise KptrackError(f"--source {p}: no such file.")
    cap = _open_capture(str(p), str(p), "video", "It is not a video OpenCV can read (corrupt, or an unsupported codec); re-encode it, e.g. `ffmpeg -i in -c:v mjpeg out.avi`.")
    reader = _capture_reader(cap)
    ok, first = reader.read()
    if not ok or first is None:
        cap.release()
        raise KptrackError(f"{p}: the video has no readable frames (empty or corrupt). Check the file plays, or re-encode it.")
    return FrameSource(str(p), reader, first, live=False, fps=reader.fps, queue_size=queue_size)


def open_image_folder(folder: str | Path, *, fps: float = 30.0, queue_size: int = 8) -> FrameSource:
    """Open a folder of images (sorted naturally by name); every image is delivered in order.

    Files that fail to decode are skipped, logged and counted (``stats.unreadable``); the frame
    index still advances for them, so indices match the files' positions in the sorted list.
    """
    folder = Path(folder)
    files = list_images(folder)
    if not files:
        raise KptrackError(f"{folder}: the folder holds no images ({', '.join(IMAGE_EXTENSIONS)}). Point --source at a folder of frames.")
    first = None
    start = 0
    for start, f in enumerate(files):
        first = cv2.imread(str(f), cv2.IMREAD_COLOR)
        if first is not None:
            break
        log.warning("%s: cannot decode %s; skipped", folder, f.name)
    if first is None:
        raise KptrackError(f"{folder}: none of its {len(files)} images could be decoded. Check the files.")
    it = iter(files[start + 1:])

    def read():
        f = next(it, None)
        if f is None:
            return False, None
        img = cv2.imread(str(f), cv2.IMREAD_COLOR)
        if img is None:
            log.warning("%s: cannot decode %s; skipped (counted)", folder, f.name)
        return True, img

    src = FrameSource(str(folder), _Reader(read=read, fps=fps), first, live=False, fps=fps, queue_size=queue_size, first_index=start)
    src.stats.unreadable += start
    return src


def open_source(spec: str | int | Path, *, fps: float = 30.0, queue_size: int = 8) -> FrameSource:
    """Open ``--source``: an int or digit string (camera index), ``/dev/videoN`` (camera device),
    a URL with ``://`` (network stream), a folder (images) or a file (video).

    fps: frame rate for image folders (timestamps). Raises KptrackError naming the source on failure.
    """
    if isinstance(spec, int):
        return open_camera(spec)
    s = str(spec).strip()
    if s.isdigit():
        return open_camera(int(s))
    if "://" in s:
        return open_url(s)
    if s.startswith("/dev/video"):
        return open_camera(s)
    p = Path(s).expanduser()
    if p.is_dir():
        return open_image_folder(p, fps=fps, queue_size=queue_size)
    if p.is_file():
        return open_video(p, queue_size=queue_size)
    raise KptrackError(
        f"--source {s}: no such file or folder. Give a camera index (0), a video file, an image folder or a URL (rtsp://...)."
    )
