"""The per-frame error plot of kptrack eval (cv2)."""

from __future__ import annotations

import cv2
import numpy as np

from eval_scene import write_eval_scene
from tracker.eval.evaluate import EvalConfig, run_eval
from tracker.objects import load_object


def test_error_plot_written(tmp_path):
    tmp, csv_path, _ = write_eval_scene(tmp_path, load_object("default").diameter)
    res = run_eval(EvalConfig(poses=str(csv_path), dataset=str(tmp / "data"), out=str(tmp / "ev3")))
    img = cv2.imread(res["plots"][0])
    assert img is not None and img.shape[1] == 1100 and img.shape[0] > 500
    # the ADD panel (top) holds the blue ADD curve, not just axes and red threshold lines
    top = img[34:164].astype(int)
    blue = (top[..., 0] > 180) & (top[..., 1] < 80) & (top[..., 2] < 80)
    assert np.count_nonzero(blue) > 100
