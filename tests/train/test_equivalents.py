"""The min-over-equivalents loss and scoring for discrete-symmetric objects: a prediction that
labels another equivalent costs nothing and scores as right; the canonical-only loss and a
keypoint set that is not reordered do not forgive it."""

import numpy as np
import pytest

from tracker.geometry.crop import crop_to_heatmap
from train.equivalents import best_equivalent_labels
from train.heatmaps import batch_targets

torch = pytest.importorskip("torch")
from train.validation import heatmap_loss  # noqa: E402

# a half turn of a 4-keypoint object swapping (0, 1) and (2, 3)
PERMS = np.array([[0, 1, 2, 3], [1, 0, 3, 2]])
Q = np.array([[[40.0, 50.0], [200.0, 60.0], [60.0, 190.0], [210.0, 200.0]],
              [[100.0, 100.0], [150.0, 100.0], [100.0, 150.0], [150.0, 150.0]]])
V = np.full((2, 4), 2)


def _targets(q):
    return torch.from_numpy(batch_targets(q, V, 2.0))


def test_min_loss_forgives_another_equivalent_only():
    target = _targets(Q)
    swapped = target[:, PERMS[1]].clone()  # both crops answer with the other equivalent
    w = torch.ones(2, 4)
    perms = torch.as_tensor(PERMS)
    assert float(heatmap_loss(swapped, target, w, 5.0, perms)) == pytest.approx(0.0, abs=1e-9)
    assert float(heatmap_loss(swapped, target, w, 5.0)) > 1.0
    # with the identity alone the min loss is the plain loss
    assert float(heatmap_loss(swapped, target, w, 5.0, perms[:1])) == pytest.approx(float(heatmap_loss(swapped, target, w, 5.0)))
    # a crop that mixes equivalents (one keypoint swapped alone) is not forgiven
    mixed = target.clone()
    mixed[:, [0, 1]] = target[:, [1, 0]]
    assert float(heatmap_loss(mixed, target, w, 5.0, perms)) > 0.5


def test_min_loss_is_per_crop_and_sums_the_stacks():
    target = _targets(Q)
    w = torch.ones(2, 4)
    pred = target.clone()
    pred[1] = target[1, PERMS[1]]  # crop 0 canonical, crop 1 the other equivalent
    perms = torch.as_tensor(PERMS)
    assert float(heatmap_loss([pred, pred], target, w, 1.0, perms)) == pytest.approx(0.0, abs=1e-9)
    # one stack per equivalent: the sum over stacks is taken before the minimum
    assert float(heatmap_loss([target, target[:, PERMS[1]]], target, w, 1.0, perms)) > 0.5


def test_best_equivalent_labels_follow_the_prediction():
    pred_cells = crop_to_heatmap(Q[:, PERMS[1]] + 1.0)  # 1.4 px off the other equivalent
    pred_cells[0] = crop_to_heatmap(Q[0] + 1.0)  # crop 0 answers canonically
    kp, vis, chosen = best_equivalent_labels(pred_cells, Q, V, PERMS)
    assert chosen.tolist() == [0, 1]
    np.testing.assert_allclose(kp[0], Q[0])
    np.testing.assert_allclose(kp[1], Q[1, PERMS[1]])
    kp0, _, chosen0 = best_equivalent_labels(pred_cells, Q, V, None)
    assert chosen0.tolist() == [0, 0] and np.array_equal(kp0, Q)
