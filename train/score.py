"""Keypoint accuracy of an exported ONNX model on a labelled split (``kptrack score``).

This scores the artifact the tracker ships, not the PyTorch checkpoint: crops are cut exactly
as validation cuts them (centred on the object's box, no augmentation), the ONNX model runs
through :class:`tracker.pipeline.infer.OnnxHeatmapModel`, heatmaps are decoded with the tracker's DARK
decoder, and errors are measured in 256x256 crop pixels. The figures are the ones the model
card quotes: PCK@2px, PCK@5px and mean error over visible keypoints (v=2 inside the crop). For an
object whose discrete symmetries permute its keypoints, each crop is scored against the
equivalent that fits its keypoints best, as the tracker fits whichever the network gives.

No torch is needed here, so a model can be scored on a machine that only runs the tracker.
"""

from __future__ import annotations

import json
import logging
import math
from dataclasses import dataclass
from pathlib import Path
from typing import Callable

import numpy as np

from tracker.errors import KptrackError
from tracker.geometry.crop import heatmap_to_crop
from tracker.objects import load_object
from tracker.objects.symmetry import symmetry_group
from tracker.objects.symmetry_keypoints import keypoint_permutations
from tracker.pipeline.decode import decode_dark
from tracker.pipeline.infer import OnnxHeatmapModel
from train.dataset import CropDataset, crop_pixel_errors
from train.records import load_records
from train.equivalents import best_equivalent_labels

log = logging.getLogger(__name__)


#: A labelled keypoint further than this from its truth (crop px) is misplaced, for conf_auc.
MISPLACED_PX = 10.0
#: A misplaced keypoint this close (crop px) to another keypoint's truth was put on that one: swapped.
SWAPPED_PX = 6.0


@dataclass(frozen=True)
class ScoreConfig:
    """What ``kptrack score`` scores.

    model: the ONNX model file. data: BOP dataset root / split / scene folder, or a COCO keypoints
    JSON; split: its BOP split. object: the object the model was trained for ('default' or an
    object directory). max_images: score at most this many records, evenly spaced (None: all).
    batch: crops per inference call. device: auto | cpu | cuda; threads: ONNX Runtime intra-op
    threads (None: its default). json_out: also write the scores as JSON there.
    """

    model: str
    data: str
    split: str | None = None
    object: str = "default"
    max_images: int | None = None
    batch: int = 16
    device: str = "auto"
    threads: int | None = None
    json_out: str | None = None


def score_crops(model_fn: Callable[[np.ndarray], np.ndarray], dataset, indices=None, batch: int = 16,
                perms: np.ndarray | None = None) -> dict:
    """Score ``model_fn`` over ``dataset`` items.

    model_fn: crops (N, S, S, 3) uint8 BGR -> heatmaps (N, K, Hm, Hm) float32.
    dataset: a train.dataset.CropDataset (items as dicts with 'image', 'keypoints', 'visibility').
    indices: which items (default all). Returns {'pck2', 'pck5', 'mean_px', 'median_px',
    'pck5_labelled', 'n_visible', 'n_images', 'pck5_per_keypoint', 'conf_visible', 'conf_hidden',
    'pck5_hidden', 'conf_auc'} with errors in crop pixels
    ('pck5_per_keypoint': K values over each keypoint's visible instances, NaN where it has none); a keypoint with no
    decodable peak counts as a miss, its error capped at the crop diagonal in the mean. The
    confidence figures say whether the decoded peak values mean what the tracker reads them as:
    the mean over visible and over hidden keypoints (labelled, inside the crop, not visible), the
    hidden ones' PCK@5px, and :func:`confidence_auc` over all labelled keypoints (misplaced: more
    than ``MISPLACED_PX`` off). Whether misplaced keypoints are imprecise or mistaken for another:
    'misplaced', the fraction of visible keypoints more than ``MISPLACED_PX`` off; 'swapped', the
    fraction on another labelled keypoint's spot (within ``SWAPPED_PX``); 'swaps', (K, K) counts of
    keypoint i put on keypoint j's spot.
    perms: (M, K), a discrete symmetry's keypoint permutations: each crop is then scored against
    the equivalent its keypoints fit best (:func:`train.equivalents.best_equivalent_labels`).
    """
    idx = list(range(len(dataset))) if indices is None else list(indices)
    errs, vis, lab, confs = [], [], [], []
    swaps: np.ndarray | None = None
    for s in range(0, len(idx), batch):
        items = [dataset[i] for i in idx[s : s + batch]]
        crops = np.stack([it["image"] for it in items])
        hm = np.asarray(model_fn(crops), dtype=np.float32)
        decoded = [decode_dark(np.ascontiguousarray(h)) for h in hm]
        xy = np.stack([d[0] for d in decoded])
        confs.append(np.stack([d[1] for d in decoded]))
        kp, vis_k, _ = best_equivalent_labels(xy, np.stack([it["keypoints"] for it in items]),
                                              np.stack([it["visibility"] for it in items]), perms, crops.shape[1], hm.shape[-1])
        e, v, lb = crop_pixel_errors(xy, kp, vis_k, crops.shape[1], hm.shape[-1])
        if swaps is None:
            swaps = np.zeros((e.shape[1], e.shape[1]), np.int64)
        swaps += swap_counts(heatmap_to_crop(xy, crops.shape[1], hm.shape[-1]), kp, e, v, lb)
        errs.append(e)
        vis.append(v)
        lab.append(lb)
    if not errs:
        raise KptrackError("nothing to score: the split holds no images. Check --data and --split.")
    e, v, lb, conf = np.concatenate(errs), np.concatenate(vis), np.concatenate(lab), np.concatenate(confs)
    diag = crops.shape[1] * math.sqrt(2.0)
    ev = np.minimum(e[v], diag)
    el = e[lb]
    hidden = lb & ~v
    nan = float("nan")
    return {
        "pck2": float(np.mean(ev <= 2.0)) if ev.size else nan,
        "pck5": float(np.mean(ev <= 5.0)) if ev.size else nan,
        "mean_px": float(np.mean(ev)) if ev.size else nan,
        "median_px": float(np.median(ev)) if ev.size else nan,
        "pck5_labelled": float(np.mean(el <= 5.0)) if el.size else nan,
        "n_visible": int(ev.size),
        "n_images": int(e.shape[0]),
        "pck5_per_keypoint": [float(np.mean(e[v[:, k], k] <= 5.0)) if v[:, k].any() else nan for k in range(e.shape[1])],
        "conf_visible": float(np.mean(conf[v])) if v.any() else nan,
        "conf_hidden": float(np.mean(conf[hidden])) if hidden.any() else nan,
        "pck5_hidden": float(np.mean(e[hidden] <= 5.0)) if hidden.any() else nan,
        "conf_auc": confidence_auc(conf[lb], e[lb] <= MISPLACED_PX),
        "misplaced": float(np.mean(e[v] > MISPLACED_PX)) if v.any() else nan,
        "swapped": float(swaps.sum() / v.sum()) if v.any() else nan,
        "swaps": swaps.tolist(),
    }


def swap_counts(pred_px: np.ndarray, gt_px: np.ndarray, err: np.ndarray, visible: np.ndarray,
                labelled: np.ndarray) -> np.ndarray:
    """(K, K) int counts: [i, j] = visible keypoints i that are misplaced (``err`` > ``MISPLACED_PX``)
    and within ``SWAPPED_PX`` of keypoint j's labelled position in the same crop (the nearest such j).
    pred_px, gt_px: (N, K, 2) crop px; err, visible, labelled: (N, K)."""
    k = err.shape[1]
    out = np.zeros((k, k), np.int64)
    gt = np.where(labelled[..., None], gt_px, np.nan)
    for c, i in zip(*np.nonzero(visible & (err > MISPLACED_PX))):
        d = np.linalg.norm(gt[c] - pred_px[c, i], axis=1)
        d[i] = np.inf
        d[~np.isfinite(d)] = np.inf
        j = int(np.argmin(d))
        if d[j] <= SWAPPED_PX:
            out[i, j] += 1
    return out


def confidence_auc(conf: np.ndarray, good: np.ndarray) -> float:
    """How well confidence ranks well-placed keypoints over misplaced ones: the probability that a
    random good one (``good`` True) has a higher confidence than a random bad one, ties counting
    half (the area under the ROC curve, by the Mann-Whitney rank sum). 1 = confidence alone tells
    them apart, 0.5 = it says nothing; NaN when either group is empty. conf, good: (n,)."""
    conf, good = np.asarray(conf, np.float64).ravel(), np.asarray(good, bool).ravel()
    n_good, n_bad = int(good.sum()), int((~good).sum())
    if n_good == 0 or n_bad == 0:
        return float("nan")
    order = np.argsort(conf, kind="mergesort")
    ranks = np.empty(len(conf))
    ranks[order] = np.arange(1, len(conf) + 1)
    _, first, counts = np.unique(conf[order], return_index=True, return_counts=True)
    for f, c in zip(first[counts > 1], counts[counts > 1]):  # ties share their mean rank
        ranks[order[f : f + c]] = f + (c + 1) / 2.0
    return float((ranks[good].sum() - n_good * (n_good + 1) / 2.0) / (n_good * n_bad))


def run_score(cfg: ScoreConfig) -> dict:
    """Score the ONNX model ``cfg.model`` on ``cfg.data`` (BOP root/split/scene or COCO JSON)."""
    obj = load_object(cfg.object)
    model = OnnxHeatmapModel(cfg.model, device=cfg.device, threads=cfg.threads)
    if list(model.meta.keypoint_names) != list(obj.keypoint_names):
        raise KptrackError(
            f"{cfg.model}: the model's keypoints {list(model.meta.keypoint_names)} are not --object {cfg.object}'s "
            f"{list(obj.keypoint_names)}. Score it against the object it was trained for."
        )
    records = load_records(cfg.data, obj, split=cfg.split)
    if cfg.max_images is not None and len(records) > cfg.max_images:
        keep = np.linspace(0, len(records) - 1, cfg.max_images).round().astype(int)
        records = [records[i] for i in keep]
    ds = CropDataset(records, augment=None, input_size=model.meta.input_size, heatmap_size=model.meta.heatmap_size)
    scores = score_crops(model, ds, batch=cfg.batch, perms=keypoint_permutations(symmetry_group(obj), obj.keypoints))
    scores["pck5_per_keypoint"] = dict(zip(obj.keypoint_names, scores["pck5_per_keypoint"]))
    scores.update({"model": str(cfg.model), "data": str(cfg.data), "split": cfg.split, "provider": model.provider})
    if cfg.json_out:
        Path(cfg.json_out).parent.mkdir(parents=True, exist_ok=True)
        Path(cfg.json_out).write_text(json.dumps(scores, indent=2) + "\n")
    return scores

