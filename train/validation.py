"""The training loss and the validation metrics.

Loss: the MSE between predicted and Gaussian target heatmaps of Newell et al., "Stacked
Hourglass Networks for Human Pose Estimation" (ECCV 2016), weighted per keypoint (weight 0 for
unlabelled keypoints, see :mod:`train.heatmaps`) and summed over all supervised outputs (every
hourglass stack: intermediate supervision).

Validation: the last output's heatmaps are decoded with the tracker's DARK decoder and compared
in the 256x256 crop: PCK@2px and PCK@5px and the mean error over visible keypoints (v=2, inside
the crop), PCK@5px over all labelled keypoints (hidden ones too), and the weighted validation
loss. :func:`is_better` ranks two score sets (PCK@5px, then lower mean error).
"""

from __future__ import annotations

import math
from typing import Sequence

import numpy as np
import torch
import torch.nn as nn

from tracker.formats.modelmeta import ModelMeta
from tracker.geometry.crop import INPUT_SIZE
from train.dataset import crop_pixel_errors, normalise_batch
from train.equivalents import best_equivalent_labels
from train.heatmaps import decode_heatmaps

# The input normalisation every network is trained with: ModelMeta's defaults (the keypoint
# name is a placeholder; only mean, std and channel order are read).
DEFAULT_META = ModelMeta(keypoint_names=("k",))


def heatmap_loss(outputs, target: torch.Tensor, weight: torch.Tensor, peak_weight: float = 1.0,
                 perms: torch.Tensor | None = None) -> torch.Tensor:
    """Visibility-weighted squared error, summed over heatmap cells, averaged over crops and
    keypoints, summed over the supervised outputs (stacks). outputs: tensor or list of (N, K, H, W).

    peak_weight > 1 weights each cell by ``1 + (peak_weight - 1) * target``: a 64x64 map has about
    4096 cells and a sigma-2 peak covers some 30 of them, so with plain MSE the cheapest early
    answer is an all-zero map; weighting the peak makes drawing it pay from the first iterations.

    perms: (M, K) long, a discrete symmetry's keypoint permutations
    (:func:`tracker.objects.symmetry_keypoints.keypoint_permutations`), or None. With them each crop is
    scored against the equivalent its prediction fits best (the minimum over the M reorderings of
    its target, summed over the stacks), so the network is free to pick, per view, the equivalent
    it finds easiest to see rather than the canonical rule's, whose boundaries are not visible in
    the image (the min-over-symmetries loss of PoseCNN's ShapeMatch-Loss and of Pitteri et al.'s
    discussion, applied to keypoint heatmaps).
    """
    outs = outputs if isinstance(outputs, (list, tuple)) else [outputs]
    n = target.shape[0] * target.shape[1]
    if perms is not None:
        target, weight = target[:, perms], weight[:, perms]  # (N, M, K, H, W), (N, M, K)
        outs = [o[:, None] for o in outs]
    w = weight[..., None, None]
    if peak_weight != 1.0:
        w = w * (1.0 + (peak_weight - 1.0) * target)
    if perms is None:
        return sum(((o - target) ** 2 * w).sum() / n for o in outs)
    per = sum(((o - target) ** 2 * w).sum(dim=(2, 3, 4)) for o in outs)  # (N, M)
    return per.min(dim=1).values.sum() / n


@torch.no_grad()
def evaluate(model: nn.Module, loader, device: torch.device, meta: ModelMeta = DEFAULT_META,
             memory_format=torch.contiguous_format, groups: Sequence[tuple[str, int, int]] = (),
             perms: np.ndarray | None = None) -> dict:
    """Validation metrics of ``model`` (its last output) over ``loader``'s batches.

    Returns {'val_loss', 'pck2', 'pck5', 'mean_px', 'pck5_labelled', 'n_visible', 'n_images'};
    errors are in 256x256 crop pixels after DARK decoding; a keypoint with no positive peak
    counts as a miss (its error as the crop diagonal in the mean). groups: (name, start, stop)
    item ranges of an unshuffled loader (the data sources, :mod:`train.sources`); each gets the
    same metrics but the loss under ``scores['sources'][name]``. perms: (M, K), a discrete
    symmetry's keypoint permutations: the loss and the errors are then taken against each crop's
    best-fitting equivalent (:func:`train.equivalents.best_equivalent_labels`), as the tracker
    fits whichever the network gives.
    """
    tperms = None if perms is None else torch.as_tensor(perms, dtype=torch.long, device=device)
    was = model.training
    model.eval()
    errs, vis, lab = [], [], []
    loss_sum, n_img = 0.0, 0
    for batch in loader:
        x = normalise_batch(batch["image"].to(device), meta.mean, meta.std, meta.channel_order, memory_format)
        hm = model(x)
        if isinstance(hm, (list, tuple)):
            hm = hm[-1]
        t, w = batch["target"].to(device), batch["weight"].to(device)
        loss_sum += float(heatmap_loss(hm, t, w, perms=tperms)) * x.shape[0]
        n_img += x.shape[0]
        hm_np = hm.float().cpu().numpy()
        xy = np.stack([decode_heatmaps(h)[0] for h in hm_np])
        kp, vv, _ = best_equivalent_labels(xy, batch["keypoints"].numpy(), batch["visibility"].numpy(), perms,
                                           INPUT_SIZE, hm_np.shape[-1])
        e, v, lb = crop_pixel_errors(xy, kp, vv, INPUT_SIZE, hm_np.shape[-1])
        errs.append(e)
        vis.append(v)
        lab.append(lb)
    model.train(was)
    if n_img == 0:
        return {}
    e, v, lb = np.concatenate(errs), np.concatenate(vis), np.concatenate(lab)
    scores = {"val_loss": loss_sum / n_img, **_crop_scores(e, v, lb)}
    if groups:
        scores["sources"] = {name: _crop_scores(e[a:b], v[a:b], lb[a:b]) for name, a, b in groups}
    return scores


def _crop_scores(e: np.ndarray, v: np.ndarray, lb: np.ndarray) -> dict:
    """PCK@2/5px, mean px (visible keypoints) and PCK@5px (all labelled) of errors e (N, K) crop px."""
    ev = np.minimum(e[v], INPUT_SIZE * math.sqrt(2.0))
    el = e[lb]
    return {
        "pck2": float(np.mean(ev <= 2.0)) if ev.size else float("nan"),
        "pck5": float(np.mean(ev <= 5.0)) if ev.size else float("nan"),
        "mean_px": float(np.mean(ev)) if ev.size else float("nan"),
        "pck5_labelled": float(np.mean(el <= 5.0)) if el.size else float("nan"),
        "n_visible": int(ev.size),
        "n_images": int(len(e)),
    }


def is_better(a: dict, b: dict | None) -> bool:
    """Whether scores ``a`` beat ``b``: higher PCK@5px, then lower mean error (NaN loses)."""
    if not a:
        return False
    if not b:
        return True
    ka = (a.get("pck5", -1.0), -a.get("mean_px", math.inf))
    kb = (b.get("pck5", -1.0), -b.get("mean_px", math.inf))
    ka = tuple(-math.inf if (isinstance(x, float) and math.isnan(x)) else x for x in ka)
    kb = tuple(-math.inf if (isinstance(x, float) and math.isnan(x)) else x for x in kb)
    return ka > kb
