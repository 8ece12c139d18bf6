"""train/synth/sampling: rotations within a ball around the canonical view, views along a symmetry axis."""

from __future__ import annotations


import math

import numpy as np

from tracker.formats.bop_scene import read_scene_gt
from tracker.geometry import rotation_error_deg
from train import synth
from train.synth import SynthConfig, run_synth

def _cfg(out, **kw):
    kw.setdefault("progress", False)
    return SynthConfig(out=str(out), **kw)


def test_rot_range_limits_rotations(tmp_path):
    split = run_synth(_cfg(tmp_path, num=8, seed=1, rot_range_deg=15.0, workers=1, width=64, height=64))
    R0 = synth.canonical_rotation()
    angles = [rotation_error_deg(g[0].R_m2c, R0) for g in read_scene_gt(split / "000000" / "scene_gt.json").values()]
    assert max(angles) <= 15.0 + 1e-9 and max(angles) > 3.0


def test_sample_rotation_ball_is_not_concentrated():
    rng = np.random.default_rng(0)
    R0 = synth.canonical_rotation()
    a = np.array([rotation_error_deg(synth.sample_rotation(rng, 30.0), R0) for _ in range(2000)])
    # Haar density in a ball of radius A grows like (1 - cos a): the median is near 0.79 A
    assert a.max() <= 30.0 and 0.72 * 30 < np.median(a) < 0.86 * 30


def _tilt_deg(R: np.ndarray, axis: np.ndarray) -> float:
    return math.degrees(math.acos(float(np.clip((R @ axis)[2], -1.0, 1.0))))


def test_axis_views_stay_in_the_cone_at_both_ends():
    rng = np.random.default_rng(0)
    axis = np.array([0.6, 0.0, 0.8])
    Rs = [synth.sampling.sample_axis_view(rng, axis) for _ in range(1000)]
    tilt = np.array([_tilt_deg(R, axis) for R in Rs])
    assert all(np.allclose(R @ R.T, np.eye(3), atol=1e-9) and np.isclose(np.linalg.det(R), 1.0) for R in Rs[:20])
    away, facing = tilt <= 30.0 + 1e-9, tilt >= 150.0 - 1e-9
    assert np.all(away | facing) and 0.4 < away.mean() < 0.6
    # uniform over the cap: half its area lies beyond cos(a) = (1 + cos 30) / 2, about 21.5 deg
    assert 19.0 < np.median(np.where(away, tilt, 180.0 - tilt)) < 24.0
    # the roll about the line of sight is uniform, not fixed
    rolls = [math.atan2(R[1, 0], R[0, 0]) for R in Rs[:200]]
    assert np.std(rolls) > 1.0


def test_axis_views_share_of_a_dataset(tmp_path):
    split = run_synth(_cfg(tmp_path, object="bottle", num=12, seed=2, axis_views=1.0, workers=1, width=64, height=64))
    gts = read_scene_gt(split / "000000" / "scene_gt.json").values()
    z = np.array([0.0, 0.0, 1.0])
    # the angle to the optical axis (the rotation's own; the ray to an off-centre object differs a little)
    assert all(min(_tilt_deg(g[0].R_m2c, z), 180.0 - _tilt_deg(g[0].R_m2c, z)) < 30.0 + 1e-6 for g in gts)
