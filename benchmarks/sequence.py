"""The test sequence a benchmark runs on: a BOP scene read as a :class:`BenchSequence`.

:func:`load_sequence` reads any BOP scene folder (``scene_gt.json``, ``scene_camera.json``,
``scene_gt_info.json``, ``rgb/``); :func:`default_sequence_dir` is the demo's synthetic sequence
(:func:`benchmarks.demo.ensure_demo_sequence`: rendered once, then cached).
"""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass
from pathlib import Path

import cv2
import numpy as np

from benchmarks.demo import ensure_demo_sequence
from tracker.camera import Camera
from tracker.errors import KptrackError
from tracker.formats.bop_scene import SceneGt, find_scene_dirs, load_scene_gt
from tracker.paths import default_cache_dir


@dataclass
class BenchSequence:
    """A test sequence in memory-light form: frames are read from disk when needed.

    image_paths: N frame files; camera: tracker.camera.Camera of the frames' size; gt: the
    SceneGt (R_m2c (N,3,3), t_m2c (N,3) mm, visib_fract (N,), K (N,3,3)).
    """

    scene_dir: Path
    image_paths: list[Path]
    camera: Camera
    gt: SceneGt

    def __len__(self) -> int:
        return len(self.image_paths)

    def read(self, i: int) -> np.ndarray:
        """Frame i, (H, W, 3) uint8 BGR."""
        img = cv2.imread(str(self.image_paths[i]), cv2.IMREAD_COLOR)
        if img is None:
            raise KptrackError(f"{self.image_paths[i]}: unreadable frame. Re-create the sequence (delete the cache folder).")
        return img


def first_frames(gt: SceneGt, n: int) -> SceneGt:
    """The ground truth of the first ``n`` frames of ``gt`` (all of it when it has no more)."""
    if n >= len(gt.im_ids):
        return gt
    return dataclasses.replace(gt, im_ids=gt.im_ids[:n], K=gt.K[:n], R_m2c=gt.R_m2c[:n], t_m2c=gt.t_m2c[:n],
                               visib_fract=gt.visib_fract[:n])


def load_sequence(scene_dir: str | Path, max_frames: int | None = None, obj_id: int = 1) -> BenchSequence:
    """Read a BOP scene (scene_gt.json, scene_camera.json, scene_gt_info.json, rgb/) as a BenchSequence.

    The camera is the scene's one K with the frames' size, or the ``camera.yaml`` beside the
    scene (with its distortion) when there is one."""
    sd = Path(scene_dir)
    dirs = find_scene_dirs(sd)
    if len(dirs) != 1:
        raise KptrackError(f"{sd}: holds {len(dirs)} scenes; pass one scene folder with --sequence.")
    sd = dirs[0]
    gt = load_scene_gt(sd, obj_id)
    if max_frames is not None:
        gt = first_frames(gt, int(max_frames))
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


def default_sequence_dir(frames: int, cache: str | None = None, object_name: str = "default") -> Path:
    """The demo's synthetic test sequence of ``frames`` frames of a built-in object (rendered once,
    then cached in ``cache``, default :func:`tracker.paths.default_cache_dir`)."""
    other = {} if object_name == "default" else {"object_name": object_name}
    return Path(ensure_demo_sequence(Path(cache) if cache else default_cache_dir(), frames, **other))
