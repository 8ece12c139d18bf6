"""Keypoint training data: records from BOP datasets or COCO keypoints JSON, and the crop dataset.

Sources
-------
* A BOP dataset (:class:`tracker.formats.bop_dataset.BopDataset`): the split ``kptrack synth`` writes, or a
  user's LINEMOD / YCB-V in BOP layout. Keypoints are the object's 3D keypoints projected with
  each image's ground-truth pose, so any BOP dataset with poses is usable. Per-keypoint
  visibility comes from the scene's ``keypoints_coco.json`` when present (synth writes it, with a
  depth test); otherwise from the image bounds and, where a ``mask_visib`` file exists, from the
  mask at the keypoint (outside the mask -> hidden, v=1).
* A COCO keypoints JSON (:mod:`tracker.formats.coco`) with its images: data labelled by hand.

Every record is one object instance: image path, keypoints ``(K, 2)`` frame pixels, COCO
visibility ``(K,)`` and the object box: for BOP the box of the projected 3D bounding box
(what the tracker crops around), for COCO the annotation's box. Crops follow :mod:`train.augment` (one affine per
crop) and :mod:`train.heatmaps` (targets and weights).

Held-out validation: a fixed fraction of the records (default 5 %, at most 500, at least 1),
chosen by a fixed-seed permutation that does not depend on the training seed, so no run ever
trains on them; or a separate BOP split (``--val-split``).

Corrupt or unreadable images are skipped (another record is drawn in their place) and reported
back with each batch, so the loop can count them; training never stops for them.
"""

from __future__ import annotations

import json
import logging
import math
from dataclasses import dataclass
from pathlib import Path
from typing import Sequence

import cv2
import numpy as np

from tracker.formats.bop_dataset import BopDataset
from tracker.formats.bop_scene import is_scene_dir
from tracker.formats.coco import read_coco
from tracker.geometry import project
from tracker.geometry.crop import HEATMAP_SIZE, INPUT_SIZE, apply_affine, heatmap_to_crop
from tracker.errors import KptrackError
from tracker.objects.symmetry import symmetry_group
from tracker.objects.symmetry_keypoints import SymmetricLabels
from train.augment import AugmentConfig, box_affine, photometric, sample_affine, warp
from train.heatmaps import DEFAULT_SIGMA, gaussian_targets

log = logging.getLogger(__name__)

VAL_SEED = 20240611  # fixed: the held-out set must not depend on the training seed
MAX_TRIES = 64


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


def split_holdout(n: int, fraction: float = 0.05, max_val: int = 500) -> tuple[np.ndarray, np.ndarray]:
    """Deterministic (train_idx, val_idx) of n records; val = min(max_val, max(1, round(fraction * n)))."""
    if n < 2:
        raise KptrackError(
            f"--data: only {n} labelled image(s); training needs at least 2 (one is held out for validation). Add data."
        )
    n_val = min(max_val, max(1, int(round(fraction * n))), n - 1)
    perm = np.random.default_rng(VAL_SEED).permutation(n)
    return np.sort(perm[n_val:]), np.sort(perm[:n_val])


# ---------------------------------------------------------------------------- crops
def _derive_visibility(rec: Record, image_hw: tuple[int, int], uv: np.ndarray | None = None) -> np.ndarray:
    """COCO flags of keypoints uv (default: the record's) from image bounds (and the visible mask, when there is one)."""
    h, w = image_hw
    uv = rec.keypoints_uv if uv is None else uv
    fin = np.all(np.isfinite(uv), axis=1)
    inside = fin.copy()
    inside[fin] = (uv[fin, 0] >= -0.5) & (uv[fin, 0] <= w - 0.5) & (uv[fin, 1] >= -0.5) & (uv[fin, 1] <= h - 0.5)
    v = np.where(inside, 2, 0).astype(np.int8)
    if rec.mask_path is not None and inside.any():
        m = cv2.imread(str(rec.mask_path), cv2.IMREAD_GRAYSCALE)
        if m is not None and m.shape == (h, w):
            ij = np.clip(np.rint(uv[inside]).astype(int), 0, [w - 1, h - 1])
            hidden = m[ij[:, 1], ij[:, 0]] <= 127
            vi = v[inside]
            vi[hidden] = 1
            v[inside] = vi
    return v


class CropDataset:
    """Map-style dataset of 256x256 crops with heatmap targets.

    records: the records; indices: which of them this dataset serves; augment: AugmentConfig
    (training) or None (validation: deterministic box crops). Items are requested as an int
    (deterministic crop) or as ``(index, seed)`` (random crop drawn from that seed, so a batch
    is a pure function of the seed whatever the number of workers).

    Each item is a dict: ``image`` (S, S, 3) uint8 BGR crop, ``target`` (K, 64, 64) float32,
    ``weight`` (K,) float32, ``keypoints`` (K, 2) float32 crop pixels (NaN if unlabelled),
    ``visibility`` (K,) int8, ``affine`` (2, 3) float64, ``search`` bool, ``bad``: list of
    record indices whose image could not be read (skipped). With ``coords`` (a
    :class:`train.coords.CoordTargets`), also ``coords`` (4, 64, 64) float32, the crop's
    model-coordinate target, and ``has_coords`` bool (False, target zero, where the record has no pose).
    """

    def __init__(
        self,
        records: Sequence[Record],
        indices: Sequence[int] | None = None,
        augment: AugmentConfig | None = None,
        sigma: float = DEFAULT_SIGMA,
        input_size: int = INPUT_SIZE,
        heatmap_size: int = HEATMAP_SIZE,
        coords=None,
    ):
        self.records = list(records)
        self.coords = coords
        self.indices = np.arange(len(self.records)) if indices is None else np.asarray(indices, dtype=np.int64)
        self.augment = augment
        self.sigma = float(sigma)
        self.input_size = input_size
        self.heatmap_size = heatmap_size

    def __len__(self) -> int:
        return len(self.indices)

    def _load(self, ridx: int) -> np.ndarray | None:
        img = cv2.imread(str(self.records[ridx].image_path), cv2.IMREAD_COLOR)
        if img is None or img.ndim != 3 or img.shape[0] < 2 or img.shape[1] < 2:
            return None
        return img

    def __getitem__(self, item) -> dict:
        if isinstance(item, tuple):
            pos, seed = int(item[0]), int(item[1])
            rng = np.random.default_rng(seed)
        else:
            pos, rng = int(item), None
        bad: list[int] = []
        n = len(self.indices)
        for attempt in range(MAX_TRIES):
            ridx = int(self.indices[pos % n])
            img = self._load(ridx)
            if img is not None:
                break
            bad.append(ridx)
            pos = int(rng.integers(n)) if rng is not None else pos + 1
        else:
            raise KptrackError(
                f"{MAX_TRIES} images in a row could not be read (last: {self.records[ridx].image_path}). "
                "The dataset's images are missing or corrupt; re-create it."
            )
        out = self.make_crop(ridx, img, rng)
        out["bad"] = bad
        return out

    def make_crop(self, ridx: int, img: np.ndarray, rng: np.random.Generator | None) -> dict:
        rec = self.records[ridx]
        h, w = img.shape[:2]
        search = False
        if rng is None or self.augment is None:
            A = box_affine(np.asarray(rec.box), (self.augment or AugmentConfig()).box_padding, self.input_size)
            crop = warp(img, A, self.input_size)
        else:
            A, search = sample_affine(rng, np.asarray(rec.box), (w, h), self.augment, self.input_size)
            border = (0, 0, 0) if search or rng.random() < 0.7 else tuple(int(x) for x in rng.integers(0, 256, 3))
            crop = photometric(rng, warp(img, A, self.input_size, border), self.augment)
        uv, v, pose = rec.keypoints_uv, rec.visibility, rec.pose
        if rec.symmetric is not None:  # the equivalent canonical for the crop as rotated (tracker.objects.symmetry)
            roll = math.atan2(A[1, 0], A[0, 0])
            uv, v = rec.symmetric(roll)
            if self.coords is not None and pose is not None:  # coordinates of that same equivalent
                pose = (*rec.symmetric.pose(roll), pose[2])
        v = v if v is not None else _derive_visibility(rec, (h, w), uv)
        q = apply_affine(A, uv)
        target, weight = gaussian_targets(q, v, self.sigma, self.input_size, self.heatmap_size)
        out = {
            "image": np.ascontiguousarray(crop),
            "target": target,
            "weight": weight,
            "keypoints": q.astype(np.float32),
            "visibility": np.asarray(v, dtype=np.int8),
            "affine": A,
            "search": search,
        }
        if self.coords is not None:
            has = pose is not None
            out["coords"] = (self.coords(pose, (h, w), A) if has
                             else np.zeros((4, self.heatmap_size, self.heatmap_size), np.float32))
            out["has_coords"] = has
        return out


def collate(items: list[dict]) -> dict:
    """Stack a batch of CropDataset items into torch tensors; ``bad`` becomes one flat list."""
    import torch  # lazily: `kptrack score` reads data through this module on machines without torch

    out = {}
    for k in ("image", "target", "weight", "keypoints", "visibility", "affine"):
        out[k] = torch.from_numpy(np.stack([it[k] for it in items]))
    out["search"] = torch.tensor([bool(it["search"]) for it in items])
    if "coords" in items[0]:
        out["coords"] = torch.from_numpy(np.stack([it["coords"] for it in items]))
        out["has_coords"] = torch.tensor([bool(it["has_coords"]) for it in items])
    out["bad"] = [b for it in items for b in it["bad"]]
    return out


class InfiniteBatchSampler:
    """Iteration-indexed batches of ``(index, seed)`` for an iteration-based loop.

    Batch ``it`` (0-based) of rank ``r`` is fixed by (seed, it, r): epochs are fresh
    permutations of the n items, the global batch of ``batch * world`` items is cut into one
    slice per rank (DistributedSampler's sharding), and each item carries its own augmentation
    seed. So resuming at iteration ``start`` reproduces exactly the batches a run that never
    stopped would have drawn, for any number of DataLoader workers.
    """

    def __init__(self, n: int, batch: int, seed: int, start: int = 0, stop: int | None = None, rank: int = 0, world: int = 1):
        if n < 1:
            raise ValueError("empty dataset")
        self.n, self.batch, self.seed, self.start, self.stop, self.rank, self.world = n, batch, seed, start, stop, rank, world

    def __len__(self) -> int:
        return (self.stop - self.start) if self.stop is not None else 2**31

    def _perm(self, epoch: int) -> np.ndarray:
        return np.random.default_rng([self.seed, 7, epoch]).permutation(self.n)

    def batch_at(self, it: int) -> list[tuple[int, int]]:
        g = self.batch * self.world
        first = it * g + self.rank * self.batch
        out = []
        cache: dict[int, np.ndarray] = {}
        for j in range(first, first + self.batch):
            epoch, off = divmod(j, self.n)
            if epoch not in cache:
                cache[epoch] = self._perm(epoch)
            seed = int(np.random.default_rng([self.seed, 11, j]).integers(2**63 - 1))
            out.append((int(cache[epoch][off]), seed))
        return out

    def __iter__(self):
        it = self.start
        while self.stop is None or it < self.stop:
            yield self.batch_at(it)
            it += 1


def normalise_batch(images, mean, std, channel_order: str = "RGB"):
    """(N, S, S, 3) uint8 BGR torch tensor -> (N, 3, S, S) float32 network input, as ModelMeta.normalise."""
    import torch  # lazily, as in collate: this module must import without torch

    x = images if channel_order == "BGR" else images.flip(-1)
    x = x.permute(0, 3, 1, 2).float()
    m = torch.tensor(mean, dtype=torch.float32, device=x.device).view(1, 3, 1, 1)
    s = torch.tensor(std, dtype=torch.float32, device=x.device).view(1, 3, 1, 1)
    return ((x - m) / s).contiguous()


def crop_pixel_errors(pred_xy_cells: np.ndarray, keypoints_crop: np.ndarray, visibility: np.ndarray,
                      input_size: int = INPUT_SIZE, heatmap_size: int = HEATMAP_SIZE) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Per-keypoint errors in crop pixels.

    pred_xy_cells: (N, K, 2) decoded heatmap cells (NaN where no peak); keypoints_crop: (N, K, 2)
    crop px; visibility (N, K). Returns (err (N, K) float64 px, NaN predictions count as inf;
    visible (N, K) bool: v == 2 and inside the crop; labelled (N, K) bool: v >= 1 and inside).
    """
    pred = heatmap_to_crop(pred_xy_cells, input_size, heatmap_size)
    gt = np.asarray(keypoints_crop, dtype=np.float64)
    err = np.linalg.norm(pred - gt, axis=-1)
    err[~np.isfinite(err)] = math.inf
    inside = np.all(np.isfinite(gt), axis=-1) & np.all((gt >= -0.5) & (gt <= input_size - 0.5), axis=-1)
    v = np.asarray(visibility)
    return err, inside & (v == 2), inside & (v >= 1)
