"""Live latency on a real live source: ``kptrack track`` reading a local MJPEG-over-HTTP stream.

:func:`run_live` starts :mod:`benchmarks.mjpeg_server` (127.0.0.1, a free port, paced at ``fps``,
or as fast as the client reads with ``fps=0``; it stops itself after ``seconds``), then runs
``kptrack track --source http://127.0.0.1:PORT/stream`` (repeated for N streams, each its own
connection, so its own paced camera) in a subprocess, as a user would. The run ends when the
server stops (the stream ends). From each stream's JSONL log it takes, per frame:

* **capture -> result**: kptrack's own figure (``timings_ms.latency``): from the moment the
  source's reader had the frame decoded (``Frame.captured``) to the result handed to the sinks;
* **send -> result** (paced runs only): from the server writing the JPEG part to the result, so
  it also holds the loopback transfer, FFmpeg's demuxing and the JPEG decode. A capture is matched
  to the last part sent before it (unambiguous when parts are 33 ms apart; not reported at
  ``fps=0``, where parts queue in the socket buffers).

Frames captured in the first ``skip_s`` seconds are left out (the first frame is read before the
network warms up, and the first seconds compete with start-up). Everything runs on one machine
(``time.monotonic()`` is shared by its processes), loopback only.
"""

from __future__ import annotations

import bisect
import json
import logging
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

from tracker.pipeline.sinks import read_jsonl

log = logging.getLogger(__name__)


def _pct(values, q) -> float | None:
    return round(float(np.percentile(values, q)), 2) if len(values) else None


def _send_to_capture_ms(send: list[float], captures: np.ndarray) -> np.ndarray:
    """ms from the last part sent before each capture to the capture (NaN before the first part)."""
    out = np.full(len(captures), np.nan)
    for k, c in enumerate(captures):
        j = bisect.bisect_right(send, c) - 1
        if j >= 0:
            out[k] = (c - send[j]) * 1e3
    return out


def stream_figures(rows: list[dict], clients: list[list[float]] | None, skip_s: float) -> dict:
    """One stream's figures from its JSONL rows and the server's per-client send times (None: unpaced)."""
    if not rows:
        return {"frames": 0}
    cap = np.array([r["timestamp"] for r in rows])
    lat = np.array([r["timings_ms"].get("latency", np.nan) for r in rows])
    keep = cap >= cap[0] + skip_s
    cap, lat = cap[keep], lat[keep]
    span = float(cap[-1] - cap[0]) if len(cap) > 1 else float("nan")
    fig = {"frames": int(len(cap)), "fps": round((len(cap) - 1) / span, 1) if span and span > 0 else None,
           "capture_to_result_ms": {"p50": _pct(lat, 50), "p99": _pct(lat, 99), "mean": round(float(np.mean(lat)), 2) if len(lat) else None}}
    if clients:
        # the client this stream was: the one whose parts precede its captures most closely
        s2c = min((_send_to_capture_ms(c, cap) for c in clients if c), key=lambda a: float(np.nanmedian(a)) if np.isfinite(a).any() else 1e9)
        tot = s2c + lat
        fig["send_to_capture_ms"] = {"p50": _pct(s2c[np.isfinite(s2c)], 50), "p99": _pct(s2c[np.isfinite(s2c)], 99)}
        fig["send_to_result_ms"] = {"p50": _pct(tot[np.isfinite(tot)], 50), "p99": _pct(tot[np.isfinite(tot)], 99)}
    return fig


def run_live(scene: Path, *, fps: float = 30.0, seconds: float = 15.0, streams: int = 1, loop: str = "pipelined",
             model: str | None = None, skip_s: float = 1.0, extra_args: tuple[str, ...] = ()) -> dict:
    """Serve ``scene/rgb`` as MJPEG and track it live with ``kptrack track`` (module docstring).

    scene: a BOP scene folder with ``rgb/`` and ``camera.yaml`` (benchmarks.demo.ensure_demo_sequence).
    Returns {fps, seconds, streams, loop, per_stream: [figures], all: pooled figures, summary: the run's printout}.
    """
    scene = Path(scene)
    with tempfile.TemporaryDirectory(prefix="kptrack_live_") as tmp:
        tmp = Path(tmp)
        times = tmp / "send_times.json"
        server = subprocess.Popen([sys.executable, "-m", "benchmarks.mjpeg_server", "--frames", str(scene / "rgb"), "--fps", str(fps),
                                   "--seconds", str(seconds), "--times", str(times)], stdout=subprocess.PIPE, text=True)
        try:
            line = server.stdout.readline().strip()
            if not line.startswith("serving "):
                raise RuntimeError(f"the MJPEG server did not start: {line!r}")
            url = line.split()[1]
            cmd = [sys.executable, "-m", "tracker", "track", "--camera", str(scene / "camera.yaml"), "--loop", loop,
                   "--poses", str(tmp / ("live_{i}.jsonl" if streams > 1 else "live_0.jsonl")), *extra_args]
            for _ in range(streams):
                cmd += ["--source", url]
            if model:
                cmd += ["--model", model]
            track = subprocess.run(cmd, capture_output=True, text=True, timeout=seconds + 120,
                                   env=dict(os.environ, PYTHONUNBUFFERED="1"))
            if track.returncode != 0:
                raise RuntimeError(f"kptrack track failed ({track.returncode}): {track.stderr[-2000:]}")
            server.wait(timeout=seconds + 30)
        finally:
            if server.poll() is None:
                server.kill()
        clients = json.loads(times.read_text())["clients"] if times.exists() else []
        rows = [read_jsonl(tmp / f"live_{i}.jsonl") for i in range(streams)]
    paced = fps > 0
    per = [stream_figures(r, clients if paced else None, skip_s) for r in rows]
    pooled_lat = [x for r in rows for x in _kept_latencies(r, skip_s)]
    return {"fps": fps, "seconds": seconds, "streams": streams, "loop": loop, "per_stream": per,
            "all": {"frames": len(pooled_lat), "capture_to_result_ms": {"p50": _pct(pooled_lat, 50), "p99": _pct(pooled_lat, 99)},
                    "fps_total": round(sum(p.get("fps") or 0.0 for p in per), 1)},
            "summary": track.stdout.strip()}


def _kept_latencies(rows: list[dict], skip_s: float) -> list[float]:
    if not rows:
        return []
    t0 = rows[0]["timestamp"]
    return [r["timings_ms"]["latency"] for r in rows if r["timestamp"] >= t0 + skip_s and "latency" in r["timings_ms"]]


if __name__ == "__main__":  # a quick look: python -m benchmarks.live_latency SCENE [FPS] [SECONDS]
    logging.basicConfig(level=logging.INFO)
    args = sys.argv[1:]
    t = time.perf_counter()
    doc = run_live(Path(args[0]), fps=float(args[1]) if len(args) > 1 else 30.0, seconds=float(args[2]) if len(args) > 2 else 15.0)
    doc.pop("summary")
    print(json.dumps(doc, indent=1), f"\n{time.perf_counter() - t:.1f} s")
