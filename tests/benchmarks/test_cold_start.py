"""Time to first frame: fresh processes running benchmarks.first_frame with a tiny ONNX model."""

from __future__ import annotations

import pytest
from bench_scene import write_bench_scene

from benchmarks.cold_start import measure_cold_start
from tracker.errors import KptrackError


def test_cold_start_subprocess(tmp_path):
    pytest.importorskip("onnx")
    from benchmarks.tiny_model import write_tiny_onnx

    sd, obj, cam = write_bench_scene(tmp_path / "seq")
    model = write_tiny_onnx(tmp_path / "tiny.onnx", obj.keypoint_names)
    r = measure_cold_start(model, sd / "rgb" / "000000.jpg", cam, runs=1, warm_cache=False)
    b = r["breakdown"]
    assert r["first_frame_s"] > b["in_process_s"] > 0  # wall includes the interpreter start
    assert b["import_s"] > 0 and b["load_s"] > 0 and b["first_frame_s"] > 0 and b["provider"] == "CPUExecutionProvider"
    assert "compile_s" in b and b["kernels"] >= 0 and isinstance(b["stderr"], str)
    with pytest.raises(KptrackError, match="cold-start run failed"):
        measure_cold_start(tmp_path / "missing.onnx", sd / "rgb" / "000000.jpg", cam, runs=1, warm_cache=False)
