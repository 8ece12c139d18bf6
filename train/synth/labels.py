"""Exact labels of one rendered image: keypoints, their visibility, and BOP's gt_info.

Keypoints come from the float64 projection of the stored pose (:func:`tracker.geometry.project`
with the stored ``cam_K``, ``cam_R_m2c``, ``cam_t_m2c``). COCO ``v`` is 2 only when a keypoint is
inside the image, not behind the object's own surface (:func:`tracker.render.keypoint_visibility`)
and not under an occluder; 1 when inside the image but hidden; 0 outside the image. The visible
mask is the render's mask minus the occluders. As in BOP (Hodaň et al., ECCV 2018),
``px_count_all`` and ``bbox_obj`` count the whole silhouette even beyond the image border
(rendered on a larger canvas when the object is cut off), so ``visib_fract`` falls to 0 when the
object leaves the frame.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np

from tracker.camera import Camera
from tracker.formats.bop_scene import BopGtInfo, gt_info_from_masks, mask_bbox
from tracker.geometry import project
from tracker.objects import ObjectModel
from tracker.render import Renderer, keypoint_visibility


@dataclass
class Label:
    """What a worker returns for one image: where it goes and its labels.

    K (3, 3), R (3, 3) R_m2c, t (3,) t_m2c in mm; uv (K, 2) float64 pixels; v (K,) int8 COCO
    visibility."""

    index: int
    scene_id: int
    im_id: int
    K: np.ndarray
    R: np.ndarray
    t: np.ndarray
    info: BopGtInfo
    uv: np.ndarray
    v: np.ndarray
    frame: np.ndarray | None = None  # sequences: the frame for the video


def full_silhouette(renderer: Renderer, obj: ObjectModel, cam: Camera, R, t, mask_in_image: np.ndarray) -> tuple[int, tuple[int, int, int, int]]:
    """BOP's px_count_all and bbox_obj: the whole silhouette even past the image border.

    When the projected bounding box leaves the image, the depth pass is re-run on a canvas
    grown to hold it (at most one image size beyond each border)."""
    W, H = cam.width, cam.height
    uv = project(obj.box_corners, R, t, cam.K)
    if np.all(np.isfinite(uv)):
        lo, hi = uv.min(0), uv.max(0)
        if lo[0] >= 0 and lo[1] >= 0 and hi[0] <= W - 1 and hi[1] <= H - 1:
            return int(np.count_nonzero(mask_in_image)), mask_bbox(mask_in_image)
        px0 = int(min(max(-math.floor(lo[0]) + 1, 0), W))
        py0 = int(min(max(-math.floor(lo[1]) + 1, 0), H))
        px1 = int(min(max(math.ceil(hi[0]) - (W - 1) + 1, 0), W))
        py1 = int(min(max(math.ceil(hi[1]) - (H - 1) + 1, 0), H))
    else:  # part of the box is behind the camera: take the largest canvas
        px0 = px1 = W
        py0 = py1 = H
    big = cam.cropped(-px0, -py0, W + px0 + px1, H + py0 + py1)
    _, m = renderer.render_depth(big, R, t)
    n = int(np.count_nonzero(m))
    if n == 0:
        return 0, (-1, -1, -1, -1)
    x, y, w, h = mask_bbox(m)
    return n, (x - px0, y - py0, w, h)


def image_labels(renderer: Renderer, obj: ObjectModel, cam: Camera, R, t, depth, mask, occ) -> tuple[BopGtInfo, np.ndarray, np.ndarray]:
    """(gt_info, uv (K, 2) pixels, v (K,) int8) of a render (depth, mask (H, W)) with occluders
    occ (H, W) bool over it."""
    vis_mask = mask & ~occ
    kps = obj.keypoints
    uv = project(kps, R, t, cam.K)
    v = keypoint_visibility(kps, cam, R, t, depth).astype(np.int8)
    for k in np.nonzero(v == 2)[0]:
        c, r = int(math.floor(uv[k, 0] + 0.5)), int(math.floor(uv[k, 1] + 0.5))
        if occ[r, c]:
            v[k] = 1
    info0 = gt_info_from_masks(mask, vis_mask)
    n_all, bbox_obj = full_silhouette(renderer, obj, cam, R, t, mask)
    n_all = max(n_all, info0.px_count_all)
    info = BopGtInfo(
        bbox_obj=bbox_obj if n_all > 0 else info0.bbox_obj,
        bbox_visib=info0.bbox_visib,
        px_count_all=n_all,
        px_count_visib=info0.px_count_visib,
        visib_fract=float(info0.px_count_visib / n_all) if n_all > 0 else 0.0,
    )
    return info, uv, v
