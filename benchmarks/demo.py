"""``kptrack demo``'s library half: track a built-in object (the drill, or ``bottle``) on its synthetic
test sequence and score it (ADD-S for the symmetric bottle; MSSD and MSPD are in the scene's errors).

:func:`ensure_demo_sequence` renders the sequence once with ``train.synth`` (it needs no torch) and
caches it; :func:`run_demo` runs the same frame loop as ``kptrack track`` on it, drawing every frame
(so its frame rate includes what a watching user pays, display aside), and scores the poses with
the one scorer, :func:`tracker.eval.evaluate.evaluate_scene`: ADD(-S) < 0.1 d and 2D projection
< 5 px over the frames where the object is >= 50 % visible, a missing pose counting as a failure.
"""

from __future__ import annotations

import hashlib

import logging
from dataclasses import dataclass
from pathlib import Path

from tracker.camera import Camera
from tracker.errors import KptrackError
from tracker.eval.evaluate import score_tracked
from tracker.objects import load_object
from tracker.paths import BUILTIN_OBJECTS, default_cache_dir, resolve_model
from tracker.pipeline.config import TrackerConfig
from tracker.pipeline.infer import OnnxHeatmapModel, check_model_matches_object
from tracker.pipeline.loop import LoopStats
from tracker.pipeline.session import run_tracking
from tracker.pipeline.sinks import VideoSink
from tracker.pipeline.source import open_image_folder
from tracker.pipeline.state import FrameResult
from train.synth import SynthConfig, run_synth

log = logging.getLogger(__name__)

DEMO_SEED = 1
DEMO_SIZE = (640, 480)
TARGET_ADD = 0.90
TARGET_PROJ = 0.95


@dataclass(frozen=True)
class DemoConfig:
    """Options of ``kptrack demo``: frames of the sequence, model (None: the shipped one), device,
    out (annotated .avi), cache (where sequences are kept; None: ~/.cache/kptrack), threads,
    preset, smoothing, seed (another synthetic sequence; the demo's own is 1), object (a built-in
    object: default | bottle; its shipped model is models/<object>/model.onnx)."""

    frames: int = 300
    model: str | None = None
    device: str = "auto"
    out: str | None = None
    cache: str | None = None
    threads: int | None = None
    preset: str = "fast"
    smoothing: bool = True
    seed: int = DEMO_SEED
    object: str = "default"


@dataclass
class DemoReport:
    """accuracy: the scorer's headline (n_scored, frac_add, frac_proj, medians, ...); stats: the loop's."""

    accuracy: dict
    stats: LoopStats
    scene: Path
    config: TrackerConfig
    object_name: str = "default"

    @property
    def passed(self) -> bool:
        a = self.accuracy
        return a["n_scored"] > 0 and a["frac_add"] >= TARGET_ADD and a["frac_proj"] >= TARGET_PROJ


def ensure_demo_sequence(cache: Path, frames: int, seed: int = DEMO_SEED, size: tuple[int, int] = DEMO_SIZE,
                         object_name: str = "default") -> Path:
    """The demo's synthetic sequence folder (BOP scene), rendered on first use and cached.
    object_name: a built-in object, or an object directory (the benchmarks' development sweeps).

    A sequence is complete when its ``sequence_info.json`` exists (train.synth writes it last),
    so an interrupted render is redone, not reused.
    """
    tag = object_name
    if Path(object_name).is_dir():  # a directory: its name and a hash of where it is (two 'box' folders differ)
        tag = f"{Path(object_name).name}-{hashlib.sha1(str(Path(object_name).resolve()).encode()).hexdigest()[:8]}"
    root = Path(cache) / f"demo_{tag}_{frames}f_seed{seed}_{size[0]}x{size[1]}"
    scene = root / "test_seq" / "000000"
    if (scene / "sequence_info.json").is_file():
        log.info("using the cached demo sequence %s", scene)
        return scene
    print(f"rendering the demo sequence once ({frames} frames) into {root} ...", flush=True)
    return Path(run_synth(SynthConfig(object=object_name, out=root, sequence=True, frames=frames, seed=seed,
                                      width=size[0], height=size[1], overwrite=True)))


def run_demo(model, obj, camera: Camera, scene: Path, *, video: VideoSink | None = None,
             config: TrackerConfig | None = None) -> DemoReport:
    """Track a BOP sequence folder (``rgb/``), drawing every frame, and score it."""
    config = config or TrackerConfig.preset("fast")
    results: list[FrameResult] = []
    stats = run_tracking(open_image_folder(scene / "rgb", fps=30.0), model, obj, camera, config,
                         sinks=[video] if video is not None else [], draw=True, on_result=results.append)
    return DemoReport(score_tracked(results, scene, obj), stats, scene, config, str(getattr(obj, "name", "default")))


def demo(cfg: DemoConfig) -> DemoReport:
    """``kptrack demo``: the shipped model (or ``cfg.model``) on the seed's sequence, scored."""
    if cfg.object not in BUILTIN_OBJECTS:
        raise KptrackError(f"--object {cfg.object}: the demo runs on a built-in object. Use one of {', '.join(BUILTIN_OBJECTS)}.")
    model_path = resolve_model(cfg.model, object_name=cfg.object)
    if cfg.frames < 2:
        raise KptrackError(f"--frames {cfg.frames}: the demo needs at least 2 frames.")
    if cfg.seed < 0:
        raise KptrackError(f"--seed {cfg.seed}: use a seed >= 0.")
    video = VideoSink(cfg.out) if cfg.out else None
    model = OnnxHeatmapModel(model_path, device=cfg.device, threads=cfg.threads)
    obj = load_object(cfg.object)
    check_model_matches_object(model.meta, obj, str(model_path))
    other = {} if cfg.object == "default" else {"object_name": cfg.object}  # the drill's call is unchanged
    scene = ensure_demo_sequence(Path(cfg.cache) if cfg.cache else default_cache_dir(), cfg.frames, seed=cfg.seed, **other)
    camera = Camera.from_yaml(scene / "camera.yaml")
    config = TrackerConfig.preset(cfg.preset, **({} if cfg.smoothing else {"smoothing": False}))
    return run_demo(model, obj, camera, scene, video=video, config=config)
