"""The visibility gate: heatmaps of keypoints the model says are hidden are left out of the fit.

A heatmap network places a keypoint that an occluder hides where it guesses it is, often with a
confident peak: on the bottle's demo a bar along the neck moved the cap end's keypoints 25-45 px
at peaks of 0.2-0.8, and the fit followed them (benchmarks/RESULTS.md, "A bar along the bottle").
The peak value does not tell such a guess from a seen keypoint well enough (AUC 0.90 on images
with an end hidden). A model exported by ``kptrack visibility`` (:mod:`train.visibility`) has a
second output, ``(N, K)`` probabilities that the object shows at each keypoint, learned from the
training images' visible masks; :class:`VisibilityGate` turns it into the fit's input by zeroing
the heatmap of every keypoint under ``threshold``, so the decoder reports no peak there.

Dropping keypoints is right only while the others can hold the pose: with an oracle that knew
which end of the bottle an occluder hid, dropping that end always cost a sequence whose other end
was weak 16 points (RESULTS). So a crop is gated only when at least ``min_keep`` keypoints stay,
each predicted visible and peaking at ``min_peak`` or more; otherwise its heatmaps pass unchanged.
The gate's settings travel in the model's metadata (:class:`tracker.formats.modelmeta.ModelMeta`
``visibility``), so the tracker and the benchmarks apply what the model was measured with.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import numpy as np

from tracker.errors import KptrackError


@dataclass(frozen=True)
class VisibilityGate:
    """threshold: a keypoint whose visibility is below it counts as hidden. min_keep: the fewest
    keypoints (visible and peaking at >= min_peak) that must stay for a crop to be gated."""

    threshold: float = 0.5
    min_keep: int = 4
    min_peak: float = 0.5

    def __post_init__(self) -> None:
        if not 0.0 < self.threshold < 1.0 or not 0.0 <= self.min_peak <= 1.0 or self.min_keep < 3:
            raise KptrackError(f"visibility gate {self}: needs 0 < threshold < 1, 0 <= min_peak <= 1 and min_keep >= 3 "
                               "(a pose needs three keypoints). Re-export the model with `kptrack visibility`.")

    @classmethod
    def from_meta(cls, spec: dict[str, Any]) -> "VisibilityGate":
        """The gate a model's metadata ``visibility`` entry names (its threshold, min_keep, min_peak)."""
        return cls(**{k: spec[k] for k in ("threshold", "min_keep", "min_peak") if k in spec})

    def __call__(self, heatmaps: np.ndarray, visibility: np.ndarray) -> np.ndarray:
        """heatmaps (N, K, H, W), visibility (N, K) probabilities -> (N,) bool: which crops were gated.
        The hidden keypoints' heatmaps of those crops are zeroed in place."""
        n, k = heatmaps.shape[:2]
        vis = np.asarray(visibility, np.float32).reshape(n, k)
        peak = heatmaps.reshape(n, k, -1).max(axis=2)
        hidden = vis < self.threshold
        keep = ~hidden & (peak >= self.min_peak)
        gated = hidden.any(axis=1) & (keep.sum(axis=1) >= self.min_keep)
        heatmaps[gated[:, None] & hidden] = 0.0
        return gated
