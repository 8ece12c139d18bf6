"""The #10 curve reader: a run folder's log.csv, a kept log file, and only its validated rows."""

from pathlib import Path

import numpy as np

from benchmarks.train_curves import plot, read_curve

LOG = """iter,loss,lr,images_per_s,val_loss,pck2,pck5,mean_px,pck5_labelled,bad_images,time_s
100,3.2,0.001,40.0,,,,,,0,12.5
200,2.1,0.001,41.0,1.9,0.2,0.45,9.0,0.4,0,25.0
300,1.8,0.0005,39.0,,,,,,0,37.5
400,1.5,0.0001,40.5,1.2,0.3,0.61,6.0,0.5,0,50.0
"""


def test_read_curve_takes_a_run_folder_or_a_kept_log_and_keeps_validated_rows(tmp_path: Path):
    run = tmp_path / "run"
    run.mkdir()
    (run / "log.csv").write_text(LOG)
    kept = tmp_path / "gpu_box.csv"
    kept.write_text(LOG)
    want = np.array([[200, 25.0, 0.45], [400, 50.0, 0.61]])
    np.testing.assert_allclose(read_curve(run), want)
    np.testing.assert_allclose(read_curve(kept), want)
    out = plot({"run": read_curve(run)}, tmp_path / "curve.png")
    assert out.is_file() and out.stat().st_size > 0
