"""train/synth/occluders: blob, hand and bar sprites."""

from __future__ import annotations

import numpy as np

from train import synth
from train.synth import occluders
from train.synth.occluders import END_MAX_COVER, END_MIN_COVER, axis_occluder, end_occluder


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


def _stick_mask(angle: float, length: float = 160.0, width: float = 30.0, size: int = 256) -> np.ndarray:
    """A thick line through the image centre at angle (rad), as an object's silhouette."""
    yy, xx = np.mgrid[:size, :size].astype(float)
    u = (xx - size / 2) * np.cos(angle) + (yy - size / 2) * np.sin(angle)
    v = -(xx - size / 2) * np.sin(angle) + (yy - size / 2) * np.cos(angle)
    return (np.abs(u) <= length / 2) & (np.abs(v) <= width / 2)


def test_end_occluder_hides_one_end_and_not_the_middle():
    for seed in range(12):
        rng = np.random.default_rng(seed)
        angle = rng.uniform(0, np.pi)
        mask = _stick_mask(angle)
        image = np.zeros(mask.shape + (3,), np.uint8)
        image[mask] = (40, 90, 200)  # some occluders take the object's colour
        occ = np.zeros(mask.shape, bool)
        assert end_occluder(rng, image, mask, occ)
        yy, xx = np.nonzero(mask)
        u = (xx - 128) * np.cos(angle) + (yy - 128) * np.sin(angle)  # along the stick, -80..80
        hidden = occ[yy, xx]
        ends = [hidden[u > 80 * (1 - 2 * 0.15)].mean(), hidden[u < -80 * (1 - 2 * 0.15)].mean()]
        # the outer 15 % of one end (inside any cut) is hidden as asked, the other end is not touched
        assert max(ends) >= END_MIN_COVER - 0.05 and min(ends) < 0.05, (seed, ends)
        far = u < -10 if ends[0] > ends[1] else u > 10
        assert hidden[far].mean() < 0.05  # the half past the middle stays visible (cuts stop at 50 %)
        assert hidden.mean() <= END_MAX_COVER and image[occ].any()


def test_end_occluder_in_the_objects_own_colour(monkeypatch):
    """An own-colour occluder keeps the object's hue (B < G < R here on every pixel); a random
    colour would keep that order in one draw in six."""
    monkeypatch.setattr(occluders, "END_OWN_COLOUR", 1.0)
    for seed in range(8):
        rng = np.random.default_rng(seed)
        mask = _stick_mask(rng.uniform(0, np.pi))
        image = np.zeros(mask.shape + (3,), np.uint8)
        image[mask] = (40, 90, 200)
        occ = np.zeros(mask.shape, bool)
        assert end_occluder(rng, image, mask, occ)
        b, g, r = image[occ].astype(int).T
        assert np.all(b < g) and np.all(g < r), seed


def test_end_occluder_gives_up_on_a_tiny_silhouette():
    mask = np.zeros((64, 64), bool)
    mask[30:34, 30:34] = True
    occ = np.zeros_like(mask)
    assert not end_occluder(np.random.default_rng(0), np.zeros((64, 64, 3), np.uint8), mask, occ)
    assert not occ.any()


def test_end_occlusion_share_of_a_dataset(tmp_path):
    """With --end-occlusion 1 the bottle's neck or base is hidden in most images, not in 5 %."""
    import json

    import cv2

    from train.synth.config import SynthConfig
    from train.synth.writer import run_synth

    split = run_synth(SynthConfig(object="bottle", out=tmp_path, num=16, seed=3, workers=1, end_occlusion=1.0, progress=False))
    gt = json.loads((split / "000000" / "scene_gt.json").read_text())
    cam = json.loads((split / "000000" / "scene_camera.json").read_text())
    ends = np.array([[0.0, 0.0, 80.0], [0.0, 0.0, -80.0]])  # on the axis inside the neck and the base
    hidden = []
    for i in range(16):
        g = gt[str(i)][0]
        K = np.array(cam[str(i)]["cam_K"]).reshape(3, 3)
        p = (K @ (ends @ np.array(g["cam_R_m2c"]).reshape(3, 3).T + np.array(g["cam_t_m2c"])).T).T
        uv = p[:, :2] / p[:, 2:]
        m = cv2.imread(str(split / "000000" / "mask_visib" / f"{i:06d}_000000.png"), 0)
        inside = [0 <= x < m.shape[1] and 0 <= y < m.shape[0] for x, y in uv]
        hidden.append(any(ok and m[int(y), int(x)] == 0 for ok, (x, y) in zip(inside, uv)))
    assert np.mean(hidden) >= 0.6


def test_axis_occluder_hides_the_axis_past_the_middle_and_leaves_a_side():
    """A bar along the stick over one end: the axis from that end to 40 % of the length is hidden,
    the far end is not, at most half of the stick is covered, and some of the covered end's width
    stays in view (the bar is narrower than the object)."""
    for seed in range(12):
        rng = np.random.default_rng(seed)
        angle = rng.uniform(0, np.pi)
        mask = _stick_mask(angle)
        image = np.zeros(mask.shape + (3,), np.uint8)
        image[mask] = (40, 90, 200)
        occ = np.zeros(mask.shape, bool)
        assert axis_occluder(rng, image, mask, occ)
        yy, xx = np.nonzero(mask)
        u = (xx - 128) * np.cos(angle) + (yy - 128) * np.sin(angle)  # along the stick, -80..80
        v = -(xx - 128) * np.sin(angle) + (yy - 128) * np.cos(angle)  # across it, -15..15
        hidden = occ[yy, xx]
        axis = np.abs(v) < 0.15 * 31
        sides = [hidden[axis & (u > 80 - 0.4 * 160)].mean(), hidden[axis & (u < -80 + 0.4 * 160)].mean()]
        near = 0 if sides[0] > sides[1] else 1
        far = (u < -80 + 0.15 * 160) if near == 0 else (u > 80 - 0.15 * 160)  # cuts stop 25 % short of it
        assert sides[near] >= END_MIN_COVER - 0.05 and hidden[far].mean() < 0.05, (seed, sides)
        end = (u > 80 - 0.4 * 160) if near == 0 else (u < -80 + 0.4 * 160)
        assert hidden[end].mean() < 0.97, seed  # a side of the covered end shows
        assert hidden.mean() <= END_MAX_COVER and image[occ].any()


def test_axis_and_end_occlusion_shares_add_up_to_at_most_one():
    import pytest

    from tracker.errors import KptrackError
    from train.synth.config import SynthConfig

    with pytest.raises(KptrackError, match="--axis-occlusion"):
        SynthConfig(end_occlusion=0.6, axis_occlusion=0.5).validate()
    with pytest.raises(KptrackError, match="--axis-occlusion"):
        SynthConfig(axis_occlusion=1.5).validate()
    SynthConfig(end_occlusion=0.5, axis_occlusion=0.5).validate()  # accepted
