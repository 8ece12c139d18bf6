"""A candidate's development sweep against its twin's, under the ship rule RESULTS writes before a
result: ``python -m benchmarks.sweep_compare CANDIDATE.json TWIN.json [--splits '2-9;10-17']``.

Both files come from ``python -m benchmarks.dev_sweep ... --json FILE`` over the same sequences.
For one object it prints each split's and the whole set's mean ADD(-S) / 2D rates of both, and the
rule's four checks (RESULTS, "A wider end occluder" onwards):

(a) the candidate's mean 2D over all the seeds, in the ``--accurate`` variant, is at least the twin's;
(b) no split loses more than ``--max-loss`` points of that variant's 2D;
(c) nor of its ADD(-S);
(d) the ``--fast`` variant's mean 2D over all the seeds loses at most ``--max-loss``.

A check whose variant is missing from either file is reported as not run, and the verdict needs
all four. The demo's seed (1) is in no mean. Points are percentage points of frames.
"""

from __future__ import annotations

import argparse
import json
from pathlib import Path

from benchmarks.dev_sweep import parse_seeds


def read_sweep(path: str | Path) -> dict[str, dict[tuple[str, int], tuple[float, float]]]:
    """{variant: {(object, seed): (ADD fraction, 2D fraction)}} of a dev_sweep --json file; a
    missing or malformed file is one SystemExit naming it."""
    p = Path(path)
    try:
        doc = json.loads(p.read_text())
        return {name: {(r["object"], int(r["seed"])): (float(r["add"]), float(r["proj"])) for r in rows}
                for name, rows in doc["variants"].items()}
    except FileNotFoundError:
        raise SystemExit(f"{p}: file not found. Write it with python -m benchmarks.dev_sweep ... --json {p}.") from None
    except (json.JSONDecodeError, KeyError, TypeError, ValueError, AttributeError) as e:
        raise SystemExit(f"{p}: not a dev_sweep --json file ({type(e).__name__}: {e}). Write it again with "
                         "python -m benchmarks.dev_sweep ... --json FILE.") from None


def split_means(scores: dict[tuple[str, int], tuple[float, float]], obj: str, seeds: tuple[int, ...]) -> tuple[float, float]:
    """(mean ADD, mean 2D) in percent over ``seeds`` of ``obj``; SystemExit naming the seeds missing."""
    missing = [s for s in seeds if (obj, s) not in scores]
    if missing:
        raise SystemExit(f"{obj}: seeds {missing} are not in both sweeps. Sweep the same --seeds for both, or pass --splits "
                         "that they hold.")
    rows = [scores[(obj, s)] for s in seeds]
    return 100 * sum(r[0] for r in rows) / len(rows), 100 * sum(r[1] for r in rows) / len(rows)


def compare(cand: dict, twin: dict, obj: str, splits: list[tuple[int, ...]], accurate: str, fast: str,
            max_loss: float) -> tuple[list[str], bool]:
    """(report lines, verdict) of the candidate against the twin (both :func:`read_sweep`'s dicts)."""
    everything = tuple(dict.fromkeys(s for sp in splits for s in sp))
    groups = [(_label(sp), sp) for sp in splits] + [("all", everything)]
    lines, checks = [], {}
    # {variant: {group: ((candidate ADD, 2D), (twin ADD, 2D))}}, each mean computed once for the table and the checks
    means: dict[str, dict[str, tuple]] = {}
    for variant in dict.fromkeys((accurate, fast)):
        if variant not in cand or variant not in twin:
            lines.append(f"{variant}: not in both sweeps")
            continue
        means[variant] = {name: (split_means(cand[variant], obj, seeds), split_means(twin[variant], obj, seeds))
                          for name, seeds in groups}
        for name, (c, t) in means[variant].items():
            lines.append(f"{variant:>10} {name:>12}: candidate {c[0]:6.2f} / {c[1]:6.2f} %   twin {t[0]:6.2f} / {t[1]:6.2f} %"
                         f"   change {c[0] - t[0]:+.2f} / {c[1] - t[1]:+.2f}")
    if accurate in means:
        c, t = means[accurate]["all"]
        checks["(a) accurate 2D over all at least the twin's"] = c[1] >= t[1]
        d = [means[accurate][name] for name, _ in groups[:-1]]
        checks[f"(b) no split loses more than {max_loss} of accurate 2D"] = all(c[1] - t[1] >= -max_loss for c, t in d)
        checks[f"(c) no split loses more than {max_loss} of accurate ADD(-S)"] = all(c[0] - t[0] >= -max_loss for c, t in d)
    if fast in means:
        c, t = means[fast]["all"]
        checks[f"(d) fast 2D over all loses at most {max_loss}"] = c[1] - t[1] >= -max_loss
    lines += [f"{'pass' if ok else 'FAIL'}  {name}" for name, ok in checks.items()]
    verdict = len(checks) == 4 and all(checks.values())
    lines.append(f"verdict: {'passes' if verdict else 'does not pass'} ({sum(checks.values())} of 4 checks pass, {4 - len(checks)} not run)")
    return lines, verdict


def _label(seeds: tuple[int, ...]) -> str:
    if len(seeds) == 1:
        return f"seed {seeds[0]}"
    return f"seeds {seeds[0]}-{seeds[-1]}" if list(seeds) == list(range(seeds[0], seeds[-1] + 1)) else "seeds " + ",".join(map(str, seeds))


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("candidate", help="the candidate's dev_sweep --json file")
    p.add_argument("twin", help="its twin's (same start, recipe, seed and length; only the change left out)")
    p.add_argument("--object", default="bottle", help="the object whose sequences are compared (default bottle)")
    p.add_argument("--splits", default="2-9;10-17", help="the splits: seed lists separated by ';' (default 2-9;10-17)")
    p.add_argument("--accurate", default="accurate", help="the variant checks (a)-(c) read (default accurate)")
    p.add_argument("--fast", default="fast", help="the variant check (d) reads (default fast)")
    p.add_argument("--max-loss", type=float, default=0.5, help="the most points a split may lose (default 0.5)")
    args = p.parse_args(argv)
    splits = [parse_seeds(x) for x in args.splits.split(";") if x.strip()]  # the demo's seed is refused there
    if not splits:
        raise SystemExit(f"--splits {args.splits!r}: give seed lists separated by ';', e.g. 2-9;10-17.")
    if not args.max_loss >= 0:
        raise SystemExit(f"--max-loss {args.max_loss}: give the most points a split may lose, >= 0 (e.g. 0.5).")
    lines, _ = compare(read_sweep(args.candidate), read_sweep(args.twin), args.object, splits, args.accurate, args.fast,
                       args.max_loss)
    print("\n".join(lines))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
