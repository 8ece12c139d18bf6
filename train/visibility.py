"""``kptrack visibility``: teach an exported model to say which keypoints are hidden.

A heatmap network guesses where a hidden keypoint is, and the fit cannot tell the guess from a
seen keypoint by its peak (:mod:`tracker.pipeline.visibility`). This trains a small head that
says, for each keypoint of a crop, whether the object shows there, on the features of an exported
lite network read back from its file and frozen (:func:`train.onnx_weights.network_from_onnx`),
and writes a new model with two outputs: ``visibility`` (N, K) probabilities and ``heatmaps``,
which stay the given model's (checked on held-out crops to 1e-4). The tracker then leaves the
hidden keypoints out of the fit.

The head (:class:`VisibilityHead`) reads the 64x64 decoder features and the heatmaps, goes down
to 16x16 with two stride-2 3x3 convolutions, adds the coarsest stage's pooled features (what the
whole crop shows), and gives one logit map per keypoint, read through that keypoint's own heatmap
as attention: the answer is about the spot where the network places the keypoint. About 0.1
GFLOPs, a third of the lite network's.

Labels: where a record has a visible mask (BOP data: ``mask_visib``), whether the mask, dilated 2
px, covers the keypoint's spot (a keypoint on the outline counts as seen); otherwise its COCO flag
(2 visible, 1 hidden). Keypoints outside the crop or unlabelled carry no label. Binary
cross-entropy, AdamW with a 5 % warm-up and a cosine decay; crops augmented as in training. Each ``--data`` source
holds out 5 % (at most 500 images); the report gives the head's and the peak's AUC there.
"""

from __future__ import annotations

import logging
import math
import tempfile
import time
from dataclasses import dataclass, replace
from pathlib import Path

import cv2
import numpy as np
import torch
import torch.nn as nn
import torch.nn.functional as F

from export.onnx_export import cpu_session, set_metadata, torch_export
from tracker.atomic import atomic_write
from tracker.errors import KptrackError
from tracker.formats.modelmeta import ModelMeta
from tracker.geometry.crop import apply_affine, invert_affine
from tracker.objects import load_object
from train.config import TrainConfig
from train.dataset import CropDataset, normalise_batch
from train.onnx_weights import network_from_onnx
from train.score import confidence_auc
from train.sources import batch_sampler, source_datasets

log = logging.getLogger(__name__)

#: The gate written into the model's metadata (:class:`tracker.pipeline.visibility.VisibilityGate`).
GATE = {"threshold": 0.5, "min_keep": 4, "min_peak": 0.5}
MASK_DILATE_PX = 2


@dataclass(frozen=True)
class VisibilityConfig:
    """model: the exported heatmap model (fp32 lite). data: training sources, ``PATH[:WEIGHT]``.
    object: what it tracks. out: the new model. iters, batch, lr, seed, threads: the head's training."""

    model: str
    data: tuple[str, ...]
    out: str
    object: str = "default"
    split: str | None = None
    iters: int = 2500
    batch: int = 16
    lr: float = 1e-3
    seed: int = 0
    threads: int | None = None


@dataclass
class VisibilityReport:
    path: Path
    seconds: float
    auc: float
    auc_peak: float
    n_val: int
    hidden_val: int
    parity: float


def _cbr(cin: int, cout: int, stride: int) -> nn.Sequential:
    return nn.Sequential(nn.Conv2d(cin, cout, 3, stride, 1, bias=False), nn.BatchNorm2d(cout), nn.ReLU(inplace=True))


class VisibilityHead(nn.Module):
    """(decoder features (N, D, 64, 64), heatmaps (N, K, 64, 64), coarsest features (N, G, h, w))
    -> (N, K) logits that the object shows at each keypoint."""

    def __init__(self, features: int, keypoints: int, coarse: int, width: int = 64):
        super().__init__()
        self.down = nn.Sequential(_cbr(features + keypoints, width, 2), _cbr(width, width, 2), _cbr(width, width, 1))
        self.coarse = nn.Linear(coarse, width)
        self.out = nn.Conv2d(width, keypoints, 1)

    def forward(self, feats: torch.Tensor, heatmaps: torch.Tensor, coarse: torch.Tensor) -> torch.Tensor:
        z = self.down(torch.cat([feats, heatmaps], 1))
        z = F.relu(z + self.coarse(coarse.mean((2, 3)))[:, :, None, None])
        logits = self.out(z)
        attention = F.avg_pool2d(heatmaps.clamp(min=0), heatmaps.shape[-1] // logits.shape[-1])
        attention = attention / (attention.sum((2, 3), keepdim=True) + 1e-6)
        return (attention * logits).sum((2, 3))


class WithVisibility(nn.Module):
    """A frozen lite network and its head: ``forward(x)`` -> (visibility (N, K) in [0, 1], heatmaps)."""

    def __init__(self, net: nn.Module, head: VisibilityHead):
        super().__init__()
        self.net, self.head = net, head
        self._taps: dict[str, torch.Tensor] = {}
        net.ref64.register_forward_hook(lambda _m, _i, o: self._taps.__setitem__("feats", o))
        net.context.register_forward_hook(lambda _m, _i, o: self._taps.__setitem__("coarse", o))

    def heads(self, x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """(visibility logits, heatmaps); the network runs without gradients."""
        with torch.no_grad():
            heatmaps = self.net(x)
        return self.head(self._taps["feats"], heatmaps, self._taps["coarse"]), heatmaps

    def forward(self, x: torch.Tensor):
        logits, heatmaps = self.heads(x)
        return torch.sigmoid(logits), heatmaps


def keypoint_labels(item: dict, mask: np.ndarray | None) -> tuple[np.ndarray, np.ndarray]:
    """(label (K,) float32: 1 where the object shows at the keypoint, labelled (K,) bool) for one
    crop item (:class:`train.dataset.CropDataset`); mask: the record's visible mask (dilated), or
    None to use the item's COCO flags."""
    q = np.asarray(item["keypoints"], np.float64)
    s = item["image"].shape[0]
    inside = np.all(np.isfinite(q), axis=1) & np.all((q >= 0) & (q < s), axis=1)
    v = np.asarray(item["visibility"])
    if mask is None:
        return (v == 2).astype(np.float32), inside & (v >= 1)
    uv = apply_affine(invert_affine(item["affine"]), np.nan_to_num(q, nan=-1.0))  # crop px -> frame px
    ij = np.rint(uv).astype(np.int64)
    h, w = mask.shape
    ok = inside & (ij[:, 0] >= 0) & (ij[:, 0] < w) & (ij[:, 1] >= 0) & (ij[:, 1] < h)
    label = np.zeros(len(q), np.float32)
    label[ok] = mask[ij[ok, 1], ij[ok, 0]] > 0
    return label, ok


class _Masks:
    """Visible masks by record, read and dilated once (a few thousand kept)."""

    def __init__(self, keep: int = 4096):
        self.keep, self.cache = keep, {}
        self.kernel = np.ones((2 * MASK_DILATE_PX + 1,) * 2, np.uint8)

    def __call__(self, rec) -> np.ndarray | None:
        if rec.mask_path is None:
            return None
        key = str(rec.mask_path)
        if key not in self.cache:
            m = cv2.imread(key, cv2.IMREAD_GRAYSCALE)
            if len(self.cache) >= self.keep:
                self.cache.clear()
            self.cache[key] = None if m is None else cv2.dilate((m > 127).astype(np.uint8), self.kernel)
        return self.cache[key]


def _batch(ds: CropDataset, items: list, masks: _Masks, meta: ModelMeta):
    out = [ds[i] for i in items]
    labels = [keypoint_labels(it, masks(ds.records[it["record"]])) for it in out]
    x = normalise_batch(torch.from_numpy(np.stack([it["image"] for it in out])), meta.mean, meta.std, meta.channel_order)
    return x, torch.from_numpy(np.stack([a for a, _ in labels])), torch.from_numpy(np.stack([b for _, b in labels]))


def train_visibility(cfg: VisibilityConfig) -> VisibilityReport:
    """Train the head, check the heatmaps, write the two-output model. See the module docstring."""
    out = Path(cfg.out)
    if out.resolve() == Path(cfg.model).resolve():
        raise KptrackError(f"--out {out}: that is --model; write the new model beside it (e.g. {out.with_suffix('')}_vis.onnx).")
    if cfg.iters < 1 or cfg.batch < 2:
        raise KptrackError(f"--iters {cfg.iters} / --batch {cfg.batch}: need at least 1 iteration of at least 2 crops.")
    if cfg.threads is not None:
        torch.set_num_threads(cfg.threads)
    torch.manual_seed(cfg.seed)
    net, meta = network_from_onnx(cfg.model)
    for p in net.parameters():
        p.requires_grad_(False)
    obj = load_object(cfg.object)
    if tuple(obj.keypoint_names) != tuple(meta.keypoint_names):
        raise KptrackError(f"--object {cfg.object}: its keypoints {list(obj.keypoint_names)} are not the model's "
                           f"{list(meta.keypoint_names)}. Pass the object the model was trained for.")
    augment = TrainConfig(data=list(cfg.data), out=str(out)).augment()  # the training crops' augmentation
    train_ds, val_ds = source_datasets(list(cfg.data), obj, augment, 2.0, split=cfg.split)  # (sigma: unused targets)
    masks = _Masks()
    _check_both_kinds(val_ds, masks)
    # the head reads what the heatmap head reads, and what the decoder's coarsest lateral reads
    model = WithVisibility(net, VisibilityHead(net.head.in_channels, meta.num_keypoints, net.lat8[0].in_channels))
    model.head.train()
    opt = torch.optim.AdamW(model.head.parameters(), lr=cfg.lr, weight_decay=1e-4)
    warm = max(1, cfg.iters // 20)
    sched = torch.optim.lr_scheduler.LambdaLR(opt, lambda i: min(1.0, (i + 1) / warm) * 0.5 * (1.0 + math.cos(math.pi * i / cfg.iters)))
    t0, run = time.perf_counter(), 0.0
    for it, items in enumerate(batch_sampler(train_ds, cfg.batch, cfg.seed, stop=cfg.iters)):
        x, label, labelled = _batch(train_ds, items, masks, meta)
        logits, _ = model.heads(x)
        loss = F.binary_cross_entropy_with_logits(logits[labelled], label[labelled]) if labelled.any() else logits.sum() * 0.0
        opt.zero_grad(set_to_none=True)
        loss.backward()
        opt.step()
        sched.step()
        run = loss.item() if it == 0 else 0.98 * run + 0.02 * loss.item()
        if (it + 1) % 100 == 0 or it + 1 == cfg.iters:
            log.info("visibility head: iteration %d/%d, loss %.4f, %.0f s", it + 1, cfg.iters, run, time.perf_counter() - t0)
    model.eval()
    auc, auc_peak, n_val, hidden, crops = _validate(model, val_ds, masks, meta)
    seconds = time.perf_counter() - t0
    spec = {"output": "visibility", **GATE, "data": list(cfg.data), "iters": cfg.iters, "batch": cfg.batch, "lr": cfg.lr,
            "seed": cfg.seed, "val_auc": round(auc, 4), "val_auc_peak": round(auc_peak, 4), "from": Path(cfg.model).name}
    parity = _export(model, replace(meta, visibility=spec), cfg.model, out, crops)
    return VisibilityReport(out, seconds, auc, auc_peak, n_val, hidden, parity)


def _check_both_kinds(val_ds: CropDataset, masks: _Masks) -> None:
    """Refuse data whose held-out crops show no hidden (or no visible) keypoint before any training:
    the head could not be checked on it."""
    kinds = set()
    for i in range(len(val_ds)):
        it = val_ds[i]
        label, labelled = keypoint_labels(it, masks(val_ds.records[it["record"]]))
        kinds |= set(label[labelled].tolist())
        if len(kinds) == 2:
            return
    raise KptrackError("--data: its held-out crops have no hidden (or no visible) keypoint, so the head could not be "
                       "checked. Add images with occluders (e.g. kptrack synth --end-occlusion 1) as another --data.")


def _validate(model: WithVisibility, val_ds: CropDataset, masks: _Masks, meta: ModelMeta):
    """(head AUC, peak AUC, labelled keypoints, hidden ones, up to 16 crops for the parity check)."""
    probs, peaks, labels, crops = [], [], [], None
    for start in range(0, len(val_ds), 32):
        x, label, labelled = _batch(val_ds, list(range(start, min(len(val_ds), start + 32))), masks, meta)
        with torch.no_grad():
            p, h = model(x)
        crops = x[:16] if crops is None else crops
        m = labelled.numpy()
        probs.append(p.numpy()[m])
        peaks.append(h.flatten(2).amax(-1).numpy()[m])
        labels.append(label.numpy()[m] > 0.5)
    y = np.concatenate(labels)
    return (confidence_auc(np.concatenate(probs), y), confidence_auc(np.concatenate(peaks), y), len(y), int((~y).sum()), crops)


def _export(model: WithVisibility, meta: ModelMeta, source: str, out: Path, crops: torch.Tensor) -> float:
    """Write the two-output model; its heatmaps must be the source model's (max difference returned)."""
    import onnx  # lazily: an optional dependency (the dev extra), as in export.onnx_export

    with tempfile.TemporaryDirectory() as tmp:
        torch_export(model, Path(tmp) / "model.onnx", meta.input_size, 17, outputs=("visibility", "heatmaps"))
        proto = onnx.load(str(Path(tmp) / "model.onnx"))
    set_metadata(proto, meta)
    onnx.checker.check_model(proto, full_check=True)
    xs = crops.numpy()
    new = cpu_session(proto.SerializeToString()).run(["visibility", "heatmaps"], {"input": xs})
    old = cpu_session(Path(source)).run(None, {"input": xs})[-1]
    parity = float(np.abs(new[1] - old).max())
    if parity > 1e-4:
        raise KptrackError(f"--model {source}: read back, its heatmaps differ from the file's by {parity:.2g} (> 1e-4); "
                           "the model was not written. Re-export it with `kptrack export` and retry.")
    try:
        with atomic_write(out) as f:
            onnx.save(proto, f)
    except OSError as e:
        raise KptrackError(f"--out {out}: cannot write the model ({e.strerror or e}). Choose a writable path with free space.") from None
    return parity
