"""``kptrack export``: a checkpoint to ONNX with metadata (parity checked), and from an ONNX model
an int8 model (``--int8``) and a Triton Inference Server model repository (``--triton-repo``)."""

from __future__ import annotations

import argparse

from export.onnx_export import ExportConfig, ExportReport, export_onnx
from export.quantize import QuantizeConfig, QuantizeReport, quantize_int8
from export.triton_repo import TritonRepoConfig, write_triton_repo
from tracker.errors import KptrackError

HELP = "export a checkpoint to ONNX with metadata (fp32, fp16, int8) or a Triton model repository"


def add_arguments(p: argparse.ArgumentParser) -> None:
    p.add_argument("--checkpoint", default=None, help="checkpoint written by `kptrack train` (RUN/best.pt, or a run folder for "
                   "its last.pt); needs --out. Leave it out to start from an exported --model")
    p.add_argument("--out", default=None, help="output .onnx path (with --checkpoint)")
    p.add_argument("--model", default=None, help="an exported fp32 .onnx to make the int8 model or Triton repository from "
                   "(instead of --checkpoint)")
    p.add_argument("--fp16", action="store_true", help="also write an fp16 model beside it (<stem>.fp16.onnx)")
    p.add_argument("--int8", action="store_true", help="also write an int8 model beside it (<stem>.int8.onnx): static "
                   "quantization calibrated on --calib-data, written only if PCK and demo ADD stay within 1 point of fp32")
    p.add_argument("--calib-data", default=None, help="with --int8: BOP dataset of the object (kptrack synth) to calibrate on; "
                   "its test_synth split, if any, checks PCK")
    p.add_argument("--calib-crops", type=int, default=128, help="with --int8: number of calibration crops")
    p.add_argument("--demo-frames", type=int, default=300, help="with --int8: frames of the demo sequence for the ADD check "
                   "(0 skips it)")
    p.add_argument("--triton-repo", default=None, help="also write a Triton model repository here: "
                   "DIR/<name>/1/model.onnx and DIR/<name>/config.pbtxt (onnxruntime backend, dynamic batching)")
    p.add_argument("--triton-name", default=None, help="with --triton-repo: the model's name on the server (default kptrack_<object>)")
    p.add_argument("--overwrite", action="store_true", help="with --triton-repo: replace that model's folder if it exists")
    p.add_argument("--opset", type=int, default=17, help="ONNX opset version (17 or newer)")
    p.add_argument("--data", default=None, help="BOP dataset root for real-crop parity (optional)")
    p.add_argument("--threads", type=int, default=None, help="ONNX Runtime intra-op threads for the int8 checks")


def run(args: argparse.Namespace) -> int:
    if args.checkpoint:
        if not args.out:
            raise KptrackError("--checkpoint needs --out (the .onnx to write).")
        rep = export_onnx(ExportConfig(checkpoint=args.checkpoint, out=args.out, fp16=bool(args.fp16), opset=int(args.opset),
                                       data=args.data))
        _print_report(rep)
        model = str(rep.path)
    elif args.model:
        if args.fp16 or args.out:
            raise KptrackError("--fp16 and --out export a checkpoint: pass --checkpoint RUN/best.pt.")
        if not (args.int8 or args.triton_repo):
            raise KptrackError("--model needs --int8 or --triton-repo (or pass --checkpoint to export a checkpoint).")
        model = args.model
    else:
        raise KptrackError("pass --checkpoint RUN/best.pt --out MODEL.onnx, or --model MODEL.onnx with --int8 / --triton-repo.")
    if args.int8:
        if not args.calib_data:
            raise KptrackError("--int8 needs --calib-data: a BOP dataset of the object, e.g. "
                               "`kptrack synth --object default --out calib --num 300`.")
        _print_int8(quantize_int8(QuantizeConfig(model=model, calib_data=args.calib_data, crops=int(args.calib_crops),
                                                 demo_frames=int(args.demo_frames), threads=args.threads)))
    if args.triton_repo:
        path = write_triton_repo(TritonRepoConfig(model=model, repo=args.triton_repo, name=args.triton_name,
                                                  overwrite=bool(args.overwrite)))
        print(f"wrote Triton model {path.name} in {path.parent}: {path / '1' / 'model.onnx'}, {path / 'config.pbtxt'}")
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


def _print_int8(rep: QuantizeReport) -> None:
    acc = ", ".join(f"{k} {a:.2f} -> {b:.2f} %" for k, (a, b) in rep.accuracy.items())
    print(f"wrote {rep.path} (int8, QDQ per-channel, {rep.crops} calibration crops): fp32 -> int8 {acc}; "
          f"latency at batch 1 {rep.latency_ms['fp32']:.2f} -> {rep.latency_ms['int8']:.2f} ms ({rep.speedup:.2f}x)")
