"""``kptrack adapt``: learn from the user's own footage, round after round, scored on frames it never trains on.

One round: pseudo-label the videos with the current model (:mod:`train.pseudolabel`, the
held-out frames excluded), fine-tune the current checkpoint on the synthetic data mixed with the
pseudo-labels and any hand labels (:mod:`train.sources`, ``--init``), export the new model
(:func:`export.onnx_export.export_onnx`), then score it:

* on the held-out hand-labelled frames (``kptrack annotate``'s COCO file for the first video),
  with :func:`tracker.eval.labelled.score_labelled`: the fraction of labelled keypoints within
  5 px of the tracked pose's projection (a frame without a pose misses all of its labels), with
  the frames given a pose and the median error beside it;
* on a synthetic sequence of the same object (rendered once with :mod:`train.synth`), with
  the demo's headline (:func:`tracker.eval.evaluate.score_tracked`), so that forgetting shows.

The model before the first round is scored the same way (round 0). The loop stops after
``rounds`` rounds, or as soon as a round does not raise the held-out score by more than
``min_gain``; the best round's model is the result (``best.onnx`` in ``out``).

Guards against confirmation bias: the held-out frames (and ``exclude_margin`` frames around
each) never become pseudo-labels; a round's labels are those that pass the checks with the new
model, plus the last round's labels only where the new model's pose agrees with them
(:func:`train.pseudolabel.apply_previous`); a frame the two models disagree on is dropped.

Everything a round writes is in ``out/round_N/`` (pseudo/, train/, model.onnx), and ``adapt.json``
records every round's scores, rewritten after each round.
"""

from __future__ import annotations

import json
import logging
import math
import shutil
from dataclasses import asdict, dataclass, field, replace
from pathlib import Path
from typing import Callable

import numpy as np

from export.onnx_export import ExportConfig, export_onnx
from tracker.camera import Camera
from tracker.errors import KptrackError
from tracker.eval.evaluate import score_tracked
from tracker.eval.labelled import score_labelled
from tracker.formats.coco import read_coco
from tracker.labels.store import labels_path as labels_file
from tracker.objects import ObjectModel, load_object
from tracker.paths import resolve_model
from tracker.pipeline.config import TrackerConfig
from tracker.pipeline.infer import OnnxHeatmapModel
from tracker.pipeline.session import run_tracking
from tracker.pipeline.source import open_image_folder
from train.config import TrainConfig
from train.loop import train
from train.pseudolabel import PseudoLabelChecks, PseudoLabelConfig, pseudolabel, track_video
from train.synth import SynthConfig, run_synth

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class AdaptConfig:
    """Options of ``kptrack adapt``.

    videos: the user's footage (the first is the one ``heldout`` labels). out: the working folder
    (new, or one this command made: finished rounds are kept, nothing is overwritten). model /
    checkpoint: the ONNX model and the training checkpoint it was exported from (the first
    fine-tune's --init). object, camera: as for ``kptrack track``. heldout: annotate's COCO file
    of held-out frames of the first video (scored each round, never labelled). synthetic:
    ``PATH[:WEIGHT]`` of synthetic training data (keeps the model from forgetting); labelled:
    hand-labelled training data, each ``PATH[:WEIGHT]``; pseudo_weight: the pseudo-labels' share.
    rounds: at most this many; min_gain: a round must raise the held-out score by more than this.
    iters, batch, lr, optimizer, workers, threads, train_device: each fine-tune. checks: the
    pseudo-label thresholds. seq_frames: length of the synthetic sequence scored each round.
    preset, device: the tracker's (default ``accurate``: offline, so the poses refined on image
    edges, whose pseudo-labels measured about 3x more precise; benchmarks/RESULTS.md).
    """

    videos: tuple[str, ...]
    out: str
    checkpoint: str
    model: str | None = None
    object: str = "default"
    camera: str | None = None
    heldout: str | None = None
    synthetic: str | None = None
    labelled: tuple[str, ...] = ()
    pseudo_weight: float = 1.0
    rounds: int = 3
    min_gain: float = 0.005
    iters: int = 2000
    batch: int = 8
    lr: float = 1e-4
    optimizer: str = "adam"
    workers: int | None = None
    threads: int | None = None
    train_device: str = "auto"
    checks: PseudoLabelChecks = field(default_factory=PseudoLabelChecks)
    seq_frames: int = 300
    preset: str = "accurate"
    device: str = "auto"


# ---------------------------------------------------------------------------- scores
def heldout_score(model: OnnxHeatmapModel, obj: ObjectModel, video: str, camera: str | None, labels_path: str,
                  preset: str = "fast") -> dict:
    """Track ``video`` as ``kptrack track`` would and score it on the labelled frames of
    ``labels_path`` (annotate's COCO file or its folder): {'pck5': fraction of labels within 5 px, 'with_pose', 'median_px', ...}."""
    coco = read_coco(labels_file(labels_path))
    if tuple(coco.keypoint_names) != tuple(obj.keypoint_names):
        raise KptrackError(f"--heldout {labels_path}: labels for keypoints ({', '.join(coco.keypoint_names)}) but the object "
                           f"has ({', '.join(obj.keypoint_names)}). Pass the labels made for this object.")
    results, cam = track_video(video, model, obj, camera, TrackerConfig.preset(preset), None)
    poses = {r.index: (r.R_m2c, r.t_m2c, r.score) for r in results if r.has_pose}
    rows = [(a.image_id, a.uv, a.v) for a in coco.annotations]
    agg = score_labelled(np.asarray(obj.keypoints, np.float64), obj.keypoint_names, cam, rows, poses)["aggregate"]
    return {"pck5": agg["pck"].get("5px"), "pck10": agg["pck"].get("10px"), "with_pose": agg["frac_with_pose"],
            "median_px": agg["median_kp_px_all_frames"], "frames": agg["frames"]}


def sequence_score(model: OnnxHeatmapModel, obj: ObjectModel, scene: Path, preset: str = "fast") -> dict:
    """The demo's headline (ADD < 0.1 d, 2D < 5 px over the >= 50 % visible frames) on a synthetic scene."""
    results = []
    run_tracking(open_image_folder(scene / "rgb"), model, obj, Camera.from_yaml(scene / "camera.yaml"),
                 TrackerConfig.preset(preset), on_result=results.append)
    h = score_tracked(results, scene, obj)
    return {"frac_add": h.get("frac_add"), "frac_proj": h.get("frac_proj"), "n_scored": h.get("n_scored")}


def _sequence(cfg: AdaptConfig, out: Path) -> Path:
    """The synthetic sequence of the object (seed 1, the demo's), rendered once into out/sequence_<N>f."""
    root = out / f"sequence_{cfg.seq_frames}f"
    scene = root / "test_seq" / "000000"
    if not (scene / "sequence_info.json").is_file():
        run_synth(SynthConfig(object=cfg.object, out=root, sequence=True, frames=cfg.seq_frames, seed=1,
                              overwrite=True, progress=False))
    return scene


def score_model(cfg: AdaptConfig, model_path: str | Path, obj: ObjectModel, scene: Path) -> dict:
    """Round scores of one ONNX model: held-out frames (when given) and the synthetic sequence."""
    model = OnnxHeatmapModel(model_path, device=cfg.device, threads=cfg.threads)
    s = {"model": str(model_path), "synthetic": sequence_score(model, obj, scene, cfg.preset)}
    if cfg.heldout:
        s["heldout"] = heldout_score(model, obj, cfg.videos[0], cfg.camera, cfg.heldout, cfg.preset)
    return s


def headline(scores: dict) -> float:
    """The number a round must raise: held-out PCK@5px, or (without held-out labels) the synthetic 2D rate."""
    x = scores["heldout"]["pck5"] if "heldout" in scores else scores["synthetic"]["frac_proj"]
    return float(x) if x is not None and math.isfinite(float(x)) else -1.0


# ---------------------------------------------------------------------------- one round
def run_round(cfg: AdaptConfig, n: int, model_path: Path, checkpoint: Path, previous: Path | None, out: Path) -> tuple[Path, Path]:
    """Round ``n``: pseudo-label with ``model_path``, fine-tune ``checkpoint``, export. Returns (model, checkpoint)."""
    rd = out / f"round_{n}"
    rd.mkdir(parents=True, exist_ok=True)
    pseudo = rd / "pseudo"
    if not (pseudo / "pseudolabel.json").is_file():
        exclude = (cfg.heldout,) + ("",) * (len(cfg.videos) - 1) if cfg.heldout else ()
        pseudolabel(PseudoLabelConfig(videos=cfg.videos, out=str(pseudo), model=str(model_path), object=cfg.object,
                                      camera=cfg.camera, exclude=exclude, checks=cfg.checks,
                                      previous=str(previous) if previous else None, preset=cfg.preset, device=cfg.device,
                                      threads=cfg.threads))
    data = tuple(x for x in (cfg.synthetic, f"{pseudo}:{cfg.pseudo_weight:g}", *cfg.labelled) if x)
    run = rd / "train"
    tc = TrainConfig(data=data, out=str(run), object=cfg.object, init=str(checkpoint), iters=cfg.iters, batch=cfg.batch,
                     lr=cfg.lr, optimizer=cfg.optimizer, workers=cfg.workers, threads=cfg.threads, device=cfg.train_device,
                     val_every=max(1, cfg.iters // 4), warmup=min(200, cfg.iters // 10), seed=n,
                     coord_weight=0.0)  # the rounds were measured without it (#13); pseudo-labels' poses are estimates
    if not (run / "last.pt").is_file() or _iteration(run) < cfg.iters:
        train(replace(tc, resume=str(run / "last.pt")) if (run / "last.pt").is_file() else tc)
    model = rd / "model.onnx"
    if not model.is_file():
        export_onnx(ExportConfig(checkpoint=str(run / "last.pt"), out=str(model)))
    return model, run / "last.pt"


def _iteration(run: Path) -> int:
    log_csv = run / "log.csv"
    rows = [r.split(",", 1)[0] for r in log_csv.read_text().splitlines()[1:]] if log_csv.is_file() else []
    return max((int(r) for r in rows if r.isdigit()), default=0)


def _check(cfg: AdaptConfig, out: Path) -> None:
    if not cfg.videos:
        raise KptrackError("--video: give the footage to learn from.")
    if cfg.rounds < 1 or cfg.iters < 1:
        raise KptrackError(f"--rounds {cfg.rounds} / --iters {cfg.iters}: both must be >= 1.")
    if not Path(cfg.checkpoint).is_file():
        raise KptrackError(f"--checkpoint {cfg.checkpoint}: not found. Pass the training checkpoint the --model was exported "
                           "from (e.g. models/default/last.pt), so each round can fine-tune it.")
    if cfg.heldout and not labels_file(cfg.heldout).is_file():
        raise KptrackError(f"--heldout {cfg.heldout}: not found. Pass the COCO file `kptrack annotate` wrote for the held-out frames.")
    if out.exists() and not (out / "adapt.json").is_file():
        raise KptrackError(f"--out {out}: exists and is not an adapt folder. Choose a new folder (a finished round is reused "
                           "only in a folder this command made).")


def adapt(cfg: AdaptConfig, on_round: Callable[[dict], None] | None = None) -> dict:
    """Run the rounds (see the module docstring). Returns the adapt.json document:
    {'config', 'rounds': [{'round', 'model', 'synthetic', 'heldout'?, 'headline', 'labels'?}], 'best', 'stopped'}."""
    out = Path(cfg.out)
    _check(cfg, out)
    out.mkdir(parents=True, exist_ok=True)
    obj = load_object(cfg.object)
    scene = _sequence(cfg, out)
    model, ckpt, previous = resolve_model(cfg.model), Path(cfg.checkpoint), None
    first = score_model(cfg, model, obj, scene)
    doc = {"config": asdict(cfg), "rounds": [dict(first, round=0, headline=headline(first))], "best": 0, "stopped": ""}
    _save(out, doc, on_round)
    for n in range(1, cfg.rounds + 1):
        model, ckpt = run_round(cfg, n, model, ckpt, previous, out)
        previous = out / f"round_{n}" / "pseudo"
        s = score_model(cfg, model, obj, scene)
        s.update(round=n, headline=headline(s), labels=json.loads((previous / "pseudolabel.json").read_text())["kept"])
        best = doc["rounds"][doc["best"]]["headline"]
        doc["rounds"].append(s)
        if s["headline"] > best:
            doc["best"] = n
        if s["headline"] <= best + cfg.min_gain:
            doc["stopped"] = f"round {n} raised the score by {s['headline'] - best:+.4f} <= {cfg.min_gain} (min gain)"
            _save(out, doc, on_round)
            break
        _save(out, doc, on_round)
    else:
        doc["stopped"] = f"{cfg.rounds} rounds done"
    shutil.copyfile(doc["rounds"][doc["best"]]["model"], out / "best.onnx")
    _save(out, doc, None)
    return doc


def _save(out: Path, doc: dict, on_round: Callable[[dict], None] | None) -> None:
    tmp = out / "adapt.json.tmp"
    tmp.write_text(json.dumps(doc, indent=1, default=str) + "\n", encoding="utf-8")
    tmp.replace(out / "adapt.json")
    if on_round is not None:
        on_round(doc["rounds"][-1])
