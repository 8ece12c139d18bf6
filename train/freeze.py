"""Training with the pretrained encoder's first stages frozen (``kptrack train --freeze F``).

On a CPU the training step is what keeps a new object from learning in minutes
(benchmarks/RESULTS.md, "Training speed of a new object"). Most of the lite network's step is
spent at the two finest resolutions: the stem and the 64x64 stage, and the first block of the
32x32 stage, which expands 32 channels to 96 at 64x64 before its stride. Those stages hold
generic features (edges, corners, texture), which the shipped backbone learnt on procedural
objects. Frozen, they need no backward pass at all: on the 2-core development machine a batch-8
step at 256 px went from about 136 to 72 ms.

For the first ``fraction`` of the iterations the frozen stages take no gradient and their
batch-norm layers run in inference mode (their statistics stay the backbone's); after that they
train like the rest. Freezing weights that were never trained would freeze noise, so a run
must start from pretrained weights (the default backbone, or ``--init``), and a multi-process
run is refused (DistributedDataParallel cannot follow parameters that change between trainable
and frozen).
"""

from __future__ import annotations

import logging

import torch.nn as nn

from tracker.errors import KptrackError

log = logging.getLogger(__name__)

#: The stages frozen per preset: the encoder's stem and its two finest stages (lite: 128 to 32x32 cells).
FROZEN_STAGES: dict[str, tuple[str, ...]] = {"lite": ("stem", "s64", "s32")}


def check_freeze(fraction: float, preset: str, pretrained: bool, world: int) -> None:
    """Refuse a --freeze this run cannot honour, naming the fix."""
    if fraction <= 0:
        return
    if preset not in FROZEN_STAGES:
        raise KptrackError(f"--freeze {fraction}: the {preset!r} network has no stages to freeze; "
                           f"use --preset {' or '.join(FROZEN_STAGES)}, or leave --freeze out.")
    if not pretrained:
        raise KptrackError(f"--freeze {fraction}: this run starts from random weights (--init none, or no backbone "
                           "fits its network options), and frozen random stages would never learn. Start from the "
                           "shipped backbone or an --init checkpoint, or leave --freeze out.")
    if world > 1:
        raise KptrackError(f"--freeze {fraction}: not supported with {world} training processes "
                           "(DistributedDataParallel needs every parameter to stay trainable). Train in one process or leave --freeze out.")


class StageFreeze:
    """Freezes ``model``'s :data:`FROZEN_STAGES` while the iteration is below ``until``.

    :meth:`update` is called before every step; it switches the stages to trainable once, at
    ``until``, and meanwhile keeps their batch norms in inference mode (validation puts the
    whole network back in training mode after it has run)."""

    def __init__(self, model: nn.Module, preset: str, until: int):
        self.until = until
        self.stages = [getattr(model, name) for name in FROZEN_STAGES.get(preset, ())] if until > 0 else []
        self.frozen = False

    def update(self, iteration: int) -> bool:
        """Set the stages for ``iteration``; returns whether they are frozen."""
        want = bool(self.stages) and iteration < self.until
        if want != self.frozen:
            for stage in self.stages:
                for p in stage.parameters():
                    p.requires_grad_(not want)
            self.frozen = want
            if not want:
                for stage in self.stages:
                    stage.train()
                log.info("iteration %d: the encoder's first stages train from here on (--freeze)", iteration)
        if want:
            for stage in self.stages:
                stage.eval()
        return want
