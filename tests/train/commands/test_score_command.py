"""``kptrack score``: scores an ONNX model and writes JSON, rejects a model for other keypoints, and
finds the shipped model without --model from any folder."""

import json

import pytest
from kp_tinydata import write_tiny_bop

from tracker.cli import main
from tracker.objects import load_object
from tracker.paths import REPO_ROOT


@pytest.fixture(scope="module")
def tiny(tmp_path_factory):
    root = tmp_path_factory.mktemp("score")
    obj = load_object("default")
    write_tiny_bop(root, obj, n=6, size=128, split="test_synth")
    return root, obj, None


def test_cli_scores_an_onnx_model_and_writes_json(tiny, tmp_path, capsys):
    from benchmarks.tiny_model import write_tiny_onnx

    root, obj, _ds = tiny
    model = write_tiny_onnx(tmp_path / "m.onnx", obj.keypoint_names)
    out = tmp_path / "scores.json"
    rc = main(["score", "--model", str(model), "--data", str(root), "--split", "test_synth", "--device", "cpu", "--json", str(out)])
    assert rc == 0
    s = json.loads(out.read_text())
    assert s["n_images"] == 6 and 0.0 <= s["pck5"] <= 1.0 and s["provider"] == "CPUExecutionProvider"
    assert "PCK@5px" in capsys.readouterr().out


def test_cli_rejects_a_model_for_other_keypoints(tiny, tmp_path, capsys):
    from benchmarks.tiny_model import write_tiny_onnx

    root, obj, _ds = tiny
    model = write_tiny_onnx(tmp_path / "other.onnx", [f"k{i}" for i in range(obj.num_keypoints)])
    rc = main(["score", "--model", str(model), "--data", str(root), "--split", "test_synth", "--device", "cpu"])
    assert rc == 2
    err = capsys.readouterr().err
    assert "other.onnx" in err and "keypoints" in err


def test_default_model_is_found_outside_the_checkout(tiny, tmp_path, monkeypatch, capsys):
    """Without --model, the shipped models/default/model.onnx is scored whatever the current folder
    (it used to be a path relative to the current folder: "not found" outside the checkout)."""
    root, _obj, _ds = tiny
    elsewhere = tmp_path / "elsewhere"
    elsewhere.mkdir()
    monkeypatch.chdir(elsewhere)  # outside the checkout: a relative models/default path would not resolve
    out = elsewhere / "scores.json"
    rc = main(["score", "--data", str(root), "--split", "test_synth", "--device", "cpu", "--max-images", "2", "--json", str(out)])
    err = capsys.readouterr().err
    assert rc == 0, err
    assert "not found" not in err
    s = json.loads(out.read_text())
    assert s["n_images"] == 2 and s["model"] == str(REPO_ROOT / "models" / "default" / "model.onnx")
