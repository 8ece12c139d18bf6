"""``kptrack bench``: end-to-end latency and accuracy on a test sequence, with peer baselines in the same run.

On the default synthetic sequence (generated and cached like the demo's) or any BOP scene, it runs:

* kptrack (the tracking loop, :class:`tracker.pipeline.tracker.Tracker`) on CPU, and on CUDA when the CUDA
  provider loads; per frame it times the source read (``cv2.imread`` of the frame), every tracker
  stage (predict, crop, infer, decode, solve, smooth; from ``FrameResult.timings``) and the CAD
  overlay (:func:`tracker.render.draw_overlay`), and reports p50/p90/p99 per stage, over all frames
  and over tracking-mode frames, and frames per second (``1000 / mean`` and ``1000 / median``
  end-to-end ms, display excluded; the median resists other processes on a shared machine, and
  the peer speed ratios use it);
* peak RSS (``resource.getrusage``, after the kptrack runs, before the peers);
* time to first frame: a fresh ``python`` subprocess that imports kptrack, loads the model and the
  object and tracks one frame (numba kernels load from their cache; the cache is warmed by an
  untimed run first), timed from before the interpreter starts;
* the peers of :mod:`benchmarks.peers` on the same frames: (a) the OpenCV-tutorial ORB/FLANN/PnP
  pipeline, (b) kptrack cold-starting every frame, (c) kptrack with argmax decoding; their fps,
  accuracy (ADD(-S) < 0.1 d and 2D projection < 5 px on frames >= 50 % visible, scored by
  :mod:`tracker.eval.evaluate`) and the ratios kptrack / peer.

It writes ``<out>/bench_<time>.json``, one BOP results CSV per pipeline (so ``kptrack eval`` can
replay any of them), and appends a markdown section with the machine's description (CPU model,
cores, RAM, OS, python, onnxruntime version and provider) to ``--results``.
"""

from __future__ import annotations

import dataclasses
import json
import logging
import os
import platform
import subprocess
import sys
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Callable, Sequence

import numpy as np

from tracker.errors import KptrackError

try:
    import resource
except ImportError:  # not on Windows: peak RSS is then not reported
    resource = None  # type: ignore[assignment]

log = logging.getLogger(__name__)

# The targets, for the table's "target" column.
TARGETS = {
    "fps_tracking": 120.0,  # end to end, tracking mode, p50 <= 8 ms
    "p50_ms_tracking": 8.0,
    "speedup_vs_feature_peer": 5.0,
    "decode_us": 20.0,
    "solve_warm_us": 20.0,
    "render_ms": 2.0,
    "first_frame_s": 3.0,
    "cuda_infer_ms": 1.0,
}


@dataclass(frozen=True)
class BenchConfig:
    """Options of ``kptrack bench``.

    frames: frames of the sequence to run (the sequence is generated with at least this many).
    model: ONNX model (default: the shipped models/default/model.onnx). device: auto | cpu | cuda
    (auto: CPU, plus CUDA when it loads). out: folder for JSON and CSVs. results: markdown file to
    append to (None: do not append). peers: run the peer baselines. sequence: a BOP scene folder
    to run on instead of the default synthetic sequence; cache: where that one is cached.
    preset: tracker preset. threads: ONNX Runtime intra-op threads. cold_start: measure time to
    first frame (subprocesses). overlay: time the CAD overlay per frame. object: 'default' or an
    object directory (the sequence's object). command: how it was invoked (for the results table).
    """

    frames: int = 300
    model: str | None = None
    device: str = "auto"
    out: str = "benchmarks/out"
    results: str | None = "benchmarks/RESULTS.md"
    peers: bool = True
    sequence: str | None = None
    cache: str | None = None
    preset: str = "fast"
    threads: int | None = None
    cold_start: bool = True
    cold_start_runs: int = 3
    overlay: bool = True
    object: str = "default"
    command: str = ""


def write_tiny_onnx(path: str | Path, keypoint_names: Sequence[str], *, input_size: int = 256, heatmap_size: int = 64,
                    width: int = 8, seed: int = 0) -> Path:
    """Write a tiny untrained heatmap network as ONNX, carrying kptrack's metadata (tracker.formats.modelmeta).

    Two strided 3x3 convolutions: (N, 3, S, S) float32 -> (N, K, S/4, S/4) float32 in (0, 1) (sigmoid).
    It is a stand-in with the real model's interface and a realistic-but-small cost, for tests and
    benchmarks when no trained model exists; its heatmaps are meaningless. Needs the ``onnx`` package
    (a dev dependency).
    """
    try:
        import onnx
        from onnx import TensorProto, helper, numpy_helper
    except ImportError:
        raise KptrackError("write_tiny_onnx: the 'onnx' package is missing. pip install onnx (or pip install -e '.[dev]').") from None
    from tracker.formats.modelmeta import ModelMeta

    if input_size != 4 * heatmap_size:
        raise KptrackError(f"write_tiny_onnx: input_size {input_size} must be 4 x heatmap_size {heatmap_size}.")
    k = len(keypoint_names)
    rng = np.random.default_rng(seed)
    w1 = (rng.standard_normal((width, 3, 3, 3)) * 0.2).astype(np.float32)
    b1 = np.zeros(width, np.float32)
    w2 = (rng.standard_normal((k, width, 3, 3)) * 0.2).astype(np.float32)
    b2 = np.zeros(k, np.float32)
    conv = dict(kernel_shape=[3, 3], strides=[2, 2], pads=[1, 1, 1, 1])
    nodes = [
        helper.make_node("Conv", ["input", "w1", "b1"], ["c1"], **conv),
        helper.make_node("Relu", ["c1"], ["r1"]),
        helper.make_node("Conv", ["r1", "w2", "b2"], ["c2"], **conv),
        helper.make_node("Sigmoid", ["c2"], ["heatmaps"]),
    ]
    graph = helper.make_graph(
        nodes,
        "kptrack_tiny",
        [helper.make_tensor_value_info("input", TensorProto.FLOAT, ["N", 3, input_size, input_size])],
        [helper.make_tensor_value_info("heatmaps", TensorProto.FLOAT, ["N", k, heatmap_size, heatmap_size])],
        initializer=[numpy_helper.from_array(a, n) for a, n in ((w1, "w1"), (b1, "b1"), (w2, "w2"), (b2, "b2"))],
    )
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 17)], producer_name="kptrack-tiny")
    model.ir_version = 8  # readable by any onnxruntime >= 1.10
    meta = ModelMeta(keypoint_names=tuple(keypoint_names), input_size=input_size, heatmap_size=heatmap_size,
                     object_id="tiny", preset="tiny-untrained")
    helper.set_model_props(model, meta.to_dict())
    onnx.checker.check_model(model)
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    onnx.save(model, str(path))
    return path


def machine_info() -> dict[str, Any]:
    """Describe this machine for the results table: CPU model, cores, RAM, OS, python, onnxruntime."""
    cpu = platform.processor() or platform.machine()
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.lower().startswith("model name"):
                cpu = line.split(":", 1)[1].strip()
                break
    except OSError:
        pass
    ram_gb = None
    try:
        for line in Path("/proc/meminfo").read_text().splitlines():
            if line.startswith("MemTotal:"):
                ram_gb = round(int(line.split()[1]) / 1024**2, 1)
                break
    except OSError:
        pass
    os_name = platform.platform()
    try:
        for line in Path("/etc/os-release").read_text().splitlines():
            if line.startswith("PRETTY_NAME="):
                os_name = line.split("=", 1)[1].strip().strip('"') + f" ({platform.release()})"
                break
    except OSError:
        pass
    try:
        import onnxruntime as ort

        ort_version, providers = ort.__version__, list(ort.get_available_providers())
    except ImportError:
        ort_version, providers = None, []
    cores = len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else os.cpu_count()
    return {
        "cpu": cpu,
        "cores": cores,
        "ram_gb": ram_gb,
        "os": os_name,
        "python": platform.python_version(),
        "onnxruntime": ort_version,
        "ort_providers_available": providers,
        "gpu": _gpu_name(),
        "argv": " ".join(sys.argv),
    }


def _gpu_name() -> str | None:
    try:
        import subprocess

        out = subprocess.run(["nvidia-smi", "--query-gpu=name", "--format=csv,noheader"], capture_output=True, text=True, timeout=10)
        name = out.stdout.strip().splitlines()
        return name[0] if out.returncode == 0 and name else None
    except (OSError, subprocess.SubprocessError):
        return None


def percentiles_ms(seconds: Sequence[float]) -> dict[str, float]:
    """p50/p90/p99/mean in milliseconds of a list of durations in seconds (NaN when empty)."""
    a = np.asarray([s for s in seconds if s is not None and np.isfinite(s)], np.float64) * 1e3
    if a.size == 0:
        return {"p50": float("nan"), "p90": float("nan"), "p99": float("nan"), "mean": float("nan"), "n": 0}
    p50, p90, p99 = np.percentile(a, [50, 90, 99])
    return {"p50": float(p50), "p90": float(p90), "p99": float(p99), "mean": float(a.mean()), "n": int(a.size)}


def _json_default(o):
    if isinstance(o, (np.floating, np.integer)):
        return o.item()
    if isinstance(o, np.ndarray):
        return o.tolist()
    if isinstance(o, Path):
        return str(o)
    raise TypeError(f"not JSON serialisable: {type(o)}")


def dump_json(obj: Any, path: str | Path) -> Path:
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps(obj, indent=2, default=_json_default, allow_nan=True))
    return path


# ============================================================================= sequence
@dataclass
class BenchSequence:
    """A test sequence in memory-light form: frames are read from disk when needed.

    image_paths: N frame files; camera: tracker.camera.Camera of the frames' size; gt: the
    evaluate.SceneGt (R_m2c (N,3,3), t_m2c (N,3) mm, visib_fract (N,), K (N,3,3)).
    """

    scene_dir: Path
    image_paths: list[Path]
    camera: Any
    gt: Any

    def __len__(self) -> int:
        return len(self.image_paths)

    def read(self, i: int) -> np.ndarray:
        import cv2

        img = cv2.imread(str(self.image_paths[i]), cv2.IMREAD_COLOR)
        if img is None:
            raise KptrackError(f"{self.image_paths[i]}: unreadable frame. Re-create the sequence (delete the cache folder).")
        return img


def load_sequence(scene_dir: str | Path, max_frames: int | None = None, obj_id: int = 1) -> BenchSequence:
    """Read a BOP scene (scene_gt.json, scene_camera.json, scene_gt_info.json, rgb/) as a BenchSequence."""
    import cv2

    from tracker.formats import bop
    from tracker.camera import Camera
    from tracker.formats.bop_scene import load_scene_gt

    sd = Path(scene_dir)
    dirs = bop.find_scene_dirs(sd)
    if len(dirs) != 1:
        raise KptrackError(f"{sd}: holds {len(dirs)} scenes; pass one scene folder with --sequence.")
    sd = dirs[0]
    gt = load_scene_gt(sd, obj_id)
    if max_frames is not None and max_frames < len(gt.im_ids):
        n = int(max_frames)
        gt = dataclasses.replace(gt, im_ids=gt.im_ids[:n], K=gt.K[:n], R_m2c=gt.R_m2c[:n], t_m2c=gt.t_m2c[:n],
                                 visib_fract=gt.visib_fract[:n])
    img_dir = sd / "rgb" if (sd / "rgb").is_dir() else sd / "gray"
    names = {p.stem: p for p in img_dir.iterdir()} if img_dir.is_dir() else {}
    paths = []
    for im in gt.im_ids:
        p = names.get(f"{int(im):06d}")
        if p is None:
            raise KptrackError(f"{img_dir}: no image for im_id {int(im)}. The scene is incomplete; re-create it.")
        paths.append(p)
    first = cv2.imread(str(paths[0]), cv2.IMREAD_COLOR)
    if first is None:
        raise KptrackError(f"{paths[0]}: unreadable image. Re-create the sequence.")
    if not np.allclose(gt.K, gt.K[0]):
        raise KptrackError(f"{sd}: the camera matrix changes along the scene; bench needs one camera per sequence.")
    cam = Camera(gt.K[0], None, first.shape[1], first.shape[0])
    if (sd / "camera.yaml").is_file():  # synth writes the calibration beside a sequence
        cam = Camera.from_yaml(sd / "camera.yaml")
        if (cam.width, cam.height) != (first.shape[1], first.shape[0]):
            raise KptrackError(f"{sd / 'camera.yaml'}: {cam.width}x{cam.height} but the frames are "
                               f"{first.shape[1]}x{first.shape[0]}. Re-create the sequence.")
    return BenchSequence(sd, paths, cam, gt)


def default_sequence_dir(frames: int, cache: str | None = None) -> Path:
    """The demo's synthetic test sequence (generated once, then cached), via tracker.pipeline.app."""
    try:
        from tracker.pipeline import app
    except ImportError:
        raise KptrackError("kptrack bench: the default sequence comes from tracker.pipeline.app, which is missing. "
                           "Pass a BOP scene with --sequence.") from None
    return Path(app.ensure_demo_sequence(Path(cache) if cache else app.default_cache_dir(), frames))


# ============================================================================= running
def _rss_mb() -> float | None:
    if resource is None:
        return None
    kb = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    return kb / 1024.0 if sys.platform != "darwin" else kb / 1024.0**2


@dataclass
class PipelineRun:
    """One pipeline's pass over the sequence: poses per frame (None = no pose), timings in ms
    per stage (lists over frames), the mode of each frame ('track' / 'search' / ...)."""

    name: str
    device: str
    poses: list[tuple[np.ndarray, np.ndarray, float] | None]
    timings: dict[str, list[float]]
    modes: list[str]
    wall_s: float
    provider: str = ""
    note: str = ""


def _run_kptrack(name: str, tracker, seq: BenchSequence, n: int, *, overlay: bool = False,
                 renderer=None, device: str = "cpu") -> PipelineRun:
    from tracker.pipeline.tracker import STAGES

    timings: dict[str, list[float]] = {k: [] for k in ("read", *STAGES, "step", "overlay", "end_to_end")}
    poses, modes = [], []
    draw = None
    if overlay:
        from tracker.render import draw_overlay

        draw = draw_overlay
    wall0 = time.perf_counter()
    for i in range(n):
        t0 = time.perf_counter()
        img = seq.read(i)
        t1 = time.perf_counter()
        r = tracker.step(img, i, i / 30.0)
        t2 = time.perf_counter()
        if draw is not None and r.has_pose:
            # as kptrack track/demo draw it: shaded model, keypoints with confidence, axes
            draw(img, tracker.obj, tracker.camera, r.R_m2c, r.t_m2c, renderer=renderer, keypoints_uv=r.uv,
                 confidences=np.clip(r.conf, 0, 1))
        t3 = time.perf_counter()
        timings["read"].append((t1 - t0) * 1e3)
        for k in STAGES:
            timings[k].append(float(r.timings.get(k, 0.0)))
        timings["step"].append((t2 - t1) * 1e3)
        timings["overlay"].append((t3 - t2) * 1e3 if r.has_pose and draw is not None else float("nan"))
        timings["end_to_end"].append((t3 - t0) * 1e3)
        modes.append(r.mode)
        poses.append((r.R_m2c, r.t_m2c, float(r.score)) if r.has_pose else None)
    return PipelineRun(name, device, poses, timings, modes, time.perf_counter() - wall0,
                       provider=str(getattr(tracker.model, "provider", "")))


def _run_feature_peer(seq: BenchSequence, obj, n: int, renderer=None) -> PipelineRun:
    from benchmarks.peers import FeaturePeer

    vis = np.nan_to_num(seq.gt.visib_fract, nan=1.0)
    first = int(np.argmax(vis[:n] >= 0.5)) if np.any(vis[:n] >= 0.5) else 0
    peer = FeaturePeer(obj, seq.camera, renderer=renderer)
    peer.register(seq.gt.R_m2c[first], seq.gt.t_m2c[first], image=seq.read(first))
    timings: dict[str, list[float]] = {"read": [], "step": [], "end_to_end": []}
    poses = []
    wall0 = time.perf_counter()
    for i in range(n):
        t0 = time.perf_counter()
        img = seq.read(i)
        t1 = time.perf_counter()
        p = peer(img)
        t2 = time.perf_counter()
        timings["read"].append((t1 - t0) * 1e3)
        timings["step"].append((t2 - t1) * 1e3)
        timings["end_to_end"].append((t2 - t0) * 1e3)
        poses.append(None if p is None else (p.R_m2c, p.t_m2c, float(p.n_inliers) / max(1, p.n_matches)))
    return PipelineRun("(a) ORB + FLANN LSH + solvePnPRansac (OpenCV tutorial)", "cpu", poses, timings,
                       ["feature"] * n, time.perf_counter() - wall0,
                       note=f"registered on frame {first} at its GT pose, {len(peer.points_model)} model points")


def _accuracy(run: PipelineRun, seq: BenchSequence, obj, n: int) -> dict[str, Any]:
    from tracker.eval.evaluate import EvalConfig, Estimates, evaluate_scene

    gt = seq.gt
    if n < len(gt.im_ids):
        gt = dataclasses.replace(gt, im_ids=gt.im_ids[:n], K=gt.K[:n], R_m2c=gt.R_m2c[:n], t_m2c=gt.t_m2c[:n],
                                 visib_fract=gt.visib_fract[:n])
    R = np.full((n, 3, 3), np.nan)
    t = np.full((n, 3), np.nan)
    score = np.zeros(n)
    for i, p in enumerate(run.poses[:n]):
        if p is not None:
            R[i], t[i], score[i] = p[0], p[1], max(float(p[2]), 1e-6)
    est = Estimates(R, t, score, score > 0, np.full(n, -1.0))
    s = evaluate_scene(obj, gt, est, EvalConfig(poses="", dataset=""))
    a = s["aggregate"]
    r = a["rates"]["visible"]
    return {
        "frames_scored": r["frames"],
        "metric": a["ad_metric"],
        "add_lt_0.1d": r["ad_lt_0.1d"],
        "proj2d_lt_5px": r["proj2d_lt_5px"],
        "5cm5deg": r["5cm5deg"],
        "estimated": r["estimated"],
        "median_rot_deg": a["errors_visible"]["rot_deg"]["median"],
        "median_trans_mm": a["errors_visible"]["trans_mm"]["median"],
        "jitter": a["jitter"],
        "jitter_acceleration": a["jitter_acceleration"],
        "recovery_frames": a["occlusion"]["recovery_frames"],
    }


def _summarise(run: PipelineRun, seq: BenchSequence, obj, n: int) -> dict[str, Any]:
    tracking = [m == "track" for m in run.modes]
    stages = {k: percentiles_ms([x / 1e3 for x in v]) for k, v in run.timings.items()}
    stages_track = {
        k: percentiles_ms([x / 1e3 for x, tr in zip(v, tracking) if tr]) for k, v in run.timings.items()
    } if any(tracking) else {}
    e2e = np.asarray(run.timings["end_to_end"], np.float64)
    step = np.asarray(run.timings["step"], np.float64)
    e2e_tr = e2e[np.asarray(tracking, bool)] if any(tracking) else np.zeros(0)
    return {
        "name": run.name,
        "device": run.device,
        "provider": run.provider,
        "note": run.note,
        "frames": n,
        "tracking_frames": int(sum(tracking)),
        "fps": 1e3 / float(e2e.mean()) if e2e.size else None,
        # the median is robust to other processes stealing the CPU on a shared machine
        "fps_p50": 1e3 / float(np.median(e2e)) if e2e.size else None,
        "fps_step_only": 1e3 / float(step.mean()) if step.size else None,
        "fps_tracking": 1e3 / float(e2e_tr.mean()) if e2e_tr.size else None,
        "fps_tracking_p50": 1e3 / float(np.median(e2e_tr)) if e2e_tr.size else None,
        "wall_fps": n / run.wall_s if run.wall_s > 0 else None,
        "latency_ms": stages,
        "latency_ms_tracking": stages_track,
        "accuracy": _accuracy(run, seq, obj, n),
    }


def _write_csv(run: PipelineRun, seq: BenchSequence, path: Path) -> Path:
    from tracker.formats import bop

    rows = []
    for i, p in enumerate(run.poses):
        if p is None:
            continue
        rows.append(bop.BopResult(seq.gt.scene_id, int(seq.gt.im_ids[i]), 1, max(float(p[2]), 1e-6), p[0], p[1],
                                  run.timings["step"][i] / 1e3))
    return bop.write_results_csv(path, rows)


# ============================================================================= cold start
_COLD_CHILD = r"""
import time, sys, json
t0 = time.perf_counter()
a = json.loads(sys.argv[1])
import numpy as np, cv2
from tracker.camera import Camera
from tracker.pipeline.infer import OnnxHeatmapModel
from tracker.objects import load_object
from tracker.render import Renderer, draw_overlay
from tracker.pipeline.tracker import Tracker, TrackerConfig
t1 = time.perf_counter()
# what `kptrack track` does before its first frame: load, check, warm up
model = OnnxHeatmapModel(a["model"], device=a["device"], threads=a["threads"])
model.warmup(3)
tm = time.perf_counter()
obj = load_object(a["object"])
to = time.perf_counter()
cam = Camera(np.array(a["K"]), None, a["width"], a["height"])
tr = Tracker(model, obj, cam, TrackerConfig.preset(a["preset"]))
if hasattr(tr, "warmup"):
    tr.warmup()
tt = time.perf_counter()
renderer = Renderer(obj)
t2 = time.perf_counter()
img = cv2.imread(a["image"], cv2.IMREAD_COLOR)
r = tr.step(img, 0, 0.0)
if r.has_pose:
    draw_overlay(img, obj, cam, r.R_m2c, r.t_m2c, renderer=renderer, keypoints_uv=r.uv, confidences=np.clip(r.conf, 0, 1))
t3 = time.perf_counter()
print("KPTRACK_COLD " + json.dumps({"import_s": t1 - t0, "load_s": t2 - t1, "first_frame_s": t3 - t2,
      "model_load_warmup_s": tm - t1, "object_load_s": to - tm, "tracker_warmup_s": tt - to, "renderer_s": t2 - tt,
      "in_process_s": t3 - t0, "status": r.status, "mode": r.mode, "provider": str(model.provider)}))
"""


def measure_cold_start(model: str | Path, image: str | Path, camera, *, object: str = "default", device: str = "cpu",
                       preset: str = "fast", threads: int | None = None, runs: int = 3, warm_cache: bool = True) -> dict[str, Any]:
    """Time to first frame of a fresh process: interpreter start, imports (numba kernels load from
    their on-disk cache), model and object load, one tracked frame. ``warm_cache`` runs it once
    untimed first so the numba cache is warm. Returns the median over ``runs`` of the wall time
    (``first_frame_s``) and the child's breakdown."""
    args = json.dumps({"model": str(model), "image": str(image), "device": device, "threads": threads,
                       "object": str(object), "K": np.asarray(camera.K).tolist(), "width": int(camera.width),
                       "height": int(camera.height), "preset": preset})
    cmd = [sys.executable, "-c", _COLD_CHILD, args]
    env = dict(os.environ)
    repo = str(Path(__file__).resolve().parents[1])
    env["PYTHONPATH"] = repo + (os.pathsep + env["PYTHONPATH"] if env.get("PYTHONPATH") else "")

    def once() -> tuple[float, dict]:
        t = time.perf_counter()
        p = subprocess.run(cmd, capture_output=True, text=True, env=env, timeout=300)
        wall = time.perf_counter() - t
        line = next((ln for ln in p.stdout.splitlines() if ln.startswith("KPTRACK_COLD ")), None)
        if p.returncode != 0 or line is None:
            raise KptrackError(f"cold-start run failed (exit {p.returncode}): {p.stderr.strip()[-500:]}")
        return wall, json.loads(line[len("KPTRACK_COLD "):])

    if warm_cache:
        once()
    walls, details = [], []
    for _ in range(max(1, runs)):
        w, d = once()
        walls.append(w)
        details.append(d)
    k = int(np.argsort(walls)[len(walls) // 2])
    return {"first_frame_s": float(walls[k]), "runs_s": walls, "breakdown": details[k], "device": device,
            "numba_cache": "warm" if warm_cache else "as found"}


# ============================================================================= report
def _git_commit() -> str | None:
    try:
        repo = Path(__file__).resolve().parents[1]
        p = subprocess.run(["git", "-C", str(repo), "rev-parse", "--short", "HEAD"], capture_output=True, text=True, timeout=10)
        return p.stdout.strip() or None if p.returncode == 0 else None
    except (OSError, subprocess.SubprocessError):
        return None


def _f(x, fmt="{:.2f}", none="n/a") -> str:
    if x is None or (isinstance(x, float) and not np.isfinite(x)):
        return none
    return fmt.format(x)


def _pct(x) -> str:
    return _f(None if x is None else 100.0 * x, "{:.1f}%")


def format_markdown(doc: dict[str, Any]) -> str:
    """The markdown section ``kptrack bench`` appends to RESULTS.md."""
    m = doc["machine"]
    lines = [
        f"### kptrack bench, {doc['date']} (commit {doc.get('commit') or '?'})",
        "",
        f"Command: `{doc['config'].get('command') or 'kptrack bench'}`  ",
        f"Machine: {m['cpu']}, {m['cores']} cores, {m['ram_gb']} GB RAM, {m['os']}, Python {m['python']}, "
        f"onnxruntime {m['onnxruntime']} (available: {', '.join(m['ort_providers_available'])})"
        + (f", GPU {m['gpu']}" if m.get("gpu") else ", no GPU") + "  ",
        f"Sequence: `{doc['sequence']['scene_dir']}`, {doc['sequence']['frames']} frames "
        f"{doc['sequence']['width']}x{doc['sequence']['height']}; model: `{doc['model']}`; preset {doc['config']['preset']}. "
        "Accuracy on frames >= 50 % visible; fps = 1000 / mean (or median) end-to-end ms: frame read + tracker + overlay, "
        "display excluded; the median resists other processes on a shared machine.",
        "",
        "| pipeline | device (provider) | fps (mean) | fps (p50) | fps (p50), tracking frames | p50 / p90 / p99 ms "
        "| ADD(-S)<0.1d | 2D<5px | kptrack / peer fps, p50 (mean) |",
        "|---|---|---:|---:|---:|---:|---:|---:|---:|",
    ]
    main = doc["kptrack"][0] if doc["kptrack"] else None
    for r in doc["kptrack"] + doc.get("peers", []):
        e = r["latency_ms"]["end_to_end"]
        ratio = ""
        if main is not None and r is not main and r in doc.get("peers", []) and r["fps"]:
            ratio = _f(main["fps_p50"] / r["fps_p50"], "{:.2f}x") + " (" + _f(main["fps"] / r["fps"], "{:.2f}x") + ")"
        lines.append(
            f"| {r['name']} | {r['device']} ({r['provider'] or '-'}) | {_f(r['fps'], '{:.1f}')} | {_f(r['fps_p50'], '{:.1f}')} | "
            f"{_f(r['fps_tracking_p50'], '{:.1f}')} | "
            f"{_f(e['p50'])} / {_f(e['p90'])} / {_f(e['p99'])} | {_pct(r['accuracy']['add_lt_0.1d'])} | "
            f"{_pct(r['accuracy']['proj2d_lt_5px'])} | {ratio} |"
        )
    for r in doc["kptrack"]:
        st = r["latency_ms_tracking"] or r["latency_ms"]
        which = "tracking-mode frames" if r["latency_ms_tracking"] else "all frames (no tracking-mode frame)"
        lines += ["", f"Per-stage latency, {r['name']} on {r['device']}, {which} (ms):", "",
                  "| stage | p50 | p90 | p99 | mean |", "|---|---:|---:|---:|---:|"]
        for k in ("read", "predict", "crop", "infer", "decode", "solve", "smooth", "step", "overlay", "end_to_end"):
            if k in st and st[k]["n"]:
                v = st[k]
                lines.append(f"| {k} | {_f(v['p50'], '{:.3f}')} | {_f(v['p90'], '{:.3f}')} | {_f(v['p99'], '{:.3f}')} | {_f(v['mean'], '{:.3f}')} |")
    lines += ["", "| measure | value | target | met |", "|---|---:|---:|---|"]
    for t in doc.get("targets", []):
        lines.append(f"| {t['what']} | {t['value']} | {t['target']} | {t['met']} |")
    cs = doc.get("cold_start") or {}
    for dev, c in cs.items():
        if isinstance(c, dict) and "breakdown" in c:
            b = c["breakdown"]
            lines.append("")
            lines.append(f"Time to first frame ({dev}, numba cache {c['numba_cache']}): {c['first_frame_s']:.2f} s wall "
                         f"(imports {b['import_s']:.2f} s; load {b['load_s']:.2f} s = model + warm-up {b.get('model_load_warmup_s', 0):.2f}, "
                         f"object {b.get('object_load_s', 0):.2f}, tracker + numba warm-up {b.get('tracker_warmup_s', 0):.2f}, "
                         f"renderer {b.get('renderer_s', 0):.2f}; first frame {b['first_frame_s']:.3f} s; "
                         f"runs {', '.join(f'{x:.2f}' for x in c['runs_s'])} s).")
        elif isinstance(c, dict) and "error" in c:
            lines.append(f"\nTime to first frame ({dev}): not measured ({c['error']}).")
    lines.append(f"Peak RSS after the kptrack runs: {_f(doc.get('peak_rss_mb'), '{:.0f}')} MB.")
    for note in doc.get("notes", []):
        lines.append(f"Note: {note}")
    return "\n".join(lines) + "\n"


def _targets(doc: dict[str, Any]) -> list[dict[str, str]]:
    out = []

    def row(what, value, target, ok, unit="", higher_is_better=False):
        val = "n/a" if value is None else f"{value:.3g}{unit}"
        if value is None:
            met = "not measured"
        elif ok:
            met = "yes"
        elif higher_is_better:
            met = f"no ({100.0 * value / target:.0f}% of the target)"
        else:
            met = f"no ({value / target:.2f}x the target)"
        bound = ">= " if higher_is_better else "<= "
        out.append({"what": what, "value": val, "target": f"{bound}{target:g}{unit}", "met": met})

    for r in doc["kptrack"]:
        dev = r["device"]
        st = r["latency_ms_tracking"] or {}
        e2e = st.get("end_to_end", {}).get("p50")
        row(f"end-to-end p50, tracking frames, {dev}", e2e, TARGETS["p50_ms_tracking"], e2e is not None and e2e <= 8.0, " ms")
        dec = st.get("decode", {}).get("p50")
        row(f"decode stage p50 ({dev}; includes mapping to frame px)", None if dec is None else dec * 1e3, TARGETS["decode_us"],
            dec is not None and dec * 1e3 <= 20.0, " us")
        sol = st.get("solve", {}).get("p50")
        row(f"solve stage p50, warm ({dev}; includes undistort + checks)", None if sol is None else sol * 1e3,
            TARGETS["solve_warm_us"], sol is not None and sol * 1e3 <= 20.0, " us")
        ov = st.get("overlay", {}).get("p50")
        row(f"overlay render p50 ({dev})", ov, TARGETS["render_ms"], ov is not None and ov <= 2.0, " ms")
        if dev == "cuda":
            inf = st.get("infer", {}).get("p50")
            row("inference p50 on CUDA, batch 1", inf, TARGETS["cuda_infer_ms"], inf is not None and inf <= 1.0, " ms")
    main = doc["kptrack"][0] if doc["kptrack"] else None
    feat = next((p for p in doc.get("peers", []) if p["name"].startswith("(a)")), None)
    if main and feat and feat["fps_p50"]:
        sp = main["fps_p50"] / feat["fps_p50"]
        acc_ok = (main["accuracy"]["add_lt_0.1d"] or 0) >= (feat["accuracy"]["add_lt_0.1d"] or 0)
        what = "kptrack fps / feature-pipeline fps (p50)" + ("" if acc_ok else " (accuracy BELOW the peer's)")
        row(what, sp, TARGETS["speedup_vs_feature_peer"], sp >= 5.0 and acc_ok, "x", higher_is_better=True)
    for dev, c in (doc.get("cold_start") or {}).items():
        if isinstance(c, dict) and "first_frame_s" in c:
            row(f"time to first frame, {dev} (numba cache warm)", c["first_frame_s"], TARGETS["first_frame_s"],
                c["first_frame_s"] <= 3.0, " s")
    return out


# ============================================================================= entry points
def _devices(device: str) -> list[str]:
    if device in ("cpu", "cuda"):
        return [device]
    if device != "auto":
        raise KptrackError(f"--device {device}: unknown device. Use auto, cpu or cuda.")
    from tracker.pipeline.infer import CUDA, _ort, nvidia_driver_present

    ort = _ort()
    return ["cpu", "cuda"] if CUDA in ort.get_available_providers() and nvidia_driver_present() else ["cpu"]


def _default_model() -> Path:
    try:
        from tracker.pipeline.app import default_model_path

        return default_model_path()
    except ImportError:
        return Path(__file__).resolve().parents[1] / "models" / "default" / "model.onnx"


def run_bench(cfg: BenchConfig, *, backend_factory: Callable[[str, BenchSequence], Any] | None = None) -> dict[str, Any]:
    """Run the benchmark (see the module docstring). Returns the JSON document (also written to
    ``cfg.out``). ``backend_factory(device, sequence) -> heatmap backend`` replaces the ONNX model
    (tests use an oracle); cold start then still needs ``cfg.model``."""
    from tracker.objects import load_object
    from tracker.render import Renderer
    from tracker.pipeline.tracker import Tracker, TrackerConfig

    if cfg.frames < 1:
        raise KptrackError(f"--frames {cfg.frames}: must be >= 1.")
    seq_dir = Path(cfg.sequence) if cfg.sequence else default_sequence_dir(cfg.frames, cfg.cache)
    seq = load_sequence(seq_dir, cfg.frames)
    n = len(seq)
    if n < cfg.frames:
        log.warning("%s has %d frames; running on those (asked for %d)", seq.scene_dir, n, cfg.frames)
    obj = load_object(cfg.object)
    model_path = Path(cfg.model) if cfg.model else _default_model()
    if backend_factory is None and not model_path.is_file():
        raise KptrackError(f"{model_path}: model not found. Pass --model M.onnx (train and export one with "
                           "`kptrack train` and `kptrack export`).")
    tcfg = TrackerConfig.preset(cfg.preset)
    renderer = Renderer(obj)
    notes: list[str] = []

    def make_backend(device: str):
        if backend_factory is not None:
            return backend_factory(device, seq)
        from tracker.pipeline.infer import OnnxHeatmapModel

        m = OnnxHeatmapModel(model_path, device=device, threads=cfg.threads)
        m.warmup(10)
        return m

    def warm_run(tracker_factory):
        # numba kernels (decode, solve, render) load or compile outside the timed pass
        tr = tracker_factory()
        _run_kptrack("warmup", tr, seq, min(n, 3), overlay=cfg.overlay, renderer=renderer)

    kp_runs: list[PipelineRun] = []
    devices = _devices(cfg.device)
    backends = {}
    for dev in devices:
        try:
            backends[dev] = make_backend(dev)
        except KptrackError as e:
            if cfg.device == "auto" and dev == "cuda":
                notes.append(f"CUDA not measured: {e}")
                continue
            raise
    for dev, be in backends.items():
        factory = lambda be=be: Tracker(be, obj, seq.camera, tcfg)  # noqa: E731
        warm_run(factory)
        log.info("bench: kptrack on %s (%s), %d frames", dev, getattr(be, "provider", "?"), n)
        kp_runs.append(_run_kptrack("kptrack", factory(), seq, n, overlay=cfg.overlay, renderer=renderer, device=dev))
    peak_rss = _rss_mb()

    peer_runs: list[PipelineRun] = []
    if cfg.peers:
        from benchmarks.peers import ColdStartTracker, make_argmax_tracker

        dev = "cpu" if "cpu" in backends else next(iter(backends))
        be = backends[dev]
        log.info("bench: peer (a) feature pipeline")
        peer_runs.append(_run_feature_peer(seq, obj, n, renderer))
        log.info("bench: peer (b) kptrack cold every frame")
        peer_runs.append(dataclasses.replace(
            _run_kptrack("", ColdStartTracker(be, obj, seq.camera, tcfg), seq, n, overlay=cfg.overlay, renderer=renderer,
                         device=dev),
            name="(b) kptrack, cold start every frame (no warm start, no ROI tracking)"))
        log.info("bench: peer (c) kptrack with argmax decoding")
        peer_runs.append(dataclasses.replace(
            _run_kptrack("", make_argmax_tracker(be, obj, seq.camera, tcfg), seq, n, overlay=cfg.overlay,
                         renderer=renderer, device=dev),
            name="(c) kptrack, plain argmax decoding"))

    cold: dict[str, Any] = {}
    if cfg.cold_start:
        for dev in backends:
            if not model_path.is_file():
                cold[dev] = {"error": f"no ONNX model at {model_path}"}
                continue
            try:
                cold[dev] = measure_cold_start(model_path, seq.image_paths[0], seq.camera, object=cfg.object, device=dev,
                                               preset=cfg.preset,
                                               threads=cfg.threads, runs=cfg.cold_start_runs)
            except (KptrackError, subprocess.SubprocessError) as e:
                cold[dev] = {"error": str(e)}

    doc: dict[str, Any] = {
        "date": time.strftime("%Y-%m-%d %H:%M:%S"),
        "commit": _git_commit(),
        "machine": machine_info(),
        "config": dataclasses.asdict(cfg),
        "model": "oracle backend (test)" if backend_factory is not None else str(model_path),
        "sequence": {"scene_dir": str(seq.scene_dir), "frames": n, "width": seq.camera.width, "height": seq.camera.height},
        "kptrack": [_summarise(r, seq, obj, n) for r in kp_runs],
        "peers": [_summarise(r, seq, obj, n) for r in peer_runs],
        "peak_rss_mb": peak_rss,
        "cold_start": cold,
        "notes": notes,
    }
    main = doc["kptrack"][0] if doc["kptrack"] else None
    if main:
        for p in doc["peers"]:
            p["ratio_fps_kptrack_over_peer"] = main["fps"] / p["fps"] if p["fps"] else None
            p["ratio_fps_p50_kptrack_over_peer"] = main["fps_p50"] / p["fps_p50"] if p["fps_p50"] else None
            p["delta_add_kptrack_minus_peer"] = (
                None if p["accuracy"]["add_lt_0.1d"] is None or main["accuracy"]["add_lt_0.1d"] is None
                else main["accuracy"]["add_lt_0.1d"] - p["accuracy"]["add_lt_0.1d"])
    doc["targets"] = _targets(doc)

    out = Path(cfg.out)
    stamp = time.strftime("%Y%m%d-%H%M%S")
    try:
        out.mkdir(parents=True, exist_ok=True)
    except OSError as e:
        raise KptrackError(f"{out}: cannot create the --out folder ({e.strerror}). Choose a writable folder.") from None
    csvs = {}
    for r in kp_runs + peer_runs:
        tag = (r.name.split(")")[0].strip("(") if r.name.startswith("(") else f"kptrack_{r.device}")
        csvs[r.name + (f" [{r.device}]" if not r.name.startswith("(") else "")] = str(_write_csv(r, seq, out / f"poses_{tag}.csv"))
    doc["poses_csv"] = csvs
    json_path = dump_json(doc, out / f"bench_{stamp}.json")
    doc["json"] = str(json_path)
    if cfg.results:
        res = Path(cfg.results)
        try:
            res.parent.mkdir(parents=True, exist_ok=True)
            new = not res.exists() or res.stat().st_size == 0
            with open(res, "a", encoding="utf-8") as f:
                if new:
                    f.write("# kptrack benchmark results\n\n")
                f.write("\n" + format_markdown(doc))
        except OSError as e:
            raise KptrackError(f"{res}: cannot append the results table ({e.strerror}). Choose a writable --results file.") from None
        doc["results_md"] = str(res)
    return doc


def run_bench_from_args(args) -> int:
    cmd = "kptrack " + " ".join(sys.argv[1:]) if sys.argv and sys.argv[0].endswith("kptrack") else "kptrack bench"
    cfg = BenchConfig(frames=args.frames, model=args.model, device=args.device, out=args.out, results=args.results,
                      peers=not args.no_peers, sequence=getattr(args, "sequence", None), cache=getattr(args, "cache", None),
                      threads=getattr(args, "threads", None), preset=getattr(args, "preset", "fast"),
                      cold_start=not getattr(args, "no_cold_start", False), object=getattr(args, "object", "default"),
                      command=cmd)
    doc = run_bench(cfg)
    print(format_markdown(doc))
    print(f"wrote {doc['json']}" + (f" and appended to {doc['results_md']}" if doc.get("results_md") else ""))
    return 0
