"""train/synth/occluders: blob, hand and bar sprites."""

from __future__ import annotations

import numpy as np

from train import synth



def test_blob_occluder_min_radius():
    rng = np.random.default_rng(3)
    m, col = synth.occluder_sprite(rng, 10, "blob", min_radius_px=40)
    c = (m.shape[0] - 1) / 2
    yy, xx = np.mgrid[: m.shape[0], : m.shape[1]]
    disk = (yy - c) ** 2 + (xx - c) ** 2 <= 39.0**2
    assert m[disk].all() and col.shape == m.shape + (3,)
    for kind in ("hand", "bar"):
        m, _ = synth.occluder_sprite(rng, 60, kind)
        assert 0.05 < m.mean() < 0.8
