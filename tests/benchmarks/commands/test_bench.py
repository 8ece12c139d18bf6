"""kptrack bench on the command line: options with help texts, the table printed, a user error exits 2."""

from __future__ import annotations

import json

import pytest
from bench_scene import write_bench_scene

from tracker.cli import build_parser, main


def test_every_option_has_help():
    ap = build_parser(["bench"])
    sub = next(a for a in ap._actions if a.dest == "command").choices["bench"]
    opts = [a for a in sub._actions if a.option_strings and a.dest != "help"]
    assert {a.dest for a in opts} == {"frames", "model", "device", "out", "results", "no_peers", "sequence", "cache",
                                      "threads", "preset", "no_cold_start", "object"}
    assert all(a.help for a in opts)
    args = ap.parse_args(["bench"])
    assert args.model is None and args.frames == 300 and args.device == "auto"


def test_cli_bench_prints_the_table(tmp_path, capsys):
    pytest.importorskip("onnx")
    from benchmarks.tiny_model import write_tiny_onnx

    sd, obj, _ = write_bench_scene(tmp_path / "seq")
    model = write_tiny_onnx(tmp_path / "tiny.onnx", obj.keypoint_names)
    results = tmp_path / "RESULTS.md"
    rc = main(["bench", "--frames", "2", "--sequence", str(sd), "--model", str(model), "--device", "cpu", "--no-peers",
               "--no-cold-start", "--out", str(tmp_path / "out"), "--results", str(results)])
    assert rc == 0
    out = capsys.readouterr().out
    assert "### kptrack bench" in out and "| kptrack | cpu (CPUExecutionProvider)" in out
    (js,) = (tmp_path / "out").glob("bench_*.json")
    doc = json.loads(js.read_text())
    assert doc["config"]["command"].startswith("kptrack") and doc["config"]["frames"] == 2 and not doc["peers"]
    assert f"wrote {js}" in out and str(results) in out and results.read_text().startswith("# kptrack benchmark results")
    assert main(["bench", "--frames", "0", "--sequence", str(sd), "--model", str(model), "--results", ""]) == 2
    assert "--frames 0" in capsys.readouterr().err
