"""Tracker settings scored on the development sequences, never on the demo's own:
``python -m benchmarks.dev_sweep '{"name": {overrides}, ...}' [--cache DIR] [--model OBJECT=ONNX] [--objects LIST]``.

Each variant is a set of :class:`~tracker.pipeline.config.TrackerConfig` overrides on the fast
preset. It tracks every development sequence (the demo's renderer, 300 frames at 640x480: drill
seeds 2-7 and bottle seeds 2-5, rendered once into the cache) with the shipped model of its
object and prints ADD(-S) < 0.1 d / 2D < 5 px per sequence, the mean per object and over all,
and the demos' figures (seed 1) for reference only. The tracker's thresholds are chosen on these
means (benchmarks/RESULTS.md), so the demo keeps an unseen score. Pose jumps (rotations > 30 deg
beyond the truth's between tracked frames) are summed per object, and those between two correct
poses (ADD-S < 0.1 d on both frames: flips between symmetric equivalents) apart.

An object directory (``kptrack object init``) may be listed too, with its model
(``--objects default,DIR --model DIR=ONNX``): its sequences, seeds 2-5 and 1 for reference, are
rendered the same way.

``--json FILE`` also writes every sequence's figures (see :func:`sweep_document`), rewritten after
each variant so a stopped sweep keeps the variants it finished; :mod:`benchmarks.sweep_compare`
reads two such files and applies a ship rule to them.
"""

from __future__ import annotations

import argparse
import functools
import json
import logging
from pathlib import Path

from benchmarks.demo import DEMO_SEED, ensure_demo_sequence, run_demo
from tracker.atomic import atomic_write
from tracker.camera import Camera
from tracker.errors import KptrackError
from tracker.eval.temporal import JUMP_KINDS
from tracker.objects import load_object
from tracker.paths import default_cache_dir, resolve_model
from tracker.pipeline.config import TrackerConfig
from tracker.pipeline.infer import OnnxHeatmapModel

DEV_SEEDS = {"default": (2, 3, 4, 5, 6, 7), "bottle": (2, 3, 4, 5)}
DIR_SEEDS = (2, 3, 4, 5)  # an object directory's development sequences


def score_variant(overrides: dict, cache: Path, seeds: dict = DEV_SEEDS, with_demo: bool = True,
                  models: dict | None = None) -> dict:
    """{(object, seed): (ADD fraction, 2D fraction, pose jumps, tracked pairs, {jump kind: count})} of
    one variant (kinds: tracker.eval.temporal.JUMP_KINDS) over
    the sequences; models: {object: ONNX path} to score a candidate instead of the shipped model
    (required for an object directory)."""
    config = TrackerConfig.preset("fast", **overrides)  # a bad setting fails here, before any rendering
    out = {}
    for name, object_seeds in seeds.items():
        obj = load_object(name)
        model = OnnxHeatmapModel(resolve_model((models or {}).get(name), object_name=name), device="cpu", threads=1)
        for seed in ((DEMO_SEED,) if with_demo else ()) + tuple(object_seeds):
            scene = ensure_demo_sequence(cache, 300, seed=seed, object_name=name)
            report = run_demo(model, obj, Camera.from_yaml(scene / "camera.yaml"), scene, config=config)
            j = report.accuracy["jumps"]
            out[(name, seed)] = (report.accuracy["frac_add"], report.accuracy["frac_proj"], j["jumps"], j["pairs"],
                                 dict(j["kinds"]))
    return out


@functools.lru_cache(maxsize=None)
def object_label(name: str) -> str:
    """How the summary names an object: a built-in by its name, an object directory by the name
    it declares (``kptrack object init --name``; models/plainbox/object is 'plainbox'), else by
    its folder."""
    if not Path(name).is_dir():
        return name
    try:
        return str(load_object(name).name) or Path(name).name
    except KptrackError:
        return Path(name).name


def _kinds(v: list) -> str:
    """The jumps of some sequences by the poses they join: a flip between symmetric equivalents joins
    two correct poses; the others lose a track, correct one, or move between wrong poses."""
    n = {k: sum(x[4].get(k, 0) for x in v) for k in JUMP_KINDS}
    return (f"{n['between_correct']} between correct poses, {n['to_wrong']} to a wrong pose, "
            f"{n['to_correct']} back to a correct one, {n['between_wrong']} wrong to wrong")


def summary(scores: dict) -> str:
    """One line per object and one over all: the development means (demo seed excluded), then the demos."""
    lines = []
    dev = {k: v for k, v in scores.items() if k[1] != DEMO_SEED}
    for name in sorted({k[0] for k in scores}):
        v = [x for k, x in dev.items() if k[0] == name]
        if v:
            lines.append(f"  {object_label(name)}: dev mean ADD {100 * sum(x[0] for x in v) / len(v):.2f} %  2D {100 * sum(x[1] for x in v) / len(v):.2f} %  "
                         f"jumps {sum(x[2] for x in v)} of {sum(x[3] for x in v)} pairs, {_kinds(v)}  (n={len(v)})")
    if dev:
        lines.append(f"  all: dev mean ADD {100 * sum(x[0] for x in dev.values()) / len(dev):.2f} %  "
                     f"2D {100 * sum(x[1] for x in dev.values()) / len(dev):.2f} %  (n={len(dev)})")
    demos = ", ".join(f"{object_label(k[0])} {100 * x[0]:.1f} / {100 * x[1]:.1f} %" for k, x in scores.items() if k[1] == DEMO_SEED)
    if demos:
        lines.append(f"  demos (reference only): {demos}")
    return "\n".join(lines)


def sweep_document(results: dict[str, dict], models: dict[str, str]) -> dict:
    """The ``--json`` document of some variants' scores ({variant: :func:`score_variant`'s dict}):
    ``{"models": {object: ONNX}, "variants": {variant: [{"object", "seed", "add", "proj", "jumps",
    "pairs"}, ...]}}``; models as given with --model (an object left out ran its shipped model), add
    and proj the fractions of frames with ADD(-S) < 0.1 d and 2D < 5 px. The demo's seed is in the
    rows too; readers leave it out of every mean."""
    return {"models": dict(models), "variants": {
        name: [{"object": object_label(o), "seed": s, "add": x[0], "proj": x[1], "jumps": x[2], "pairs": x[3]}
               for (o, s), x in scores.items()] for name, scores in results.items()}}


def _write_json(path: Path, doc: dict) -> None:
    try:
        with atomic_write(path) as f:
            f.write(json.dumps(doc, indent=1).encode())
    except OSError as e:
        raise SystemExit(f"--json {path}: cannot write ({e.strerror}). Give a path in a writable folder.") from None


def parse_seeds(text: str) -> tuple[int, ...]:
    """'2-9' or '2,3,6' (ranges and single seeds, comma-separated) -> the seeds, in order; the demo's
    seed is refused (it is scored for reference anyway, and kept out of every choice)."""
    out: list[int] = []
    try:
        for part in filter(None, text.split(",")):
            lo, sep, hi = part.partition("-")
            out += range(int(lo), (int(hi) if sep else int(lo)) + 1)
    except ValueError:
        raise SystemExit(f"--seeds {text}: give seeds and ranges, e.g. 2-9 or 2,3,6.") from None
    if not out or DEMO_SEED in out or min(out) < 0:
        raise SystemExit(f"--seeds {text}: give development seeds >= 0 other than the demo's seed {DEMO_SEED}, e.g. 2-9.")
    return tuple(dict.fromkeys(out))


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("variants", help='JSON object: {"name": {TrackerConfig overrides}}')
    p.add_argument("--cache", default=None, help="where the sequences are rendered and kept (default: kptrack's cache)")
    p.add_argument("--model", action="append", default=[], metavar="OBJECT=ONNX",
                   help="score this model for OBJECT (default or bottle) instead of the shipped one; repeatable")
    p.add_argument("--objects", default=",".join(DEV_SEEDS), help="which objects' sequences (default: default,bottle)")
    p.add_argument("--seeds", default=None, metavar="LIST",
                   help="development seeds for every listed object, e.g. 2-9 or 2,3,6 (default: each object's own; "
                        f"object directories {DIR_SEEDS[0]}-{DIR_SEEDS[-1]}); seed {DEMO_SEED} is the demo's, scored for reference only")
    p.add_argument("--json", default=None, metavar="FILE",
                   help="also write every sequence's figures to this new file (read by python -m benchmarks.sweep_compare)")
    args = p.parse_args(argv)
    out = Path(args.json) if args.json else None
    if out is not None and out.exists():
        raise SystemExit(f"--json {out}: the file exists. Give a new path (a sweep never overwrites one).")
    models = dict(m.split("=", 1) for m in args.model if "=" in m)
    objects = [o for o in args.objects.split(",") if o]
    if len(models) != len(args.model) or not set(models) <= set(DEV_SEEDS) | set(objects):
        raise SystemExit(f"--model {args.model}: give OBJECT=PATH with OBJECT one of {', '.join(DEV_SEEDS)} or a listed object directory.")
    for o in objects:
        if o not in DEV_SEEDS and not (Path(o).is_dir() and o in models):
            raise SystemExit(f"--objects {args.objects}: {o} is neither {' nor '.join(DEV_SEEDS)} nor an object directory "
                             f"given a model with --model {o}=ONNX.")
    if not objects:
        raise SystemExit(f"--objects {args.objects}: a comma-separated list of {', '.join(DEV_SEEDS)} or object directories.")
    seeds = {o: DEV_SEEDS.get(o, DIR_SEEDS) for o in objects}
    if args.seeds is not None:
        chosen = parse_seeds(args.seeds)
        seeds = {o: chosen for o in objects}
    try:
        variants = json.loads(args.variants)
    except json.JSONDecodeError as e:
        raise SystemExit(f"variants: not a JSON object ({e}). Example: '{{\"huber\": {{}}, \"cauchy\": {{\"loss\": \"cauchy\"}}}}'")
    if not isinstance(variants, dict) or not all(isinstance(v, dict) for v in variants.values()):
        raise SystemExit('variants: give a JSON object of objects, e.g. \'{"base": {}, "acq": {"min_acquire_score": 0.35}}\'')
    logging.basicConfig(level=logging.WARNING)
    cache = Path(args.cache) if args.cache else default_cache_dir()
    done: dict[str, dict] = {}
    for name, overrides in variants.items():
        try:
            scores = score_variant(overrides, cache, seeds, models=models)
        except (KptrackError, TypeError) as e:
            raise SystemExit(f"variant {name!r}: {e}")
        done[name] = scores
        if out is not None:
            _write_json(out, sweep_document(done, models))
        print(name + "  " + " | ".join(f"{object_label(o)}{s}: {100 * x[0]:.1f}/{100 * x[1]:.1f}" for (o, s), x in scores.items()), flush=True)
        print(summary(scores), flush=True)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
