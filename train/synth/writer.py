"""The ``kptrack synth`` driver: :func:`run_synth` prepares the dataset folders, runs the image or
frame workers over a pool of processes (a forkserver's), and writes each scene's BOP and COCO files::

    OUT/models/obj_000001.ply (mm), models_info.json, keypoints.json
    OUT/<split>/<scene_id:06d>/scene_camera.json, scene_gt.json, scene_gt_info.json,
        rgb/<im_id:06d>.jpg, mask_visib/<im_id:06d>_000000.png, keypoints_coco.json
        (+ video.mp4, camera.yaml, sequence_info.json for --sequence)

Workers return their labels in order; a training scene's files are written as soon as its last
image is in, and a sequence's ``sequence_info.json`` last, so its presence means "complete".
"""

from __future__ import annotations

import contextlib
import dataclasses
import json
import logging
import multiprocessing as mp
import os
import shutil
import time
from pathlib import Path

import cv2
import numpy as np
from tqdm import tqdm

from tracker.camera import Camera
from tracker.errors import KptrackError
from tracker.formats.bop_scene import BopCamera, BopGt, write_scene_camera, write_scene_gt, write_scene_gt_info
from tracker.formats.coco import CocoAnnotation, CocoImage, write_coco
from tracker.objects import ObjectModel, keypoints_dict, load_object, write_object_dir
from tracker.render import Renderer
from train.synth.backgrounds import list_background_images
from train.synth.config import OBJ_ID, SynthConfig
from train.synth.images import train_image
from train.synth.job import Job, install_in_worker, installed, job_for_workers
from train.synth.labels import Label
from train.synth.sampling import symmetry_axis
from train.synth.sequences import plan_sequence, sequence_frame

log = logging.getLogger(__name__)


def run_synth(cfg: SynthConfig) -> Path:
    """Render the dataset cfg describes (see :mod:`train.synth`) and return the folder written:
    the split folder for training images, the scene folder for a sequence."""
    cfg.validate()
    obj = load_object(cfg.object)
    if obj.num_keypoints == 0:
        raise KptrackError(f"--object {cfg.object}: the object has no keypoints. Add keypoints.json (kptrack object init).")
    if cfg.axis_views > 0.0:
        symmetry_axis(obj)  # refused before anything is written
    bg_files = list_background_images(cfg.backgrounds) if cfg.backgrounds is not None else []
    split_dir = _prepare_split(cfg)
    _write_models(Path(cfg.out), obj, cfg.overwrite)
    _warm_up(obj)
    if cfg.sequence:
        return _write_sequence(cfg, obj, bg_files, split_dir)
    return _write_training_images(cfg, obj, bg_files, split_dir)


def _write_training_images(cfg: SynthConfig, obj: ObjectModel, bg_files: list[Path], split_dir: Path) -> Path:
    """cfg.num images in scenes of cfg.scene_size; each scene's files once its last image is in."""
    t0 = time.perf_counter()
    W, H = cfg.image_size
    n_scenes = (cfg.num + cfg.scene_size - 1) // cfg.scene_size
    scene_dirs = _make_scene_dirs(split_dir, range(n_scenes))
    workers = _n_workers(cfg, cfg.num)
    pending: dict[int, list[Label]] = {}
    with installed(Job(cfg=cfg, obj=obj, scene_dirs=scene_dirs, bg_files=bg_files)):
        for lb in _run_pool(train_image, list(range(cfg.num)), workers, cfg.progress, "synth"):
            pending.setdefault(lb.scene_id, []).append(lb)
            expected = min(cfg.scene_size, cfg.num - lb.scene_id * cfg.scene_size)
            if len(pending[lb.scene_id]) == expected:
                _write_scene(scene_dirs[lb.scene_id], pending.pop(lb.scene_id), obj, W, H)
    dt = time.perf_counter() - t0
    log.info("wrote %d images in %d scene(s) to %s in %.1f s (%.1f images/s, %d workers)",
             cfg.num, n_scenes, split_dir, dt, cfg.num / max(dt, 1e-9), workers)
    return split_dir


def _write_sequence(cfg: SynthConfig, obj: ObjectModel, bg_files: list[Path], split_dir: Path) -> Path:
    """One scene of cfg.frames frames: camera.yaml, video.mp4, the BOP/COCO files, then sequence_info.json."""
    t0 = time.perf_counter()
    W, H = cfg.image_size
    scene_dirs = _make_scene_dirs(split_dir, [0])
    sd = scene_dirs[0]
    plan = plan_sequence(cfg, obj, bg_files)
    plan.camera.to_yaml(sd / "camera.yaml")
    video_path = sd / "video.mp4"
    writer = cv2.VideoWriter(str(video_path), cv2.VideoWriter_fourcc(*"mp4v"), float(cfg.fps), (W, H))
    if not writer.isOpened():
        raise KptrackError(f"{video_path}: OpenCV cannot write MP4 (mp4v) video here. Install an OpenCV build with video support.")
    workers = _n_workers(cfg, cfg.frames)
    labels = []
    try:
        with installed(Job(cfg=cfg, obj=obj, scene_dirs=scene_dirs, bg_files=bg_files, plan=plan)):
            for lb in _run_pool(sequence_frame, list(range(cfg.frames)), workers, cfg.progress, "synth sequence"):
                writer.write(lb.frame)
                lb.frame = None
                labels.append(lb)
    finally:
        writer.release()
    _write_scene(sd, labels, obj, W, H)
    info = {
        "fps": cfg.fps,
        "frames": cfg.frames,
        "seed": cfg.seed,
        "object": obj.name,
        "episodes": [dataclasses.asdict(e) for e in plan.episodes],
    }
    (sd / "sequence_info.json").write_text(json.dumps(info, indent=1) + "\n")
    dt = time.perf_counter() - t0
    log.info("wrote a %d-frame sequence to %s in %.1f s (%.1f frames/s, %d workers); events: %s",
             cfg.frames, sd, dt, cfg.frames / max(dt, 1e-9), workers,
             ", ".join(f"{e.kind} {e.start}-{e.end - 1}" for e in plan.episodes) or "none (too short)")
    return sd


# ---------------------------------------------------------------------------- folders and files
def _prepare_split(cfg: SynthConfig) -> Path:
    """OUT/<split>, emptied when cfg.overwrite; refuses to write into one that holds data."""
    split_dir = Path(cfg.out) / cfg.split_name
    if split_dir.exists() and any(split_dir.iterdir()):
        if not cfg.overwrite:
            raise KptrackError(
                f"{split_dir}: already holds data. Pass --overwrite to replace it, or --split NAME / another --out."
            )
        shutil.rmtree(split_dir)
    return split_dir


def _write_models(out: Path, obj: ObjectModel, overwrite: bool) -> Path:
    """OUT/models/ in BOP style. Refuses to replace a different object's files unless overwrite."""
    d = out / "models"
    kp_path = d / "keypoints.json"
    kp = keypoints_dict(obj)
    if kp_path.is_file() and not overwrite:
        try:
            old = json.loads(kp_path.read_text())
            same = old.get("names") == kp["names"] and np.allclose(np.asarray(old.get("points_mm"), float), obj.keypoints)
        except (ValueError, TypeError):
            same = False
        if not same:
            raise KptrackError(
                f"{kp_path}: this dataset already holds a different object. Use another --out, or --overwrite to replace it."
            )
    name = f"obj_{OBJ_ID:06d}"
    return write_object_dir(obj, d, mesh_name=f"{name}.ply", texture_name=f"{name}.png", obj_id=OBJ_ID)


def _make_scene_dirs(split_dir: Path, scene_ids) -> dict[int, Path]:
    out = {}
    for s in scene_ids:
        sd = split_dir / f"{s:06d}"
        (sd / "rgb").mkdir(parents=True, exist_ok=True)
        (sd / "mask_visib").mkdir(parents=True, exist_ok=True)
        out[s] = sd
    return out


def _write_scene(sd: Path, labels: list[Label], obj: ObjectModel, width: int, height: int) -> None:
    """A scene's scene_camera.json, scene_gt.json, scene_gt_info.json and keypoints_coco.json."""
    labels = sorted(labels, key=lambda x: x.im_id)
    write_scene_camera(sd / "scene_camera.json", {lb.im_id: BopCamera(K=lb.K, depth_scale=1.0) for lb in labels})
    write_scene_gt(sd / "scene_gt.json", {lb.im_id: [BopGt(OBJ_ID, lb.R, lb.t)] for lb in labels})
    write_scene_gt_info(sd / "scene_gt_info.json", {lb.im_id: [lb.info] for lb in labels})
    images = [CocoImage(lb.im_id, f"rgb/{lb.im_id:06d}.jpg", width, height) for lb in labels]
    anns = []
    for lb in labels:
        bv = lb.info.bbox_visib
        bbox = tuple(float(x) for x in bv) if bv[2] > 0 else (0.0, 0.0, 0.0, 0.0)
        anns.append(CocoAnnotation(image_id=lb.im_id, uv=lb.uv, v=lb.v, bbox=bbox, area=float(lb.info.px_count_visib), id=lb.im_id + 1))
    write_coco(sd / "keypoints_coco.json", images, anns, obj.keypoint_names, category_name=obj.name)


# ---------------------------------------------------------------------------- processes
def _n_workers(cfg: SynthConfig, n_items: int) -> int:
    if cfg.workers is not None:
        n = cfg.workers
    else:
        try:
            n = len(os.sched_getaffinity(0))
        except AttributeError:
            n = os.cpu_count() or 1
    return max(1, min(n, n_items))


def _warm_up(obj: ObjectModel) -> None:
    """Compile (or load) the renderer's numba kernels once in the parent, so the workers load them
    from numba's on-disk cache instead of each compiling them."""
    cam = Camera.from_fov(60.0, 32, 32)
    Renderer(obj).render(cam, np.eye(3), np.array([0.0, 0.0, 3.0 * max(obj.diameter, 1.0)]))


_WORKER_MODULES = ("train.synth.images", "train.synth.sequences")  # what the workers run, preloaded


def _run_pool(fn, items, workers: int, progress: bool, desc: str):
    """Yield fn(item) in order, over a pool of worker processes (or in-process for one worker), with
    a progress bar. The workers come from a forkserver, a fresh single-threaded process, each given
    the installed Job: a worker forked from this process would inherit the locks of its threads
    (ONNX Runtime's, a frame reader's, the progress bar's) held by no thread in the child, and a
    fresh-clone test run once hung on one. As with any such pool, a worker imports the caller's
    ``__main__``, so a script calling this needs an ``if __name__ == "__main__":`` guard."""
    with contextlib.ExitStack() as stack:
        if workers == 1:
            results = map(fn, items)
        else:
            ctx = mp.get_context("forkserver")
            # The server imports the workers' modules once, so each worker forked from it has them;
            # without '__main__' in this list the server does not run the caller's script (the
            # workers still import it, see above).
            ctx.set_forkserver_preload(list(_WORKER_MODULES))
            try:
                pool = stack.enter_context(ctx.Pool(workers, initializer=install_in_worker, initargs=(job_for_workers(),)))
            except (BrokenPipeError, ConnectionError, EOFError):
                # a worker re-ran the caller's script while starting (the traceback above is its own)
                raise KptrackError(
                    "kptrack synth: its worker processes could not start. Called from a Python script? Put the "
                    "script's code under `if __name__ == \"__main__\":` (a worker imports the script, as Python's "
                    "process pools do), or set workers=1.") from None
            results = pool.imap(fn, items, chunksize=max(1, min(16, len(items) // (workers * 8))))
        bar = stack.enter_context(tqdm(total=len(items), desc=desc, unit="img", disable=not progress, smoothing=0.1))
        for r in results:
            yield r
            bar.update(1)
