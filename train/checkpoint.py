"""Training checkpoints: their content, atomic saving, loading, and what is rebuilt from them.

A checkpoint is a plain dict of tensors and primitives (loadable with
``torch.load(weights_only=True)``), marked ``format: kptrack-checkpoint`` with a ``version``. It
holds the network weights, the optimizer and scheduler state, the iteration, the run's
:class:`train.config.TrainConfig` as a dict, the network preset and options, the object's
keypoint names, the input normalisation and sizes, and the validation scores. It is written
to a temporary file and renamed into place, so a full disk leaves the previous one intact.
From a loaded checkpoint come the network (:func:`model_from_checkpoint`) and the ONNX
metadata of its export (:func:`meta_from_checkpoint`).
"""

from __future__ import annotations

import dataclasses
import errno
from pathlib import Path

import torch
import torch.nn as nn

from tracker.atomic import atomic_write
from tracker.errors import KptrackError
from tracker.formats.modelmeta import ModelMeta
from tracker.geometry.crop import HEATMAP_SIZE, INPUT_SIZE
from tracker.objects import ObjectModel
from train.config import TrainConfig
from train.models import build_model

CHECKPOINT_FORMAT = "kptrack-checkpoint"
CHECKPOINT_VERSION = 1


def make_checkpoint(cfg: TrainConfig, model: nn.Module, opt: torch.optim.Optimizer, sched, model_kwargs: dict,
                    obj: ObjectModel, meta: ModelMeta, iteration: int, scores: dict, best_scores: dict | None,
                    bad_images: int, coord_head: nn.Module | None = None) -> dict:
    """The checkpoint of a run at ``iteration``: a dict of tensors and primitives (see the module docstring).

    The scheduler's learning-rate callables are stored as None: the config rebuilds them on resume.
    ``coord_head``: the training-only coordinate head (:mod:`train.coords`), kept for --resume."""
    ck = {
        "format": CHECKPOINT_FORMAT,
        "version": CHECKPOINT_VERSION,
        "model": {k: v.detach().cpu().contiguous() for k, v in model.state_dict().items()},
        "optimizer": opt.state_dict(),
        "scheduler": dict(sched.state_dict(), lr_lambdas=[None] * len(opt.param_groups)),  # rebuilt from config
        "iteration": int(iteration),
        "config": dataclasses.asdict(cfg),
        "preset": cfg.preset,
        "model_kwargs": dict(model_kwargs),
        "keypoint_names": list(obj.keypoint_names),
        "object_id": obj.name,
        "normalisation": {"mean": list(meta.mean), "std": list(meta.std), "channel_order": meta.channel_order},
        "input_size": INPUT_SIZE,
        "heatmap_size": HEATMAP_SIZE,
        "scores": dict(scores),
        "best_scores": dict(best_scores or {}),
        "bad_images": int(bad_images),
        "torch_version": str(torch.__version__),
    }
    if coord_head is not None:
        ck["coord_head"] = {k: v.detach().cpu().contiguous() for k, v in coord_head.state_dict().items()}
    return ck


def save_checkpoint(obj: dict, path: Path) -> None:
    """Write ``obj`` with torch.save to ``path`` atomically (temporary file, fsync, rename).

    Any OSError (full disk, read-only folder) leaves the previous file intact and raises a
    KptrackError that says so.
    """
    path = Path(path)
    try:
        with atomic_write(path) as f:
            torch.save(obj, f)
    except OSError as e:
        why = "the disk is full" if getattr(e, "errno", None) == errno.ENOSPC else (e.strerror or str(e))
        kept = f"the previous {path.name} is intact" if path.exists() else f"no {path.name} was written"
        raise KptrackError(
            f"{path}: could not save the checkpoint ({why}); {kept}. Free space or choose another --out, "
            f"then continue with --resume {path.parent / 'last.pt'}."
        ) from None


def load_checkpoint(path: str | Path) -> dict:
    """Load a kptrack checkpoint with ``torch.load(weights_only=True)``; a run folder means its last.pt.

    Raises KptrackError for a missing file or something that is not a kptrack checkpoint.
    """
    path = Path(path)
    if path.is_dir():
        path = path / "last.pt"
    if not path.is_file():
        raise KptrackError(f"{path}: checkpoint not found. Pass RUN/last.pt or RUN/best.pt written by `kptrack train`.")
    try:
        ckpt = torch.load(path, map_location="cpu", weights_only=True)
    except Exception as e:  # pickle/zip errors come in many types
        raise KptrackError(
            f"{path}: not a readable kptrack checkpoint ({type(e).__name__}: {str(e).splitlines()[0][:200] if str(e) else ''}). "
            "Pass a .pt written by `kptrack train`."
        ) from None
    if not isinstance(ckpt, dict) or ckpt.get("format") != CHECKPOINT_FORMAT:
        raise KptrackError(f"{path}: not a kptrack checkpoint (no '{CHECKPOINT_FORMAT}' marker). Pass a .pt written by `kptrack train`.")
    if ckpt.get("version", 0) > CHECKPOINT_VERSION:
        raise KptrackError(f"{path}: checkpoint version {ckpt.get('version')} is newer than this kptrack reads. Upgrade kptrack.")
    ckpt["path"] = str(path)
    return ckpt


def check_checkpoint_fits(ckpt: dict, cfg: TrainConfig, obj: ObjectModel, flag: str) -> None:
    """A checkpoint given with ``flag`` (--resume | --init) must hold this run's network preset
    and the object's keypoints."""
    if ckpt["preset"] != cfg.preset:
        keep = " (or leave --preset out)" if flag == "--resume" else ""
        raise KptrackError(
            f"{ckpt['path']}: this checkpoint is a {ckpt['preset']!r} network, not {cfg.preset!r}. "
            f"Use --preset {ckpt['preset']}{keep}, or start a new run without {flag}."
        )
    if list(ckpt["keypoint_names"]) != list(obj.keypoint_names):
        raise KptrackError(
            f"{ckpt['path']}: trained for keypoints {list(ckpt['keypoint_names'])}, but --object {cfg.object} has "
            f"{list(obj.keypoint_names)}. Use a checkpoint of that object with {flag}, or start a new run without it."
        )


def model_from_checkpoint(ckpt: dict) -> nn.Module:
    """Rebuild the network of a loaded checkpoint (eval mode)."""
    src = ckpt.get("path", "checkpoint")
    model = build_model(ckpt["preset"], len(ckpt["keypoint_names"]), **ckpt["model_kwargs"])
    try:
        model.load_state_dict(ckpt["model"])
    except RuntimeError as e:
        raise KptrackError(f"{src}: weights do not fit the {ckpt['preset']!r} network ({str(e).splitlines()[0]}). The file is damaged or from another kptrack version.") from None
    return model.eval()


def meta_from_checkpoint(ckpt: dict) -> ModelMeta:
    """The ONNX metadata a checkpoint's exported model carries."""
    norm = ckpt["normalisation"]
    return ModelMeta(
        keypoint_names=tuple(ckpt["keypoint_names"]),
        input_size=int(ckpt.get("input_size", INPUT_SIZE)),
        heatmap_size=int(ckpt.get("heatmap_size", HEATMAP_SIZE)),
        mean=tuple(norm["mean"]),
        std=tuple(norm["std"]),
        channel_order=norm["channel_order"],
        object_id=str(ckpt.get("object_id", "")),
        preset=ckpt["preset"],
        config=dict(ckpt.get("config", {}), model_kwargs=ckpt["model_kwargs"], iteration=int(ckpt.get("iteration", 0))),
        scores=dict(ckpt.get("scores", {})),
    )
