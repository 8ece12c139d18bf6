"""Stage benchmark: the crop, one ``cv2.warpAffine`` from a 640x480 frame to the 256x256 network input.

Timed: the ROI crop of the tracking mode (box around the object, rotated, built by
:func:`tracker.geometry.crop.crop_affine`) and the letterboxed full-frame crop of the search mode. Baseline in
the same run: ``cv2.resize`` of the whole frame to 256x256 (the cheapest way to get a 256x256 input).
``extra_info`` holds the ratio warpAffine / resize. Quick mode: ``KPTRACK_BENCH_QUICK=1``.
"""

from __future__ import annotations

import cv2
import numpy as np
import pytest

from benchmarks.benchutil import QUICK, median_s, record
from tracker.geometry.crop import INPUT_SIZE, crop_affine, letterbox_affine

W, H = 640, 480
BASE_ROUNDS = 50 if QUICK else 400


@pytest.fixture(scope="module")
def frame():
    rng = np.random.default_rng(1)
    small = rng.integers(0, 255, size=(H // 4, W // 4, 3), dtype=np.uint8)
    return cv2.resize(small, (W, H), interpolation=cv2.INTER_LINEAR)


def _resize(frame):
    return cv2.resize(frame, (INPUT_SIZE, INPUT_SIZE), interpolation=cv2.INTER_LINEAR)


@pytest.mark.benchmark(group="crop")
def test_bench_crop_roi_warpaffine(benchmark, frame):
    A = crop_affine(np.array([350.5, 220.25]), 180.0, 0.3)
    baseline = median_s(lambda: _resize(frame), BASE_ROUNDS)
    out = benchmark(cv2.warpAffine, frame, A, (INPUT_SIZE, INPUT_SIZE), flags=cv2.INTER_LINEAR, borderMode=cv2.BORDER_CONSTANT)
    assert out.shape == (INPUT_SIZE, INPUT_SIZE, 3) and out.dtype == np.uint8
    record(benchmark, baseline, "cv2.resize 640x480->256x256")


@pytest.mark.benchmark(group="crop")
def test_bench_crop_letterbox_warpaffine(benchmark, frame):
    A = letterbox_affine(W, H)
    baseline = median_s(lambda: _resize(frame), BASE_ROUNDS)
    out = benchmark(cv2.warpAffine, frame, A, (INPUT_SIZE, INPUT_SIZE), flags=cv2.INTER_LINEAR, borderMode=cv2.BORDER_CONSTANT)
    assert out.shape == (INPUT_SIZE, INPUT_SIZE, 3)
    record(benchmark, baseline, "cv2.resize 640x480->256x256")


@pytest.mark.benchmark(group="crop")
def test_bench_crop_resize_baseline(benchmark, frame):
    out = benchmark(_resize, frame)
    assert out.shape == (INPUT_SIZE, INPUT_SIZE, 3)
    record(benchmark, median_s(lambda: _resize(frame), BASE_ROUNDS), "itself")
