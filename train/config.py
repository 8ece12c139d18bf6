"""What defines a training run: :class:`TrainConfig`, its checks, and ``kptrack train``'s recipes.

The config is saved as a plain dict in every checkpoint (``config``) and as ``config.json`` in
the run folder, and travels into the exported model's metadata, so a model file says how it
was trained. Its defaults follow the seed recipe of Newell et al., "Stacked Hourglass Networks
for Human Pose Estimation" (ECCV 2016): RMSprop, learning rate 2.5e-4, batch 8.

``kptrack train`` fills the options a user leaves out from a recipe (:data:`RECIPES`): ``fast``,
the default, is what measured best for a new object on a CPU budget (benchmarks/RESULTS.md,
"Training speed of a new object" and the sections after it); ``seed`` is the seed's.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

from tracker.errors import KptrackError
from train.augment import AugmentConfig
from train.distributed import PRECISIONS, unknown_precision
from train.models import get_preset, model_kwargs


@dataclass(frozen=True)
class TrainConfig:
    """Everything that defines a training run; saved (as a dict) in every checkpoint.

    data: BOP dataset root/split/scene folder or COCO keypoints JSON, or several as a tuple, each
    ``PATH[:WEIGHT]`` (mixed by weight, :mod:`train.sources`). out: run directory.
    object: 'default' or an object directory. preset: network preset (train.models.PRESETS).
    iters: total iterations (a resumed run continues to this count). batch: per process.
    lr: peak learning rate; optimizer 'rmsprop' (seed) | 'adam'; schedule 'cosine' | 'step' | 'constant';
    warmup: linear warm-up iterations. val_every / log_every: iterations. val_fraction / val_max:
    the held-out part of --data; val_split: a BOP split to validate on instead. init: a checkpoint
    whose network weights start a new run (fine-tuning): optimizer, schedule and iteration count
    start fresh, unlike ``resume``.
    sigma: target Gaussian std in heatmap cells. sigma_start: when set, the targets start this wide
    and narrow to ``sigma`` along a cosine over the first ``sigma_decay`` of the iterations (wide
    targets give every cell near a keypoint a gradient early on). peak_weight: loss weight of a
    cell on a target's peak (1 + (peak_weight - 1) * target; 1 = plain MSE), so the few peak cells
    are not outvoted by the thousands of background cells. hidden_peak: the peak of a hidden
    keypoint's target (v=1; 1 = as a visible one's), so that confidence keeps meaning visibility
    (:func:`train.heatmaps.scale_hidden`). symmetric_loss: for an object whose
    discrete symmetries permute its keypoints (a box's corners), 'canonical' (default) scores each
    crop against the canonical rule's labels, 'min' against the equivalent its prediction fits best
    (:func:`train.validation.heatmap_loss`; it measured worse on the plain box, see
    benchmarks/RESULTS.md); other objects always train on the canonical labels. coord_weight: weight
    of the auxiliary model-coordinate loss (:mod:`train.coords`; 0 = off; None = 20 for objects
    without symmetries, 0 for the others, :func:`train.coords.resolve_weight`; a symmetric object's
    target is the canonical equivalent's, and the 'min' loss refuses a weight). low_res: fraction of the iterations,
    from the start, trained on crops pooled to half resolution (128 px in, 32x32 heatmaps out; a
    step costs about a third), a resolution curriculum. rotation_deg, scale_jitter, search_prob: see
    train.augment.AugmentConfig; occlude_keypoints: its keypoint_bar_prob, the fraction of crops with
    a bar laid across one visible keypoint (:func:`train.augment.occlude_keypoint`). width and
    context (lite), stacks and features (hourglass): model options
    (None = preset default). workers: DataLoader processes and threads: torch
    intra-op threads (None = :func:`train.distributed.cpu_share`'s choice for the device). device: auto | cpu | cuda.
    recipe: the ``kptrack train --recipe`` whose defaults filled the options left out (a record;
    None when the config was built directly, with these defaults, the seed's).
    precision: 'fp32', or 'bf16' to run the network's forward and backward under bfloat16
    autocast (weights, optimizer state, loss and validation stay float32): faster steps where
    the hardware multiplies bfloat16 (CPUs with AMX, GPUs from Ampere on; benchmarks/RESULTS.md),
    slower where it is emulated.
    """

    data: str | tuple[str, ...]
    out: str
    object: str = "default"
    preset: str = "lite"
    iters: int = 20000
    batch: int = 8
    lr: float = 2.5e-4
    optimizer: str = "rmsprop"
    schedule: str = "cosine"
    warmup: int = 200
    min_lr_frac: float = 0.02
    weight_decay: float = 0.0
    seed: int = 0
    resume: str | None = None
    init: str | None = None
    split: str | None = None
    val_split: str | None = None
    val_fraction: float = 0.05
    val_max: int = 500
    val_every: int = 1000
    log_every: int = 50
    sigma: float = 2.0
    sigma_start: float | None = None
    sigma_decay: float = 0.5
    peak_weight: float = 1.0
    hidden_peak: float = 1.0
    symmetric_loss: str = "canonical"
    low_res: float = 0.0
    coord_weight: float | None = None
    rotation_deg: float = 30.0
    scale_jitter: float = 0.25
    search_prob: float = 0.15
    occlude_keypoints: float = 0.0
    width: float | None = None
    context: int | None = None
    stacks: int | None = None
    features: int | None = None
    workers: int | None = None
    threads: int | None = None
    device: str = "auto"
    obj_id: int = 1
    channels_last: bool = True
    recipe: str | None = None
    precision: str = "fp32"

    def model_options(self) -> dict:
        """The network's keyword arguments: the preset's, overridden by width/context/stacks/features when set."""
        given = {"width": self.width, "context": self.context, "stacks": self.stacks, "features": self.features}
        return model_kwargs(self.preset, **{k: v for k, v in given.items() if v is not None})

    def augment(self) -> AugmentConfig:
        return AugmentConfig(rotation_deg=self.rotation_deg, scale_jitter=self.scale_jitter, search_prob=self.search_prob,
                             keypoint_bar_prob=self.occlude_keypoints)


#: ``kptrack train --recipe``: defaults of the options left out, for a new run (from the backbone or
#: from scratch) and for a fine-tune (``--init`` a training checkpoint). ``seed``: TrainConfig's
#: own defaults. ``fast``: Adam at 1e-3 reached PCK@5px 33.6 % after 2000 iterations on the
#: drill where the seed's RMSprop reached 10.0 % (models/default/card.json); on the textured box
#: (RESULTS.md) peak weight 5 with targets narrowing from 4 cells gained 2-6 points per
#: iteration, and the first half at 128 px reached 63.1 % in 30 minutes on 2 cores against 48.7 %. A fine-tune starts from a trained network:
#: Adam at 3e-4 with the peak weight (the drill's fine-tunes, 75.1 -> 80.9 %), full resolution.
RECIPES: dict[str, dict[str, dict]] = {
    "seed": {"new": {}, "fine_tune": {}},
    "fast": {
        "new": {"optimizer": "adam", "lr": 1e-3, "peak_weight": 5.0, "sigma_start": 4.0, "low_res": 0.5},
        "fine_tune": {"optimizer": "adam", "lr": 3e-4, "peak_weight": 5.0},
    },
}
DEFAULT_RECIPE = "fast"


def recipe_defaults(name: str, fine_tune: bool) -> dict:
    """The option defaults of recipe ``name`` for a new run or a fine-tune; unknown name -> KptrackError."""
    if name not in RECIPES:
        raise KptrackError(f"--recipe {name!r}: unknown recipe. Use one of: {', '.join(RECIPES)}.")
    return dict(RECIPES[name]["fine_tune" if fine_tune else "new"], recipe=name)


def check_config(cfg: TrainConfig) -> None:
    """Raise one KptrackError naming the first option out of range (and an unknown preset)."""
    get_preset(cfg.preset)
    problems = [
        (cfg.iters >= 1, f"--iters {cfg.iters}: must be >= 1"),
        (cfg.batch >= 1, f"--batch {cfg.batch}: must be >= 1"),
        (cfg.lr > 0 and math.isfinite(cfg.lr), f"--lr {cfg.lr}: must be a positive number"),
        (cfg.optimizer in ("rmsprop", "adam"), f"optimizer {cfg.optimizer!r}: use rmsprop or adam"),
        (cfg.schedule in ("cosine", "step", "constant"), f"schedule {cfg.schedule!r}: use cosine, step or constant"),
        (cfg.workers is None or cfg.workers >= 0, f"--workers {cfg.workers}: must be >= 0"),
        (cfg.threads is None or cfg.threads >= 1, f"--threads {cfg.threads}: must be >= 1"),
        (cfg.val_every >= 1 and cfg.log_every >= 1, "val_every and log_every must be >= 1"),
        (cfg.sigma > 0, f"--sigma {cfg.sigma}: must be > 0 heatmap cells"),
        (cfg.sigma_start is None or cfg.sigma_start >= cfg.sigma,
         f"--sigma-start {cfg.sigma_start}: must be >= --sigma {cfg.sigma} (targets narrow during training)"),
        (0 < cfg.sigma_decay <= 1, f"--sigma-decay {cfg.sigma_decay}: must be within (0, 1]"),
        (0 <= cfg.low_res < 1, f"--low-res {cfg.low_res}: must be a fraction within [0, 1)"),
        (cfg.peak_weight >= 1, f"--peak-weight {cfg.peak_weight}: must be >= 1"),
        (0 < cfg.hidden_peak <= 1, f"--hidden-peak {cfg.hidden_peak}: must be within (0, 1]"),
        (cfg.coord_weight is None or (cfg.coord_weight >= 0 and math.isfinite(cfg.coord_weight)),
         f"--coord-weight {cfg.coord_weight}: must be >= 0"),
        (cfg.symmetric_loss in ("min", "canonical"), f"--symmetric-loss {cfg.symmetric_loss!r}: use min or canonical"),
        (0 <= cfg.rotation_deg <= 180, f"--rot-range {cfg.rotation_deg}: must be within 0..180 degrees"),
        (0 <= cfg.scale_jitter < 1, f"scale_jitter {cfg.scale_jitter}: must be within [0, 1)"),
        (0 <= cfg.search_prob <= 1, f"search_prob {cfg.search_prob}: must be within [0, 1]"),
        (0 <= cfg.occlude_keypoints <= 1, f"--occlude-keypoints {cfg.occlude_keypoints}: must be a fraction within [0, 1]"),
        (0 < cfg.val_fraction < 1 and cfg.val_max >= 1, "val_fraction must be in (0, 1) and val_max >= 1"),
        (cfg.precision in PRECISIONS, unknown_precision(cfg.precision)),
        (cfg.recipe is None or cfg.recipe in RECIPES, f"--recipe {cfg.recipe!r}: use one of {', '.join(RECIPES)}"),
        (cfg.device in ("auto", "cpu", "cuda") or cfg.device.startswith("cuda:"), f"--device {cfg.device}: use auto, cpu or cuda"),
    ]
    for ok, msg in problems:
        if not ok:
            raise KptrackError(msg + ".")
