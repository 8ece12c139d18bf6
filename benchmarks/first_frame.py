"""One fresh process's time to first frame: ``python -m benchmarks.first_frame '<json>'``.

:func:`benchmarks.cold_start.measure_cold_start` runs this module in a new interpreter and times
it from outside. Inside, it does what ``kptrack track`` does before and on its first frame, with
the same pipeline objects: import kptrack, load and warm up the ONNX model
(:class:`~tracker.pipeline.infer.OnnxHeatmapModel`), load the object, build the
:class:`~tracker.pipeline.tracker.Tracker` and warm it up (numba kernels load from their on-disk
cache), build the :class:`~tracker.pipeline.draw.FrameDrawer` (renderer and its warm-up), then read
one frame, track it and draw it. It prints one line, ``KPTRACK_COLD {json}``, with the breakdown
in seconds: import_s, load_s (= model_load_warmup_s + object_load_s + tracker_warmup_s +
renderer_s), first_frame_s, in_process_s, the frame's status, mode and the provider, and what numba
compiled on the way (compile_s: seconds, None when every kernel loaded from the cache; kernels:
how many specialisations), and cpu_s, the process's CPU time to that point (on a shared machine
the wall times swell with the load; the CPU time much less). As in ``kptrack track``, the compilation is announced on stderr
(:func:`tracker.pipeline.warmup.announce_compilation`).

The argument is a JSON object: model (path), image (path), device, threads (or null), object
('default' or an object directory), K (3x3 list), dist (list, may be empty), width, height, preset.
"""

from __future__ import annotations

import time

# Taken before the imports below: their cost is part of what this process measures.
T_START = time.perf_counter()

import json  # noqa: E402
import logging  # noqa: E402
import sys  # noqa: E402
from typing import Any  # noqa: E402

import cv2  # noqa: E402
import numpy as np  # noqa: E402

from tracker.camera import Camera  # noqa: E402
from tracker.objects import load_object  # noqa: E402
from tracker.pipeline.config import TrackerConfig  # noqa: E402
from tracker.pipeline.draw import FrameDrawer  # noqa: E402
from tracker.pipeline.infer import OnnxHeatmapModel  # noqa: E402
from tracker.pipeline.tracker import Tracker  # noqa: E402
from tracker.pipeline.warmup import announce_compilation  # noqa: E402

T_IMPORTED = time.perf_counter()
MARKER = "KPTRACK_COLD "


def first_frame(a: dict[str, Any]) -> dict[str, Any]:
    """Load everything ``a`` names, track and draw its one image; the breakdown (see the module docstring)."""
    t1 = time.perf_counter()
    with announce_compilation() as compiled:
        model = OnnxHeatmapModel(a["model"], device=a["device"], threads=a["threads"])
        model.warmup(3)
        tm = time.perf_counter()
        obj = load_object(a["object"])
        to = time.perf_counter()
        cam = Camera(np.array(a["K"]), np.array(a.get("dist") or []), a["width"], a["height"])
        config = TrackerConfig.preset(a["preset"])
        tracker = Tracker(model, obj, cam, config)
        tracker.warmup()
        tt = time.perf_counter()
        drawer = FrameDrawer(obj, cam, provider=tracker.provider, preset=config.name)
        t2 = time.perf_counter()
        img = cv2.imread(a["image"], cv2.IMREAD_COLOR)
        r = tracker.step(img, 0, 0.0)
        drawer(img, r, float("nan"))
        t3 = time.perf_counter()
    return {"compile_s": compiled.seconds, "kernels": compiled.kernels, "cpu_s": time.process_time(), "import_s": T_IMPORTED - T_START, "load_s": t2 - t1, "first_frame_s": t3 - t2,
            "model_load_warmup_s": tm - t1, "object_load_s": to - tm, "tracker_warmup_s": tt - to, "renderer_s": t2 - tt,
            "in_process_s": t3 - T_START, "status": r.status, "mode": r.mode, "provider": str(model.provider)}


def main(argv: list[str] | None = None) -> int:
    argv = sys.argv[1:] if argv is None else argv
    logging.basicConfig(level=logging.WARNING, format="%(levelname)s %(name)s: %(message)s")
    logging.getLogger("tracker.pipeline.warmup").setLevel(logging.INFO)  # the compile message, as `kptrack track` shows it
    if len(argv) != 1:
        print("usage: python -m benchmarks.first_frame '<json>' (see the module docstring)", file=sys.stderr)
        return 2
    print(MARKER + json.dumps(first_frame(json.loads(argv[0]))), flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
