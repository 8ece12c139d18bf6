"""The ship rule over two development sweeps (benchmarks.sweep_compare): its four checks, and files
that are not sweeps are one clear error."""

import json

import pytest

from benchmarks.dev_sweep import sweep_document
from benchmarks.sweep_compare import main, read_sweep


def _sweep(path, accurate: dict, fast: dict | None = None):
    """A dev_sweep --json file: {seed: (ADD, 2D)} per variant, the bottle's sequences plus a demo row."""
    results = {"accurate": {("bottle", s): (*x, 0, 299, {}) for s, x in accurate.items()}}
    if fast is not None:
        results["fast"] = {("bottle", s): (*x, 0, 299, {}) for s, x in fast.items()}
    for scores in results.values():
        scores[("bottle", 1)] = (0.0, 0.0, 0, 299, {})  # the demo: in no mean
    path.write_text(json.dumps(sweep_document(results, {"bottle": "m.onnx"})))
    return str(path)


TWIN = {2: (0.98, 0.97), 3: (0.96, 0.95), 10: (0.99, 0.98), 11: (0.97, 0.96)}


def test_a_candidate_level_everywhere_passes_and_the_demo_counts_nowhere(tmp_path, capsys):
    cand = _sweep(tmp_path / "c.json", TWIN, TWIN)
    twin = _sweep(tmp_path / "t.json", TWIN, TWIN)
    assert main([cand, twin, "--splits", "2-3;10-11"]) == 0
    out = capsys.readouterr().out
    assert "verdict: passes (4 of 4 checks pass, 0 not run)" in out
    assert "seeds 2-3: candidate  97.00 /  96.00 %" in out  # (98 + 96) / 2, (97 + 95) / 2; no demo zeros


def test_a_split_losing_more_than_the_limit_fails_though_the_mean_gains(tmp_path, capsys):
    better = {**TWIN, 2: (0.98, 1.00), 3: (0.96, 1.00), 10: (0.99, 0.972)}  # 2-3 gains 4 points of 2D, 10-11 loses 0.4
    worse = {**better, 10: (0.99, 0.96)}  # 10-11 loses 1.0
    twin = _sweep(tmp_path / "t.json", TWIN, TWIN)
    main([_sweep(tmp_path / "ok.json", better, TWIN), twin, "--splits", "2-3;10-11"])
    assert "verdict: passes" in capsys.readouterr().out
    main([_sweep(tmp_path / "bad.json", worse, TWIN), twin, "--splits", "2-3;10-11"])
    out = capsys.readouterr().out
    assert "pass  (a) accurate 2D over all" in out and "FAIL  (b) no split loses more than 0.5 of accurate 2D" in out
    assert "verdict: does not pass (3 of 4 checks pass, 0 not run)" in out


def test_fast_losing_and_a_missing_variant_are_not_a_pass(tmp_path, capsys):
    twin = _sweep(tmp_path / "t.json", TWIN, TWIN)
    slow = {s: (a, p - 0.01) for s, (a, p) in TWIN.items()}
    main([_sweep(tmp_path / "f.json", TWIN, slow), twin, "--splits", "2-3;10-11"])
    assert "FAIL  (d) fast 2D over all loses at most 0.5" in capsys.readouterr().out
    main([_sweep(tmp_path / "a.json", TWIN), twin, "--splits", "2-3;10-11"])
    out = capsys.readouterr().out
    assert "fast: not in both sweeps" in out and "verdict: does not pass (3 of 4 checks pass, 1 not run)" in out


def test_bad_files_and_arguments_are_one_clear_error(tmp_path):
    twin = _sweep(tmp_path / "t.json", TWIN, TWIN)
    (tmp_path / "x.json").write_text('{"runs": []}')
    with pytest.raises(SystemExit, match="nope.json: file not found"):
        read_sweep(tmp_path / "nope.json")
    with pytest.raises(SystemExit, match="x.json: not a dev_sweep --json file"):
        main([str(tmp_path / "x.json"), twin])
    with pytest.raises(SystemExit, match=r"seeds \[4\] are not in both sweeps"):
        main([twin, twin, "--splits", "2-4;10-11"])
    with pytest.raises(SystemExit, match="--seeds"):
        main([twin, twin, "--splits", "1-3"])
    with pytest.raises(SystemExit, match="--max-loss"):
        main([twin, twin, "--max-loss", "-1"])
