"""train/score: PCK and pixel errors of heatmaps against the true keypoints."""

import numpy as np
import pytest
from kp_tinydata import write_tiny_bop

from tracker.objects import load_object
from train.dataset import CropDataset
from train.records import load_records
from train.heatmaps import gaussian_targets
from train.commands.score import swap_summary
from train.score import score_crops


@pytest.fixture(scope="module")
def tiny(tmp_path_factory):
    root = tmp_path_factory.mktemp("score")
    obj = load_object("default")
    write_tiny_bop(root, obj, n=6, size=128, split="test_synth")
    ds = CropDataset(load_records(root, obj, split="test_synth"), augment=None)
    return root, obj, ds


def _relabelled(ds, move):
    """A model whose heatmaps put each crop's keypoints where ``move(kp)`` says (crop px)."""
    items = [ds[i] for i in range(len(ds))]
    pos = [0]

    def fn(crops):
        out = []
        for _ in range(len(crops)):
            kp = move(items[pos[0]]["keypoints"].astype(np.float64).copy())
            pos[0] += 1
            out.append(gaussian_targets(kp, np.full(len(kp), 2))[0])
        return np.stack(out)

    return fn


def _oracle(ds, shift_px):
    """A model that answers each crop with Gaussians at its true keypoints moved by shift_px (crop px)."""
    return _relabelled(ds, lambda kp: kp + shift_px)


def test_perfect_heatmaps_score_full_marks(tiny):
    _root, _obj, ds = tiny
    s = score_crops(_oracle(ds, np.zeros(2)), ds, batch=4)
    assert s["n_images"] == len(ds) and s["n_visible"] > 0
    assert s["pck2"] == 1.0 and s["pck5"] == 1.0
    assert s["mean_px"] < 0.05


def test_shifted_heatmaps_measure_the_shift(tiny):
    _root, _obj, ds = tiny
    s = score_crops(_oracle(ds, np.array([3.0, 0.0])), ds, batch=4)
    assert s["pck2"] < 0.05 and s["pck5"] > 0.95
    assert abs(s["median_px"] - 3.0) < 0.1


def test_per_keypoint_pck_finds_the_one_keypoint_that_is_off(tiny):
    _root, _obj, ds = tiny
    def off(kp):  # perfect, except keypoint 2, 8 px to the right
        kp[2, 0] += 8.0
        return kp

    fn = _relabelled(ds, off)
    per = score_crops(fn, ds, batch=4)["pck5_per_keypoint"]
    seen = [k for k in range(len(per)) if per[k] == per[k]]
    assert 2 in seen and per[2] == 0.0
    assert all(per[k] == 1.0 for k in seen if k != 2)


def _scaled_oracle(ds, off_kp, off_px, peak_off, peak_rest):
    """Gaussians at the true keypoints, keypoint ``off_kp`` moved off_px to the right; the moved
    one's peak is peak_off, the others' peak_rest."""
    items = [ds[i] for i in range(len(ds))]
    pos = [0]

    def fn(crops):
        out = []
        for _ in range(len(crops)):
            kp = items[pos[0]]["keypoints"].astype(np.float64).copy()
            pos[0] += 1
            kp[off_kp, 0] += off_px
            t = gaussian_targets(kp, np.full(len(kp), 2))[0]
            t *= peak_rest
            t[off_kp] *= peak_off / peak_rest
            out.append(t)
        return np.stack(out)

    return fn


def test_confidence_auc_tells_a_model_that_doubts_its_misplaced_keypoints_from_one_that_trusts_them(tiny):
    _root, _obj, ds = tiny
    doubts = score_crops(_scaled_oracle(ds, 2, 20.0, peak_off=0.3, peak_rest=0.9), ds, batch=4)
    trusts = score_crops(_scaled_oracle(ds, 2, 20.0, peak_off=0.9, peak_rest=0.3), ds, batch=4)
    assert doubts["conf_auc"] == pytest.approx(1.0) and trusts["conf_auc"] == pytest.approx(0.0)
    assert doubts["conf_visible"] > 0.8 and trusts["conf_visible"] < 0.4  # nine peaks of 0.9 (0.3) and one of 0.3 (0.9)


def test_confidence_auc_counts_ties_half_and_needs_both_groups():
    from train.score import confidence_auc

    assert confidence_auc(np.array([0.5, 0.5, 0.5, 0.5]), np.array([True, False, True, False])) == pytest.approx(0.5)
    assert confidence_auc(np.array([0.9, 0.2, 0.5]), np.array([True, False, True])) == pytest.approx(1.0)
    assert np.isnan(confidence_auc(np.array([0.9, 0.8]), np.array([True, True])))


def test_swapped_keypoints_are_told_from_imprecise_ones(tiny):
    _root, _obj, ds = tiny

    def swap(kp):
        kp[[1, 4]] = kp[[4, 1]]
        return kp

    s = score_crops(_relabelled(ds, swap), ds, batch=4)
    swaps = np.asarray(s["swaps"])
    far = [ds[i]["keypoints"] for i in range(len(ds))]
    apart = sum(np.linalg.norm(k[1] - k[4]) > 10 for k in far)  # a swap shows only where the two are apart
    assert apart > 0 and swaps[1, 4] >= 1 and swaps[4, 1] >= 1
    assert swaps.sum() == swaps[1, 4] + swaps[4, 1]
    assert s["misplaced"] > 0 and s["swapped"] == pytest.approx(swaps.sum() / s["n_visible"])
    # every keypoint 12 px off in the same direction: misplaced, but on no other keypoint's spot
    s = score_crops(_relabelled(ds, lambda kp: kp + [12.0, 0.0]), ds, batch=4)
    assert s["misplaced"] > 0.9 and s["swapped"] < 0.5 * s["misplaced"]


def test_swap_summary_names_the_commonest_swaps_and_the_remedy():
    counts = np.zeros((3, 3), int)
    counts[0, 2], counts[2, 0] = 30, 12
    s = {"pck5_per_keypoint": {"a": 0.5, "b": 0.9, "c": 0.6}, "swaps": counts.tolist(), "misplaced": 0.2, "swapped": 0.15}
    line = swap_summary(s)
    assert "a on c 30x, c on a 12x" in line and "--coord-weight" in line
    s.update(swapped=0.01)
    assert "--coord-weight" not in swap_summary(s)
