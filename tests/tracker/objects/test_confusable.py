"""Confusable turns: the near-symmetries beyond a declared group, for a box-like keypoint set."""

import numpy as np
import pytest

from tracker.geometry import so3_exp
from tracker.objects import load_object
from tracker.objects.confusable import confusable_turns
from tracker.objects.primitives import box_keypoints, box_mesh
from tracker.objects.symmetry import parse_symmetry


def _box(size):
    _, pts = box_keypoints(size)
    disc, _ = parse_symmetry("box", box_mesh(size).vertices)
    group = np.stack([np.eye(4)] + [np.asarray(T, float).reshape(4, 4) for T in disc])
    return pts, group


def _moves(pts, T):
    moved = pts @ T[:3, :3].T + T[:3, 3]
    d = np.linalg.norm(moved[:, None] - pts[None], axis=2)
    return d.argmin(1), d.min(1)


def test_a_plain_box_is_confusable_with_each_other_axis_order():
    pts, group = _box((80.0, 60.0, 40.0))
    turns = confusable_turns(pts, group)
    # 24 axis-permuting rotations / 4 half-turn equivalents = 6 cosets, less the identity's
    assert turns.shape == (5, 4, 4)
    for T in turns:
        j, d = _moves(pts, T)
        assert len(set(j.tolist())) == 8 and d.max() <= 0.4 * 80.0
        np.testing.assert_allclose(T[:3, :3] @ T[:3, :3].T, np.eye(3), atol=1e-9)
        # no kept turn is a declared symmetry or the same image as another kept one
        assert not any(np.allclose(T, S) for S in group)
    for a in range(5):
        for b in range(a + 1, 5):
            assert not any(np.allclose(turns[a], turns[b] @ S) for S in group)
    # the quarter turn about the long axis (60 and 40 mm sides swapped) is among them, up to a half turn
    quarter_x = np.eye(4)
    quarter_x[:3, :3] = so3_exp(np.array([np.pi / 2, 0.0, 0.0]))
    assert any(np.allclose(T, quarter_x @ S, atol=1e-9) for T in turns for S in group)


def test_a_long_box_is_confusable_only_about_its_long_axis():
    pts, group = _box((200.0, 60.0, 40.0))
    turns = confusable_turns(pts, group)
    assert len(turns) == 1
    j, d = _moves(pts, turns[0])
    assert d.max() < 0.1 * 200.0
    # it keeps every corner on its own end of the long axis
    assert np.all(np.sign(pts[j, 0]) == np.sign(pts @ turns[0][:3, :3].T)[:, 0])
    # without the declared group, each of the 8 turns that keep the long axis on its line counts
    # (4 about it, times a half turn about y or not), but for the identity
    assert len(confusable_turns(pts)) == 7


@pytest.mark.parametrize("name", ["default"])
def test_an_asymmetric_object_has_none(name):
    assert confusable_turns(load_object(name).keypoints).shape == (0, 4, 4)


def test_too_few_keypoints_give_none():
    assert confusable_turns(np.zeros((2, 3))).shape == (0, 4, 4)
