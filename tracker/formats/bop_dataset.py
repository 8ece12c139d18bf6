"""Per-object reader of a BOP dataset: every instance of one object in a split, with its image,
camera, pose, visible mask and projected keypoints (what training and ``kptrack viz`` read).

The folder layout and the scene JSON files are described in :mod:`tracker.formats.bop_scene`,
which also reads them (:func:`~tracker.formats.bop_scene.read_scene`). Poses are
model-to-camera (``x_cam = R_m2c @ x_model + t_m2c``, t in mm); keypoints are projected with
:func:`tracker.geometry.project` (pinhole: BOP images are undistorted).
"""

from __future__ import annotations

import logging
import math
import os
from dataclasses import dataclass
from pathlib import Path
from typing import Iterator

import cv2
import numpy as np

from tracker.errors import KptrackError
from tracker.formats.bop_scene import IMAGE_EXTS, find_scene_dirs, read_scene
from tracker.geometry import project

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class BopSample:
    """One instance of the chosen object in one image.

    K: (3, 3) float64; R_m2c: (3, 3) float64; t_m2c: (3,) float64 mm;
    keypoints_uv: (K, 2) float64 pixels (projected with K, R_m2c, t_m2c; NaN behind the camera;
    (0, 2) when no keypoints were given); visib_fract NaN and boxes None when the scene has no
    scene_gt_info.json; mask_path None when mask_visib/ has no file for it.
    """

    scene_id: int
    im_id: int
    gt_index: int
    obj_id: int
    image_path: Path
    K: np.ndarray
    R_m2c: np.ndarray
    t_m2c: np.ndarray
    mask_path: Path | None
    keypoints_uv: np.ndarray
    visib_fract: float
    bbox_obj: tuple[int, int, int, int] | None
    bbox_visib: tuple[int, int, int, int] | None


def _listing(folder: Path) -> dict[str, str]:
    """{stem: filename} of a folder, read once (one listdir beats a stat per image)."""
    try:
        names = os.listdir(folder)
    except FileNotFoundError:
        return {}
    out: dict[str, str] = {}
    for n in sorted(names):
        stem, ext = os.path.splitext(n)
        if ext.lower() in IMAGE_EXTS and stem not in out:
            out[stem] = n
    return out


class BopDataset:
    """All instances of one object in a BOP split (LINEMOD, YCB-V, or kptrack synth output).

    root: dataset root (or split/scene folder, see :func:`find_scene_dirs`); split: e.g. 'train_pbr',
    'test', 'train_synth'; obj_id: the BOP object id; keypoints_mm: (K, 3) float64 model keypoints
    in mm, or ``object`` (an ObjectModel) to take its keypoints; min_visib_fract: skip instances
    less visible than this (scenes without scene_gt_info.json keep all).
    Indexing gives :class:`BopSample`; images are read with :meth:`load_image`.
    """

    def __init__(
        self,
        root: str | Path,
        split: str | None = None,
        obj_id: int = 1,
        keypoints_mm: np.ndarray | None = None,
        object=None,
        min_visib_fract: float = 0.0,
    ):
        if keypoints_mm is None and object is not None:
            keypoints_mm = object.keypoints
        self.keypoints_mm = (
            np.zeros((0, 3)) if keypoints_mm is None else np.asarray(keypoints_mm, dtype=np.float64).reshape(-1, 3)
        )
        self.root = Path(root)
        self.split = split
        self.obj_id = int(obj_id)
        self.scene_dirs = find_scene_dirs(root, split)
        self.samples: list[BopSample] = []
        for sd in self.scene_dirs:
            self.samples.extend(self._scan_scene(sd, min_visib_fract))
        if not self.samples:
            log.warning("%s: no instances of obj_id %d", self.root, self.obj_id)

    def _scan_scene(self, sd: Path, min_visib_fract: float) -> list[BopSample]:
        scene = read_scene(sd)
        gts, infos = scene.gt, scene.gt_info
        img_dir = sd / "rgb" if (sd / "rgb").is_dir() else sd / "gray"
        images = _listing(img_dir)
        masks = _listing(sd / "mask_visib")
        scene_id = scene.scene_id
        out = []
        for im_id in sorted(gts):
            stem = f"{im_id:06d}"
            fname = images.get(stem)
            for j, g in enumerate(gts[im_id]):
                if g.obj_id != self.obj_id:
                    continue
                K = scene.camera(im_id).K
                if fname is None:
                    raise KptrackError(f"{img_dir}: no image {stem}.png/.jpg for im_id {im_id}. The scene is incomplete.")
                vf, bo, bv = math.nan, None, None
                if infos is not None:
                    lst = infos.get(im_id, [])
                    if j < len(lst):
                        vf, bo, bv = lst[j].visib_fract, lst[j].bbox_obj, lst[j].bbox_visib
                if infos is not None and vf < min_visib_fract:
                    continue
                mname = masks.get(f"{stem}_{j:06d}")
                out.append(
                    BopSample(
                        scene_id=scene_id,
                        im_id=im_id,
                        gt_index=j,
                        obj_id=g.obj_id,
                        image_path=img_dir / fname,
                        K=K,
                        R_m2c=g.R_m2c,
                        t_m2c=g.t_m2c,
                        mask_path=(sd / "mask_visib" / mname) if mname else None,
                        keypoints_uv=project(self.keypoints_mm, g.R_m2c, g.t_m2c, K),
                        visib_fract=vf,
                        bbox_obj=bo,
                        bbox_visib=bv,
                    )
                )
        return out

    def __len__(self) -> int:
        return len(self.samples)

    def __getitem__(self, i: int) -> BopSample:
        return self.samples[i]

    def __iter__(self) -> Iterator[BopSample]:
        return iter(self.samples)

    @staticmethod
    def load_image(sample: BopSample) -> np.ndarray | None:
        """(H, W, 3) uint8 BGR, or None (logged) if the file is missing or corrupt."""
        img = cv2.imread(str(sample.image_path), cv2.IMREAD_COLOR)
        if img is None:
            log.warning("%s: unreadable image, skipped", sample.image_path)
        return img

    @staticmethod
    def load_mask(sample: BopSample) -> np.ndarray | None:
        """Visible mask (H, W) bool, or None when the sample has none or it is unreadable."""
        if sample.mask_path is None:
            return None
        m = cv2.imread(str(sample.mask_path), cv2.IMREAD_GRAYSCALE)
        if m is None:
            log.warning("%s: unreadable mask, skipped", sample.mask_path)
            return None
        return m > 127
