"""kptrack eval on the command line: summary printed, files written, a user error exits 2."""

from __future__ import annotations

from eval_scene import write_eval_scene
from tracker.cli import build_parser, main
from tracker.objects import load_object


def test_cli_eval(tmp_path, capsys):
    tmp, csv_path, _ = write_eval_scene(tmp_path, load_object("default").diameter)
    assert main(["eval", "--poses", str(csv_path), "--dataset", str(tmp / "data"), "--out", str(tmp / "ev4")]) == 0
    assert "ADD<0.1d" in capsys.readouterr().out
    assert (tmp / "ev4" / "metrics.json").is_file()
    assert main(["eval", "--poses", str(tmp / "nope.csv"), "--dataset", str(tmp / "data")]) == 2
    assert "nope.csv" in capsys.readouterr().err


def test_every_option_has_help():
    ap = build_parser(["eval"])
    sub = next(a for a in ap._actions if a.dest == "command").choices["eval"]
    opts = [a for a in sub._actions if a.option_strings and a.dest != "help"]
    assert {a.dest for a in opts} == {"poses", "dataset", "object", "out", "obj_id"}
    assert all(a.help for a in opts)
