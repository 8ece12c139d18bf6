"""Model cards: a stage is read from a run folder's config.json and log.csv; the card carries
the commands, the scores given and the machine."""

import json

import pytest

from benchmarks.model_card import main, read_stage


def _run(tmp_path, name="run"):
    run = tmp_path / name
    run.mkdir()
    (run / "config.json").write_text(json.dumps({"iters": 300, "batch": 8, "optimizer": "adam", "lr": 1e-3, "peak_weight": 5.0}))
    (run / "log.csv").write_text(
        "iter,loss,lr,images_per_s,val_loss,pck2,pck5,mean_px,pck5_labelled,bad_images,time_s\n"
        "100,3.0,0.001,20,,,,,,0,10.0\n"
        "100,,0.001,,2.0,0.1,0.40,9.0,0.3,0,12.0\n"
        "200,,0.001,,1.5,0.2,0.55,7.0,0.4,0,22.0\n"
        "300,,0.001,,1.4,0.2,0.50,6.0,0.4,0,33.5\n")
    return run


def test_stage_reads_recipe_curve_best_and_wall_time(tmp_path):
    st = read_stage(_run(tmp_path))
    assert st["iterations"] == 300 and st["images_seen"] == 2400 and st["wall_time_s"] == 33.5
    assert [c["iter"] for c in st["validation_curve"]] == [100, 200, 300]
    assert st["validation_best"]["iter"] == 200  # best PCK@5px, not the last
    assert st["recipe"]["peak_weight"] == 5.0 and st["recipe"]["sigma_start"] is None


def test_card_holds_stages_in_order_commands_scores_and_machine(tmp_path):
    a, b = _run(tmp_path, "a"), _run(tmp_path, "b")
    score = tmp_path / "score.json"
    score.write_text(json.dumps({"pck5": 0.61}))
    out = tmp_path / "card.json"
    main(["--stage", str(a), "--stage", str(b), "--model", "m.onnx", "--object", "bottle", "--command", "kptrack synth x",
          "--command", "kptrack train y", "--score", f"test={score}", "--note", "n1", "--out", str(out)])
    card = json.loads(out.read_text())
    assert card["commands"] == ["kptrack synth x", "kptrack train y"]
    assert [s["run"] for s in card["training"]["stages"]] == [str(a), str(b)]
    assert card["training"]["total_iterations"] == 600 and card["training"]["total_wall_time_s"] == 67.0
    assert card["scores"]["test"]["pck5"] == 0.61 and card["machine"]["cores"] >= 1 and card["notes"] == ["n1"]


def test_a_run_without_log_rows_is_refused(tmp_path):
    run = _run(tmp_path)
    (run / "log.csv").write_text("iter,loss\n")
    with pytest.raises(SystemExit, match="no rows"):
        read_stage(run)
