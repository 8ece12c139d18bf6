"""TrainConfig checks: options out of range fail with one clear error."""

import pytest

from kp_tinydata import write_tiny_bop
from tracker.errors import KptrackError
from tracker.objects import load_object
from train.config import TrainConfig
from train.loop import train

@pytest.fixture(scope="module")
def data(tmp_path_factory):
    return write_tiny_bop(tmp_path_factory.mktemp("tiny"), load_object("default"), n=6, size=96, corrupt=(2,))


def test_bad_options(data, tmp_path):
    with pytest.raises(KptrackError, match="--width.*'hourglass'"):
        train(TrainConfig(data=str(data), out=str(tmp_path / "r"), iters=1, preset="hourglass", width=0.5))
    with pytest.raises(KptrackError, match="--rot-range"):
        train(TrainConfig(data=str(data), out=str(tmp_path / "r"), iters=1, rotation_deg=200))
    with pytest.raises(KptrackError, match="--iters"):
        train(TrainConfig(data=str(data), out=str(tmp_path / "r"), iters=0))
    with pytest.raises(KptrackError, match="--sigma-start 1.0: must be >= --sigma"):
        train(TrainConfig(data=str(data), out=str(tmp_path / "r"), iters=1, sigma_start=1.0))
    with pytest.raises(KptrackError, match="--peak-weight"):
        train(TrainConfig(data=str(data), out=str(tmp_path / "r"), iters=1, peak_weight=0.5))
    for bad in (0.0, 1.5):
        with pytest.raises(KptrackError, match="--hidden-peak"):
            train(TrainConfig(data=str(data), out=str(tmp_path / "r"), iters=1, hidden_peak=bad))
    for bad in (-0.1, 1.5):
        with pytest.raises(KptrackError, match="--occlude-keypoints"):
            train(TrainConfig(data=str(data), out=str(tmp_path / "r"), iters=1, occlude_keypoints=bad))
    with pytest.raises(KptrackError, match="--symmetric-loss 'best': use min or canonical"):
        train(TrainConfig(data=str(data), out=str(tmp_path / "r"), iters=1, symmetric_loss="best"))
