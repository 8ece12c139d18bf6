"""Stage benchmark: video decode (the source stage), 640x480.

What is timed: ``cv2.VideoCapture.read`` over a small generated 640x480 MP4 (and, for image-folder
sources, ``cv2.imdecode`` of one 640x480 JPEG). The baseline measured in the same run is a raw
numpy copy of the same number of 640x480x3 uint8 frames: the floor any source pays to hand a frame
over. ``extra_info`` carries per-frame milliseconds and the ratio decode / copy.

Quick mode (CI): ``KPTRACK_BENCH_QUICK=1`` shrinks the clip and the rounds.
"""

from __future__ import annotations

import cv2
import numpy as np
import pytest

from benchmarks.benchutil import QUICK, median_s, record

W, H = 640, 480
N_FRAMES = 12 if QUICK else 90
ROUNDS = 3 if QUICK else 10


def _synthetic_frames(n: int) -> np.ndarray:
    """(n, H, W, 3) uint8: a moving textured pattern, so the codec has real work (not flat colour)."""
    yy, xx = np.mgrid[0:H, 0:W].astype(np.float32)
    rng = np.random.default_rng(0)
    blobs = rng.integers(0, 255, size=(H // 8, W // 8, 3), dtype=np.uint8)
    blobs = cv2.resize(blobs, (W, H), interpolation=cv2.INTER_NEAREST)
    out = np.empty((n, H, W, 3), np.uint8)
    for i in range(n):
        s = 127 + 120 * np.sin((xx + 4 * i) / 23.0) * np.cos((yy - 3 * i) / 31.0)
        f = np.roll(blobs, 3 * i, axis=1).astype(np.float32) * 0.5
        f[..., 1] += 0.5 * s
        out[i] = np.clip(f, 0, 255).astype(np.uint8)
    return out


@pytest.fixture(scope="module")
def clip(tmp_path_factory):
    frames = _synthetic_frames(N_FRAMES)
    path = tmp_path_factory.mktemp("video") / "clip.mp4"
    vw = cv2.VideoWriter(str(path), cv2.VideoWriter_fourcc(*"mp4v"), 30.0, (W, H))
    if not vw.isOpened():
        pytest.skip("this OpenCV build cannot write mp4v video")
    for f in frames:
        vw.write(f)
    vw.release()
    cap = cv2.VideoCapture(str(path))
    ok = cap.isOpened() and cap.read()[0]
    cap.release()
    if not ok:
        pytest.skip("this OpenCV build cannot read back the mp4v clip")
    return path, frames


def _copy_all(frames: np.ndarray, dst: np.ndarray) -> None:
    for f in frames:
        np.copyto(dst, f)


def _finish(benchmark, per_round_items: int, baseline_s: float, baseline_name: str) -> None:
    """:func:`benchutil.record` per frame (``us`` is per frame), plus per-frame ms and frames per second."""
    med = record(benchmark, baseline_s, baseline_name, items=per_round_items, items_per_round=per_round_items,
                 baseline_ms_per_item=1e3 * baseline_s / per_round_items)
    if med is not None:  # None under --benchmark-disable: nothing was timed
        benchmark.extra_info["ms_per_item"] = 1e3 * med / per_round_items
        benchmark.extra_info["items_per_s"] = per_round_items / med if med > 0 else float("inf")


@pytest.mark.benchmark(group="video-decode")
def test_bench_video_decode(benchmark, clip):
    path, frames = clip

    def setup():
        cap = cv2.VideoCapture(str(path))
        return (cap,), {}

    def read_all(cap):
        n = 0
        while True:
            ok, _ = cap.read()
            if not ok:
                break
            n += 1
        cap.release()
        return n

    dst = np.empty_like(frames[0])
    baseline = median_s(lambda: _copy_all(frames, dst), ROUNDS * 3)
    n = benchmark.pedantic(read_all, setup=setup, rounds=ROUNDS, warmup_rounds=1)
    assert n == len(frames)
    _finish(benchmark, n, baseline, "numpy copy of the same frames")


@pytest.mark.benchmark(group="video-decode")
def test_bench_jpeg_decode(benchmark, clip):
    _, frames = clip
    ok, buf = cv2.imencode(".jpg", frames[0], [cv2.IMWRITE_JPEG_QUALITY, 90])
    assert ok
    dst = np.empty_like(frames[0])
    baseline = median_s(lambda: np.copyto(dst, frames[0]), ROUNDS * 20)
    img = benchmark(cv2.imdecode, buf, cv2.IMREAD_COLOR)
    assert img.shape == (H, W, 3)
    _finish(benchmark, 1, baseline, "numpy copy of one frame")


@pytest.mark.benchmark(group="video-decode")
def test_bench_frame_copy_baseline(benchmark, clip):
    """The baseline on its own row, so the table shows it beside the decoders."""
    _, frames = clip
    dst = np.empty_like(frames[0])
    benchmark(_copy_all, frames, dst)
    _finish(benchmark, len(frames), median_s(lambda: _copy_all(frames, dst), ROUNDS), "itself")
