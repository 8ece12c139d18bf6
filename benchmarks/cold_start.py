"""Time to first frame: :func:`measure_cold_start` runs :mod:`benchmarks.first_frame` in fresh
``python`` processes and times each from before the interpreter starts to its exit.

What the wall time holds: interpreter start, imports (numba kernels load from their on-disk
cache), model and object load with warm-ups, one tracked and drawn frame. The child's own
breakdown of those comes back on its ``KPTRACK_COLD`` line.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
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
    """(wall seconds, the child's breakdown) of one run; a failed run raises KptrackError with its stderr tail."""
    t = time.perf_counter()
    p = subprocess.run(cmd, capture_output=True, text=True, env=env, timeout=CHILD_TIMEOUT_S)
    wall = time.perf_counter() - t
    line = next((ln for ln in p.stdout.splitlines() if ln.startswith(MARKER)), None)
    if p.returncode != 0 or line is None:
        raise KptrackError(f"cold-start run failed (exit {p.returncode}): {p.stderr.strip()[-500:]}")
    return wall, json.loads(line[len(MARKER):])


def measure_cold_start(model: str | Path, image: str | Path, camera: Camera, *, object: str = "default", device: str = "cpu",
                       preset: str = "fast", threads: int | None = None, runs: int = 3, warm_cache: bool = True) -> dict[str, Any]:
    """Time to first frame of a fresh process: interpreter start, imports (numba kernels load from
    their on-disk cache), model and object load, one tracked frame. ``warm_cache`` runs it once
    untimed first so the numba cache is warm. Returns the median over ``runs`` of the wall time
    (``first_frame_s``) and the child's breakdown.

    model: .onnx path; image: one frame of the camera's size; camera: its Camera (K, dist, size).
    """
    args = json.dumps({"model": str(model), "image": str(image), "device": device, "threads": threads,
                       "object": str(object), "K": np.asarray(camera.K).tolist(), "dist": np.asarray(camera.dist).tolist(),
                       "width": int(camera.width), "height": int(camera.height), "preset": preset})
    cmd = [sys.executable, "-m", "benchmarks.first_frame", args]
    env = _child_env()
    if warm_cache:
        _run_child(cmd, env)
    walls, details = [], []
    for _ in range(max(1, runs)):
        w, d = _run_child(cmd, env)
        walls.append(w)
        details.append(d)
    k = int(np.argsort(walls)[len(walls) // 2])
    return {"first_frame_s": float(walls[k]), "runs_s": walls, "breakdown": details[k], "device": device,
            "numba_cache": "warm" if warm_cache else "as found"}
