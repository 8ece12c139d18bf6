"""kptrack bench on a tiny rendered BOP sequence with an oracle heatmap backend: JSON, CSVs, RESULTS.md,
peers in the same run; the errors a user can cause."""

from __future__ import annotations

import json

import pytest
from bench_scene import N, oracle_factory, write_bench_scene

from benchmarks.runner import BenchConfig, run_bench
from benchmarks.runs import PipelineRun
from benchmarks.sequence import load_sequence
from benchmarks.summary import summarise
from tracker.errors import KptrackError
from tracker.eval.evaluate import EvalConfig, run_eval


@pytest.fixture(scope="module")
def scene(tmp_path_factory):
    """A 6-frame 640x480 BOP scene of the default object over a smooth background."""
    return write_bench_scene(tmp_path_factory.mktemp("seq"))


def test_bench_writes_json_csvs_and_appends_results(scene, tmp_path):
    sd, obj, _ = scene
    results = tmp_path / "RESULTS.md"
    cfg = BenchConfig(frames=N, device="cpu", out=str(tmp_path / "out"), results=str(results), sequence=str(sd),
                      cold_start=False, command="pytest")
    doc = run_bench(cfg, backend_factory=oracle_factory)
    saved = json.loads(open(doc["json"]).read())
    assert saved["sequence"]["frames"] == N and saved["machine"]["cores"] >= 1
    (k,) = saved["kptrack"]
    assert k["device"] == "cpu" and k["frames"] == N and k["fps"] > 0
    # an oracle backend tracks perfectly: every visible frame within ADD 0.1 d and 2 px
    assert k["accuracy"]["add_lt_0.1d"] == 1.0 and k["accuracy"]["proj2d_lt_5px"] == 1.0
    lat = k["latency_ms"]
    for stage in ("read", "crop", "infer", "decode", "solve", "step", "overlay", "end_to_end"):
        assert lat[stage]["n"] >= 1 and lat[stage]["p50"] <= lat[stage]["p90"] <= lat[stage]["p99"]
    assert k["tracking_frames"] >= N - 1  # the first frame searches, then it tracks
    names = [p["name"][:3] for p in saved["peers"]]
    assert names == ["(a)", "(b)", "(c)"]
    for p in saved["peers"]:
        assert p["frames"] == N and p["fps"] > 0 and p["ratio_fps_kptrack_over_peer"] > 0
    cold = saved["peers"][1]
    assert cold["tracking_frames"] == 0  # (b) never uses the tracking path
    assert saved["peers"][0]["accuracy"]["estimated"] > 0  # (a) registered and found poses
    assert saved["peak_rss_mb"] > 50
    # the CSVs replay through kptrack eval with the same score
    ev = run_eval(EvalConfig(poses=saved["poses_csv"]["kptrack [cpu]"], dataset=str(sd), out=str(tmp_path / "ev")))
    assert ev["scenes"][0]["aggregate"]["rates"]["visible"]["ad_lt_0.1d"] == 1.0
    md = results.read_text()
    assert md.startswith("# kptrack benchmark results") and "| (a) ORB" in md and "Per-stage latency" in md
    assert saved["machine"]["cpu"] in md
    # a second run appends, keeping the first
    run_bench(BenchConfig(frames=2, device="cpu", out=str(tmp_path / "out"), results=str(results), sequence=str(sd),
                          cold_start=False, peers=False), backend_factory=oracle_factory)
    md2 = results.read_text()
    assert md2.startswith(md) and md2.count("## kptrack bench") == 2 and md2.count("# kptrack benchmark results") == 1


def test_bad_input(scene, tmp_path):
    sd, _, _ = scene
    with pytest.raises(KptrackError, match="model not found"):
        run_bench(BenchConfig(frames=2, model=str(tmp_path / "none.onnx"), sequence=str(sd), out=str(tmp_path), results=None))
    with pytest.raises(KptrackError, match="--frames"):
        run_bench(BenchConfig(frames=0, sequence=str(sd), out=str(tmp_path), results=None))


def test_summary_counts_coasted_frames_as_tracking(scene):
    """Tracking-path timings take the keypoint fits and the edge-coasted frames, never the searches."""
    sd, obj, _ = scene
    seq = load_sequence(sd, N)
    modes = ["search", "track", "coast", "lost", "track", "search"]  # N = 6 frames
    ms = [10.0, 2.0, 4.0, 10.0, 2.0, 10.0]
    timings = {k: list(ms) for k in ("read", "crop", "infer", "decode", "solve", "step", "overlay", "end_to_end")}
    run = PipelineRun("hand-made", "cpu", [None] * N, timings, modes, wall_s=1.0)
    s = summarise(run, seq, obj, N)
    assert s["tracking_frames"] == 3
    assert s["fps_tracking"] == pytest.approx(1e3 / (8.0 / 3))
    assert s["latency_ms_tracking"]["step"]["n"] == 3
