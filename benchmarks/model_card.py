"""Model cards: ``models/<name>/card.json`` from the training runs that made a model.

A card says how a shipped model was made and how well it does, so it can be re-made and
checked: the exact commands, the data, each training stage (its config, iterations, batch,
optimizer, recipe options, wall time and validation curve, read from the run folder's
``config.json`` and ``log.csv``), the machine, and the scores of the exported file (the JSON
that ``kptrack score --json`` writes, and any other JSON reports, e.g. a demo's).

    python -m benchmarks.model_card --stage runs/box --model models/box/model.onnx --object DIR \\
        --score score.json --command "kptrack synth ..." --command "kptrack train ..." \\
        --data "20000 synthetic images ..." --note "..." --out models/box/card.json
"""

from __future__ import annotations

import argparse
import csv
import json
import sys
from pathlib import Path
from typing import Any

from benchmarks.machine import git_commit, machine_info
from tracker.atomic import atomic_write

# The config keys a card repeats for each stage: what defines the recipe.
RECIPE_KEYS = ("iters", "batch", "optimizer", "lr", "schedule", "warmup", "sigma", "sigma_start", "sigma_decay",
               "peak_weight", "hidden_peak", "coord_weight", "low_res", "rotation_deg", "scale_jitter", "occlude_keypoints", "context", "init", "threads", "workers", "seed", "data")


def _num(x: str) -> float | None:
    return float(x) if x not in ("", None) else None


def read_stage(run: Path) -> dict[str, Any]:
    """One training run folder -> its card stage: recipe, iterations, wall time, validation curve, best."""
    cfg = json.loads((run / "config.json").read_text())
    with open(run / "log.csv", newline="") as f:
        rows = list(csv.DictReader(f))
    if not rows:
        raise SystemExit(f"{run / 'log.csv'}: no rows; is {run} a finished kptrack train run?")
    curve = [{"iter": int(r["iter"]), "pck2": _num(r["pck2"]), "pck5": _num(r["pck5"]), "mean_px": _num(r["mean_px"]),
              "time_s": _num(r["time_s"])} for r in rows if r["pck5"]]
    best = max(curve, key=lambda c: (c["pck5"], -(c["mean_px"] or 0.0))) if curve else None
    last_it = int(rows[-1]["iter"])
    return {
        "run": str(run),
        "recipe": {k: cfg.get(k) for k in RECIPE_KEYS},
        "iterations": last_it,
        "images_seen": last_it * int(cfg["batch"]),
        "wall_time_s": _num(rows[-1]["time_s"]),
        "validation_curve": curve,
        "validation_best": best,
    }


def make_card(stages: list[Path], model: str, obj: str, commands: list[str], data: str, scores: dict[str, Any],
              notes: list[str]) -> dict[str, Any]:
    st = [read_stage(Path(s)) for s in stages]
    return {
        "model": model,
        "object": obj,
        "commands": commands,
        "data": data,
        "training": {
            "stages": st,
            "total_iterations": sum(s["iterations"] for s in st),
            "total_wall_time_s": sum(s["wall_time_s"] or 0.0 for s in st),
        },
        "scores": scores,
        "machine": {k: v for k, v in machine_info().items() if k != "argv"},
        "commit": git_commit(),
        "notes": notes,
    }


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(prog="python -m benchmarks.model_card", description=__doc__.split("\n")[0])
    ap.add_argument("--stage", action="append", required=True, help="a kptrack train run folder, in training order (repeat)")
    ap.add_argument("--model", required=True, help="the shipped ONNX file the card describes")
    ap.add_argument("--object", required=True, help="the object ('default', 'bottle' or an object directory)")
    ap.add_argument("--command", action="append", default=[], help="a command that made the model, in order (repeat)")
    ap.add_argument("--data", default="", help="what the training and test data are")
    ap.add_argument("--score", action="append", default=[], metavar="NAME=JSON",
                    help="a JSON report to include under scores[NAME] (e.g. test=score.json from kptrack score --json)")
    ap.add_argument("--note", action="append", default=[], help="a sentence for the card's notes (repeat)")
    ap.add_argument("--out", required=True, help="card.json to write")
    a = ap.parse_args(argv)
    scores = {}
    for s in a.score:
        name, _, path = s.partition("=")
        scores[name] = json.loads(Path(path).read_text())
    card = make_card(a.stage, a.model, a.object, a.command, a.data, scores, a.note)
    with atomic_write(a.out) as f:
        f.write((json.dumps(card, indent=1) + "\n").encode())
    print("wrote", a.out)
    return 0


if __name__ == "__main__":
    sys.exit(main())
