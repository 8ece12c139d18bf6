"""Scoring a symmetric object's keypoints against the equivalent the network chose.

For a discrete symmetry that permutes the keypoints (:func:`tracker.objects.symmetry_keypoints.keypoint_permutations`),
every equivalent pose gives the same image, and its labels are the canonical labels reordered.
A network trained with the min-over-equivalents loss (:func:`train.validation.heatmap_loss`) may
answer with any of them, and the tracker fits whichever it gets, so its keypoints are scored
against the equivalent that fits them best, per image. Numpy only (``kptrack score`` runs without
torch).
"""

from __future__ import annotations

import math

import numpy as np

from tracker.geometry.crop import HEATMAP_SIZE, INPUT_SIZE
from train.dataset import crop_pixel_errors


def best_equivalent_labels(pred_xy_cells: np.ndarray, keypoints_crop: np.ndarray, visibility: np.ndarray,
                           perms: np.ndarray | None, input_size: int = INPUT_SIZE,
                           heatmap_size: int = HEATMAP_SIZE) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Each image's labels under the equivalent nearest its prediction.

    pred_xy_cells: (N, K, 2) decoded heatmap cells; keypoints_crop: (N, K, 2) crop px; visibility
    (N, K); perms: (M, K) or None (labels unchanged). The equivalent minimises the summed error
    (capped at the crop diagonal) over the image's visible keypoints. Returns (keypoints (N, K, 2),
    visibility (N, K), chosen (N,) int: 0 = the canonical labels)."""
    gt, vis = np.asarray(keypoints_crop), np.asarray(visibility)
    if perms is None or len(perms) < 2:
        return gt, vis, np.zeros(len(gt), np.int64)
    cap = input_size * math.sqrt(2.0)
    cost = []
    for p in perms:
        e, v, _ = crop_pixel_errors(pred_xy_cells, gt[:, p], vis[:, p], input_size, heatmap_size)
        cost.append(np.where(v, np.minimum(e, cap), 0.0).sum(1))
    chosen = np.argmin(np.stack(cost, 1), axis=1)
    idx = np.asarray(perms)[chosen]  # (N, K)
    rows = np.arange(len(gt))[:, None]
    return gt[rows, idx], vis[rows, idx], chosen
