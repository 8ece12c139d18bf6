"""``kptrack pseudolabel`` and ``kptrack adapt``: options reach the configs, bad input is one line."""

import train.commands.adapt as adapt_cmd
from tracker.cli import build_parser, main
from train.commands.pseudolabel import config_from_args


def test_thresholds_and_lists_reach_the_config(tmp_path):
    ns = build_parser().parse_args(["pseudolabel", "--video", "a.mp4", "--video", "b/", "--out", str(tmp_path / "o"),
                                    "--exclude", "1-3", "--exclude", "labels/b", "--max-rms", "2.5", "--window", "5",
                                    "--min-edges", "0.6", "--exclude-margin", "0"])
    cfg = config_from_args(ns)
    assert cfg.videos == ("a.mp4", "b/") and cfg.exclude == ("1-3", "labels/b")
    assert cfg.checks.max_rms_px == 2.5 and cfg.checks.window == 5 and cfg.checks.min_edge_score == 0.6
    assert cfg.checks.exclude_margin == 0 and cfg.checks.min_inlier_frac == 0.8  # untouched defaults stay
    assert cfg.preset == "accurate"  # offline labels: poses refined on image edges by default
    fast = config_from_args(build_parser().parse_args(["pseudolabel", "--video", "a.mp4", "--out", "o", "--preset", "fast"]))
    assert fast.preset == "fast"


def test_adapt_takes_the_preset(monkeypatch):
    """adapt pseudo-labels and scores with the accurate preset unless told otherwise."""
    seen = []
    monkeypatch.setattr(adapt_cmd, "adapt", lambda cfg, on_round=None: seen.append(cfg) or {"stopped": "test", "best": 0})
    base = ["adapt", "--video", "a.mp4", "--checkpoint", "c.pt", "--out", "o"]
    assert main(base) == 0 and main(base + ["--preset", "fast"]) == 0
    assert [c.preset for c in seen] == ["accurate", "fast"]


def test_bad_input_is_one_line(tmp_path, capsys):
    video = tmp_path / "v.mp4"
    video.write_bytes(b"x")
    assert main(["pseudolabel", "--video", str(tmp_path / "none.mp4"), "--out", str(tmp_path / "o")]) == 2
    assert "not a video file or image folder" in capsys.readouterr().err
    assert main(["pseudolabel", "--video", str(video), "--out", str(tmp_path / "o"), "--exclude", "1", "--exclude", "2"]) == 2
    err = capsys.readouterr().err
    assert "--exclude given 2 times for 1 videos" in err and "Traceback" not in err
    assert main(["adapt", "--video", str(video), "--out", str(tmp_path / "a"), "--checkpoint", str(tmp_path / "no.pt")]) == 2
    assert "--checkpoint" in capsys.readouterr().err and not (tmp_path / "o").exists() and not (tmp_path / "a").exists()
