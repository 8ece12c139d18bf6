"""What kptrack eval writes: metrics.json, errors_per_frame.csv, the bop_toolkit error files."""

from __future__ import annotations

import json

import pytest

from eval_scene import N, OCCL, write_eval_scene
from tracker.eval.evaluate import EvalConfig, run_eval
from tracker.eval.reports import write_metrics_json
from tracker.formats import read_results_csv
from tracker.objects import load_object


@pytest.fixture()
def scene(tmp_path):
    return write_eval_scene(tmp_path, load_object("default").diameter)


def test_outputs_written(scene):
    tmp, csv_path, _ = scene
    out = tmp / "ev3"
    run_eval(EvalConfig(poses=str(csv_path), dataset=str(tmp / "data"), out=str(out)))
    doc = json.loads((out / "metrics.json").read_text())
    assert doc["overall"]["visible"]["frames"] == N - (OCCL[1] - OCCL[0])
    assert len(doc["scenes"][0]["per_frame"]["im_id"]) == N
    lines = (out / "errors_per_frame.csv").read_text().splitlines()
    assert len(lines) == N + 1 and lines[0].startswith("scene_id,im_id")
    ad = json.loads((out / "bop_errors" / "ad" / "errors_000003.json").read_text())
    assert len(ad) == sum(1 for r in read_results_csv(csv_path) if r.obj_id == 1 and r.score > 0)
    assert set(ad[0]) == {"im_id", "obj_id", "est_id", "score", "errors"}
    # the demo's headline is in the file too, numbers as the scorer gave them
    head = doc["scenes"][0]["aggregate"]["headline"]
    assert head["n_scored"] == N - (OCCL[1] - OCCL[0]) and head["metric"] == "ADD"


def test_metrics_json_writes_null_for_inf_and_nan(tmp_path):
    p = tmp_path / "m.json"
    write_metrics_json({"a": {"median": float("inf"), "frac": float("nan"), "n": 3}, "b": [1.5, float("-inf")]}, p)
    assert json.loads(p.read_text()) == {"a": {"median": None, "frac": None, "n": 3}, "b": [1.5, None]}
