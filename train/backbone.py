"""kptrack's pretrained backbones: the network minus its keypoint head, as a file.

Keypoint networks learn fast when they start from pretrained features (Simple Baselines, HRNet
and RTMPose start from ImageNet). Nothing can be downloaded at run time, so kptrack ships its own:
``models/backbone/<preset>.pt``, pretrained by ``kptrack pretrain`` on procedural objects
(:mod:`train.pretrain`). Everything of the network but its last 1x1 head is generic (the encoder
and the decoder up to the 64 x 64 features), so a backbone is the state dict without the head.

``kptrack train`` starts from the preset's shipped backbone when there is one and it fits the
network options (``--init`` default); ``--init none`` trains from scratch; ``--init FILE`` takes a
backbone file or a training checkpoint.
"""

from __future__ import annotations

import logging
from pathlib import Path
from typing import Any

import torch
from torch import nn

from tracker.atomic import atomic_write
from tracker.errors import KptrackError
from tracker.paths import REPO_ROOT

log = logging.getLogger(__name__)

BACKBONE_FORMAT = "kptrack-backbone"
BACKBONE_VERSION = 1
#: State-dict key prefixes of each preset's task head (left out of a backbone).
HEADS = {"lite": ("head.",)}
#: Network options whose blocks start as the identity, with their state-dict prefixes: a backbone
#: pretrained without them (option 0) fits a network built with them, which trains them from there.
ADDONS = {"lite": {"context": "context."}}


def default_backbone_path(preset: str) -> Path:
    """``models/backbone/<preset>.pt`` of the checkout."""
    return REPO_ROOT / "models" / "backbone" / f"{preset}.pt"


def _is_head(key: str, preset: str) -> bool:
    return key.startswith(HEADS[preset])


def _may_be_missing(key: str, preset: str) -> bool:
    return _is_head(key, preset) or key.startswith(tuple(ADDONS.get(preset, {}).values()))


def save_backbone(path: str | Path, model: nn.Module, preset: str, model_kwargs: dict, info: dict[str, Any]) -> Path:
    """Write ``model``'s weights without its head (atomically), with the preset, its options and ``info``."""
    if preset not in HEADS:
        raise KptrackError(f"preset {preset!r} has no backbone support; use one of {', '.join(HEADS)}.")
    state = {k: v.detach().cpu().contiguous() for k, v in model.state_dict().items() if not _is_head(k, preset)}
    doc = {"format": BACKBONE_FORMAT, "version": BACKBONE_VERSION, "preset": preset, "model_kwargs": dict(model_kwargs),
           "state_dict": state, "info": info}
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    with atomic_write(path) as f:
        torch.save(doc, f)
    return path


def is_backbone(doc: Any) -> bool:
    return isinstance(doc, dict) and doc.get("format") == BACKBONE_FORMAT


def load_backbone(path: str | Path) -> dict:
    """Read a backbone file (``weights_only``); one clear error for anything else."""
    path = Path(path)
    if not path.is_file():
        raise KptrackError(f"--init {path}: no such file. Pass a backbone (models/backbone/<preset>.pt) or a training "
                           "checkpoint, or --init none to train from scratch.")
    try:
        doc = torch.load(path, map_location="cpu", weights_only=True)
    except Exception as e:  # pickle/zip errors come in many types
        raise KptrackError(f"--init {path}: not a readable backbone ({type(e).__name__}). Pass a file written by "
                           "`kptrack pretrain`.") from None
    if not is_backbone(doc):
        raise KptrackError(f"--init {path}: not a kptrack backbone (no '{BACKBONE_FORMAT}' marker).")
    if doc.get("version", 0) > BACKBONE_VERSION:
        raise KptrackError(f"--init {path}: backbone version {doc.get('version')} is newer than this kptrack reads. Upgrade kptrack.")
    doc["path"] = str(path)
    return doc


def fits(doc: dict, preset: str, model_kwargs: dict) -> bool:
    """Whether a backbone was pretrained for this preset with these network options (an add-on
    option of ADDONS may be 0 in the backbone and set in the network)."""
    addons = ADDONS.get(preset, {})
    have, want = dict(doc["model_kwargs"]), dict(model_kwargs)
    core_fits = {k: v for k, v in have.items() if k not in addons} == {k: v for k, v in want.items() if k not in addons}
    return (doc["preset"] == preset and core_fits
            and all(have.get(k, 0) in (0, want.get(k, 0)) for k in addons))


def _load_partial(model: nn.Module, state: dict, may_be_missing) -> tuple[list[str], list[str]]:
    """Load ``state`` into ``model`` where it fits. Returns (the model's keys left as built, which
    ``may_be_missing`` allows; the keys that do not fit: missing ones it does not allow, and extras)."""
    missing, unexpected = model.load_state_dict(state, strict=False)
    return [k for k in missing if may_be_missing(k)], [k for k in missing if not may_be_missing(k)] + list(unexpected)


def load_into(model: nn.Module, doc: dict, preset: str, model_kwargs: dict) -> None:
    """Copy a backbone's weights into ``model`` (everything but the head, which stays as built).

    A backbone of another preset or other network options is refused with the fix."""
    if not fits(doc, preset, model_kwargs):
        raise KptrackError(
            f"--init {doc['path']}: this backbone was pretrained for the {doc['preset']!r} network with "
            f"{doc['model_kwargs']}, but this run builds {preset!r} with {model_kwargs}. Use that preset and those "
            "options, another backbone, or --init none to train from scratch."
        )
    _, stray = _load_partial(model, doc["state_dict"], lambda k: _may_be_missing(k, preset))
    if stray:
        raise KptrackError(f"--init {doc['path']}: the weights do not fit the {preset!r} network ({stray[:3]} ...). "
                           "The file is damaged or from another kptrack version; pretrain again or use --init none.")
    log.info("network starts from the pretrained backbone %s (%s)", doc["path"], doc.get("info", {}).get("summary", ""))


def grown_options(preset: str, trained: dict, given: dict) -> dict:
    """The network options of a run that starts from a training checkpoint's weights: the
    checkpoint's, with each add-on option (ADDONS) that the command line sets and the checkpoint
    does not have (0) taken from the command line, so a trained model can be grown by blocks that
    start as the identity (``--init run/best.pt --context 2``). An add-on the checkpoint already
    has at another count is refused: its trained blocks would be dropped or left out."""
    kw = dict(trained)
    for opt in ADDONS.get(preset, {}):
        want, have = given.get(opt), int(trained.get(opt, 0))
        if want is None or want == have:
            continue
        if have:
            raise KptrackError(f"--{opt} {want}: the --init checkpoint's network already has {opt}={have}; a trained "
                               f"block is neither dropped nor duplicated. Leave --{opt} out or pass --{opt} {have}.")
        kw[opt] = want
    return kw


def load_grown(model: nn.Module, state: dict, preset: str, src: str) -> list[str]:
    """Load a training checkpoint's weights into a network that may have add-on blocks the
    checkpoint lacks (they keep their identity start). Returns the add-on keys left as built."""
    addons = tuple(ADDONS.get(preset, {}).values())
    added, stray = _load_partial(model, state, lambda k: k.startswith(addons))
    if stray:
        raise KptrackError(f"--init {src}: the checkpoint's weights do not fit this network ({stray[:3]} ...). "
                           "The file is damaged or from another kptrack version.")
    return added
