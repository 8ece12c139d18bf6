"""Training records: one labelled object instance each, read from a BOP dataset or a COCO
keypoints JSON (:func:`load_records`).

* A BOP dataset (:class:`tracker.formats.bop_dataset.BopDataset`): the split ``kptrack synth`` writes, or a
  user's LINEMOD / YCB-V in BOP layout. Keypoints are the object's 3D keypoints projected with
  each image's ground-truth pose, so any BOP dataset with poses is usable. Per-keypoint
  visibility comes from the scene's ``keypoints_coco.json`` when present (synth writes it, with a
  depth test); otherwise from the image bounds and, where a ``mask_visib`` file exists, from the
  mask at the keypoint (outside the mask -> hidden, v=1). A symmetric object's records carry
  the symmetric labels (:class:`tracker.objects.symmetry_keypoints.SymmetricLabels`) that relabel
  each crop with the equivalent canonical for its view.
* A COCO keypoints JSON (:mod:`tracker.formats.coco`) with its images: data labelled by hand.

The object box is, for BOP, the box of the projected 3D bounding box (what the tracker crops
around), for COCO the annotation's box.
"""

from __future__ import annotations

import json
import logging
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from tracker.errors import KptrackError
from tracker.formats.bop_dataset import BopDataset
from tracker.formats.bop_scene import is_scene_dir
from tracker.formats.coco import read_coco
from tracker.geometry import project
from tracker.objects.symmetry import symmetry_group
from tracker.objects.symmetry_keypoints import SymmetricLabels

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class Record:
    """One labelled object instance.

    keypoints_uv: (K, 2) float64 frame pixels (NaN where unknown). visibility: (K,) int8 COCO
    flags, or None to derive at load time from the image bounds and the mask.
    box: (x, y, w, h) float frame pixels, the object's tight box. key: a stable identity string.
    symmetric: for a symmetric object with a known pose, relabels each crop with the equivalent
    canonical for the crop as rotated (keypoints_uv / visibility are the unrotated view's).
    pose: (R_m2c (3, 3), t_m2c (3,) mm, K (3, 3)) where the source has the object's pose (BOP),
    for the dense coordinate targets of :mod:`train.coords`; None for hand-labelled keypoints.
    """

    image_path: Path
    keypoints_uv: np.ndarray
    visibility: np.ndarray | None
    box: tuple[float, float, float, float]
    key: str
    mask_path: Path | None = None
    symmetric: SymmetricLabels | None = None
    pose: tuple[np.ndarray, np.ndarray, np.ndarray] | None = None


# ---------------------------------------------------------------------------- sources
def _keypoint_box(uv: np.ndarray, v: np.ndarray | None) -> tuple[float, float, float, float] | None:
    ok = np.all(np.isfinite(uv), axis=1)
    if v is not None:
        ok &= np.asarray(v) > 0
    if not ok.any():
        return None
    lo, hi = uv[ok].min(axis=0), uv[ok].max(axis=0)
    return (float(lo[0]), float(lo[1]), float(hi[0] - lo[0] + 1), float(hi[1] - lo[1] + 1))


def _scene_visibility(scene_dir: Path, num_keypoints: int) -> dict[int, np.ndarray]:
    """{im_id: v (K,)} from a scene's keypoints_coco.json (one annotation per image), if present."""
    p = scene_dir / "keypoints_coco.json"
    if not p.is_file():
        return {}
    coco = read_coco(p)
    if len(coco.keypoint_names) != num_keypoints:
        raise KptrackError(
            f"{p}: the dataset has {len(coco.keypoint_names)} keypoints ({', '.join(coco.keypoint_names)}) but the object has "
            f"{num_keypoints}. Train with the object the dataset was made for (--object), or re-create the dataset with `kptrack synth`."
        )
    out: dict[int, np.ndarray] = {}
    for a in coco.annotations:
        out.setdefault(a.image_id, a.v.astype(np.int8))
    return out


def _check_models_dir(root: Path, obj) -> None:
    """A synth dataset carries models/keypoints.json: its count must match the object's."""
    for cand in (root / "models" / "keypoints.json", root.parent / "models" / "keypoints.json"):
        if cand.is_file():
            try:
                names = json.loads(cand.read_text(encoding="utf-8")).get("names", [])
            except (OSError, ValueError, AttributeError):
                return
            if names and len(names) != obj.num_keypoints:
                raise KptrackError(
                    f"{cand}: the dataset was made for {len(names)} keypoints but --object has {obj.num_keypoints}. "
                    "Train with the object the dataset was made for (--object DIR), or re-create the dataset with `kptrack synth`."
                )
            return


def _choose_split(root: Path, split: str | None) -> str | None:
    """Pick the training split of a BOP root: the given one, or the only 'train*' split, or the only split."""
    if split is not None or not root.is_dir():
        return split
    if is_scene_dir(root) or any(p.is_dir() and is_scene_dir(p) for p in root.iterdir()):
        return None  # a scene or split folder
    splits = sorted(p.name for p in root.iterdir() if p.is_dir() and any(q.is_dir() and is_scene_dir(q) for q in p.iterdir()))
    train = [s for s in splits if s.startswith("train")]
    if len(train) == 1:
        return train[0]
    if len(splits) == 1:
        return splits[0]
    if not splits:
        return None  # find_scene_dirs raises the clear error
    raise KptrackError(
        f"{root}: holds several splits ({', '.join(splits)}). Point --data at one split folder, e.g. {root / splits[0]}."
    )


def bop_records(root: str | Path, obj, split: str | None = None, obj_id: int = 1) -> list[Record]:
    """Records of object ``obj`` (ObjectModel) in a BOP dataset root / split / scene folder.

    For a symmetric object the keypoints are those of the ground truth's symmetric equivalent
    that is canonical for the view (:func:`tracker.objects.symmetry.canonical_pose`), so images
    that look alike get the same heatmaps."""
    root = Path(root)
    _check_models_dir(root, obj)
    split = _choose_split(root, split)
    ds = BopDataset(root, split, obj_id=obj_id, object=obj)
    k = obj.num_keypoints
    group = symmetry_group(obj)
    vis_cache: dict[Path, dict[int, np.ndarray]] = {}
    out = []
    for s in ds:
        scene_dir = s.image_path.parent.parent
        if scene_dir not in vis_cache:
            vis_cache[scene_dir] = _scene_visibility(scene_dir, k)
        v = vis_cache[scene_dir].get(s.im_id) if s.gt_index == 0 else None
        uv = np.asarray(s.keypoints_uv, dtype=np.float64)
        sym = None if group.is_trivial else SymmetricLabels(s.R_m2c, s.t_m2c, s.K, obj.keypoints, group, v)
        if sym is not None:  # a symmetric object: label the equivalent pose canonical for this view
            uv, v = sym()
        # The box of the projected 3D bounding box, unclipped: exactly what the tracker crops
        # around when it predicts a pose (tracker.Tracker._roi_affine), so training crops and
        # run-time crops share one scale. Fall back to BOP's bbox_obj, then the keypoints' box.
        box = _keypoint_box(project(obj.box_corners, s.R_m2c, s.t_m2c, s.K), None)
        if box is None and s.bbox_obj is not None and s.bbox_obj[2] > 0 and s.bbox_obj[3] > 0:
            box = tuple(float(x) for x in s.bbox_obj)
        if box is None:
            box = _keypoint_box(uv, v)
        if box is None:
            continue
        pose = (np.asarray(s.R_m2c, np.float64), np.asarray(s.t_m2c, np.float64).reshape(3), np.asarray(s.K, np.float64))
        out.append(Record(s.image_path, uv, v, box, f"{s.scene_id}/{s.im_id}/{s.gt_index}", s.mask_path, sym, pose))
    return out


def coco_records(path: str | Path, obj) -> list[Record]:
    """Records of a COCO keypoints JSON; its keypoint count must equal the object's.

    COCO carries no pose, so the labels of a symmetric object cannot be canonicalised: they are
    used as given."""
    coco = read_coco(path)
    if len(coco.keypoint_names) != obj.num_keypoints:
        raise KptrackError(
            f"{path}: the file has {len(coco.keypoint_names)} keypoints ({', '.join(coco.keypoint_names)}) but the object "
            f"has {obj.num_keypoints} ({', '.join(obj.keypoint_names)}). Label the object's keypoints in its order, or pass the matching --object."
        )
    if tuple(coco.keypoint_names) != tuple(obj.keypoint_names):
        log.warning("%s: keypoint names %s differ from the object's %s; using the file's order", path, coco.keypoint_names, obj.keypoint_names)
    out = []
    for i, s in enumerate(coco.samples):
        uv = np.asarray(s.uv, dtype=np.float64).copy()
        v = np.asarray(s.v, dtype=np.int8)
        uv[v == 0] = np.nan
        box = tuple(float(x) for x in s.bbox) if s.bbox[2] > 0 and s.bbox[3] > 0 else _keypoint_box(uv, v)
        if box is None:
            continue
        out.append(Record(Path(s.image_path), uv, v, box, f"coco/{s.image_id}/{i}"))
    return out


def load_records(data: str | Path, obj, split: str | None = None) -> list[Record]:
    """Records from ``--data``: a COCO keypoints .json file, or a BOP dataset root / split / scene folder.

    Raises KptrackError for a missing path, a keypoint-count mismatch, or an empty dataset.
    """
    p = Path(data)
    if not p.exists():
        raise KptrackError(f"--data {p}: not found. Pass a BOP dataset folder (e.g. from `kptrack synth`) or a COCO keypoints JSON.")
    if p.is_file():
        if p.suffix.lower() != ".json":
            raise KptrackError(f"--data {p}: a file must be a COCO keypoints .json; otherwise pass a BOP dataset folder.")
        recs = coco_records(p, obj)
    else:
        recs = bop_records(p, obj, split=split)
    if not recs:
        where = f"{p} (split {split})" if split else str(p)
        raise KptrackError(
            f"--data {where}: no labelled instances of the object found (empty dataset). "
            "Check the path and object id, or make data with `kptrack synth --out DIR`."
        )
    return recs
