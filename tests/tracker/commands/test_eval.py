"""kptrack eval on the command line: summary printed, files written, a user error exits 2."""

from __future__ import annotations

from eval_scene import write_eval_scene
from label_box import NAMES, box_object, camera, corners_uv, pose, write_box, write_frames

from tracker.formats.bop_results import BopResult, write_results_csv
from tracker.labels import LabelPoint, write_points_csv
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
    assert {a.dest for a in opts} == {"poses", "dataset", "labels", "camera", "object", "out", "obj_id"}
    assert all(a.help for a in opts)


def test_cli_annotate_then_eval_on_the_labels(tmp_path, capsys):
    obj_dir = write_box(tmp_path / "box")
    frames = write_frames(tmp_path / "frames", 6)
    cam = camera().to_yaml(tmp_path / "cam.yaml")
    pts = [LabelPoint(f, n, float(x), float(y)) for f in (0, 4) for n, (x, y) in zip(NAMES, corners_uv(box_object(), camera(), f))]
    pts_csv = write_points_csv(tmp_path / "pts.csv", pts)
    labels = tmp_path / "labels"
    assert main(["annotate", "--source", str(frames), "--object", str(obj_dir), "--camera", str(cam), "--out", str(labels),
                 "--points", str(pts_csv)]) == 0
    assert "2 with a pose" in capsys.readouterr().out
    poses = write_results_csv(tmp_path / "poses.csv", [BopResult(0, 4, 1, 1.0, *pose(4))])
    assert main(["eval", "--poses", str(poses), "--labels", str(labels), "--object", str(obj_dir), "--out", str(tmp_path / "ev")]) == 0
    out = capsys.readouterr().out
    assert "2 labelled frames" in out and "a pose on 1 (50.0%)" in out
    assert main(["eval", "--poses", str(poses), "--object", str(obj_dir)]) == 2
    assert "--dataset" in capsys.readouterr().err
    assert main(["annotate", "--source", str(frames), "--object", str(obj_dir), "--camera", str(cam), "--out", str(labels),
                 "--frames", "0,99", "--points", str(pts_csv)]) == 2
    assert "frame 99 is beyond the video, which has 6 frames" in capsys.readouterr().err
