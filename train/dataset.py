"""Keypoint training data: the crop dataset over records (:mod:`train.records`), its batches,
and the held-out split.

Every record is one object instance: image path, keypoints ``(K, 2)`` frame pixels, COCO
visibility ``(K,)`` and the object box. Crops follow :mod:`train.augment` (one affine per
crop) and :mod:`train.heatmaps` (targets and weights); a symmetric object's crop is labelled
with the equivalent canonical for the crop as rotated.

Held-out validation: a fixed fraction of the records (default 5 %, at most 500, at least 1),
chosen by a fixed-seed permutation that does not depend on the training seed, so no run ever
trains on them; or a separate BOP split (``--val-split``).

Corrupt or unreadable images are skipped (another record is drawn in their place) and reported
back with each batch, so the loop can count them; training never stops for them.
"""

from __future__ import annotations

import math
from typing import Sequence

import cv2
import numpy as np

from tracker.geometry.crop import HEATMAP_SIZE, INPUT_SIZE, apply_affine, heatmap_to_crop
from tracker.errors import KptrackError
from train.augment import AugmentConfig, box_affine, occlude_keypoint, photometric, sample_affine, warp
from train.heatmaps import DEFAULT_SIGMA, gaussian_targets
from train.records import Record

VAL_SEED = 20240611  # fixed: the held-out set must not depend on the training seed
MAX_TRIES = 64


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
    record indices whose image could not be read (skipped), ``record``: the index of the record
    cropped. With ``coords`` (a
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
        out["bad"], out["record"] = bad, ridx
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
            uv, v, R, t = rec.symmetric.labels_and_pose(roll)
            pose = None if pose is None else (R, t, pose[2])  # coordinates of that same equivalent
        v = v if v is not None else _derive_visibility(rec, (h, w), uv)
        q = apply_affine(A, uv)
        if rng is not None and self.augment is not None and not search:
            crop = occlude_keypoint(rng, crop, q, v, self.augment)
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


def normalise_batch(images, mean, std, channel_order: str = "RGB", memory_format=None):
    """(N, S, S, 3) uint8 BGR torch tensor -> (N, 3, S, S) float32 network input, as ModelMeta.normalise,
    in ``memory_format`` (default torch.contiguous_format; torch.channels_last for a network that
    runs in it). One pass per channel, written straight into the output: the broadcast over
    channels last it replaces took 5 ms a batch of 8 on 2 CPU cores, this takes 1."""
    import torch  # lazily, as in collate: this module must import without torch

    n, h, w, _ = images.shape
    out = torch.empty((n, 3, h, w), dtype=torch.float32, device=images.device,
                      memory_format=memory_format or torch.contiguous_format)
    src = images.permute(0, 3, 1, 2)
    for k, c in enumerate((0, 1, 2) if channel_order == "BGR" else (2, 1, 0)):  # mean, std: in channel_order
        torch.sub(src[:, c], float(mean[k]), out=out[:, k]).div_(float(std[k]))
    return out


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
