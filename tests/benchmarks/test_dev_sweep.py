"""The development-sequence sweep: its summary keeps the demo seed out of the means, and bad
variants are one clear error."""

import pytest

from benchmarks.dev_sweep import main, parse_seeds, summary, sweep_document
from tracker.cli import main as kptrack


def test_summary_means_exclude_the_demo_seed():
    k = lambda c=0, w=0, r=0, ww=0: {"between_correct": c, "to_wrong": w, "to_correct": r, "between_wrong": ww}  # noqa: E731
    scores = {("default", 1): (0.0, 0.0, 5, 9, k(5)), ("default", 2): (0.9, 0.8, 1, 100, k(w=1)), ("default", 3): (0.7, 0.6, 0, 50, k()),
              ("bottle", 2): (0.5, 0.4, 2, 80, k(c=1, ww=1))}
    text = summary(scores)
    assert ("default: dev mean ADD 80.00 %  2D 70.00 %  jumps 1 of 150 pairs, 0 between correct poses, 1 to a wrong pose, "
            "0 back to a correct one, 0 wrong to wrong  (n=2)") in text
    assert ("bottle: dev mean ADD 50.00 %  2D 40.00 %  jumps 2 of 80 pairs, 1 between correct poses, 0 to a wrong pose, "
            "0 back to a correct one, 1 wrong to wrong  (n=1)") in text
    assert "all: dev mean ADD 70.00 %  2D 60.00 %  (n=3)" in text
    assert "demos (reference only): default 0.0 / 0.0 %" in text


@pytest.mark.parametrize("arg,match", [("{not json", "not a JSON object"), ('{"a": 3}', "JSON object of objects")])
def test_bad_variants_are_one_clear_error(arg, match):
    with pytest.raises(SystemExit, match=match):
        main([arg])


def test_an_unknown_setting_names_the_variant(tmp_path):
    with pytest.raises(SystemExit, match="variant 'x'"):
        main(['{"x": {"no_such_setting": 1}}', "--cache", str(tmp_path)])


@pytest.mark.parametrize("args,match", [(["--model", "drill.onnx"], "OBJECT=PATH"), (["--model", "cup=a.onnx"], "OBJECT=PATH"),
                                        (["--objects", "cup"], "--objects cup")])
def test_bad_model_and_objects_are_one_clear_error(args, match):
    with pytest.raises(SystemExit, match=match):
        main(['{"a": {}}', *args])


def test_an_object_directory_needs_its_model(tmp_path):
    (tmp_path / "box").mkdir()
    with pytest.raises(SystemExit, match="given a model with --model"):
        main(['{"a": {}}', "--objects", str(tmp_path / "box")])


def test_an_object_directory_is_named_by_the_name_it_declares(tmp_path):
    out = tmp_path / "object"
    assert kptrack(["object", "init", "--box", "80x60x40", "--symmetry", "box", "--name", "plainbox", "--out", str(out)]) == 0
    text = summary({(str(out), 1): (0.5, 0.5, 0, 10, {}), (str(out), 2): (0.9, 0.8, 1, 100, {"to_wrong": 1})})
    assert "plainbox: dev mean ADD 90.00 %" in text and "demos (reference only): plainbox 50.0 / 50.0 %" in text


def test_seeds_are_parsed_and_the_demo_seed_is_refused():
    assert parse_seeds("2-5,8") == (2, 3, 4, 5, 8)
    assert parse_seeds("6,6,7") == (6, 7)
    for bad in ("1-4", "x", "", "5-"):
        with pytest.raises(SystemExit, match="--seeds"):
            parse_seeds(bad)


def test_the_json_document_names_each_sequence_and_an_existing_file_is_refused(tmp_path):
    doc = sweep_document({"a": {("bottle", 2): (0.9, 0.8, 1, 299, {}), ("bottle", 1): (0.5, 0.4, 0, 299, {})}}, {"bottle": "m.onnx"})
    assert doc["models"] == {"bottle": "m.onnx"}
    assert doc["variants"]["a"] == [{"object": "bottle", "seed": 2, "add": 0.9, "proj": 0.8, "jumps": 1, "pairs": 299},
                                    {"object": "bottle", "seed": 1, "add": 0.5, "proj": 0.4, "jumps": 0, "pairs": 299}]
    kept = tmp_path / "kept.json"
    kept.write_text("mine")
    with pytest.raises(SystemExit, match="the file exists"):
        main(['{"a": {}}', "--json", str(kept)])
    assert kept.read_text() == "mine"
