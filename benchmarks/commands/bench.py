"""``kptrack bench``: end-to-end latency and accuracy on a test sequence, with peer baselines."""

from __future__ import annotations

import argparse

HELP = "end-to-end latency and accuracy on a test sequence, with peer baselines"


def add_arguments(p: argparse.ArgumentParser) -> None:
    p.add_argument("--frames", type=int, default=300)
    p.add_argument("--model", default=None)
    p.add_argument("--device", default="auto", choices=["auto", "cpu", "cuda"])
    p.add_argument("--out", default="benchmarks/out", help="folder for the JSON")
    p.add_argument("--results", default="benchmarks/RESULTS.md", help="markdown file to append the table to")
    p.add_argument("--no-peers", action="store_true")
    p.add_argument("--sequence", default=None, help="a BOP scene folder to run on (default: the demo's cached synthetic sequence)")
    p.add_argument("--cache", default=None, help="where the default synthetic sequence is cached")
    p.add_argument("--threads", type=int, default=None, help="ONNX Runtime intra-op threads")
    p.add_argument("--preset", default="fast", help="tracker preset: fast | accurate")
    p.add_argument("--no-cold-start", action="store_true", help="skip the time-to-first-frame subprocess runs")
    p.add_argument("--object", default="default", help="'default' or an object directory (with --sequence)")


def run(args: argparse.Namespace) -> int:
    from benchmarks.e2e import run_bench_from_args

    return run_bench_from_args(args) or 0
