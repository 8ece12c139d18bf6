"""Stage benchmark: the numba z-buffer renderer and the per-frame overlay (tracker/render.py).

Timed, 640x480, single-threaded (the kernels are not parallel; NUMBA_NUM_THREADS does not
matter), after warm-up:

* ``render`` (colour + depth + mask) of a 5120-triangle vertex-coloured icosphere and of the
  built-in default drill; ``render_depth`` of the icosphere.
* ``draw_overlay`` (shaded blend + axes + 8 keypoints, and edges mode) on a 640x480 frame.
* The numba on-disk cache: a subprocess that imports tracker.render and renders once, run
  twice against a fresh NUMBA_CACHE_DIR; the timed round is the second (cache hit), the
  first (compiling) is in ``extra_info``.

Baselines in the same run: for renders, numpy projection + one ``cv2.fillPoly`` call drawing
every projected triangle flat (a silhouette, no depth, no shading: about the cheapest way
to put the mesh on the image); for overlays, ``cv2.addWeighted`` of two full 640x480 frames
(the naive blend). ``extra_info`` holds ms and ``ratio_vs_baseline``. Targets: render
<= 5 ms, overlay <= 2 ms. Quick mode: ``KPTRACK_BENCH_QUICK=1``.
"""

from __future__ import annotations

import os
import subprocess
import sys
import tempfile
import textwrap
from pathlib import Path

import cv2
import numpy as np
import pytest

from benchmarks.benchutil import QUICK, median_s, record
from tracker.geometry import so3_exp
from tracker.objects import load_object
from tracker.render import Renderer, draw_overlay

BASE_ROUNDS = 30 if QUICK else 200
REPO = Path(__file__).resolve().parents[1]
R_VIEW = so3_exp(np.array([0.5, -0.7, 0.2]))


def _fillpoly_silhouette(obj, camera, R, t):
    """Baseline: project with numpy, draw every triangle flat with one cv2.fillPoly call."""
    pc = obj.vertices @ R.T + t
    uv = (pc @ camera.K.T)[:, :2] / pc[:, 2:3]
    tri = np.round(uv[obj.faces] * 16).astype(np.int32)  # 4 fractional bits, as OpenCV's shift
    img = np.zeros((camera.height, camera.width), np.uint8)
    cv2.fillPoly(img, list(tri), 255, cv2.LINE_8, 4)
    return img


def _pose(obj, distance_diameters=2.6):
    return R_VIEW, np.array([10.0, -5.0, distance_diameters * obj.diameter])


@pytest.fixture(scope="module")
def drill():
    return load_object("default")


@pytest.fixture(scope="module")
def frame():
    rng = np.random.default_rng(1)
    small = rng.integers(0, 255, size=(120, 160, 3), dtype=np.uint8)
    return cv2.resize(small, (640, 480), interpolation=cv2.INTER_LINEAR)


@pytest.mark.benchmark(group="render")
@pytest.mark.parametrize("which", ["sphere_5k", "default_drill"])
def test_bench_render_color_depth(benchmark, which, sphere_5k, drill, camera_640x480):
    obj = sphere_5k if which == "sphere_5k" else drill
    rend = Renderer(obj)
    R, t = _pose(obj, 4.0 if which == "sphere_5k" else 2.6)
    out = rend.render(camera_640x480, R, t)  # warm-up (and compile if not cached)
    baseline = median_s(lambda: _fillpoly_silhouette(obj, camera_640x480, R, t), BASE_ROUNDS, warmup=True)
    out = benchmark(rend.render, camera_640x480, R, t)
    assert out.mask.any() and out.color.shape == (480, 640, 3)
    record(benchmark, baseline, "numpy projection + cv2.fillPoly flat silhouette", also_ms=True, triangles=len(obj.faces),
            object_pixels=int(out.mask.sum()), target_ms=5.0)


@pytest.mark.benchmark(group="render")
def test_bench_render_depth_only(benchmark, sphere_5k, camera_640x480):
    rend = Renderer(sphere_5k)
    R, t = _pose(sphere_5k, 4.0)
    rend.render_depth(camera_640x480, R, t)
    baseline = median_s(lambda: _fillpoly_silhouette(sphere_5k, camera_640x480, R, t), BASE_ROUNDS, warmup=True)
    depth, mask = benchmark(rend.render_depth, camera_640x480, R, t)
    assert mask.any()
    record(benchmark, baseline, "numpy projection + cv2.fillPoly flat silhouette", also_ms=True, triangles=len(sphere_5k.faces),
            object_pixels=int(mask.sum()))


@pytest.mark.benchmark(group="overlay")
@pytest.mark.parametrize("mode", ["shaded", "edges"])
def test_bench_overlay(benchmark, mode, drill, camera_640x480, frame):
    rend = Renderer(drill)
    R, t = _pose(drill)
    kuv = camera_640x480.project(drill.keypoints, R, t)
    conf = np.linspace(0.2, 1.0, len(kuv))
    work = frame.copy()

    def overlay():
        # Copying the frame is part of every round (a tracker draws on a fresh frame each time).
        np.copyto(work, frame)
        return draw_overlay(work, drill, camera_640x480, R, t, renderer=rend, mode=mode, keypoints_uv=kuv, confidences=conf)

    overlay()
    other = np.full_like(frame, 128)
    baseline = median_s(lambda: cv2.addWeighted(frame, 0.45, other, 0.55, 0.0), BASE_ROUNDS, warmup=True)
    out = benchmark(overlay)
    assert not np.array_equal(out, frame)
    record(benchmark, baseline, "cv2.addWeighted of two 640x480 frames", also_ms=True, triangles=len(drill.faces), target_ms=2.0)


_CACHE_PROBE = textwrap.dedent(
    """
    import time
    t0 = time.perf_counter()
    import numpy as np
    import tracker.render as render
    from tracker.camera import Camera
    t1 = time.perf_counter()
    v = np.array([[-30.0, -30, 0], [30, -30, 0], [30, 30, 0], [-30, 30, 0]])
    obj = type("Quad", (), dict(name="quad", vertices=v, faces=np.array([[0, 1, 2], [0, 2, 3]], np.int32),
                                vertex_colors=None, uv=None, texture=None, diameter=120.0))()
    rend = render.Renderer(obj)
    out = rend.render(Camera.from_fov(60.0, 640, 480), np.eye(3), np.array([0.0, 0.0, 400.0]))
    assert out.mask.any()
    t2 = time.perf_counter()
    print(t1 - t0, t2 - t1)
    """
)


def _probe(cache_dir: str) -> tuple[float, float]:
    """(import seconds, Renderer + first render seconds) in a fresh process."""
    env = dict(os.environ, NUMBA_CACHE_DIR=cache_dir, NUMBA_NUM_THREADS="1")
    res = subprocess.run([sys.executable, "-c", _CACHE_PROBE], cwd=REPO, env=env, capture_output=True, text=True, timeout=300)
    if res.returncode != 0:
        raise RuntimeError(res.stderr[-2000:])
    a, b = res.stdout.strip().splitlines()[-1].split()
    return float(a), float(b)


@pytest.mark.benchmark(group="render-cache")
def test_bench_numba_cache_second_process(benchmark):
    """A fresh process's import + first render: compiling (first process) vs loading the
    on-disk numba cache (second process, the timed round)."""
    firsts: list[tuple[float, float]] = []
    seconds: list[tuple[float, float]] = []
    with tempfile.TemporaryDirectory(prefix="kptrack_numba_cache_") as root:
        counter = iter(range(1000))

        def setup():
            d = os.path.join(root, str(next(counter)))
            os.makedirs(d)
            firsts.append(_probe(d))  # cold cache: compiles the kernels and writes the cache
            return (d,), {}

        def second(d):
            seconds.append(_probe(d))

        benchmark.pedantic(second, setup=setup, rounds=1, iterations=1)
    (imp1, ren1), (imp2, ren2) = firsts[0], seconds[0]
    benchmark.extra_info.update(
        first_import_s=imp1, first_render_s=ren1, second_import_s=imp2, second_render_s=ren2,
        first_total_s=imp1 + ren1, second_total_s=imp2 + ren2,
        render_speedup=ren1 / ren2 if ren2 > 0 else float("inf"),
        note="render_s = Renderer() + first 640x480 render (the numba kernels' compile or cache load); in-process times",
        baseline="the first (compiling) process", ratio_vs_baseline=(imp2 + ren2) / (imp1 + ren1),
    )
