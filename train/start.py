"""What a training run starts from: ``--resume``'s checkpoint, ``--init``'s weights (a training
checkpoint or a backbone), or by default the preset's shipped backbone; and restoring them into
the network, optimizer and schedule once those are built.

:func:`start_checkpoints` reads and checks the checkpoints before any data is loaded, so a
checkpoint that does not fit the run (preset, keypoints, optimizer) is refused at once with the
fix; :func:`restore` loads them. Used by :func:`train.loop.train`.
"""

from __future__ import annotations

import logging
from pathlib import Path

import torch
import torch.nn as nn

from tracker.errors import KptrackError
from tracker.objects import ObjectModel
from train.backbone import (HEADS, default_backbone_path, fits, grown_options, is_backbone, load_backbone, load_grown,
                            load_into)
from train.checkpoint import check_checkpoint_fits, load_checkpoint
from train.config import TrainConfig
from train.schedule import check_resumable_optimizer, restore_optimizer

log = logging.getLogger(__name__)


def start_checkpoints(cfg: TrainConfig, obj: ObjectModel) -> tuple[dict | None, dict | None, dict]:
    """(the --resume checkpoint or None, the weights to start from or None, the network's keyword arguments).

    The weights to start from: --init's training checkpoint or backbone; by default (no --init,
    no --resume) the preset's shipped backbone when it fits the network options; none with
    ``--init none``. A checkpoint must fit the run (preset, keypoints); its network options win
    over cfg's, except an add-on it lacks (``--context``), which grows it (train.backbone.grown_options)."""
    resume = load_checkpoint(cfg.resume) if cfg.resume else None
    kw = cfg.model_options()
    if resume is not None:
        check_checkpoint_fits(resume, cfg, obj, "--resume")
        kw = dict(resume["model_kwargs"])
        check_resumable_optimizer(resume, cfg)
    if cfg.init and resume is not None:
        if cfg.init == "none":
            raise KptrackError("--init none and --resume both given: a resumed run continues from its checkpoint's "
                               "weights. Leave --init out when resuming.")
        raise KptrackError("--init and --resume both given: --resume continues a run, --init starts a new one "
                           "from a checkpoint's weights. Give one of them.")
    if cfg.init == "none" or resume is not None:
        return resume, None, kw
    if cfg.init:
        init = load_backbone(cfg.init) if is_backbone_file(cfg.init) else load_checkpoint(cfg.init)
        if is_backbone(init):
            return None, init, kw
        check_checkpoint_fits(init, cfg, obj, "--init")
        return None, init, grown_options(cfg.preset, init["model_kwargs"], {"context": cfg.context})
    shipped = default_backbone_path(cfg.preset)
    if cfg.preset in HEADS and shipped.is_file():
        doc = load_backbone(shipped)
        if fits(doc, cfg.preset, kw):
            return None, doc, kw
        log.info("the shipped backbone %s is for %s; this run's network is %s: training from scratch", shipped,
                 doc["model_kwargs"], kw)
    return None, None, kw


def is_backbone_file(path: str) -> bool:
    """Whether --init names a backbone file (as opposed to a training checkpoint or run folder)."""
    p = Path(path)
    if not p.is_file():
        return False
    try:
        return is_backbone(torch.load(p, map_location="cpu", weights_only=True))
    except Exception:  # not loadable here: load_checkpoint gives the clear error
        return False


def restore(cfg: TrainConfig, model: nn.Module, opt, sched, resume: dict | None, init: dict | None,
             coord_head: nn.Module | None = None) -> tuple[int, dict | None]:
    """Load --init's weights, or --resume's weights, optimizer and schedule (and the coordinate
    head's weights; --init's start fresh). Returns (the iteration to start from, the best scores so far)."""
    if init is not None and is_backbone(init):
        load_into(model, init, cfg.preset, cfg.model_options())
    elif init is not None:
        added = load_grown(model, init["model"], cfg.preset, init["path"])
        log.info("network weights from %s (iteration %d); optimizer and schedule start fresh%s", init["path"],
                 int(init["iteration"]), f"; {len(added)} add-on weights start as the identity" if added else "")
    if resume is None:
        return 0, None
    model.load_state_dict(resume["model"])
    if coord_head is not None:
        if "coord_head" not in resume:
            raise KptrackError(f"{resume['path']}: trained without --coord-weight; it cannot be resumed with it. "
                               "Resume with --coord-weight 0, or start a new run with --init.")
        coord_head.load_state_dict(resume["coord_head"])
    restore_optimizer(opt, sched, resume, cfg)
    start = int(resume["iteration"])
    if start >= cfg.iters:
        log.warning("checkpoint is at iteration %d >= --iters %d: nothing to train", start, cfg.iters)
    return start, resume.get("best_scores") or None
