"""Training data from several sources mixed by weight: ``kptrack train --data synth --data pseudo:2 --data labels.json:1``.

Each ``--data`` is ``PATH[:WEIGHT]``: a BOP dataset (``kptrack synth``, ``kptrack pseudolabel``)
or a COCO keypoints JSON (``kptrack annotate``), and the share of every batch drawn from it,
relative to the other sources' weights (default 1 each: equal shares, whatever the sources'
sizes, so 300 real frames are not drowned by 20000 synthetic ones). A path that exists as
written is never split at a colon.

All sources go through the same crops and augmentation (:class:`train.dataset.CropDataset`):
real frames get the same geometric and photometric augmentation as synthetic ones. Each source
keeps its own held-out part (:func:`train.dataset.split_holdout`, per source), so validation is
reported per source as well as over all of them.

Sampling (:class:`WeightedBatchSampler`): slot ``j`` of the global batch sequence draws its
source with probability ``weight / sum(weights)``, then a uniform item of that source, then its
augmentation seed, all from ``default_rng([seed, 13, j])``: a pure function of (seed, slot), so a
resumed run draws the batches an uninterrupted one would have. One source keeps
:class:`train.dataset.InfiniteBatchSampler` (epochs of permutations), exactly as before.

A source whose keypoints are not the object's (count, or names in another order) is refused.
"""

from __future__ import annotations

import json
import math
from dataclasses import dataclass
from pathlib import Path
from typing import Sequence

import numpy as np

from tracker.errors import KptrackError
from tracker.formats.bop_scene import find_scene_dirs
from tracker.formats.coco import read_coco
from train.augment import AugmentConfig
from train.dataset import CropDataset, InfiniteBatchSampler, split_holdout
from train.records import Record, load_records


@dataclass(frozen=True)
class DataSource:
    """One ``--data``: path (BOP folder or COCO JSON), weight (> 0, relative share of the batches)."""

    path: str
    weight: float = 1.0

    @property
    def name(self) -> str:
        return Path(self.path).name or self.path


def parse_source(spec: str) -> DataSource:
    """``PATH[:WEIGHT]`` -> DataSource. A path that exists as written is taken whole."""
    s = str(spec)
    head, sep, tail = s.rpartition(":")
    if not sep or Path(s).exists() or not head:
        return DataSource(s)
    try:
        w = float(tail)
    except ValueError:
        return DataSource(s)
    if not (w > 0 and math.isfinite(w)):
        raise KptrackError(f"--data {s}: weight {tail} must be a positive number (the source's share of each batch).")
    return DataSource(head, w)


def data_sources(data: str | Sequence[str]) -> list[DataSource]:
    """The sources of ``TrainConfig.data``: one string or several."""
    specs = [data] if isinstance(data, (str, Path)) else list(data)
    if not specs:
        raise KptrackError("--data: give at least one dataset (a BOP folder or a COCO keypoints JSON).")
    return [parse_source(str(s)) for s in specs]


def source_keypoint_names(path: str | Path) -> tuple[str, ...] | None:
    """The keypoint names a dataset was made with: a COCO file's category, a BOP dataset's
    models/keypoints.json, or its first scene's keypoints_coco.json; None when it does not say."""
    p = Path(path)
    if p.is_file():
        return tuple(read_coco(p).keypoint_names)
    for cand in (p / "models" / "keypoints.json", p.parent / "models" / "keypoints.json", p.parent.parent / "models" / "keypoints.json"):
        if cand.is_file():
            try:
                names = json.loads(cand.read_text(encoding="utf-8")).get("names")
            except (OSError, ValueError, AttributeError):
                names = None
            if names:
                return tuple(str(n) for n in names)
    try:
        scenes = find_scene_dirs(p)
    except KptrackError:
        return None
    coco = next((s / "keypoints_coco.json" for s in scenes if (s / "keypoints_coco.json").is_file()), None)
    return tuple(read_coco(coco).keypoint_names) if coco else None


def check_source_keypoints(src: DataSource, obj) -> None:
    """Refuse a source labelled with other keypoints than the object's (count or order)."""
    names = source_keypoint_names(src.path)
    if names is not None and tuple(names) != tuple(obj.keypoint_names):
        raise KptrackError(
            f"--data {src.path}: labelled with keypoints ({', '.join(names)}) but the object has ({', '.join(obj.keypoint_names)}). "
            "Every source must label the object's keypoints in its order: pass the object the data was made for (--object), "
            "or re-create the data with it."
        )


class SourceCrops(CropDataset):
    """A CropDataset over the records of several sources, concatenated.

    sources: (name, weight, start, stop) per source: its items are positions ``start..stop-1``
    of this dataset (so validation can be scored per source, and sampling weighted by source)."""

    def __init__(self, records: Sequence[Record], indices, augment: AugmentConfig | None, sigma: float,
                 sources: Sequence[tuple[str, float, int, int]], coords=None):
        super().__init__(records, indices, augment=augment, sigma=sigma, coords=coords)
        self.sources = list(sources)


def source_datasets(data: str | Sequence[str], obj, augment: AugmentConfig, sigma: float, *, split: str | None = None,
                    val_fraction: float = 0.05, val_max: int = 500,
                    val_records: Sequence[Record] | None = None, coords=None) -> tuple[SourceCrops, SourceCrops]:
    """(training crops with ``augment``, validation crops without) over every source of ``data``.
    ``coords`` (a :class:`train.coords.CoordTargets`): the training crops also carry model-coordinate targets.

    Each source is held out separately (``val_fraction``, at most ``val_max``), unless
    ``val_records`` (the --val-split's) replace the held-out parts; then all of every source trains."""
    records: list[Record] = []
    train_idx: list[np.ndarray] = []
    val_idx: list[np.ndarray] = []
    train_src, val_src = [], []
    t = v = 0
    srcs = data_sources(data)
    names = [s.name for s in srcs]
    for s, name in zip(srcs, names):
        check_source_keypoints(s, obj)
        recs = load_records(s.path, obj, split=split)
        label = name if names.count(name) == 1 else s.path
        if val_records is None:
            tr, va = split_holdout(len(recs), val_fraction, val_max)
        else:
            tr, va = np.arange(len(recs)), np.zeros(0, np.int64)
        train_idx.append(tr + len(records))
        val_idx.append(va + len(records))
        train_src.append((label, s.weight, t, t + len(tr)))
        val_src.append((label, s.weight, v, v + len(va)))
        t, v = t + len(tr), v + len(va)
        records += recs
    train = SourceCrops(records, np.concatenate(train_idx), augment, sigma, train_src, coords)
    if val_records is not None:
        val = SourceCrops(val_records, None, None, sigma, [("val_split", 1.0, 0, len(val_records))])
    else:
        val = SourceCrops(records, np.concatenate(val_idx), None, sigma, val_src)
    return train, val


class WeightedBatchSampler:
    """Iteration-indexed batches of ``(position, seed)`` drawn from sources by weight (see the module docstring).

    sizes: items per source (positions are consecutive, source after source); weights: > 0.
    Same interface and sharding as :class:`train.dataset.InfiniteBatchSampler`."""

    def __init__(self, sizes: Sequence[int], weights: Sequence[float], batch: int, seed: int, start: int = 0,
                 stop: int | None = None, rank: int = 0, world: int = 1):
        sizes, w = np.asarray(sizes, np.int64), np.asarray(weights, np.float64)
        if len(sizes) != len(w) or len(sizes) == 0 or np.any(sizes < 1) or np.any(w <= 0):
            raise ValueError(f"every source needs items and a positive weight (sizes {sizes.tolist()}, weights {w.tolist()})")
        self.sizes, self.p = sizes, w / w.sum()
        self.offsets = np.concatenate([[0], np.cumsum(sizes)[:-1]])
        self.batch, self.seed, self.start, self.stop, self.rank, self.world = batch, seed, start, stop, rank, world

    def __len__(self) -> int:
        return (self.stop - self.start) if self.stop is not None else 2**31

    def slot(self, j: int) -> tuple[int, int, int]:
        """(source, position, augmentation seed) of global slot ``j``."""
        rng = np.random.default_rng([self.seed, 13, j])
        s = int(rng.choice(len(self.p), p=self.p))
        pos = int(self.offsets[s] + rng.integers(self.sizes[s]))
        return s, pos, int(rng.integers(2**63 - 1))

    def batch_at(self, it: int) -> list[tuple[int, int]]:
        first = it * self.batch * self.world + self.rank * self.batch
        return [self.slot(j)[1:] for j in range(first, first + self.batch)]

    def __iter__(self):
        it = self.start
        while self.stop is None or it < self.stop:
            yield self.batch_at(it)
            it += 1


def batch_sampler(train: CropDataset, batch: int, seed: int, start: int = 0, stop: int | None = None, rank: int = 0,
                  world: int = 1) -> InfiniteBatchSampler | WeightedBatchSampler:
    """The training batches: weighted by source when ``train`` mixes several, else plain epochs."""
    sources = getattr(train, "sources", None) or []
    if len(sources) < 2:
        return InfiniteBatchSampler(len(train), batch, seed, start=start, stop=stop, rank=rank, world=world)
    return WeightedBatchSampler([b - a for _, _, a, b in sources], [w for _, w, _, _ in sources], batch, seed,
                                start=start, stop=stop, rank=rank, world=world)


def validation_groups(val: CropDataset) -> list[tuple[str, int, int]]:
    """(name, start, stop) of each source's validation items, when there are several; else []."""
    sources = [(n, a, b) for n, _, a, b in getattr(val, "sources", []) if b > a]
    return sources if len(sources) > 1 else []
