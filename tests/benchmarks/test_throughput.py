"""benchmarks/throughput.py: the markdown section from a run's document, and the poses comparison."""

from __future__ import annotations

from benchmarks.throughput import _poses_equal, format_markdown


def _doc():
    runs = [{"wall_s": 4.0, "fps_whole": 150.0, "fps_loop": 200.0}]
    lat = {"capture_to_result_ms": {"p50": 4.1, "p99": 9.0}, "send_to_result_ms": {"p50": 5.5, "p99": 11.0}, "frames": 400, "fps": 30.0}
    return {"started": "2026-12-02 10:00:00 UTC", "commit": "abc", "config": {"rounds": 1, "seconds": 15.0},
            "machine": {"cpu": "cpu", "cores": 2, "ram_gb": 8, "onnxruntime": "1.x"},
            "whole_process": {"sequential": {"runs": runs, "fps_whole_median": 150.0, "fps_loop_median": 200.0},
                              "pipelined": {"runs": runs, "fps_whole_median": 160.0, "fps_loop_median": 220.0},
                              "pipelined_over_sequential": 1.07, "same_poses": True},
            "streams": {"1": {"fps_loop_total": 200.0, "fps_whole_total": 150.0, "fps_per_stream": [200.0], "mean_batch": 1.0,
                              "over_one_stream": 1.0},
                        "2": {"fps_loop_total": 300.0, "fps_whole_total": 250.0, "fps_per_stream": [150.0, 150.0], "mean_batch": 1.9,
                              "over_one_stream": 1.5}},
            "live": {"30fps_pipelined": {"streams": 1, "per_stream": [lat]}, "30fps_2_streams": {"streams": 2, "per_stream": [lat, lat]}}}


def test_markdown_has_every_figure():
    md = format_markdown(_doc())
    assert "| pipelined | 160.0 | 220.0 | - | 4.0 |" in md and "1.07x; identical poses: True" in md
    assert "| 2 | 300.0 | 250.0 | 150, 150 | 1.90 | 1.5 | - |" in md
    assert "| 30fps 2 streams, stream 1 | 400 | 30.0 | 4.1 / 9.0 | 5.5 / 11.0 |" in md


def test_poses_compare_without_the_time_column(tmp_path):
    a, b, c = tmp_path / "a.csv", tmp_path / "b.csv", tmp_path / "c.csv"
    a.write_text("h\n0,1,1,0.5,R,t,0.003\n")
    b.write_text("h\n0,1,1,0.5,R,t,0.004\n")
    c.write_text("h\n0,1,1,0.5,R,u,0.003\n")
    assert _poses_equal(a, b) and not _poses_equal(a, c)
