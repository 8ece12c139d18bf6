"""Metadata an exported kptrack ONNX model carries in its custom metadata map.

``export`` writes it, ``tracker.pipeline.infer`` reads it, so a model file explains itself. The keys
are fixed (all values are strings, JSON where structured):

=================  ===========================================================
key                value
=================  ===========================================================
keypoint_names     JSON list of K names, in heatmap channel order
input_size         "256": side of the square input crop, pixels
heatmap_size       "64": side of each output heatmap, cells
mean, std          JSON lists of 3 floats, 0-255 pixel scale, in channel_order
channel_order      "RGB" or "BGR": the channel order the network expects
object_id          the object's name/id the model was trained for
preset             the network preset name (e.g. "lite", "hourglass")
config             JSON: the training config
scores             JSON: validation scores
precision          "fp32", "fp16" or "int8": the weights' and compute's number format
visibility         JSON: {} for a heatmap-only model; for one with a visibility output
                   (``kptrack visibility``) its output name and the gate's settings
                   (threshold, min_keep, min_peak) and how the head was trained
=================  ===========================================================

A file written before ``precision`` existed reads as "fp32" (``kptrack export`` wrote only fp32
then, or an fp16 file with the same keys); one written before ``visibility`` reads as {}. The
network input is float32 NCHW, ``(img[..., channels] - mean) / std``; its last output is the
heatmaps, float32 ``(N, K, heatmap_size, heatmap_size)``; a visibility output, when there is one,
comes before it.
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from functools import cached_property
from typing import Any

import numpy as np

from tracker.errors import KptrackError

META_KEYS = (
    "keypoint_names",
    "input_size",
    "heatmap_size",
    "mean",
    "std",
    "channel_order",
    "object_id",
    "preset",
    "config",
    "scores",
    "precision",
    "visibility",
)
PRECISIONS = ("fp32", "fp16", "int8")


@dataclass(frozen=True)
class ModelMeta:
    keypoint_names: tuple[str, ...]
    input_size: int = 256
    heatmap_size: int = 64
    mean: tuple[float, float, float] = (123.675, 116.28, 103.53)
    std: tuple[float, float, float] = (58.395, 57.12, 57.375)
    channel_order: str = "RGB"
    object_id: str = ""
    preset: str = ""
    config: dict[str, Any] = field(default_factory=dict)
    scores: dict[str, Any] = field(default_factory=dict)
    precision: str = "fp32"
    visibility: dict[str, Any] = field(default_factory=dict)

    @property
    def num_keypoints(self) -> int:
        return len(self.keypoint_names)

    def to_dict(self) -> dict[str, str]:
        """The metadata map, every value a string, exactly the keys in META_KEYS."""
        return {
            "keypoint_names": json.dumps(list(self.keypoint_names)),
            "input_size": str(int(self.input_size)),
            "heatmap_size": str(int(self.heatmap_size)),
            "mean": json.dumps([float(x) for x in self.mean]),
            "std": json.dumps([float(x) for x in self.std]),
            "channel_order": self.channel_order,
            "object_id": str(self.object_id),
            "preset": str(self.preset),
            "config": json.dumps(self.config, sort_keys=True),
            "scores": json.dumps(self.scores, sort_keys=True),
            "precision": str(self.precision),
            "visibility": json.dumps(self.visibility, sort_keys=True),
        }

    @classmethod
    def from_dict(cls, d: dict[str, str], source: str = "model") -> "ModelMeta":
        """Parse a metadata map; a missing or malformed key raises KptrackError naming ``source``."""
        missing = [k for k in ("keypoint_names", "input_size", "heatmap_size", "mean", "std", "channel_order") if k not in d]
        if missing:
            raise KptrackError(
                f"{source}: ONNX metadata lacks {missing}. Export the model with `kptrack export` "
                "so it carries keypoint names, sizes and normalisation."
            )
        try:
            names = tuple(json.loads(d["keypoint_names"]))
            mean = tuple(float(x) for x in json.loads(d["mean"]))
            std = tuple(float(x) for x in json.loads(d["std"]))
            meta = cls(
                keypoint_names=names,
                input_size=int(d["input_size"]),
                heatmap_size=int(d["heatmap_size"]),
                mean=mean,  # type: ignore[arg-type]
                std=std,  # type: ignore[arg-type]
                channel_order=d["channel_order"],
                object_id=d.get("object_id", ""),
                preset=d.get("preset", ""),
                config=json.loads(d.get("config", "{}") or "{}"),
                scores=json.loads(d.get("scores", "{}") or "{}"),
                precision=d.get("precision", "fp32") or "fp32",
                visibility=json.loads(d.get("visibility", "{}") or "{}"),
            )
        except (ValueError, TypeError) as e:
            raise KptrackError(f"{source}: malformed ONNX metadata ({e}). Re-export it with `kptrack export`.") from None
        if meta.channel_order not in ("RGB", "BGR") or len(meta.mean) != 3 or len(meta.std) != 3:
            raise KptrackError(f"{source}: metadata channel_order/mean/std invalid. Re-export it with `kptrack export`.")
        if meta.visibility and not (isinstance(meta.visibility, dict) and isinstance(meta.visibility.get("output"), str)):
            raise KptrackError(f"{source}: metadata visibility {meta.visibility} names no output. Re-export it with `kptrack visibility`.")
        if meta.precision not in PRECISIONS:
            raise KptrackError(f"{source}: metadata precision {meta.precision!r} is not one of {list(PRECISIONS)}. Re-export it with `kptrack export`.")
        return meta

    @cached_property
    def _lut(self) -> np.ndarray:
        """(3, 256) float32: network-channel c's value for each uint8 level."""
        levels = np.arange(256, dtype=np.float32)[None, :]
        mean = np.asarray(self.mean, np.float32)[:, None]
        std = np.asarray(self.std, np.float32)[:, None]
        return np.ascontiguousarray((levels - mean) / std, dtype=np.float32)

    def normalise(self, crops_bgr: np.ndarray) -> np.ndarray:
        """crops_bgr: (N, S, S, 3) uint8 BGR -> (N, 3, S, S) float32 network input, ``(x - mean) / std``.

        Uint8 crops go through a per-channel lookup table straight into the NCHW output (about 4x
        faster than float arithmetic plus a transpose, and it sits on the per-frame path); other
        dtypes take the arithmetic path.
        """
        crops_bgr = np.asarray(crops_bgr)
        src = (2, 1, 0) if self.channel_order == "RGB" else (0, 1, 2)
        if crops_bgr.dtype != np.uint8:
            x = crops_bgr[..., list(src)].astype(np.float32)
            x = (x - np.asarray(self.mean, np.float32)) / np.asarray(self.std, np.float32)
            return np.ascontiguousarray(x.transpose(0, 3, 1, 2))
        n, h, w = crops_bgr.shape[:3]
        out = np.empty((n, 3, h, w), np.float32)
        lut = self._lut
        for i in range(n):
            for c in range(3):
                np.take(lut[c], crops_bgr[i, :, :, src[c]], out=out[i, c])
        return out
