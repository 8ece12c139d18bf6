"""A local MJPEG-over-HTTP stream for live-latency benchmarks: ``python -m benchmarks.mjpeg_server``.

Serves the images of a folder (e.g. a rendered BOP sequence's ``rgb/``), looped, as
``multipart/x-mixed-replace`` JPEG parts at ``GET /stream``, the format IP cameras and
``mjpg-streamer`` use and OpenCV's FFmpeg backend reads (``cv2.VideoCapture('http://...')``). Each
connected client gets its own paced stream, so N clients are N cameras. Loopback only
(127.0.0.1), and it stops itself after ``--seconds``.

The JPEGs are encoded once at start (quality 90), so serving costs little CPU beside the tracker
on a small machine. ``--fps 0`` sends as fast as the client reads (TCP backpressure paces it: the
highest rate the reading side sustains). Every part carries a ``Content-Length`` (FFmpeg's
mpjpeg demuxer then hands a frame over without waiting for the next boundary). The send time of
every part (``time.monotonic()``, the clock kptrack stamps captures with, shared by processes on
one machine) is written per client to ``--times`` (JSON) when the server stops, so a benchmark
can match each capture to the part it came from.

On start it prints one line, ``serving http://127.0.0.1:PORT/stream``, and flushes it.
"""

from __future__ import annotations

import argparse
import json
import sys
import threading
import time
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

import cv2

from tracker.pipeline.source import list_images

BOUNDARY = "kptrackframe"


def encode_folder(folder: Path, quality: int = 90, max_images: int | None = None) -> list[bytes]:
    """The folder's images (natural order) as JPEG bytes."""
    files = list_images(Path(folder))[:max_images]
    if not files:
        raise SystemExit(f"{folder}: no images to serve")
    out = []
    for f in files:
        ok, buf = cv2.imencode(".jpg", cv2.imread(str(f), cv2.IMREAD_COLOR), [cv2.IMWRITE_JPEG_QUALITY, quality])
        if not ok:
            raise SystemExit(f"{f}: cannot encode")
        out.append(buf.tobytes())
    return out


class MjpegServer(ThreadingHTTPServer):
    """HTTP server streaming ``jpegs`` at ``fps`` (0: as fast as read) to every client until ``deadline``."""

    daemon_threads = True

    def __init__(self, jpegs: list[bytes], fps: float, seconds: float, port: int = 0):
        super().__init__(("127.0.0.1", port), _Handler)
        self.jpegs, self.fps = jpegs, float(fps)
        self.deadline = time.monotonic() + float(seconds)
        self.send_times: list[list[float]] = []  # per client: monotonic time each part was sent
        self.lock = threading.Lock()

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.server_address[1]}/stream"


class _Handler(BaseHTTPRequestHandler):
    server: MjpegServer

    def log_message(self, *args) -> None:  # quiet: the benchmark prints what matters
        pass

    def do_GET(self) -> None:
        if self.path != "/stream":
            self.send_error(404)
            return
        srv = self.server
        self.send_response(200)
        self.send_header("Content-Type", f"multipart/x-mixed-replace; boundary={BOUNDARY}")
        self.send_header("Cache-Control", "no-cache")
        self.end_headers()
        times: list[float] = []
        with srv.lock:
            srv.send_times.append(times)
        period = 1.0 / srv.fps if srv.fps > 0 else 0.0
        next_t, i = time.monotonic(), 0
        try:
            while time.monotonic() < srv.deadline:
                if period:
                    delay = next_t - time.monotonic()
                    if delay > 0:
                        time.sleep(delay)
                    next_t += period
                jpg = srv.jpegs[i % len(srv.jpegs)]
                head = f"--{BOUNDARY}\r\nContent-Type: image/jpeg\r\nContent-Length: {len(jpg)}\r\n\r\n".encode()
                times.append(time.monotonic())
                self.wfile.write(head + jpg + b"\r\n")
                self.wfile.flush()
                i += 1
        except (BrokenPipeError, ConnectionResetError):  # the client went away
            pass


def serve(folder: Path, fps: float, seconds: float, times_path: Path | None, port: int = 0) -> None:
    """Serve ``folder`` until ``seconds`` have passed, then write the send times to ``times_path``."""
    srv = MjpegServer(encode_folder(folder), fps, seconds, port)
    print(f"serving {srv.url}", flush=True)
    t = threading.Thread(target=srv.serve_forever, kwargs={"poll_interval": 0.05}, daemon=True)
    t.start()
    while time.monotonic() < srv.deadline + 0.5:
        time.sleep(0.05)
    srv.shutdown()
    srv.server_close()
    if times_path is not None:
        with srv.lock:
            Path(times_path).write_text(json.dumps({"fps": fps, "clients": srv.send_times}))


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(prog="python -m benchmarks.mjpeg_server", description=__doc__.split("\n")[0])
    p.add_argument("--frames", required=True, help="folder of images to stream (looped)")
    p.add_argument("--fps", type=float, default=30.0, help="parts per second per client (0: as fast as the client reads)")
    p.add_argument("--seconds", type=float, default=20.0, help="stop after this many seconds")
    p.add_argument("--port", type=int, default=0, help="TCP port on 127.0.0.1 (0: any free port)")
    p.add_argument("--times", default=None, help="write every part's send time (monotonic s), per client, to this JSON")
    a = p.parse_args(argv)
    serve(Path(a.frames), a.fps, a.seconds, Path(a.times) if a.times else None, a.port)
    return 0


if __name__ == "__main__":
    sys.exit(main())
