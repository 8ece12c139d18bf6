"""Gaussian heatmap targets for keypoint regression.

A crop of ``INPUT_SIZE`` x ``INPUT_SIZE`` pixels gives ``K`` x ``HEATMAP_SIZE`` x ``HEATMAP_SIZE``
targets: one unnormalised 2D Gaussian (peak 1) per keypoint, as in Tompson et al. (NIPS 2014)
and Newell et al., "Stacked Hourglass Networks for Human Pose Estimation" (ECCV 2016).

Coordinates follow :mod:`tracker.geometry.crop` (the unbiased data processing of Huang et al., CVPR 2020):
a crop pixel ``q`` maps to the heatmap cell ``h = q * (H - 1) / (I - 1)``. The Gaussian is centred
on the exact, unrounded cell position, so the distribution-aware decoder of Zhang et al.,
"Distribution-Aware Coordinate Representation for Human Pose Estimation" (DARK, CVPR 2020),
``tracker.pipeline.decode.decode_dark``, recovers the sub-cell position it was drawn at.

Visibility (COCO convention) and what each case is trained to:

===============================  ===================  ==========
keypoint                         target               weight
===============================  ===================  ==========
v=2 visible, inside the crop     Gaussian             1
v=1 hidden, inside the crop      Gaussian             1  (the pose needs hidden keypoints too;
                                 (peak hidden_peak)      its peak lowered by ``--hidden-peak``)
v>=1 but centre off the heatmap  all zeros            1  (the net learns to answer "not here")
v=0 unlabelled                   all zeros            0  (no gradient: we do not know)
===============================  ===================  ==========

"Off the heatmap" means the centre lies outside ``[-0.5, H - 0.5]`` cells, i.e. outside the
area the outer cells cover. A keypoint just outside still gets zero, not a clipped Gaussian,
so a peak at the border never means "somewhere beyond the edge": the tracker reads low
confidence as "not in this crop" and leaves the keypoint out of the pose fit.
"""

from __future__ import annotations

import math

import numpy as np
import torch

from tracker.geometry.crop import HEATMAP_SIZE, INPUT_SIZE, crop_to_heatmap, crop_to_heatmap_scale
from tracker.pipeline.decode import decode_dark

DEFAULT_SIGMA = 2.0


def gaussian_targets(
    keypoints_crop: np.ndarray,
    visibility: np.ndarray,
    sigma: float = DEFAULT_SIGMA,
    input_size: int = INPUT_SIZE,
    heatmap_size: int = HEATMAP_SIZE,
) -> tuple[np.ndarray, np.ndarray]:
    """Heatmap targets and per-keypoint loss weights for one crop.

    keypoints_crop: (K, 2) float, crop pixels (NaN allowed where unlabelled).
    visibility: (K,) int, COCO flags 0 unlabelled, 1 labelled but hidden, 2 visible.
    sigma: Gaussian standard deviation in heatmap cells (> 0).
    Returns (targets (K, heatmap_size, heatmap_size) float32 in [0, 1], weights (K,) float32).
    """
    if not sigma > 0:
        raise ValueError(f"sigma must be > 0 cells, got {sigma}")
    q = np.asarray(keypoints_crop, dtype=np.float64).reshape(-1, 2)
    v = np.asarray(visibility).reshape(-1)
    if v.shape[0] != q.shape[0]:
        raise ValueError(f"visibility has {v.shape[0]} entries for {q.shape[0]} keypoints")
    k = q.shape[0]
    h = crop_to_heatmap(q, input_size, heatmap_size)
    labelled = (v > 0) & np.all(np.isfinite(h), axis=1)
    lo, hi = -0.5, heatmap_size - 0.5
    inside = labelled & np.all((h >= lo) & (h <= hi), axis=1)

    targets = np.zeros((k, heatmap_size, heatmap_size), dtype=np.float32)
    if inside.any():
        cells = np.arange(heatmap_size, dtype=np.float64)
        hx = h[inside, 0][:, None]
        hy = h[inside, 1][:, None]
        inv = 1.0 / (2.0 * sigma * sigma)
        gx = np.exp(-((cells[None, :] - hx) ** 2) * inv)  # (k_in, W)
        gy = np.exp(-((cells[None, :] - hy) ** 2) * inv)  # (k_in, H)
        # Separable: exp(-(dx^2 + dy^2) / 2s^2) = gy[:, :, None] * gx[:, None, :].
        targets[inside] = (gy[:, :, None] * gx[:, None, :]).astype(np.float32)
    weights = labelled.astype(np.float32)
    return targets, weights


def sigma_at(it: int, iters: int, sigma: float, sigma_start: float | None, decay: float = 0.5) -> float:
    """Target sigma (heatmap cells) at iteration ``it`` of ``iters``: ``sigma_start`` narrowing to
    ``sigma`` along a half cosine over the first ``decay`` fraction of the run, then ``sigma``.
    ``sigma_start=None``: the constant ``sigma``."""
    if sigma_start is None:
        return float(sigma)
    p = min(1.0, it / max(1.0, decay * iters))
    return float(sigma + (sigma_start - sigma) * 0.5 * (1.0 + math.cos(math.pi * p)))


def batch_targets(keypoints_crop: np.ndarray, visibility: np.ndarray, sigma: float,
                  input_size: int = INPUT_SIZE, heatmap_size: int = HEATMAP_SIZE) -> np.ndarray:
    """:func:`gaussian_targets` of every crop of a batch at one sigma (the weights do not depend on it).

    keypoints_crop: (N, K, 2) crop pixels; visibility: (N, K) COCO flags.
    Returns (N, K, heatmap_size, heatmap_size) float32.
    """
    return np.stack([gaussian_targets(q, v, sigma, input_size, heatmap_size)[0] for q, v in zip(keypoints_crop, visibility)])


def batch_targets_torch(keypoints_crop: torch.Tensor, visibility: torch.Tensor, sigma: float, hidden_peak: float = 1.0,
                        input_size: int = INPUT_SIZE, heatmap_size: int = HEATMAP_SIZE) -> torch.Tensor:
    """:func:`batch_targets` then :func:`scale_hidden`, as one vectorised pass on the tensors' device.

    The training loop redraws a batch's targets whenever the sigma schedule or the half-resolution
    phase makes the workers' targets wrong; drawn crop by crop in numpy that took the loop's own
    process about 8 ms per batch of 32, a third of a GPU step. Here the (N, K) Gaussians are
    separable outer products of (N, K, H) and (N, K, W) vectors; the result equals
    :func:`batch_targets` to float32 rounding (a test holds them together).

    keypoints_crop: (N, K, 2) crop pixels (NaN where unlabelled); visibility: (N, K) COCO flags.
    Returns (N, K, heatmap_size, heatmap_size) float32 on keypoints_crop's device.
    """
    if not sigma > 0:
        raise ValueError(f"sigma must be > 0 cells, got {sigma}")
    h = keypoints_crop.to(torch.float64) * crop_to_heatmap_scale(input_size, heatmap_size)
    v = visibility.to(h.device)
    finite = torch.isfinite(h).all(dim=-1)
    inside = (v > 0) & finite & ((h >= -0.5) & (h <= heatmap_size - 0.5)).all(dim=-1)
    h = torch.where(finite[..., None], h, torch.zeros_like(h))
    cells = torch.arange(heatmap_size, dtype=torch.float64, device=h.device)
    inv = 1.0 / (2.0 * sigma * sigma)
    gx = torch.exp(-((cells - h[..., 0:1]) ** 2) * inv)  # (N, K, W)
    gy = torch.exp(-((cells - h[..., 1:2]) ** 2) * inv)  # (N, K, H)
    peak = _hidden_scale(v, hidden_peak) * inside  # 0 where the target is all zeros
    gy = (gy * peak[..., None]).to(torch.float32)  # the (N, K, H, W) product itself in float32
    return gy[..., :, None] * gx.to(torch.float32)[..., None, :]


def scale_hidden(targets, visibility, hidden_peak: float):
    """Targets with each hidden keypoint's Gaussian (v=1) scaled to peak ``hidden_peak``, so that a
    network's confidence on a keypoint it cannot see is trained to stay below its confidence on a
    visible one (the tracker weighs and gates keypoints by confidence). 1 returns ``targets``.

    targets: (N, K, H, W) float32; visibility: (N, K) COCO flags; numpy arrays, or torch tensors
    on one device (the training loop's). Returns a new array or tensor unless 1.
    """
    if hidden_peak == 1.0:
        return targets
    if isinstance(targets, torch.Tensor):
        return targets * _hidden_scale(visibility, hidden_peak).to(targets.dtype)[:, :, None, None]
    scale = np.where(np.asarray(visibility) == 1, np.float32(hidden_peak), np.float32(1.0)).astype(np.float32)
    return targets * scale[:, :, None, None]


def _hidden_scale(visibility: torch.Tensor, hidden_peak: float) -> torch.Tensor:
    """(N, K) float32: each keypoint's target peak, ``hidden_peak`` where hidden (v=1), else 1."""
    return torch.where(visibility == 1, hidden_peak, 1.0)


def half_resolution_keypoints(keypoints_crop):
    """Crop pixels -> pixels of the crop pooled 2x2 (half resolution): the small image's pixel i
    averages pixels 2i and 2i + 1, so its centre is at 2i + 0.5 and q maps to (q - 0.5) / 2.
    keypoints_crop: (..., 2) float, an array or a tensor (kept on its device); float64 out."""
    if isinstance(keypoints_crop, torch.Tensor):
        return (keypoints_crop.to(torch.float64) - 0.5) / 2.0
    return (np.asarray(keypoints_crop, dtype=np.float64) - 0.5) / 2.0


def decode_heatmaps(heatmaps: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Sub-cell decode of (K, H, W) heatmaps with the tracker's DARK decoder (same one as run time).

    Returns (xy (K, 2) float64 heatmap cells, conf (K,) float64).
    """
    return decode_dark(heatmaps)
