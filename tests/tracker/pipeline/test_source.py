"""Frame sources: file order and backpressure, live newest-frame policy, size changes, bad input."""

import time

import cv2
import numpy as np
import pytest

from tracker.errors import KptrackError
from tracker.pipeline.source import FrameSource, _Reader, list_images, open_source


def _frame(i, w=64, h=48):
    img = np.zeros((h, w, 3), np.uint8)
    img[:, :, 2] = i % 256  # frame number in the red channel survives MJPEG closely enough
    img[:, :, 1] = (i * 37) % 256
    return img


def _write_avi(path, n, size=(64, 48), fps=25.0):
    w = cv2.VideoWriter(str(path), cv2.CAP_OPENCV_MJPEG, cv2.VideoWriter_fourcc(*"MJPG"), fps, size)
    assert w.isOpened()
    for i in range(n):
        w.write(_frame(i * 10, *size))
    w.release()


def test_video_file_delivers_every_frame_in_order(tmp_path):
    p = tmp_path / "v.avi"
    _write_avi(p, 30)
    with open_source(str(p), queue_size=2) as src:
        assert not src.live and (src.width, src.height) == (64, 48)
        assert src.fps == pytest.approx(25.0)
        got = []
        for f in src:
            got.append(f)
            time.sleep(0.002)  # slower than the reader: backpressure must not drop anything
    assert [f.index for f in got] == list(range(30))
    assert [f.timestamp for f in got] == pytest.approx([i / 25.0 for i in range(30)])
    reds = [int(f.image[..., 2].mean()) for f in got]
    assert reds == pytest.approx([(i * 10) % 256 for i in range(30)], abs=3)
    assert src.stats.dropped == 0 and src.stats.delivered == 30


def test_image_folder_natural_order_and_unreadable_file(tmp_path):
    for i in (0, 1, 2, 10, 11):
        cv2.imwrite(str(tmp_path / f"{i}.png"), _frame(i * 20))
    (tmp_path / "3.png").write_bytes(b"not a png")
    (tmp_path / "notes.txt").write_text("ignored")
    assert [p.name for p in list_images(tmp_path)] == ["0.png", "1.png", "2.png", "3.png", "10.png", "11.png"]
    with open_source(tmp_path) as src:
        frames = list(src)
    # the broken file uses up its index (indices = positions in the sorted listing)
    assert [f.index for f in frames] == [0, 1, 2, 4, 5]
    assert [int(f.image[0, 0, 2]) for f in frames] == [0, 20, 40, 200, 220]
    assert src.stats.unreadable == 1


def test_size_change_midstream_is_skipped_and_counted(tmp_path, caplog):
    for i in range(6):
        size = (64, 48) if i not in (2, 3) else (32, 24)
        cv2.imwrite(str(tmp_path / f"{i:03d}.png"), _frame(i, *size))
    with caplog.at_level("WARNING"), open_source(tmp_path) as src:
        frames = list(src)
    assert [f.index for f in frames] == [0, 1, 4, 5]
    assert all(f.image.shape == (48, 64, 3) for f in frames)
    assert src.stats.size_skipped == 2
    warnings = [r for r in caplog.records if "frame size changed" in r.getMessage()]
    assert len(warnings) == 1  # reported once, counted every time


class _FakeCamera:
    """A live reader producing frames faster than the consumer takes them."""

    def __init__(self, n, period=0.002):
        self.i, self.n, self.period = 0, n, period

    def read(self):
        if self.i >= self.n:
            return False, None
        time.sleep(self.period)
        self.i += 1
        return True, _frame(self.i)


def test_live_source_keeps_only_newest_frame():
    cam = _FakeCamera(200)
    first = _frame(0)
    src = FrameSource("fake", _Reader(read=cam.read), first, live=True, fps=None)
    got = []
    for f in src:
        got.append(f.index)
        time.sleep(0.02)  # a slow loop: ~10 camera frames per loop iteration
    src.close()
    assert got == sorted(got) and len(set(got)) == len(got)  # newest first, never repeated
    assert len(got) < 100  # most frames were dropped ...
    assert src.stats.dropped > 50  # ... and counted
    assert src.stats.dropped + len(got) == src.stats.decoded


def test_reader_error_surfaces_in_loop():
    def read():
        raise OSError("device unplugged")

    src = FrameSource("boom", _Reader(read=read), _frame(0), live=False, fps=10)
    it = iter(src)
    assert next(it).index == 0
    with pytest.raises(RuntimeError, match="device unplugged"):
        next(it)
    src.close()


def test_close_unblocks_a_full_queue(tmp_path):
    p = tmp_path / "v.avi"
    _write_avi(p, 50)
    src = open_source(p, queue_size=1)
    next(iter(src))
    t = time.monotonic()
    src.close()
    assert time.monotonic() - t < 2.0
    assert not src._thread.is_alive()


def test_camera_index_that_does_not_open():
    with pytest.raises(KptrackError, match=r"--source 97: camera could not be opened"):
        open_source("97")


def test_missing_camera_device_path():
    with pytest.raises(KptrackError, match="/dev/video97"):
        open_source("/dev/video97")


def test_missing_path():
    with pytest.raises(KptrackError, match="no such file or folder"):
        open_source("/nonexistent/clip.mp4")


def test_unreadable_video(tmp_path):
    p = tmp_path / "junk.mp4"
    p.write_bytes(b"\x00\x01garbage" * 100)
    with pytest.raises(KptrackError, match="junk.mp4"):
        open_source(p)


def test_zero_frame_video(tmp_path):
    p = tmp_path / "empty.avi"
    w = cv2.VideoWriter(str(p), cv2.CAP_OPENCV_MJPEG, cv2.VideoWriter_fourcc(*"MJPG"), 25, (64, 48))
    w.release()
    with pytest.raises(KptrackError, match="empty.avi"):
        open_source(p)


def test_empty_folder(tmp_path):
    with pytest.raises(KptrackError, match="holds no images"):
        open_source(tmp_path)


def test_http_mjpeg_stream_is_live_and_drops_stale_frames():
    """A real network source: a local HTTP multipart-JPEG stream (what IP cameras serve)."""
    import http.server
    import socketserver
    import threading

    class Stream(http.server.BaseHTTPRequestHandler):
        def log_message(self, *a):
            pass

        def do_GET(self):
            self.send_response(200)
            self.send_header("Content-Type", "multipart/x-mixed-replace; boundary=frame")
            self.end_headers()
            try:
                for i in range(150):
                    ok, buf = cv2.imencode(".jpg", _frame(i))
                    self.wfile.write(b"--frame\r\nContent-Type: image/jpeg\r\nContent-Length: %d\r\n\r\n" % len(buf) + buf.tobytes() + b"\r\n")
                    time.sleep(0.004)
            except (BrokenPipeError, ConnectionResetError):
                pass

    srv = socketserver.ThreadingTCPServer(("127.0.0.1", 0), Stream)
    srv.daemon_threads = True
    threading.Thread(target=srv.serve_forever, daemon=True).start()
    try:
        with open_source(f"http://127.0.0.1:{srv.server_address[1]}/stream.mjpg") as src:
            assert src.live and (src.width, src.height) == (64, 48)
            got = []
            for f in src:
                got.append(f.index)
                time.sleep(0.02)  # slower than the stream
        assert got == sorted(got) and len(got) < 100
        assert src.stats.dropped > 30 and src.stats.dropped + len(got) == src.stats.decoded
    finally:
        srv.shutdown()
        srv.server_close()


def test_unreachable_url():
    with pytest.raises(KptrackError, match=r"--source http://127.0.0.1:9/x.mjpg: stream could not be opened"):
        open_source("http://127.0.0.1:9/x.mjpg")
