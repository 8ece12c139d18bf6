"""A bench sequence read from a BOP scene: frames, camera and ground truth; a missing scene."""

from __future__ import annotations

import numpy as np
import pytest
from bench_scene import H, N, W, gt_pose, write_bench_scene

from benchmarks.sequence import first_frames, load_sequence
from tracker.errors import KptrackError


def test_load_sequence(tmp_path):
    sd, _, cam = write_bench_scene(tmp_path)
    seq = load_sequence(sd.parent.parent, max_frames=4)  # the dataset folder holding one scene will do
    assert len(seq) == 4 and len(seq.gt.im_ids) == 4 and seq.scene_dir == sd
    assert (seq.camera.width, seq.camera.height) == (W, H) and np.allclose(seq.camera.K, cam.K)
    assert seq.read(3).shape == (H, W, 3)
    assert np.allclose(seq.gt.t_m2c[2], gt_pose(2)[1])
    assert len(load_sequence(sd)) == N and first_frames(seq.gt, 10) is seq.gt


def test_bad_input(tmp_path):
    with pytest.raises(KptrackError):
        load_sequence(tmp_path / "nowhere")
