"""``kptrack bench``: end-to-end latency and accuracy on a test sequence, with peer baselines."""

from __future__ import annotations

import argparse
import sys

from benchmarks.report import format_markdown
from benchmarks.runner import BenchConfig, run_bench

HELP = "end-to-end latency and accuracy on a test sequence, with peer baselines"


def add_arguments(p: argparse.ArgumentParser) -> None:
    p.add_argument("--frames", type=int, default=300, help="frames of the sequence to run (the default sequence is rendered with this many)")
    p.add_argument("--model", default=None, help="exported ONNX model (default: the shipped models/default/model.onnx)")
    p.add_argument("--device", default="auto", choices=["auto", "cpu", "cuda"],
                   help="where the network runs (auto: CPU, and CUDA as well when it loads)")
    p.add_argument("--out", default="benchmarks/out", help="folder for the JSON and the per-pipeline poses CSVs")
    p.add_argument("--results", default="benchmarks/RESULTS.md", help="markdown file to append the table to")
    p.add_argument("--no-peers", action="store_true", help="skip the peer baselines (feature pipeline, cold start, argmax)")
    p.add_argument("--sequence", default=None, help="a BOP scene folder to run on (default: the demo's cached synthetic sequence)")
    p.add_argument("--cache", default=None, help="where the default synthetic sequence is cached (default ~/.cache/kptrack)")
    p.add_argument("--threads", type=int, default=None, help="ONNX Runtime intra-op threads")
    p.add_argument("--preset", default="fast",
                   help="tracker preset: fast (the default) | accurate (each pose refined on image edges: about 3x lower median error, about 2 ms a frame more)")
    p.add_argument("--no-cold-start", action="store_true", help="skip the time-to-first-frame subprocess runs")
    p.add_argument("--object", default="default", help="'default', 'bottle' (built-in: their own sequence and shipped model) or an object directory (with --sequence)")


def command_line() -> str:
    """How bench was invoked, for the results table."""
    return "kptrack " + " ".join(sys.argv[1:]) if sys.argv and sys.argv[0].endswith("kptrack") else "kptrack bench"


def run(args: argparse.Namespace) -> int:
    cfg = BenchConfig(frames=args.frames, model=args.model, device=args.device, out=args.out, results=args.results,
                      peers=not args.no_peers, sequence=args.sequence, cache=args.cache, threads=args.threads,
                      preset=args.preset, cold_start=not args.no_cold_start, object=args.object, command=command_line())
    doc = run_bench(cfg)
    print(format_markdown(doc))
    print(f"wrote {doc['json']}" + (f" and appended to {doc['results_md']}" if doc.get("results_md") else ""))
    return 0
