"""One object's ground truth along one BOP scene, read once for every scorer and runner.

:func:`load_scene_gt` reads ``scene_gt.json``, ``scene_camera.json`` and (when present)
``scene_gt_info.json`` of a scene folder into a :class:`SceneGt`: per frame, in im_id order,
the camera matrix, the model-to-camera pose and the visible fraction of the first instance of
one object. ``kptrack eval``, ``kptrack demo`` and ``kptrack bench`` all score against it.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from tracker.errors import KptrackError
from tracker.formats import bop


@dataclass
class SceneGt:
    """Ground truth of one object along one scene (sequence), in frame order.

    im_ids: (N,) int; K: (N, 3, 3) float64; R_m2c: (N, 3, 3) float64; t_m2c: (N, 3) float64 mm;
    visib_fract: (N,) float64 (NaN when the scene has no scene_gt_info.json).
    """

    scene_id: int
    scene_dir: Path
    im_ids: np.ndarray
    K: np.ndarray
    R_m2c: np.ndarray
    t_m2c: np.ndarray
    visib_fract: np.ndarray



def load_scene_gt(scene_dir: str | Path, obj_id: int = 1) -> SceneGt:
    """Read one BOP scene's GT of ``obj_id`` (its first instance per image), frames sorted by im_id."""
    sd = Path(scene_dir)
    gt_path, cam_path = sd / "scene_gt.json", sd / "scene_camera.json"
    if not gt_path.is_file():
        raise KptrackError(f"{sd}: no scene_gt.json, so there is no ground truth to score against. Pass a BOP scene with annotations.")
    if not cam_path.is_file():
        raise KptrackError(f"{sd}: no scene_camera.json (camera matrices). Pass a complete BOP scene.")
    gts = bop.read_scene_gt(gt_path)
    cams = bop.read_scene_camera(cam_path)
    info_path = sd / "scene_gt_info.json"
    infos = bop.read_scene_gt_info(info_path) if info_path.is_file() else {}
    im_ids, Ks, Rs, ts, vis = [], [], [], [], []
    for im_id in sorted(gts):
        for j, g in enumerate(gts[im_id]):
            if g.obj_id != obj_id:
                continue
            if im_id not in cams:
                raise KptrackError(f"{cam_path}: no cam_K for image {im_id}. Every image in scene_gt.json needs one.")
            lst = infos.get(im_id, [])
            im_ids.append(im_id)
            Ks.append(cams[im_id].K)
            Rs.append(g.R_m2c)
            ts.append(g.t_m2c)
            vis.append(lst[j].visib_fract if j < len(lst) else math.nan)
            break
    if not im_ids:
        raise KptrackError(f"{gt_path}: no instance of obj_id {obj_id}. Pass the right --obj-id or dataset.")
    try:
        scene_id = int(sd.name)
    except ValueError:
        scene_id = 0
    return SceneGt(scene_id, sd, np.array(im_ids, np.int64), np.array(Ks), np.array(Rs), np.array(ts), np.array(vis, np.float64))
