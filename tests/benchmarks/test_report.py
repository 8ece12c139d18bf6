"""The bench's report helpers: stage percentiles and the markdown section."""

from __future__ import annotations

import pytest

from benchmarks.machine import machine_info
from benchmarks.report import format_markdown, percentiles_ms


def test_percentiles():
    p = percentiles_ms([0.001, 0.002, 0.003, float("nan")])
    assert p["n"] == 3 and p["p50"] == pytest.approx(2.0) and p["p90"] > p["p50"]
    assert percentiles_ms([])["n"] == 0


def test_markdown_of_an_empty_run():
    m = machine_info()
    doc = {"date": "d", "commit": "c", "machine": m, "config": {"command": "x", "preset": "fast"}, "model": "m",
           "sequence": {"scene_dir": "s", "frames": 1, "width": 2, "height": 3}, "kptrack": [], "peers": [],
           "peak_rss_mb": 1.0, "targets": [], "cold_start": {"cpu": {"error": "skipped"}}}
    md = format_markdown(doc)
    assert "## kptrack bench" in md and m["cpu"] in md and "not measured (skipped)" in md
