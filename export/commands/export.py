"""``kptrack export``: export a checkpoint to ONNX with metadata, and check parity."""

from __future__ import annotations

import argparse

from export.onnx_export import ExportConfig, ExportReport, export_onnx

HELP = "export a checkpoint to ONNX with metadata, and check parity"


def add_arguments(p: argparse.ArgumentParser) -> None:
    p.add_argument("--checkpoint", required=True, help="checkpoint written by `kptrack train` (RUN/best.pt, or a run folder for its last.pt)")
    p.add_argument("--out", required=True, help="output .onnx path")
    p.add_argument("--fp16", action="store_true", help="also write an fp16 model beside it")
    p.add_argument("--opset", type=int, default=17, help="ONNX opset version (17 or newer)")
    p.add_argument("--data", default=None, help="BOP dataset root for real-crop parity (optional)")


def run(args: argparse.Namespace) -> int:
    rep = export_onnx(ExportConfig(checkpoint=args.checkpoint, out=args.out, fp16=bool(args.fp16), opset=int(args.opset), data=args.data))
    _print_report(rep)
    return 0


def _print_report(rep: ExportReport) -> None:
    m = rep.meta
    print(f"wrote {rep.path}: {m.preset} network, {m.num_keypoints} keypoints ({', '.join(m.keypoint_names)}), "
          f"input {m.input_size}x{m.input_size} {m.channel_order}, heatmaps {m.heatmap_size}x{m.heatmap_size}, dynamic batch")
    print("parity max |onnxruntime - torch| (fp32): " + ", ".join(f"{k} {v:.2e}" for k, v in rep.parity.items() if k != "fp16_rel")
          + "  [ok <= 1e-4]")
    print(f"onnxruntime CPU latency at batch 1, 2 threads: min {rep.latency_ms['min']:.2f} ms, median {rep.latency_ms['median']:.2f} ms")
    if rep.fp16_path:
        print(f"wrote {rep.fp16_path} ({rep.fp16_method}); max difference {rep.parity['fp16_rel']:.2e} of the heatmap peak")
