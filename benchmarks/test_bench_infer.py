"""Stage benchmark: network inference with ONNX Runtime, batch 1, 256x256 crop -> (K, 64, 64) heatmaps.

Model: ``models/default/model.onnx`` when it exists (the shipped model; the figure that matters), else a
tiny untrained stand-in written by :func:`benchmarks.tiny_model.write_tiny_onnx` (same interface, far cheaper:
its figures only show the harness works; ``extra_info["model"]`` says which one ran).

Timed through :class:`tracker.pipeline.infer.OnnxHeatmapModel` when it is available (normalisation + session
run, what the tracker pays), else a bare onnxruntime session. CPU always; CUDA when the CUDA provider
really loads (else skipped). Baselines in the same run: on CPU, the input normalisation alone
(``ModelMeta.normalise``, the memory-bound part of the stage); on CUDA, the CPU inference; for the
int8 model (``model.int8.onnx`` beside the model, from ``kptrack export --int8``), the fp32 model
(target: int8 >= 1.6x faster, ``extra_info["speedup_vs_fp32"]``).
The bottle's model with a visibility output against its heatmap-only source
(``models/bottle/heatmaps.onnx``), called in turn: ``extra_info["cost_vs_plain"]``.
Quick mode: ``KPTRACK_BENCH_QUICK=1``.
"""

from __future__ import annotations

import time
from pathlib import Path

import numpy as np
import pytest

from benchmarks.benchutil import QUICK, median_s, record

ort = pytest.importorskip("onnxruntime")

ROUNDS = 5 if QUICK else 30
REPO = Path(__file__).resolve().parents[1]
DEFAULT_MODEL = REPO / "models" / "default" / "model.onnx"


@pytest.fixture(scope="module")
def model_path(tmp_path_factory) -> Path:
    if DEFAULT_MODEL.is_file():
        return DEFAULT_MODEL
    from benchmarks.tiny_model import write_tiny_onnx

    pytest.importorskip("onnx")
    return write_tiny_onnx(tmp_path_factory.mktemp("model") / "tiny.onnx", [f"kp{i}" for i in range(9)])


class _BareSession:
    """onnxruntime session with kptrack's preprocessing, for when tracker.pipeline.infer is not there."""

    def __init__(self, path: Path, device: str):
        from tracker.formats.modelmeta import ModelMeta

        providers = ["CUDAExecutionProvider", "CPUExecutionProvider"] if device == "cuda" else ["CPUExecutionProvider"]
        self.sess = ort.InferenceSession(str(path), providers=providers)
        self.meta = ModelMeta.from_dict(self.sess.get_modelmeta().custom_metadata_map, str(path))
        self.provider = self.sess.get_providers()[0]
        self.name = self.sess.get_inputs()[0].name

    def __call__(self, crops):
        return self.sess.run(None, {self.name: self.meta.normalise(crops)})[-1]


def _load(path: Path, device: str):
    """(callable crops->heatmaps, provider actually in use, meta)."""
    try:
        from tracker.pipeline.infer import OnnxHeatmapModel
    except ImportError:
        m = _BareSession(path, device)
        if device == "cuda" and m.provider != "CUDAExecutionProvider":
            pytest.skip("CUDA provider listed but did not load")
        return m, m.provider, m.meta
    try:
        m = OnnxHeatmapModel(str(path), device=device)
    except Exception as e:  # KptrackError when CUDA is asked for but cannot load
        if device == "cuda":
            pytest.skip(f"CUDA not usable: {e}")
        raise
    return m, str(m.provider), m.meta


def _crop(meta) -> np.ndarray:
    rng = np.random.default_rng(0)
    return rng.integers(0, 255, size=(1, meta.input_size, meta.input_size, 3), dtype=np.uint8)


@pytest.mark.benchmark(group="infer")
def test_bench_infer_cpu(benchmark, model_path):
    m, provider, meta = _load(model_path, "cpu")
    crop = _crop(meta)
    for _ in range(3):
        m(crop)
    baseline = median_s(lambda: meta.normalise(crop), ROUNDS * 10)
    out = benchmark.pedantic(m, args=(crop,), rounds=ROUNDS * 4, warmup_rounds=2)
    assert out.shape == (1, meta.num_keypoints, meta.heatmap_size, meta.heatmap_size)
    record(benchmark, baseline, "input normalisation alone (ModelMeta.normalise)", also_ms=True, model=model_path.name,
           provider=provider)


@pytest.mark.benchmark(group="infer")
def test_bench_infer_cuda(benchmark, model_path):
    if "CUDAExecutionProvider" not in ort.get_available_providers():
        pytest.skip("no CUDA provider in this onnxruntime build")
    m, provider, meta = _load(model_path, "cuda")
    if "CUDA" not in provider:
        pytest.skip(f"CUDA provider did not load (got {provider})")
    crop = _crop(meta)
    cpu, _, _ = _load(model_path, "cpu")
    for _ in range(3):
        cpu(crop)
    baseline = median_s(lambda: cpu(crop), ROUNDS * 2)
    for _ in range(10):  # cuDNN autotuning and allocator warm-up happen on the first runs
        m(crop)
    out = benchmark.pedantic(m, args=(crop,), rounds=ROUNDS * 10, warmup_rounds=5)
    assert out.shape == (1, meta.num_keypoints, meta.heatmap_size, meta.heatmap_size)
    record(benchmark, baseline, "the same model on the CPU provider", also_ms=True, model=model_path.name, provider=provider)


def _interleaved_ms(fns: dict, x: np.ndarray, rounds: int) -> dict[str, dict[str, float]]:
    """{name: {'median', 'min'} ms}: the models called in turn, round after round, so a change in the
    machine's load (a shared machine) hits every model alike."""
    ts: dict[str, list[float]] = {k: [] for k in fns}
    for _ in range(rounds):
        for k, f in fns.items():
            t = time.perf_counter()
            f(x)
            ts[k].append(1e3 * (time.perf_counter() - t))
    return {k: {"median": float(np.median(v)), "min": float(np.min(v))} for k, v in ts.items()}


@pytest.mark.benchmark(group="infer")
@pytest.mark.parametrize("threads", [1, None], ids=["1thread", "allthreads"])
def test_bench_infer_int8_cpu(benchmark, model_path, threads):
    q = model_path.with_name(model_path.stem + ".int8.onnx")
    if not q.is_file():
        pytest.skip(f"no {q.name} beside {model_path}: write it with `kptrack export --model {model_path} --int8 --calib-data DATA`")
    from tracker.pipeline.infer import OnnxHeatmapModel

    fp32 = OnnxHeatmapModel(model_path, device="cpu", threads=threads)
    int8 = OnnxHeatmapModel(q, device="cpu", threads=threads, precision="int8")
    crop = _crop(fp32.meta)
    both = _interleaved_ms({"fp32": fp32, "int8": int8}, crop, 3)
    out = benchmark.pedantic(int8, args=(crop,), rounds=ROUNDS * 2, warmup_rounds=2)
    both = _interleaved_ms({"fp32": fp32, "int8": int8}, crop, ROUNDS * 4)
    assert out.shape == fp32(crop).shape
    record(benchmark, both["fp32"]["median"] / 1e3, "the fp32 model, same process and crop, called in turn with int8",
           also_ms=True, model=q.name, provider=int8.provider, threads=threads or "default")
    benchmark.extra_info["interleaved_ms"] = both
    benchmark.extra_info["speedup_vs_fp32"] = both["fp32"]["median"] / both["int8"]["median"]
    benchmark.extra_info["speedup_vs_fp32_min"] = both["fp32"]["min"] / both["int8"]["min"]


BOTTLE = REPO / "models" / "bottle"


@pytest.mark.benchmark(group="infer")
def test_bench_infer_visibility_cpu(benchmark):
    """The bottle's shipped model (heatmaps and a visibility output, gated: ``kptrack visibility``)
    against the heatmap-only model it was made from, called in turn on the same crop, 1 thread."""
    vis_path, plain_path = BOTTLE / "model.onnx", BOTTLE / "heatmaps.onnx"
    if not (vis_path.is_file() and plain_path.is_file()):
        pytest.skip(f"needs {vis_path} and {plain_path}")
    from tracker.pipeline.infer import OnnxHeatmapModel

    vis = OnnxHeatmapModel(vis_path, device="cpu", threads=1)
    plain = OnnxHeatmapModel(plain_path, device="cpu", threads=1)
    assert vis.gate is not None and plain.gate is None
    crop = _crop(vis.meta)
    _interleaved_ms({"plain": plain, "visibility": vis}, crop, 3)
    out = benchmark.pedantic(vis, args=(crop,), rounds=ROUNDS * 2, warmup_rounds=2)
    both = _interleaved_ms({"plain": plain, "visibility": vis}, crop, ROUNDS * 4)
    assert out.shape == plain(crop).shape
    record(benchmark, both["plain"]["median"] / 1e3, "the heatmap-only model it was made from, called in turn",
           also_ms=True, model=vis_path.name, provider=vis.provider, threads=1)
    benchmark.extra_info["interleaved_ms"] = both
    benchmark.extra_info["cost_vs_plain"] = both["visibility"]["median"] / both["plain"]["median"]
