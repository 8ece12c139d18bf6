"""``kptrack demo``: track a built-in object (the drill, or --object bottle) on a synthetic sequence; print accuracy and speed."""

from __future__ import annotations

import argparse

from benchmarks.demo import TARGET_ADD, TARGET_PROJ, DemoConfig, DemoReport, demo
from tracker.pipeline.loop import format_summary

HELP = "track a built-in object (default drill, or bottle) on a synthetic sequence; print accuracy and speed"


def add_arguments(p: argparse.ArgumentParser) -> None:
    p.add_argument("--frames", type=int, default=300, help="frames of the synthetic sequence")
    p.add_argument("--model", default=None, help="exported ONNX model (default: the shipped models/default/model.onnx)")
    p.add_argument("--device", default="auto", choices=["auto", "cpu", "cuda"], help="where the network runs (auto: CUDA if it loads)")
    p.add_argument("--out", default=None, help="annotated video, Motion-JPEG .avi")
    p.add_argument("--cache", default=None, help="where the synthetic sequence is cached (default ~/.cache/kptrack)")
    p.add_argument("--threads", type=int, default=None, help="ONNX Runtime intra-op threads")
    p.add_argument("--preset", default="fast",
                   help="tracker preset: fast (the default) | accurate (each pose refined on image edges: about 3x lower median error, about 2 ms a frame more)")
    p.add_argument("--no-smoothing", action="store_true", help="score the unsmoothed per-frame poses")
    p.add_argument("--object", default="default", choices=["default", "bottle"],
                   help="built-in object: default (the drill) or bottle (continuous symmetry; needs models/bottle/model.onnx)")
    p.add_argument("--seed", type=int, default=None,
                   help="render another synthetic sequence with this seed (default 1, the demo's own sequence)")


def print_report(report: DemoReport, out: str | None) -> None:
    a, s, config = report.accuracy, report.stats, report.config
    print(f"demo: {report.object_name} object, {s.frames} frames of {report.scene} (preset {config.name}, "
          f"smoothing {'on' if config.smoothing else 'off'})")
    print(f"  {format_summary(s)}".replace("\n", "\n  "))
    print(f"  accuracy over {a['n_scored']} frames with the object >= 50 % visible ({a['n_missing']} without a pose):")
    print(f"    {a['metric']} < 0.1 x diameter ({a['add_threshold_mm']:.1f} mm): {100 * a['frac_add']:.1f} %  "
          f"(target >= {100 * TARGET_ADD:.0f} %)  median {a['median_add_mm']:.2f} mm")
    print(f"    2D projection error < 5 px: {100 * a['frac_proj']:.1f} %  (target >= {100 * TARGET_PROJ:.0f} %)  "
          f"median {a['median_proj_px']:.2f} px")
    print(f"  end-to-end: {s.fps:.1f} frames per second on this machine ({s.provider}, display excluded)")
    print(f"  {'PASS' if report.passed else 'BELOW TARGET'}")
    if out:
        print(f"annotated video: {out}")


def run(args: argparse.Namespace) -> int:
    cfg = DemoConfig(frames=args.frames, model=args.model, device=args.device, out=args.out, cache=args.cache,
                     threads=args.threads, preset=args.preset, smoothing=not args.no_smoothing,
                     seed=DemoConfig.seed if args.seed is None else args.seed, object=args.object)
    report = demo(cfg)
    print_report(report, args.out)
    return 130 if report.stats.interrupted else 0
