"""One tracking run, from a :class:`TrackConfig` to its outputs: the library half of ``kptrack track``.

:func:`track` checks the outputs first (so a typo fails before a model loads or a camera opens),
then opens the model (:mod:`tracker.pipeline.infer`), the object, the source
(:mod:`tracker.pipeline.source`) and its camera (:mod:`tracker.camera.resolve`), then hands them
to :func:`run_tracking`, which builds the :class:`~tracker.pipeline.tracker.Tracker`, warms it up
and runs the frame loop (``loop``: :func:`tracker.pipeline.loop.run_loop`, sequential, or
:func:`tracker.pipeline.pipelined.run_pipelined`, stages on threads, same poses) into the sinks (``kptrack demo`` runs through it too). Ctrl-C and SIGTERM stop the run cleanly (sinks closed, summary
returned, ``interrupted`` set); a kill leaves flushed poses and a playable AVI.

Nothing the user gave is overwritten: an output that is the source itself is refused, and an
existing poses file or video is refused unless ``overwrite`` is set.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass, field
from pathlib import Path
from typing import Callable, Sequence

from tracker.camera import Camera
from tracker.camera.resolve import is_live, resolve_camera
from tracker.errors import KptrackError
from tracker.objects import load_object
from tracker.paths import resolve_model
from tracker.pipeline.config import TrackerConfig
from tracker.pipeline.backend import open_heatmap_backend
from tracker.pipeline.draw import FrameDrawer
from tracker.pipeline.infer import HeatmapBackend, check_model_matches_object, precision_model_path
from tracker.pipeline.loop import LoopStats, format_summary, interrupts, run_loop
from tracker.pipeline.pipelined import run_pipelined
from tracker.pipeline.sinks import JsonlSink, PoseCsvSink, Sink, VideoSink, WindowSink
from tracker.pipeline.source import FrameSource, open_source
from tracker.pipeline.state import FrameResult
from tracker.pipeline.tracker import Tracker
from tracker.pipeline.warmup import announce_compilation

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class TrackConfig:
    """Options of ``kptrack track``.

    source: camera index | video file | image folder | URL. model: ONNX model (None: the shipped
    default). object: 'default' or an object directory. camera: calibration YAML, 'fov:DEG', or
    None (camera.yaml beside the source). out: annotated Motion-JPEG .avi. poses: BOP results CSV
    (a .jsonl beside it gets per-frame logs) or a .jsonl alone. show: a window. device: auto |
    cpu | cuda. threads: ONNX Runtime intra-op threads. preset: tracker preset. smoothing: One-Euro
    on the reported poses. max_frames: stop after this many. overwrite: replace existing outputs.
    loop: 'pipelined' (stages overlap on threads) | 'sequential' (one frame at a time); same poses.
    precision: fp32 | fp16 | int8, the model file beside ``model`` (``m.int8.onnx``). backend:
    'onnxruntime' (a local session) or ``triton://HOST:PORT/MODEL`` (:mod:`tracker.pipeline.backend`).
    """

    source: str
    model: str | None = None
    object: str = "default"
    camera: str | None = None
    out: str | None = None
    poses: str | None = None
    show: bool = False
    device: str = "auto"
    threads: int | None = None
    preset: str = "fast"
    smoothing: bool = True
    max_frames: int | None = None
    overwrite: bool = False
    loop: str = "pipelined"
    precision: str = "fp32"
    backend: str = "onnxruntime"


@dataclass
class TrackReport:
    """What a run did: its LoopStats, the summary text, and the files written ({what: path})."""

    stats: LoopStats
    summary: str
    outputs: dict[str, Path] = field(default_factory=dict)


def pose_paths(poses: str | None) -> tuple[Path | None, Path | None]:
    """--poses X.csv -> (X.csv, X.jsonl); --poses X.jsonl -> (None, X.jsonl)."""
    if not poses:
        return None, None
    p = Path(poses)
    if p.suffix.lower() == ".jsonl":
        return None, p
    return p, p.with_suffix(".jsonl")


def _same_file(a: Path, b: Path) -> bool:
    try:
        return a.expanduser().resolve() == b.expanduser().resolve()
    except OSError:
        return False


def check_outputs(source: str, outputs: dict[str, Path], overwrite: bool) -> None:
    """Refuse an output ({flag: path}) that is the source itself, or an existing file unless ``overwrite``."""
    src = None if is_live(source) else Path(source)
    for flag, path in outputs.items():
        if src is not None and _same_file(path, src):
            raise KptrackError(f"{flag} {path}: this is the --source itself, and writing it would destroy the input. "
                               "Choose another output path.")
        if path.exists() and not overwrite:
            raise KptrackError(f"{flag} {path}: the file exists. Choose another path, or pass --overwrite to replace it.")


LOOPS = ("pipelined", "sequential")


def _loop_function(loop: str) -> Callable[..., LoopStats]:
    if loop not in LOOPS:
        raise KptrackError(f"--loop {loop}: unknown frame loop. Use one of {', '.join(LOOPS)}.")
    return run_pipelined if loop == "pipelined" else run_loop


def run_tracking(source: FrameSource, model: HeatmapBackend, obj, camera: Camera, config: TrackerConfig, *,
                 sinks: Sequence[Sink] = (), draw: bool = False, max_frames: int | None = None,
                 on_result: Callable[[FrameResult], None] | None = None, loop: str = "sequential") -> LoopStats:
    """Track ``source`` into ``sinks`` under :func:`~tracker.pipeline.loop.interrupts`: build the Tracker,
    warm the network and the kernels up (announcing a numba compilation), build the drawer when
    ``draw``, run the frame loop (``loop``: one of :data:`LOOPS`). The sinks and the source are closed whatever happens; Ctrl-C or
    SIGTERM returns the stats so far with ``interrupted`` set."""
    run = _loop_function(loop)
    with interrupts() as stop:
        try:
            tracker = Tracker(model, obj, camera, config)
            with announce_compilation():
                model.warmup(3)
                tracker.warmup()
                drawer = FrameDrawer(obj, camera, provider=tracker.provider, preset=config.name) if draw else None
            return run(source, tracker, sinks=sinks, drawer=drawer, max_frames=max_frames, on_result=on_result, stop=stop)
        except KeyboardInterrupt:
            return LoopStats(provider=str(getattr(model, "provider", "")), interrupted=True)
        finally:
            stop.closing = True
            for s in sinks:
                s.close()
            source.close()


def open_model(cfg: TrackConfig) -> tuple[HeatmapBackend, Path]:
    """The heatmap backend ``cfg`` asks for and its model file (one home for ``kptrack track``'s
    model choice: single stream here, many in :mod:`tracker.pipeline.streams`)."""
    model_path = resolve_model(cfg.model)
    model = open_heatmap_backend(model_path, precision=cfg.precision, backend=cfg.backend, device=cfg.device, threads=cfg.threads)
    return model, precision_model_path(model_path, cfg.precision)


def track(cfg: TrackConfig) -> TrackReport:
    """Track ``cfg.source`` into the outputs ``cfg`` asks for (see the module docstring)."""
    config = TrackerConfig.preset(cfg.preset, **({} if cfg.smoothing else {"smoothing": False}))
    _loop_function(cfg.loop)
    if cfg.max_frames is not None and cfg.max_frames < 1:
        raise KptrackError(f"--max-frames {cfg.max_frames}: must be >= 1.")
    csv_path, jsonl_path = pose_paths(cfg.poses)
    outputs = {flag: p for flag, p in (("--out", Path(cfg.out) if cfg.out else None), ("--poses", csv_path),
                                        ("--poses (its .jsonl log)", jsonl_path)) if p is not None}
    check_outputs(str(cfg.source), outputs, cfg.overwrite)
    video = VideoSink(cfg.out) if cfg.out else None
    window = WindowSink("kptrack") if cfg.show else None
    model, model_path = open_model(cfg)
    obj = load_object(cfg.object)
    check_model_matches_object(model.meta, obj, str(model_path))
    source = open_source(cfg.source)
    sinks: list[Sink] = [s for s in (video, window) if s is not None]
    try:
        camera = resolve_camera(cfg.camera, str(cfg.source), source.width, source.height)
        if video is not None and source.fps:
            video.fps = source.fps
        sinks += [s for s in (PoseCsvSink(csv_path) if csv_path else None, JsonlSink(jsonl_path) if jsonl_path else None)
                  if s is not None]
    except BaseException:
        for s in sinks:
            s.close()
        source.close()
        raise
    log.info("tracking %s with %s on %s (%s preset)", source, model_path.name, model.provider, config.name)
    stats = run_tracking(source, model, obj, camera, config, sinks=sinks, draw=video is not None or window is not None,
                         max_frames=cfg.max_frames, loop=cfg.loop)
    written = {what: p for what, p in (("annotated video", Path(cfg.out) if cfg.out else None), ("poses (BOP CSV)", csv_path),
                                       ("per-frame log (JSONL)", jsonl_path)) if p is not None}
    return TrackReport(stats, format_summary(stats, source), written)
