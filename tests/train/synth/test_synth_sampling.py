"""train/synth/sampling: rotations within a ball around the canonical view."""

from __future__ import annotations


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
