"""The #10 curve reader: a run folder's log.csv, a kept log file, and only its validated rows."""

from pathlib import Path

import cv2
import numpy as np
import pytest

from benchmarks.train_curves import COLOURS, main, plot, read_curve, run_batch

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


def test_run_batch_reads_config_json_or_takes_the_given_batch(tmp_path: Path):
    run = tmp_path / "run"
    run.mkdir()
    (run / "log.csv").write_text(LOG)
    (run / "config.json").write_text('{"batch": 32, "lr": 0.002}')
    kept = tmp_path / "kept.csv"
    kept.write_text(LOG)
    assert run_batch(str(run)) == (run, 32)
    assert run_batch(str(run / "log.csv")) == (run / "log.csv", 32)
    assert run_batch(f"{kept},8") == (kept, 8)
    with pytest.raises(SystemExit, match="kept.csv,BATCH"):
        run_batch(str(kept))
    with pytest.raises(SystemExit, match="whole number"):
        run_batch(f"{kept},eight")


def test_plot_command_names_a_run_given_without_a_name(tmp_path: Path):
    with pytest.raises(SystemExit, match="NAME=RUN_DIR"):
        main(["plot", str(tmp_path / "run"), "--out", str(tmp_path / "c.png")])


def test_plot_against_images_seen_puts_equal_images_at_equal_x(tmp_path: Path):
    # a batch-32 run at iteration 100 and a batch-8 run at iteration 400 have seen the same images:
    # on the images panel the second curve is drawn exactly over the first, on the iterations panel not
    small = np.array([[200.0, 10.0, 0.4], [400.0, 20.0, 0.6]])
    large = np.array([[50.0, 10.0, 0.4], [100.0, 20.0, 0.6]])
    by_images = cv2.imread(str(plot({"cpu": small, "gpu": large}, tmp_path / "a.png", {"cpu": 8, "gpu": 32})))
    by_iters = cv2.imread(str(plot({"cpu": small, "gpu": large}, tmp_path / "b.png")))
    right_images, right_iters = by_images[100:, 560:], by_iters[100:, 560:]  # below the legend

    def columns(img, colour):
        hit = np.all(np.abs(img.astype(int) - colour) < 40, axis=2)
        return set(np.nonzero(hit.any(axis=0))[0])

    cpu, gpu = COLOURS[0], COLOURS[1]
    assert not columns(right_images, cpu) and columns(right_images, gpu)
    assert columns(right_iters, cpu) and columns(right_iters, gpu)
    assert max(columns(right_iters, cpu)) > max(columns(right_iters, gpu)) + 100
