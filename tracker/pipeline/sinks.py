"""Where the tracker's output goes: a window, an annotated video, and poses (BOP CSV, JSONL).

Every file sink writes as it goes, so an interrupted run (Ctrl-C, SIGTERM, a crash, even SIGKILL)
leaves every pose up to that point and a playable video:

* **Video** is Motion-JPEG in an AVI container (:class:`MjpegAviWriter`, a small AVI 1.0 writer
  here: each frame is JPEG-encoded with ``cv2.imencode`` and written and flushed as one ``00dc``
  chunk). The header's sizes and frame count and the ``idx1`` index are written by a clean
  close, which the app does on Ctrl-C/SIGTERM; a file cut short by a kill or a crash still plays,
  because every chunk before the cut is a self-contained JPEG and readers (FFmpeg, so
  ``cv2.VideoCapture``, VLC, mpv) scan the ``movi`` list when the index is missing. OpenCV's own
  writers were not used: its MJPEG writer keeps the last frames in a user-space buffer (lost on
  SIGKILL) and its FFmpeg writer buffers more. MP4 is not offered: its index (``moov``) is written
  at the end, so a killed MP4 does not play. Convert afterwards if needed:
  ``ffmpeg -i out.avi out.mp4``. AVI 1.0 offsets are 32-bit, so past 1 GiB the video continues
  in ``NAME.001.avi``, ``NAME.002.avi``, ... (logged).
* **Poses**, BOP results CSV (``scene_id,im_id,obj_id,score,R,t,time``, R row-major, t in mm,
  ``im_id`` = frame index from 0, ``time`` = the tracker's seconds for that frame) through
  :class:`tracker.formats.bop_results.ResultsCsvWriter`, which flushes every row. Frames without a pose (lost,
  searching) get no row, the BOP meaning of "no estimate".
* **JSONL**: one JSON object per frame, every frame (state, mode, pose or null, score, keypoints,
  per-stage timings in ms), flushed per line.

The window (``--show``) shows the annotated frame; keys: ``q``/Esc quits, space pauses (space
again resumes), ``r`` resets the tracker.

Every sink has the same two methods: ``write(frame)`` with a
:class:`~tracker.pipeline.state.TrackedFrame` (the tracker's result and the annotated image), and
``close()`` (safe to call twice). ``needs_image`` says whether it shows or stores the image, so
the loop knows it must draw.
"""

from __future__ import annotations

import json
import math
import logging
import os
import sys
import time
from pathlib import Path
from typing import Callable, Protocol

import cv2
import numpy as np

from tracker.formats.bop_results import BopResult, ResultsCsvWriter
from tracker.errors import KptrackError
from tracker.pipeline.state import TrackedFrame

log = logging.getLogger(__name__)

VIDEO_SUFFIXES = (".avi",)


class MjpegAviWriter:
    """Motion-JPEG AVI 1.0 file writer that flushes every frame (see the module docstring).

    path: output file. fps: frames per second (stored as rate/scale = fps*1000/1000).
    width, height: frame size in pixels. quality: JPEG quality 1..100.
    Layout (Microsoft AVI RIFF): ``RIFF AVI [LIST hdrl [avih] [LIST strl [strh vids MJPG]
    [strf BITMAPINFOHEADER]]] [LIST movi [00dc jpeg]...] [idx1]``; sizes, frame counts and idx1
    are patched/written by :meth:`close`, and stay 0 (= "to the end of the file") until then.
    """

    # byte offsets of the fields close() patches, fixed by the header layout built below
    _RIFF_SIZE, _AVIH_TOTAL, _AVIH_BUFSIZE, _STRH_LENGTH, _STRH_BUFSIZE = 4, 48, 60, 140, 144

    def __init__(self, path: str | Path, fps: float, width: int, height: int, quality: int = 90):
        import struct

        self._struct = struct
        self.path = Path(path)
        self.width, self.height, self.quality = int(width), int(height), int(quality)
        self._index: list[tuple[int, int]] = []  # (offset, bytes) of each chunk, recorded once it is written
        self._max_chunk = 0
        rate, scale = int(round(fps * 1000)), 1000
        p = struct.pack
        avih = p("<10I16x", int(round(1e6 / fps)), 0, 0, 0x10, 0, 0, 1, 0, self.width, self.height)
        strh = b"vidsMJPG" + p("<IHHIIIIIIIIhhhh", 0, 0, 0, 0, scale, rate, 0, 0, 0, 0xFFFFFFFF, 0, 0, 0, self.width, self.height)
        strf = p("<IiiHH4sIiiII", 40, self.width, self.height, 1, 24, b"MJPG", self.width * self.height * 3, 0, 0, 0, 0)
        strl = b"strl" + b"strh" + p("<I", len(strh)) + strh + b"strf" + p("<I", len(strf)) + strf
        hdrl = b"hdrl" + b"avih" + p("<I", len(avih)) + avih + b"LIST" + p("<I", len(strl)) + strl
        head = b"RIFF" + p("<I", 0) + b"AVI " + b"LIST" + p("<I", len(hdrl)) + hdrl
        self._f = open(self.path, "wb")
        self._f.write(head)
        self._movi = self._f.tell()
        self._f.write(b"LIST" + p("<I", 0) + b"movi")
        self._f.flush()

    @property
    def size(self) -> int:
        return self._f.tell()

    @property
    def frames(self) -> int:
        """Frames written whole and recorded (what close() counts and indexes)."""
        return len(self._index)

    def write(self, image: np.ndarray) -> None:
        """image: (height, width, 3) uint8 BGR. Encoded, written and flushed before returning."""
        ok, buf = cv2.imencode(".jpg", image, [cv2.IMWRITE_JPEG_QUALITY, self.quality])
        if not ok:
            raise RuntimeError(f"{self.path}: JPEG encoding failed for a {image.shape} frame")
        data = buf.tobytes()
        offset = self._f.tell() - (self._movi + 8)
        self._f.write(b"00dc" + self._struct.pack("<I", len(data)) + data + b"\0" * (len(data) & 1))
        self._f.flush()
        # Recorded only now: a Ctrl-C or SIGTERM raised between the lines above leaves a chunk that
        # close() cuts off, so the header's count, the index and the chunks always agree.
        self._max_chunk = max(self._max_chunk, len(data))
        self._index.append((offset, len(data)))

    def close(self) -> None:
        """Write idx1 and the sizes/counts into the header. Safe to call twice."""
        if self._f.closed:
            return
        p, f = self._struct.pack, self._f
        if self._index:  # the end of the last recorded chunk; anything after it was cut short
            off, n = self._index[-1]
            end = self._movi + 8 + off + 8 + n + (n & 1)
        else:
            end = self._movi + 12
        f.seek(end)
        f.truncate()
        idx = b"".join(b"00dc" + p("<III", 0x10, off, n) for off, n in self._index)
        f.write(b"idx1" + p("<I", len(idx)) + idx)
        total = f.tell()
        for pos, value in ((self._RIFF_SIZE, total - 8), (self._AVIH_TOTAL, self.frames), (self._AVIH_BUFSIZE, self._max_chunk + 8),
                           (self._STRH_LENGTH, self.frames), (self._STRH_BUFSIZE, self._max_chunk + 8), (self._movi + 4, end - self._movi - 8)):
            f.seek(pos)
            f.write(p("<I", value))
        f.close()


class Sink(Protocol):
    """What the frame loop writes to (see the module docstring)."""

    needs_image: bool

    def write(self, frame: TrackedFrame) -> None: ...

    def close(self) -> None: ...


class VideoSink:
    """Annotated video, Motion-JPEG AVI (see the module docstring for why).

    path: output .avi. fps: playback rate written in the header. quality: JPEG quality 1..100.
    max_bytes: size at which the video continues in a new segment file (AVI 1.0 limit).
    The file opens on the first frame (its size fixes the video's size); later frames of
    another size are resized to it.
    """

    needs_image = True

    def __init__(self, path: str | Path, fps: float = 30.0, quality: int = 90, max_bytes: int = 1 << 30):
        self.path = Path(path)
        if self.path.suffix.lower() not in VIDEO_SUFFIXES:
            raise KptrackError(
                f"--out {self.path}: write the annotated video as .avi (Motion-JPEG), e.g. --out {self.path.with_suffix('.avi')}. "
                "An AVI stays playable if the run is killed; an MP4 would not. Convert later with `ffmpeg -i x.avi x.mp4`."
            )
        try:
            self.path.parent.mkdir(parents=True, exist_ok=True)
        except OSError as e:
            raise KptrackError(f"--out {self.path}: cannot create its folder ({e.strerror}). Choose a writable path.") from None
        # The file itself opens on the first frame; check now, before the model loads and warms up.
        if self.path.is_dir() or not os.access(self.path.parent, os.W_OK):
            raise KptrackError(f"--out {self.path}: not a writable file path. Choose a writable path for the video.")
        self.fps = float(fps) if fps and fps > 0 else 30.0
        self.quality = int(quality)
        self.max_bytes = int(max_bytes)
        self._closed_frames = 0  # frames in the segments already finished
        self.segments: list[Path] = []
        self._writer: MjpegAviWriter | None = None
        self._size: tuple[int, int] | None = None

    def _open(self, w: int, h: int) -> None:
        k = len(self.segments)
        path = self.path if k == 0 else self.path.with_name(f"{self.path.stem}.{k:03d}{self.path.suffix}")
        try:
            self._writer = MjpegAviWriter(path, self.fps, w, h, self.quality)
        except OSError as e:
            raise KptrackError(f"--out {path}: cannot open the video for writing ({e.strerror}). Choose a writable path.") from None
        if k:
            log.info("video reached %d MiB; continuing in %s", self.max_bytes >> 20, path)
        self.segments.append(path)
        self._size = (w, h)

    @property
    def frames(self) -> int:
        """Frames in the video, all segments: the writers' own counts, so an interrupt inside a
        write can never make this differ from what the files hold."""
        return self._closed_frames + (self._writer.frames if self._writer is not None else 0)

    def write(self, frame: TrackedFrame) -> None:
        """Append frame.image, (H, W, 3) uint8 BGR."""
        self.write_image(frame.image)

    def write_image(self, image: np.ndarray) -> None:
        """Append image, (H, W, 3) uint8 BGR."""
        h, w = image.shape[:2]
        if self._size is None:
            self._open(w, h)
        elif self._writer.size >= self.max_bytes:
            self._writer.close()
            self._closed_frames += self._writer.frames
            self._open(*self._size)
        if (w, h) != self._size:
            image = cv2.resize(image, self._size, interpolation=cv2.INTER_AREA)
        self._writer.write(image)

    def close(self) -> None:
        """Finish the file (header sizes and index). Safe to call twice."""
        if self._writer is not None:
            self._writer.close()


class PoseCsvSink:
    """BOP results CSV, one row per frame with a pose, flushed per row.

    obj_id, scene_id: BOP ids written in every row (defaults 1 and 0).
    """

    needs_image = False

    def __init__(self, path: str | Path, obj_id: int = 1, scene_id: int = 0):
        self.path = Path(path)
        self.obj_id, self.scene_id = int(obj_id), int(scene_id)
        self._w = ResultsCsvWriter(self.path)

    @property
    def rows(self) -> int:
        return self._w.rows

    def write(self, frame: TrackedFrame) -> None:
        """One row for frame.result if it has a pose; a frame without a pose writes nothing."""
        result = frame.result
        if result.R_m2c is None:
            return
        self._w.write(
            BopResult(
                scene_id=self.scene_id, im_id=int(result.index), obj_id=self.obj_id, score=float(result.score),
                R_m2c=result.R_m2c, t_m2c=result.t_m2c, time=float(result.timings.get("total", -1e3)) / 1e3,
            )
        )

    def close(self) -> None:
        self._w.close()


class JsonlSink:
    """One JSON object per frame (every frame), flushed per line: the result's fields, the loop's
    frame rate (``fps``) and its timings merged into ``timings_ms``."""

    needs_image = False

    def __init__(self, path: str | Path):
        self.path = Path(path)
        try:
            self.path.parent.mkdir(parents=True, exist_ok=True)
            self._f = open(self.path, "w", encoding="utf-8")
        except OSError as e:
            raise KptrackError(f"{self.path}: cannot write the JSONL log ({e.strerror}). Choose a writable path.") from None
        self.lines = 0

    def write(self, frame: TrackedFrame) -> None:
        d = frame.result.to_dict()
        d["timings_ms"].update({k: round(float(v), 4) for k, v in frame.loop_ms.items()})
        d["fps"] = None if math.isnan(frame.fps) else round(frame.fps, 2)
        self._f.write(json.dumps(d, separators=(",", ":")) + "\n")
        self._f.flush()
        self.lines += 1

    def close(self) -> None:
        if not self._f.closed:
            self._f.close()


def read_jsonl(path: str | Path) -> list[dict]:
    """Read a JSONL log; a last line cut off by a kill is ignored."""
    out = []
    with open(path, encoding="utf-8") as f:
        for line in f:
            try:
                out.append(json.loads(line))
            except json.JSONDecodeError:
                break
    return out


def display_available() -> bool:
    """Whether a window can be shown (a display on Linux; assumed elsewhere)."""
    if sys.platform.startswith("linux"):
        return bool(os.environ.get("DISPLAY") or os.environ.get("WAYLAND_DISPLAY"))
    return True


class WindowSink:
    """An OpenCV window. :meth:`show` returns 'quit', 'reset' or None; space pauses inside it.

    imshow / waitkey: injectable for tests (defaults cv2.imshow / cv2.waitKey).
    """

    needs_image = True

    def __init__(self, title: str = "kptrack", *, imshow: Callable | None = None, waitkey: Callable | None = None):
        if imshow is None and not display_available():
            raise KptrackError("--show: no display here (DISPLAY is not set). Drop --show and write --out VIDEO.avi instead.")
        self.title = title
        self._imshow = imshow or cv2.imshow
        self._waitkey = waitkey or cv2.waitKey
        self.paused_s = 0.0  # time spent paused or waiting for keys (not the tracker's)
        self.command: str | None = None  # the last write's key: 'quit', 'reset' or None

    def write(self, frame: TrackedFrame) -> None:
        """Show frame.image; the key pressed is left in ``command``."""
        self.command = self.show(frame.image)

    def show(self, image: np.ndarray) -> str | None:
        t0 = time.perf_counter()
        try:
            self._imshow(self.title, image)
            cmd = self._key(self._waitkey(1))
            if cmd == "pause":
                while True:
                    cmd = self._key(self._waitkey(50))
                    if cmd in ("pause", "quit", "reset"):
                        break
                cmd = None if cmd == "pause" else cmd
            return cmd
        finally:
            self.paused_s += time.perf_counter() - t0

    @staticmethod
    def _key(k: int) -> str | None:
        k = k & 0xFF if k is not None and k >= 0 else -1
        if k in (ord("q"), 27):
            return "quit"
        if k == ord(" "):
            return "pause"
        if k == ord("r"):
            return "reset"
        return None

    def close(self) -> None:
        try:
            cv2.destroyWindow(self.title)
        except cv2.error:
            pass
