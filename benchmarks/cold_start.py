"""Time to first frame: :func:`measure_cold_start` runs :mod:`benchmarks.first_frame` in fresh
``python`` processes and times each from before the interpreter starts to its exit.

What the wall time holds: interpreter start, imports (numba kernels load from their on-disk
cache), model and object load with warm-ups, one tracked and drawn frame. The child's own
breakdown of those comes back on its ``KPTRACK_COLD`` line, and its stderr (where the numba
compile message goes) is kept.

A fresh install is imitated with ``fresh_cache=True``: the first run gets an empty
``NUMBA_CACHE_DIR``, so every kernel compiles (and says so); the timed warm runs then reuse that
directory, as a second run after installing would.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

import numpy as np

from benchmarks.first_frame import MARKER
from tracker.camera import Camera
from tracker.errors import KptrackError

REPO_ROOT = Path(__file__).resolve().parents[1]
CHILD_TIMEOUT_S = 300


def _child_env() -> dict[str, str]:
    """This environment with the checkout first on PYTHONPATH, so the child imports this kptrack."""
    env = dict(os.environ)
    env["PYTHONPATH"] = str(REPO_ROOT) + (os.pathsep + env["PYTHONPATH"] if env.get("PYTHONPATH") else "")
    return env


def _run_child(cmd: list[str], env: dict[str, str]) -> tuple[float, dict[str, Any]]:
    """(wall seconds, the child's breakdown, with its stderr as ``stderr``) of one run; a failed run
    raises KptrackError with its stderr tail."""
    t = time.perf_counter()
    p = subprocess.run(cmd, capture_output=True, text=True, env=env, timeout=CHILD_TIMEOUT_S)
    wall = time.perf_counter() - t
    line = next((ln for ln in p.stdout.splitlines() if ln.startswith(MARKER)), None)
    if p.returncode != 0 or line is None:
        raise KptrackError(f"cold-start run failed (exit {p.returncode}): {p.stderr.strip()[-500:]}")
    detail = json.loads(line[len(MARKER):])
    detail["stderr"] = p.stderr.strip()[-2000:]
    return wall, detail


def measure_cold_start(model: str | Path, image: str | Path, camera: Camera, *, object: str = "default", device: str = "cpu",
                       preset: str = "fast", threads: int | None = None, runs: int = 3, warm_cache: bool = True,
                       fresh_cache: bool = False) -> dict[str, Any]:
    """Time to first frame of a fresh process: interpreter start, imports (numba kernels load from
    their on-disk cache), model and object load, one tracked frame. ``warm_cache`` runs it once
    untimed first so the numba cache is warm. ``fresh_cache``: that first run is timed instead, on an
    empty numba cache (see the module docstring), and comes back as ``fresh`` (wall ``first_frame_s``,
    its breakdown with ``compile_s`` and ``kernels``, and whether stderr held the compile message).
    Returns the median over ``runs`` of the wall time (``first_frame_s``) and the child's breakdown.

    model: .onnx path; image: one frame of the camera's size; camera: its Camera (K, dist, size).
    """
    args = json.dumps({"model": str(model), "image": str(image), "device": device, "threads": threads,
                       "object": str(object), "K": np.asarray(camera.K).tolist(), "dist": np.asarray(camera.dist).tolist(),
                       "width": int(camera.width), "height": int(camera.height), "preset": preset})
    cmd = [sys.executable, "-m", "benchmarks.first_frame", args]
    env = _child_env()
    with tempfile.TemporaryDirectory(prefix="kptrack-numba-cache-") as cache:
        fresh = None
        if fresh_cache:
            env["NUMBA_CACHE_DIR"] = cache
            w, d = _run_child(cmd, env)
            fresh = {"first_frame_s": w, "breakdown": d, "announced": "compiling the numba kernels" in d["stderr"]}
        elif warm_cache:
            _run_child(cmd, env)
        walls, details = [], []
        for _ in range(max(1, runs)):
            w, d = _run_child(cmd, env)
            walls.append(w)
            details.append(d)
    k = int(np.argsort(walls)[len(walls) // 2])
    out = {"first_frame_s": float(walls[k]), "runs_s": walls, "breakdown": details[k], "device": device,
           "numba_cache": "warm" if (warm_cache or fresh_cache) else "as found"}
    if fresh is not None:
        out["fresh"] = fresh
    return out


def main(argv: list[str] | None = None) -> int:
    """``python -m benchmarks.cold_start --model M --sequence SCENE [--fresh]``: print the figures."""
    import argparse

    p = argparse.ArgumentParser(description="time to first frame of fresh processes (warm numba cache; --fresh: an empty one first)")
    p.add_argument("--model", default="models/default/model.onnx", help="the .onnx model")
    p.add_argument("--sequence", required=True, help="a BOP scene folder (rgb/ and camera.yaml), e.g. the demo's sequence")
    p.add_argument("--runs", type=int, default=3, help="timed warm runs (the median is reported)")
    p.add_argument("--fresh", action="store_true", help="first time a run on an empty NUMBA_CACHE_DIR (a fresh install)")
    p.add_argument("--device", default="cpu", help="cpu | cuda")
    a = p.parse_args(argv)
    scene = Path(a.sequence)
    image = sorted((scene / "rgb").iterdir())[0]
    r = measure_cold_start(a.model, image, Camera.from_yaml(scene / "camera.yaml"), device=a.device, runs=a.runs,
                           fresh_cache=a.fresh)
    if "fresh" in r:
        f = r["fresh"]
        print(f"fresh numba cache: first frame after {f['first_frame_s']:.2f} s (compiling {f['breakdown']['compile_s'] or 0:.2f} s, "
              f"{f['breakdown']['kernels']} kernel specialisations; process CPU time {f['breakdown']['cpu_s']:.2f} s; "
              f"compile message shown: {f['announced']})")
    b = r["breakdown"]
    print(f"warm cache: first frame after {r['first_frame_s']:.2f} s (median of {[round(x, 2) for x in r['runs_s']]}; import "
          f"{b['import_s']:.2f}, load {b['load_s']:.2f}, first frame {b['first_frame_s']:.2f} s; process CPU time {b['cpu_s']:.2f} s; "
          f"compiled: {b['compile_s'] or 0:.2f} s)")
    return 0


if __name__ == "__main__":
    sys.exit(main())
