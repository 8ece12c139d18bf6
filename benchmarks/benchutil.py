"""Helpers every stage benchmark shares: quick mode, the same-run baseline timer, and the ``extra_info`` record.

Each benchmark times one stage with pytest-benchmark and a baseline with :func:`median_s` in the same
run, so the figure to compare across machines is the ratio (the machine is shared and noisy; absolute
times move with the load, ratios much less). :func:`record` and :func:`record_vs` write the figures
into ``benchmark.extra_info``, which ``--benchmark-json`` saves and ``benchmarks/results_table.py`` reads.

Imported as ``from benchmarks.benchutil import ...``: benchmarks/ is an installed package (it also holds
the ``kptrack bench`` runner), so the stage files import it by its package path.
"""

from __future__ import annotations

import os
import statistics
import time
from typing import Any, Callable

#: Quick mode (``KPTRACK_BENCH_QUICK=1``, e.g. in CI): fewer baseline rounds and less work per round.
QUICK = os.environ.get("KPTRACK_BENCH_QUICK", "") not in ("", "0")


def median_s(fn: Callable[[], Any], rounds: int, warmup: bool = False) -> float:
    """Median wall time of ``fn()`` over ``rounds`` calls, in seconds (``time.perf_counter``).

    warmup: call ``fn`` once first, untimed (numba kernels, caches, lazy imports).
    """
    if warmup:
        fn()
    ts = []
    for _ in range(rounds):
        t0 = time.perf_counter()
        fn()
        ts.append(time.perf_counter() - t0)
    return statistics.median(ts)


def timed_median_s(benchmark) -> float | None:
    """The benchmark's median seconds per round, or None when nothing was timed (``--benchmark-disable``)."""
    st = getattr(benchmark, "stats", None)
    return None if st is None else st.stats.median


def record(benchmark, baseline_s: float, baseline_name: str, *, items: int = 1, also_ms: bool = False,
           **info: Any) -> float | None:
    """Write the stage's figures and its ratio against one same-run baseline into ``benchmark.extra_info``.

    Sets ``info`` as given, then ``baseline`` (its name), ``baseline_us`` and, when the benchmark was
    timed, ``us`` (the median) and ``ratio_vs_baseline`` (median / baseline: < 1 is faster).
    items: items per timed round (frames, images); ``us`` and ``baseline_us`` are then per item (the
    ratio is unchanged). also_ms: also write ``baseline_ms`` and ``ms``, for stages counted in ms.
    Returns the median seconds per round, or None under ``--benchmark-disable``.
    """
    ei = benchmark.extra_info
    ei.update(info)
    ei["baseline"] = baseline_name
    ei["baseline_us"] = 1e6 * baseline_s / items
    if also_ms:
        ei["baseline_ms"] = 1e3 * baseline_s / items
    med = timed_median_s(benchmark)
    if med is None:
        return None
    ei["us"] = 1e6 * med / items
    if also_ms:
        ei["ms"] = 1e3 * med / items
    ei["ratio_vs_baseline"] = med / baseline_s if baseline_s > 0 else float("inf")
    return med


def record_vs(benchmark, baselines_s: dict[str, float], **info: Any) -> float | None:
    """Like :func:`record` for several named baselines: ``<name>_us`` for each, and when timed ``us`` and
    ``ratio_vs_<name>`` (median / that baseline). Returns the median seconds, or None when not timed."""
    ei = benchmark.extra_info
    ei.update(info)
    for name, s in baselines_s.items():
        ei[f"{name}_us"] = 1e6 * s
    med = timed_median_s(benchmark)
    if med is None:
        return None
    ei["us"] = 1e6 * med
    for name, s in baselines_s.items():
        ei[f"ratio_vs_{name}"] = med / s if s > 0 else float("inf")
    return med
