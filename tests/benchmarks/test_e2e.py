"""kptrack bench on a tiny rendered BOP sequence with an oracle heatmap backend: JSON, CSVs, RESULTS.md,
peers in the same run; time to first frame with a tiny ONNX model; the helpers it reports with."""

from __future__ import annotations

import json

import cv2
import numpy as np
import pytest
from kptrack_testing import OracleHeatmaps

from tracker.formats import bop
from benchmarks.e2e import BenchConfig, format_markdown, load_sequence, machine_info, measure_cold_start, percentiles_ms, run_bench
from tracker.camera import Camera
from tracker.errors import KptrackError
from tracker.eval.evaluate import EvalConfig, run_eval
from tracker.geometry import so3_exp
from tracker.objects import load_object
from tracker.render import Renderer

N = 6
W, H = 640, 480


def gt_pose(i):
    R = so3_exp(np.array([0.5 + 0.02 * i, 0.7 + 0.03 * i, 0.1]))
    t = np.array([20.0 + 2.0 * i, -10.0 + 1.0 * i, 480.0 + 2.0 * i])
    return R, t


@pytest.fixture(scope="module")
def scene(tmp_path_factory):
    """A 6-frame 640x480 BOP scene of the default object over a smooth background."""
    obj = load_object("default")
    cam = Camera.from_fov(60.0, W, H)
    rend = Renderer(obj)
    yy, xx = np.mgrid[0:H, 0:W]
    bg = np.stack([60 + 0.2 * xx, 80 + 0.2 * yy, 100 + 0.1 * (xx + yy)], -1).clip(0, 255).astype(np.uint8)
    sd = tmp_path_factory.mktemp("seq") / "test_seq" / "000000"
    (sd / "rgb").mkdir(parents=True)
    gts, infos = {}, {}
    for i in range(N):
        R, t = gt_pose(i)
        out = rend.render(cam, R, t, background=bg)
        cv2.imwrite(str(sd / "rgb" / f"{i:06d}.jpg"), out.color, [cv2.IMWRITE_JPEG_QUALITY, 95])
        gts[i] = [bop.BopGt(1, R, t)]
        infos[i] = [bop.gt_info_from_masks(out.mask, out.mask)]
    bop.write_scene_gt(sd / "scene_gt.json", gts)
    bop.write_scene_gt_info(sd / "scene_gt_info.json", infos)
    bop.write_scene_camera(sd / "scene_camera.json", {i: cam.K for i in range(N)})
    return sd, obj, cam


def oracle_factory(device, seq):
    obj = load_object("default")

    def uv_of(i):
        return seq.camera.project(obj.keypoints, seq.gt.R_m2c[i], seq.gt.t_m2c[i])

    return OracleHeatmaps(obj.keypoint_names, uv_of)


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


def test_cold_start_subprocess(scene, tmp_path):
    pytest.importorskip("onnx")
    from benchmarks.e2e import write_tiny_onnx

    sd, obj, cam = scene
    model = write_tiny_onnx(tmp_path / "tiny.onnx", obj.keypoint_names)
    r = measure_cold_start(model, sd / "rgb" / "000000.jpg", cam, runs=1, warm_cache=False)
    b = r["breakdown"]
    assert r["first_frame_s"] > b["in_process_s"] > 0  # wall includes the interpreter start
    assert b["import_s"] > 0 and b["load_s"] > 0 and b["first_frame_s"] > 0 and b["provider"] == "CPUExecutionProvider"
    with pytest.raises(KptrackError, match="cold-start run failed"):
        measure_cold_start(tmp_path / "missing.onnx", sd / "rgb" / "000000.jpg", cam, runs=1, warm_cache=False)


def test_bad_input(scene, tmp_path):
    sd, _, _ = scene
    with pytest.raises(KptrackError, match="model not found"):
        run_bench(BenchConfig(frames=2, model=str(tmp_path / "none.onnx"), sequence=str(sd), out=str(tmp_path), results=None))
    with pytest.raises(KptrackError, match="--frames"):
        run_bench(BenchConfig(frames=0, sequence=str(sd), out=str(tmp_path), results=None))
    with pytest.raises(KptrackError):
        load_sequence(tmp_path / "nowhere")


def test_helpers():
    p = percentiles_ms([0.001, 0.002, 0.003, float("nan")])
    assert p["n"] == 3 and p["p50"] == pytest.approx(2.0) and p["p90"] > p["p50"]
    assert percentiles_ms([])["n"] == 0
    m = machine_info()
    assert m["cores"] >= 1 and m["python"] and "onnxruntime" in m
    doc = {"date": "d", "commit": "c", "machine": m, "config": {"command": "x", "preset": "fast"}, "model": "m",
           "sequence": {"scene_dir": "s", "frames": 1, "width": 2, "height": 3}, "kptrack": [], "peers": [],
           "peak_rss_mb": 1.0, "targets": [], "cold_start": {"cpu": {"error": "skipped"}}}
    md = format_markdown(doc)
    assert "## kptrack bench" in md and m["cpu"] in md and "not measured (skipped)" in md
