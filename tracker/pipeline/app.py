"""``kptrack track`` and ``kptrack demo``: the frame loop wired to sources, tracker and sinks.

:func:`run_track_from_args` opens the model (:mod:`tracker.pipeline.infer`), the object, the source
(:mod:`tracker.pipeline.source`) and the camera, builds a :class:`tracker.pipeline.tracker.Tracker`, and runs
:func:`run_loop`: per frame, track, draw the projected CAD model and a HUD (fps, per-stage
latency, provider, state), and hand the frame to the sinks (:mod:`tracker.pipeline.sinks`). Ctrl-C and
SIGTERM stop the loop cleanly (sinks closed, summary printed, exit status 130); a kill leaves
flushed poses and a playable AVI.

Camera: ``--camera CAM.yaml`` (OpenCV FileStorage, from ``kptrack calibrate``), or
``--camera fov:DEG`` for a rough pinhole guess from a horizontal field of view, or nothing for a
video/folder that has a ``camera.yaml`` beside it (as ``kptrack synth --sequence`` writes). A
webcam without one is refused with the way to calibrate. A calibration for another resolution
of the same aspect ratio is rescaled (logged); another aspect ratio is an error.

:func:`run_demo_from_args` runs the same loop on the built-in default object's synthetic test
sequence (rendered once by ``train.synth`` and cached) with the shipped model, then prints
accuracy over the frames where the object is >= 50 % visible (ADD(-S) < 0.1 d, 2D projection
< 5 px; :mod:`tracker.eval.metrics`) and the end-to-end frame rate: reading, tracking, and drawing
the overlay and HUD, everything but showing the window.
"""

from __future__ import annotations

import contextlib
import logging
import math
import os
import signal
import threading
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Callable

import cv2
import numpy as np

from tracker.camera import Camera
from tracker.errors import KptrackError
from tracker.pipeline.source import FrameSource, open_image_folder, open_source
from tracker.pipeline.tracker import LOST, SEARCHING, STAGES, TRACKING, FrameResult, Tracker, TrackerConfig, check_model_matches_object

log = logging.getLogger(__name__)

REPO_ROOT = Path(__file__).resolve().parents[2]
DEFAULT_MODEL = Path("models") / "default" / "model.onnx"
DEMO_SEED = 1
DEMO_SIZE = (640, 480)
TARGET_ADD = 0.90
TARGET_PROJ = 0.95


# ----------------------------------------------------------------------------- camera
def _is_live(spec: str) -> bool:
    s = str(spec).strip()
    return s.isdigit() or "://" in s or s.startswith("/dev/video")


def _camera_beside(source_spec: str) -> Path | None:
    """camera.yaml next to a video, inside a frame folder, or beside that folder (BOP scene/rgb)."""
    p = Path(source_spec).expanduser()
    cands = [p / "camera.yaml", p.parent / "camera.yaml"] if p.is_dir() else [p.parent / "camera.yaml"]
    return next((c for c in cands if c.is_file()), None)


def resolve_camera(spec: str | None, source_spec: str, width: int, height: int) -> Camera:
    """The camera for frames of ``width x height`` from ``--camera`` (see the module docstring)."""
    if spec is not None and str(spec).startswith("fov:"):
        try:
            fov = float(str(spec)[4:])
            cam = Camera.from_fov(fov, width, height)
        except ValueError:
            raise KptrackError(f"--camera {spec}: give a horizontal field of view in degrees, e.g. --camera fov:60.") from None
        log.warning("camera guessed from a %.1f deg field of view: depth will be off by the focal length's error. "
                    "Calibrate with `kptrack calibrate` for real poses.", fov)
        return cam
    if spec is None:
        found = None if _is_live(source_spec) else _camera_beside(source_spec)
        if found is None:
            what = "a camera" if _is_live(source_spec) else "this video"
            raise KptrackError(
                f"--camera: {what} needs its calibration. Print a chessboard (9x6 inner corners), film it from "
                f"several angles and run `kptrack calibrate --source {source_spec} --out cam.yaml`, then pass "
                "--camera cam.yaml. For a rough first try, --camera fov:60 guesses a 60 degree field of view."
            )
        log.info("using the camera calibration %s found beside the source", found)
        spec = str(found)
    cam = Camera.from_yaml(spec)
    if (cam.width, cam.height) != (width, height):
        if abs(cam.width / cam.height - width / height) > 0.01:
            raise KptrackError(
                f"--camera {spec}: calibrated for {cam.width}x{cam.height} but the source gives {width}x{height}, another "
                "aspect ratio. Calibrate the camera at this resolution with `kptrack calibrate`."
            )
        log.warning("camera %s is for %dx%d; rescaled to the source's %dx%d", spec, cam.width, cam.height, width, height)
        cam = cam.resized(width, height)
    return cam


# ----------------------------------------------------------------------------- loop
@dataclass
class LoopStats:
    """What a run did. fps: frames / processing seconds (display and pauses excluded)."""

    frames: int = 0
    by_status: dict[str, int] = field(default_factory=lambda: {TRACKING: 0, LOST: 0, SEARCHING: 0})
    errors: int = 0
    wall_s: float = 0.0
    display_s: float = 0.0
    stage_ms: dict[str, float] = field(default_factory=dict)  # sums
    interrupted: bool = False
    stopped_by_user: bool = False
    provider: str = ""

    @property
    def fps(self) -> float:
        busy = self.wall_s - self.display_s
        return self.frames / busy if busy > 0 and self.frames else float("nan")

    def mean_ms(self) -> dict[str, float]:
        return {k: v / self.frames for k, v in self.stage_ms.items()} if self.frames else {}


def hud_lines(result: FrameResult, fps: float, provider: str, preset: str, k: int) -> list[str]:
    t = result.timings
    rms = f"{result.rms:.1f}px" if math.isfinite(result.rms) else "-"
    return [
        f"{fps:5.1f} fps  {provider.replace('ExecutionProvider', '')}  preset {preset}",
        f"{result.status} ({result.mode})  score {result.score:.2f}  inliers {result.n_inliers}/{k}  rms {rms}",
        "ms: " + " ".join(f"{s} {t.get(s, 0.0):.1f}" for s in ("crop", "infer", "decode", "solve", "render")) + f"  total {t.get('total', 0.0):.1f}",
    ]


def _draw_keypoints(img: np.ndarray, uv: np.ndarray, conf: np.ndarray) -> None:
    for (u, v), c in zip(uv, conf):
        if np.isfinite(u) and np.isfinite(v) and c > 0:
            cv2.circle(img, (int(round(u)), int(round(v))), 3, (0, 0, 255), 1, cv2.LINE_AA)


def run_loop(
    source: FrameSource,
    tracker: Tracker,
    *,
    video=None,
    poses=None,
    jsonl=None,
    window=None,
    renderer=None,
    overlay_mode: str = "shaded",
    max_frames: int | None = None,
    on_result: Callable[[FrameResult], None] | None = None,
    draw: bool | None = None,
) -> LoopStats:
    """Track every frame of ``source`` and feed the sinks (each optional). Returns LoopStats.

    draw: render the overlay and HUD (default: when there is a video or a window; the demo
    draws always, so its frame rate includes what a user watching would pay, display aside).

    Ctrl-C (KeyboardInterrupt) ends the loop with ``stats.interrupted``; sinks are NOT closed
    here (the caller owns them). A frame the tracker fails on is counted (tracker.errors).
    """
    from tracker.render import draw_hud, draw_overlay

    stats = LoopStats(provider=tracker.provider)
    stats.stage_ms = {k: 0.0 for k in (*STAGES, "total", "render", "write")}
    if draw is None:
        draw = video is not None or window is not None
    if not draw and (video is not None or window is not None):
        raise ValueError("run_loop: a video or window sink needs draw=True (they show the annotated frame)")
    k = len(tracker.keypoints)
    hud_scale = 0.5 * min(1.0, tracker.camera.width / 640.0)  # the HUD fits small frames too
    fps_ema = float("nan")
    t_start = time.perf_counter()
    t_prev = t_start
    try:
        for frame in source:
            if max_frames is not None and stats.frames >= max_frames:
                break
            r = tracker.step(frame.image, frame.index, frame.timestamp)
            t0 = time.perf_counter()
            if draw:
                img = frame.image.copy()
                if r.has_pose:
                    draw_overlay(img, tracker.obj, tracker.camera, r.R_m2c, r.t_m2c, renderer=renderer, mode=overlay_mode,
                                 keypoints_uv=r.uv, confidences=np.clip(r.conf, 0, 1))
                else:
                    _draw_keypoints(img, r.uv, r.conf)
                draw_hud(img, hud_lines(r, fps_ema, tracker.provider, tracker.config.name, k), scale=hud_scale)
            t1 = time.perf_counter()
            r.timings["render"] = (t1 - t0) * 1e3
            if video is not None:
                video.write(img)
            if poses is not None:
                poses.write(r)
            if jsonl is not None:
                jsonl.write(r, extra={"fps": None if math.isnan(fps_ema) else round(fps_ema, 2)})
            t2 = time.perf_counter()
            r.timings["write"] = (t2 - t1) * 1e3
            stats.frames += 1
            stats.by_status[r.status] = stats.by_status.get(r.status, 0) + 1
            for s, v in r.timings.items():
                stats.stage_ms[s] = stats.stage_ms.get(s, 0.0) + v
            if on_result is not None:
                on_result(r)
            if window is not None:
                before = window.paused_s
                cmd = window.show(img)
                stats.display_s += window.paused_s - before
                if cmd == "quit":
                    stats.stopped_by_user = True
                    break
                if cmd == "reset":
                    log.info("tracker reset by the user at frame %d", frame.index)
                    tracker.reset()
            now = time.perf_counter()
            busy = now - t_prev - (window.paused_s - before if window is not None else 0.0)
            t_prev = now
            if busy > 0:
                fps_ema = 1.0 / busy if math.isnan(fps_ema) else 0.9 * fps_ema + 0.1 / busy
    except KeyboardInterrupt:
        stats.interrupted = True
        log.warning("interrupted after %d frames; closing outputs", stats.frames)
    stats.wall_s = time.perf_counter() - t_start
    stats.errors = tracker.errors
    return stats


@contextlib.contextmanager
def sigterm_as_interrupt():
    """Within the block, SIGTERM raises KeyboardInterrupt (main thread only), so outputs close cleanly."""
    if threading.current_thread() is not threading.main_thread():
        yield
        return

    def handler(signum, frame):
        raise KeyboardInterrupt

    old = signal.signal(signal.SIGTERM, handler)
    try:
        yield
    finally:
        signal.signal(signal.SIGTERM, old)


def format_summary(stats: LoopStats, source: FrameSource | None = None) -> str:
    n = max(stats.frames, 1)
    ms = stats.mean_ms()
    lines = [
        f"frames {stats.frames}: tracking {stats.by_status.get(TRACKING, 0)} ({100.0 * stats.by_status.get(TRACKING, 0) / n:.1f} %), "
        f"lost {stats.by_status.get(LOST, 0)}, searching {stats.by_status.get(SEARCHING, 0)}, failed frames {stats.errors}",
        f"speed: {stats.fps:.1f} fps end-to-end (excluding display) on {stats.provider}; mean ms per frame: "
        + ", ".join(f"{s} {ms.get(s, 0.0):.2f}" for s in ("crop", "infer", "decode", "solve", "smooth", "render", "write", "total")),
    ]
    if source is not None:
        s = source.stats
        extra = [f"{name} {v}" for name, v in (("dropped (live, stale)", s.dropped), ("skipped (size changed)", s.size_skipped),
                                                ("unreadable", s.unreadable)) if v]
        if extra:
            lines.append("source: " + ", ".join(extra))
    if stats.interrupted:
        lines.append("interrupted: outputs hold every frame up to here")
    return "\n".join(lines)


# ----------------------------------------------------------------------------- track
def make_renderer(obj, camera: Camera):
    """A Renderer for the overlay, warmed up (numba load) on one blank frame so frame 0 is not slow."""
    from tracker.render import Renderer, draw_overlay

    r = Renderer(obj)
    z = 3.0 * max(float(obj.diameter), 1.0) * camera.fx / max(camera.width, 1)
    draw_overlay(np.zeros((camera.height, camera.width, 3), np.uint8), obj, camera, np.eye(3), np.array([0.0, 0.0, z]), renderer=r)
    return r


def _open_model(path: str | Path, device: str, threads: int | None):
    from tracker.pipeline.infer import OnnxHeatmapModel

    return OnnxHeatmapModel(path, device=device, threads=threads)


def _pose_paths(poses: str | None) -> tuple[Path | None, Path | None]:
    """--poses X.csv -> (X.csv, X.jsonl); --poses X.jsonl -> (None, X.jsonl)."""
    if not poses:
        return None, None
    p = Path(poses)
    if p.suffix.lower() == ".jsonl":
        return None, p
    return p, p.with_suffix(".jsonl")


def _config_from_args(args) -> TrackerConfig:
    """--preset (default fast) and --no-smoothing, shared by track and demo."""
    overrides = {"smoothing": False} if getattr(args, "no_smoothing", False) else {}
    return TrackerConfig.preset(getattr(args, "preset", "fast") or "fast", **overrides)


def run_track_from_args(args) -> int:
    """``kptrack track``: see the module docstring. Returns the exit status."""
    from tracker.objects import load_object
    from tracker.pipeline.sinks import JsonlSink, PoseCsvSink, VideoSink, WindowSink

    config = _config_from_args(args)
    if args.max_frames is not None and args.max_frames < 1:
        raise KptrackError(f"--max-frames {args.max_frames}: must be >= 1.")
    # Cheap checks and output paths first, so a typo fails before a model loads or a camera opens.
    csv_path, jsonl_path = _pose_paths(args.poses)
    video = VideoSink(args.out) if args.out else None
    window = WindowSink("kptrack") if args.show else None
    model = _open_model(args.model, args.device, args.threads)
    obj = load_object(args.object)
    check_model_matches_object(model.meta, obj, str(args.model))
    source = open_source(args.source)
    sinks: list = [s for s in (video, window) if s is not None]
    try:
        camera = resolve_camera(args.camera, str(args.source), source.width, source.height)
        if video is not None and source.fps:
            video.fps = source.fps
        poses = PoseCsvSink(csv_path) if csv_path else None
        jsonl = JsonlSink(jsonl_path) if jsonl_path else None
        sinks += [s for s in (poses, jsonl) if s is not None]
        tracker = Tracker(model, obj, camera, config)
        model.warmup(3)
        tracker.warmup()
        renderer = make_renderer(obj, camera) if (video is not None or window is not None) else None
        log.info("tracking %s with %s on %s (%s preset)", source, Path(args.model).name, model.provider, config.name)
        with sigterm_as_interrupt():
            stats = run_loop(source, tracker, video=video, poses=poses, jsonl=jsonl, window=window, renderer=renderer,
                             max_frames=args.max_frames)
    finally:
        with sigterm_as_interrupt():  # a second signal must not cut the closing short
            for s in sinks:
                s.close()
            source.close()
    print(format_summary(stats, source))
    for what, p in (("annotated video", args.out), ("poses (BOP CSV)", csv_path), ("per-frame log (JSONL)", jsonl_path)):
        if p:
            print(f"{what}: {p}")
    return 130 if stats.interrupted else 0


# ----------------------------------------------------------------------------- demo
def default_model_path() -> Path:
    """models/default/model.onnx of the checkout (or of the current folder)."""
    for base in (REPO_ROOT, Path.cwd()):
        if (base / DEFAULT_MODEL).is_file():
            return base / DEFAULT_MODEL
    return REPO_ROOT / DEFAULT_MODEL


def default_cache_dir() -> Path:
    base = os.environ.get("XDG_CACHE_HOME") or str(Path.home() / ".cache")
    return Path(base) / "kptrack"


def ensure_demo_sequence(cache: Path, frames: int, seed: int = DEMO_SEED, size: tuple[int, int] = DEMO_SIZE) -> Path:
    """The demo's synthetic sequence folder (BOP scene), rendered on first use and cached.

    A sequence is complete when its ``sequence_info.json`` exists (train.synth writes it last),
    so an interrupted render is redone, not reused.
    """
    root = Path(cache) / f"demo_default_{frames}f_seed{seed}_{size[0]}x{size[1]}"
    scene = root / "test_seq" / "000000"
    if (scene / "sequence_info.json").is_file():
        log.info("using the cached demo sequence %s", scene)
        return scene
    # train.synth renders with tracker.render (no torch); the demo is the one runtime command
    # that needs test data, like `kptrack synth` the CLI loads it only when it runs.
    from train.synth import SynthConfig, run_synth

    print(f"rendering the demo sequence once ({frames} frames) into {root} ...", flush=True)
    return Path(run_synth(SynthConfig(object="default", out=root, sequence=True, frames=frames, seed=seed,
                                      width=size[0], height=size[1], overwrite=True)))


@dataclass
class DemoReport:
    accuracy: dict
    stats: LoopStats

    @property
    def passed(self) -> bool:
        a = self.accuracy
        return a["n_scored"] > 0 and a["frac_add"] >= TARGET_ADD and a["frac_proj"] >= TARGET_PROJ


def score_sequence(results: list[FrameResult], scene: Path, obj, K: np.ndarray) -> dict:
    """ADD(-S)/2D-projection summary of tracker results against a BOP scene's ground truth."""
    from tracker.formats.bop import read_scene_gt, read_scene_gt_info
    from tracker.eval.metrics import PoseAccuracy

    gt = read_scene_gt(scene / "scene_gt.json")
    info = read_scene_gt_info(scene / "scene_gt_info.json")
    acc = PoseAccuracy.for_object(obj)
    for r in results:
        if r.index not in gt or not gt[r.index]:
            continue
        g = gt[r.index][0]
        vf = info[r.index][0].visib_fract if r.index in info and info[r.index] else 1.0
        acc.update(r.R_m2c, r.t_m2c, g.R_m2c, g.t_m2c, K, vf)
    return acc.summary()


def run_demo_from_args(args) -> int:
    """``kptrack demo``: track the default object on its synthetic sequence; print accuracy and speed."""
    from tracker.objects import load_object
    from tracker.pipeline.sinks import VideoSink

    model_path = Path(args.model) if args.model else default_model_path()
    if not model_path.is_file():
        if args.model:
            raise KptrackError(f"--model {model_path}: model file not found. Pass an exported .onnx (kptrack export).")
        raise KptrackError(
            f"{model_path}: the shipped default model is missing. Train and export it (`kptrack synth --out data/default`, "
            "`kptrack train --data data/default --out runs/default`, `kptrack export --checkpoint runs/default/best.pt "
            f"--out {DEFAULT_MODEL}`), or pass --model M.onnx."
        )
    if args.frames < 2:
        raise KptrackError(f"--frames {args.frames}: the demo needs at least 2 frames.")
    video = VideoSink(args.out) if args.out else None
    model = _open_model(model_path, args.device, getattr(args, "threads", None))
    obj = load_object("default")
    check_model_matches_object(model.meta, obj, str(model_path))
    seed = DEMO_SEED if getattr(args, "seed", None) is None else args.seed
    if seed < 0:
        raise KptrackError(f"--seed {seed}: use a seed >= 0.")
    scene = ensure_demo_sequence(Path(args.cache) if args.cache else default_cache_dir(), args.frames, seed=seed)
    camera = Camera.from_yaml(scene / "camera.yaml")
    config = _config_from_args(args)
    report = run_demo(model, obj, camera, scene, video=video, config=config)
    a, s = report.accuracy, report.stats
    print(f"demo: default object, {s.frames} frames of {scene} (preset {config.name}, smoothing {'on' if config.smoothing else 'off'})")
    print(f"  {format_summary(s)}".replace("\n", "\n  "))
    print(f"  accuracy over {a['n_scored']} frames with the object >= 50 % visible ({a['n_missing']} without a pose):")
    print(f"    {a['metric']} < 0.1 x diameter ({a['add_threshold_mm']:.1f} mm): {100 * a['frac_add']:.1f} %  "
          f"(target >= {100 * TARGET_ADD:.0f} %)  median {a['median_add_mm']:.2f} mm")
    print(f"    2D projection error < 5 px: {100 * a['frac_proj']:.1f} %  (target >= {100 * TARGET_PROJ:.0f} %)  "
          f"median {a['median_proj_px']:.2f} px")
    print(f"  end-to-end: {s.fps:.1f} frames per second on this machine ({s.provider}, display excluded)")
    print(f"  {'PASS' if report.passed else 'BELOW TARGET'}")
    if args.out:
        print(f"annotated video: {args.out}")
    return 130 if s.interrupted else 0


def run_demo(model, obj, camera: Camera, scene: Path, *, video=None, config: TrackerConfig | None = None) -> DemoReport:
    """Track a BOP sequence folder (``rgb/``) and score it; the library half of ``kptrack demo``."""
    source = open_image_folder(scene / "rgb", fps=30.0)
    results: list[FrameResult] = []
    try:
        tracker = Tracker(model, obj, camera, config or TrackerConfig.preset("fast"))
        model.warmup(5)
        tracker.warmup()
        renderer = make_renderer(obj, camera)
        with sigterm_as_interrupt():
            stats = run_loop(source, tracker, video=video, renderer=renderer, on_result=results.append, draw=True)
    finally:
        if video is not None:
            video.close()
        source.close()
    return DemoReport(accuracy=score_sequence(results, scene, obj, camera.K), stats=stats)
