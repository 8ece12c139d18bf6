"""benchmarks/mjpeg_server.py + tracker's URL source: a loopback MJPEG stream that OpenCV reads as a
live --source, paced and recorded per client; the live-latency figures from JSONL rows."""

from __future__ import annotations

import threading
import time

import cv2
import numpy as np
import pytest

from benchmarks.live_latency import stream_figures
from benchmarks.mjpeg_server import MjpegServer, encode_folder
from tracker.pipeline.source import open_source


def test_the_stream_opens_as_a_live_url_source(tmp_path):
    for i in range(5):
        img = np.full((48, 64, 3), 40 * i, np.uint8)
        cv2.imwrite(str(tmp_path / f"{i}.png"), img)
    # seconds: long enough that a loaded machine still opens the stream before it ends (the test stops it)
    srv = MjpegServer(encode_folder(tmp_path), fps=50.0, seconds=15.0)
    threading.Thread(target=srv.serve_forever, kwargs={"poll_interval": 0.05}, daemon=True).start()
    try:
        with open_source(srv.url) as src:
            assert src.live and (src.width, src.height) == (64, 48)
            frames = [src.read(timeout=5.0) for _ in range(10)]
    finally:
        srv.shutdown()
        srv.server_close()
    idx = [f.index for f in frames]
    assert idx == sorted(idx) and len(set(idx)) == 10
    assert all(abs(f.captured - time.monotonic()) < 10 and f.timestamp == f.captured for f in frames)
    sent = srv.send_times[0]
    assert len(sent) >= 10 and np.all(np.diff(sent) > 0.01)  # paced at 50 fps, not as fast as possible


def test_stream_figures_match_captures_to_the_last_part_sent():
    send = [10.0 + k / 30 for k in range(100)]
    rows = [{"timestamp": 10.0 + k / 30 + 0.002, "timings_ms": {"latency": 4.0 + (k % 2)}} for k in range(90)]
    fig = stream_figures(rows, [[], send], skip_s=1.0)
    assert fig["frames"] == 60 and fig["fps"] == pytest.approx(30.0, abs=0.1)
    assert fig["send_to_capture_ms"]["p50"] == pytest.approx(2.0, abs=0.01)
    assert fig["send_to_result_ms"]["p50"] == pytest.approx(6.5, abs=0.6)
    assert "send_to_result_ms" not in stream_figures(rows, None, 1.0)
