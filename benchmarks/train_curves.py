"""Training curves of #10 ("a new object learns in minutes"): the test objects, and the plot.

``python -m benchmarks.train_curves objects --out DIR`` writes the two new objects the curves are
measured on, next to the built-in drill: ``DIR/box`` (80x60x40 mm) and ``DIR/cylinder``
(radius 30 mm, height 100 mm), both from ``kptrack object init`` with one seeded procedural
texture (``DIR/texture.png``: six cluttered tiles, each with its own large glyph, so every side
looks different).

``python -m benchmarks.train_curves plot NAME=RUN_DIR ... --out PNG`` draws validation PCK@5px
of each run (its ``log.csv``) against wall time and against iterations, side by side. With
``--images`` the second panel counts training images seen instead of iterations, so that runs of
different batch sizes (a GPU's 32 against a CPU's 8) compare: each run's batch is read from its
``config.json``, or given as ``NAME=LOG.csv,BATCH`` for a kept log.
"""

from __future__ import annotations

import argparse
import csv
import json
import sys
from pathlib import Path

import cv2
import numpy as np

from tracker.objects import init_object
from tracker.objects.primitives import box_mesh, cylinder_mesh
from train.synth.backgrounds import procedural_background

COLOURS = ((200, 60, 20), (30, 150, 30), (30, 30, 200), (160, 40, 160), (0, 140, 200), (90, 90, 90))


def make_texture(seed: int = 11, tile: int = 200) -> np.ndarray:
    """(2 tile, 3 tile, 3) uint8 BGR: the 3 x 2 grid of the primitives' layout, one tile per side."""
    rng = np.random.default_rng(seed)
    tex = np.zeros((2 * tile, 3 * tile, 3), np.uint8)
    for i in range(6):
        r, c = divmod(i, 3)
        t = procedural_background(rng, tile, tile, cluttered=True)
        colour = tuple(int(x) for x in rng.integers(0, 255, 3))
        cv2.putText(t, "KPT"[i % 3] + str(i), (30, 130), cv2.FONT_HERSHEY_SIMPLEX, 2.5, colour, 6)
        tex[r * tile:(r + 1) * tile, c * tile:(c + 1) * tile] = t
    return tex


def make_objects(out: Path) -> None:
    out.mkdir(parents=True, exist_ok=True)
    tex = make_texture()
    cv2.imwrite(str(out / "texture.png"), tex)
    print("wrote", init_object(box_mesh((80.0, 60.0, 40.0), tex), out_dir=out / "box", name="box"))
    print("wrote", init_object(cylinder_mesh(30.0, 100.0, tex), out_dir=out / "cylinder", name="cylinder"))


def read_card_curve(card: Path, stage: int = 0) -> np.ndarray:
    """(n, 3) rows (iteration, wall seconds, PCK@5px) of a model card's training stage. A card keeps
    the stage's total wall time only, so each point's time is its share of it (a uniform rate)."""
    st = json.loads(card.read_text())["training"]["stages"][stage]
    per_it = float(st["wall_time_s"]) / float(st["iterations"])
    return np.array([(p["iter"], p["iter"] * per_it, p["pck5"]) for p in st["validation_curve"]], np.float64)


def read_curve(run: Path) -> np.ndarray:
    """(n, 3) float64 rows (iteration, wall seconds, PCK@5px) of the validated rows of run/log.csv
    (or of ``run`` itself when it is a ``.csv`` file, such as a log kept in benchmarks/curves/logs),
    or of a model card (``card:PATH``, see :func:`read_card_curve`)."""
    if str(run).startswith("card:"):
        return read_card_curve(Path(str(run)[5:]))
    rows = []
    with open(run if run.suffix == ".csv" else run / "log.csv", newline="") as f:
        for r in csv.DictReader(f):
            if r.get("pck5"):
                rows.append((float(r["iter"]), float(r["time_s"]), float(r["pck5"])))
    return np.array(rows, np.float64).reshape(-1, 3)


def _panel(curves: dict[str, np.ndarray], col: int, xlabel: str, w: int = 560, h: int = 400) -> np.ndarray:
    img = np.full((h, w, 3), 255, np.uint8)
    x0, y0, pw, ph = 60, 20, w - 80, h - 70
    xmax = max(float(c[:, col].max()) for c in curves.values() if len(c)) or 1.0
    cv2.rectangle(img, (x0, y0), (x0 + pw, y0 + ph), (0, 0, 0), 1)
    for k in range(6):
        yy = y0 + ph - int(ph * k / 5)
        cv2.line(img, (x0, yy), (x0 + pw, yy), (225, 225, 225), 1)
        cv2.putText(img, f"{k / 5:.1f}", (22, yy + 4), cv2.FONT_HERSHEY_SIMPLEX, 0.4, (0, 0, 0), 1, cv2.LINE_AA)
        xx = x0 + int(pw * k / 5)
        cv2.putText(img, f"{xmax * k / 5:.0f}", (xx - 15, y0 + ph + 16), cv2.FONT_HERSHEY_SIMPLEX, 0.4, (0, 0, 0), 1, cv2.LINE_AA)
    cv2.putText(img, xlabel, (x0 + pw // 2 - 60, h - 18), cv2.FONT_HERSHEY_SIMPLEX, 0.5, (0, 0, 0), 1, cv2.LINE_AA)
    cv2.putText(img, "PCK@5px", (x0 + 5, y0 + 15), cv2.FONT_HERSHEY_SIMPLEX, 0.45, (0, 0, 0), 1, cv2.LINE_AA)
    for i, (name, c) in enumerate(curves.items()):
        colour = COLOURS[i % len(COLOURS)]
        pts = [(x0 + int(pw * x / xmax), y0 + ph - int(ph * p)) for x, p in zip(c[:, col], c[:, 2])]
        if len(pts) > 1:
            cv2.polylines(img, [np.array(pts, np.int32)], False, colour, 2, cv2.LINE_AA)
        for p in pts:
            cv2.circle(img, p, 3, colour, -1, cv2.LINE_AA)
        cv2.putText(img, name, (x0 + 10, y0 + 35 + 18 * i), cv2.FONT_HERSHEY_SIMPLEX, 0.5, colour, 1, cv2.LINE_AA)
    return img


def run_batch(spec: str) -> tuple[Path, int]:
    """(the run, its batch per iteration) of ``RUN_DIR``, ``LOG.csv`` or ``LOG.csv,BATCH``: a
    given batch wins, else the run folder's ``config.json`` (as ``kptrack train`` writes it)."""
    path, _, batch = spec.partition(",")
    run = Path(path)
    if batch:
        if not batch.isdigit() or int(batch) < 1:
            raise SystemExit(f"{spec}: the batch after the comma must be a whole number >= 1, e.g. {path},8")
        return run, int(batch)
    config = (run.parent if run.suffix == ".csv" else run) / "config.json"
    if not config.is_file():
        raise SystemExit(f"{spec}: no config.json beside this log to read its batch from; give it as {spec},BATCH")
    return run, int(json.loads(config.read_text())["batch"])


def plot(curves: dict[str, np.ndarray], out: Path, batches: dict[str, int] | None = None) -> Path:
    """PCK@5px against wall time (minutes) and against iterations, side by side, as a PNG; with
    ``batches`` (run name -> images per iteration) against thousands of images seen instead."""
    minutes = {k: np.column_stack([c[:, 0], c[:, 1] / 60.0, c[:, 2]]) for k, c in curves.items()}
    if batches is None:
        right = _panel(curves, 0, "iterations")
    else:
        seen = {k: np.column_stack([c[:, 0] * batches[k] / 1000.0, c[:, 1], c[:, 2]]) for k, c in curves.items()}
        right = _panel(seen, 0, "images seen, thousands")
    img = np.hstack([_panel(minutes, 1, "wall time, minutes"), right])
    out.parent.mkdir(parents=True, exist_ok=True)
    cv2.imwrite(str(out), img)
    return out


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(prog="python -m benchmarks.train_curves", description=__doc__.split("\n")[0])
    sub = ap.add_subparsers(dest="cmd", required=True)
    po = sub.add_parser("objects", help="write the box and cylinder test objects")
    po.add_argument("--out", required=True, help="folder for texture.png, box/ and cylinder/")
    pp = sub.add_parser("plot", help="plot validation PCK@5px of training runs")
    pp.add_argument("runs", nargs="+", help="NAME=RUN_DIR (a kptrack train --out folder with log.csv), NAME=LOG.csv[,BATCH] "
                    "or NAME=card:CARD.json")
    pp.add_argument("--images", action="store_true", help="second panel against training images seen, not iterations")
    pp.add_argument("--max-minutes", type=float, default=None, help="cut the curves at this wall time")
    pp.add_argument("--out", required=True, help="output PNG")
    a = ap.parse_args(argv)
    if a.cmd == "objects":
        make_objects(Path(a.out))
    else:
        bad = [r for r in a.runs if "=" not in r]
        if bad:
            raise SystemExit(f"{bad[0]}: give each run as NAME=RUN_DIR, NAME=LOG.csv[,BATCH] or NAME=card:CARD.json")
        specs = dict(r.split("=", 1) for r in a.runs)
        batches = {k: run_batch(v)[1] for k, v in specs.items()} if a.images else None
        curves = {k: read_curve(Path(v.partition(",")[0])) for k, v in specs.items()}
        if a.max_minutes is not None:
            curves = {k: c[c[:, 1] <= a.max_minutes * 60.0 + 1e-9] for k, c in curves.items()}
        print("wrote", plot(curves, Path(a.out), batches))
    return 0


if __name__ == "__main__":
    sys.exit(main())
