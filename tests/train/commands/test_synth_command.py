"""``kptrack synth``: writes a dataset, and refuses to write over one without --overwrite."""

from tracker.cli import main


def test_cli_synth(tmp_path, capsys):
    rc = main(["synth", "--object", "default", "--out", str(tmp_path / "d"), "--num", "3", "--seed", "0", "--workers", "1", "--width", "64", "--height", "64"])
    assert rc == 0 and len(list((tmp_path / "d" / "train_synth" / "000000" / "rgb").iterdir())) == 3
    rc = main(["synth", "--out", str(tmp_path / "d"), "--num", "3"])
    assert rc == 2 and "--overwrite" in capsys.readouterr().err
