"""Stage benchmark: synthetic data generation (train/synth/), the default drill.

Timed: ``run_synth`` end to end (pool start, render, background, occluders, effects, labels,
JPEG + PNG writes, scene JSON + COCO) for

* training images at 256x256, all cores (target: >= 100 images/s on the 2-core dev machine);
* a 640x480 test sequence (also writing video.mp4).

Baseline in the same run: the renderer alone (``Renderer.render``, colour + depth + mask) in
this one process over the same number of images, with the same kind of random cameras and
poses. ``extra_info`` holds images_per_s, the baseline's images/s and ``ratio_vs_baseline``
(synth time / render-alone time: how much the rest of the pipeline costs beyond rendering,
net of the parallelism). Quick mode: ``KPTRACK_BENCH_QUICK=1`` (fewer images).
"""

from __future__ import annotations

import os
import shutil
import tempfile
import time

import numpy as np
import pytest

from benchmarks.benchutil import QUICK, record
from tracker.objects import load_object
from tracker.render import Renderer
from train.synth import SynthConfig, plan_sequence, run_synth, sample_camera, sample_pose

N_TRAIN = 120 if QUICK else 600
N_FRAMES = 45 if QUICK else 150
ROUNDS = 2 if QUICK else 3


def _render_alone_s(obj, n: int, width: int, height: int, sequence: bool) -> float:
    """Seconds for n renders (one process) with synth's cameras and poses (random training
    views, or the sequence's own trajectory)."""
    rend = Renderer(obj)
    cfg = SynthConfig(width=width, height=height, sequence=sequence, frames=n, seed=0)
    if sequence:
        plan = plan_sequence(cfg, obj, [])
        poses = [(plan.camera, plan.R[i], plan.t[i]) for i in range(n)]
    else:
        rng = np.random.default_rng(123)
        poses = []
        for _ in range(n):
            cam = sample_camera(rng, cfg)
            poses.append((cam, *sample_pose(rng, cfg, obj, cam)))
    rend.render(*poses[0])
    ts = []
    for _ in range(2):
        t0 = time.perf_counter()
        for cam, R, t in poses:
            rend.render(cam, R, t)
        ts.append(time.perf_counter() - t0)
    return min(ts)


def _bench(benchmark, cfg_kw: dict, n: int):
    root = tempfile.mkdtemp(prefix="kptrack_bench_synth_")
    counter = iter(range(1000))

    def setup():
        return (SynthConfig(out=os.path.join(root, str(next(counter))), progress=False, **cfg_kw),), {}

    try:
        return benchmark.pedantic(run_synth, setup=setup, rounds=ROUNDS, iterations=1)
    finally:
        shutil.rmtree(root, ignore_errors=True)


def _finish(benchmark, n: int, baseline_s: float, **info) -> None:
    """:func:`benchutil.record` per image (``us`` is per image), plus images per second."""
    med = record(benchmark, baseline_s, "Renderer.render alone, one process, same number of images", items=n,
                 images=n, baseline_images_per_s=n / baseline_s, **info)
    if med is not None:  # None under --benchmark-disable
        benchmark.extra_info["images_per_s"] = n / med


@pytest.mark.benchmark(group="synth")
def test_bench_synth_training_images(benchmark):
    obj = load_object("default")
    workers = len(os.sched_getaffinity(0))
    baseline = _render_alone_s(obj, N_TRAIN, 256, 256, False)
    out = _bench(benchmark, dict(num=N_TRAIN, seed=0, workers=workers), N_TRAIN)
    assert out.name == "train_synth"
    _finish(benchmark, N_TRAIN, baseline, workers=workers, size="256x256", target_images_per_s=100.0)


@pytest.mark.benchmark(group="synth")
def test_bench_synth_sequence(benchmark):
    obj = load_object("default")
    workers = len(os.sched_getaffinity(0))
    baseline = _render_alone_s(obj, N_FRAMES, 640, 480, True)
    out = _bench(benchmark, dict(sequence=True, frames=N_FRAMES, seed=0, workers=workers), N_FRAMES)
    assert out.name == "000000"
    _finish(benchmark, N_FRAMES, baseline, workers=workers, size="640x480")

