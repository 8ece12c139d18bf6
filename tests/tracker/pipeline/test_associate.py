"""Unlabelled peaks for discrete-symmetric objects: the peaks of the heatmaps' maximum (subpixel,
one per flat top, strongest first) and their greedy gated match to the projected keypoints."""

import numpy as np

from tracker.pipeline.associate import heatmap_peaks, match_to_projection, peak_labels


def _gauss(xy, size=64, sigma=2.0, peak=1.0):
    g = np.arange(size, dtype=np.float64)
    gx, gy = np.meshgrid(g, g)
    return peak * np.exp(-((gx - xy[0]) ** 2 + (gy - xy[1]) ** 2) / (2 * sigma**2))


def test_peaks_of_all_channels_found_wherever_they_sit():
    # channel 0 holds two corners, channel 1 a third, channel 2 sits on channel 0's first corner
    true = [(10.3, 20.6), (40.75, 12.2), (30.4, 50.1)]
    heat = np.zeros((3, 64, 64), np.float32)
    heat[0] = np.maximum(_gauss(true[0]), _gauss(true[1], peak=0.8))
    heat[1] = _gauss(true[2], peak=0.6)
    heat[2] = _gauss(true[0], peak=0.5)
    xy, val = heatmap_peaks(heat, min_conf=0.2, max_peaks=10)
    assert len(xy) == 3
    np.testing.assert_allclose(val, [1.0, 0.8, 0.6], atol=0.05)  # strongest first
    np.testing.assert_allclose(xy, true, atol=0.02)  # a sampled Gaussian's log is a parabola: exact
    assert len(heatmap_peaks(heat, min_conf=0.7, max_peaks=10)[0]) == 2
    assert len(heatmap_peaks(heat, min_conf=0.2, max_peaks=1)[0]) == 1


def test_a_flat_top_gives_one_peak_and_empty_or_nan_maps_none():
    heat = np.zeros((1, 16, 16), np.float32)
    heat[0, 5:7, 5:7] = 0.9
    xy, _ = heatmap_peaks(heat, 0.2, 10)
    assert len(xy) == 1
    assert len(heatmap_peaks(np.zeros((2, 16, 16), np.float32), 0.2, 10)[0]) == 0
    assert len(heatmap_peaks(np.full((2, 16, 16), np.nan, np.float32), 0.2, 10)[0]) == 0


def test_a_peak_is_labelled_by_every_channel_firing_on_it():
    # peak A: channel 0 at 1.0 and channel 2 at 0.7 (both label it), channel 1 at 0.3 (too weak
    # beside 1.0); peak B: channel 1 alone, at 0.6
    a, b = (12.0, 30.0), (45.0, 20.0)
    heat = np.zeros((3, 64, 64), np.float32)
    heat[0] = _gauss(a)
    heat[1] = np.maximum(_gauss(a, peak=0.3), _gauss(b, peak=0.6))
    heat[2] = _gauss(a, peak=0.7)
    xy, _ = heatmap_peaks(heat, min_conf=0.2, max_peaks=10)
    pi, ki, val = peak_labels(heat, xy, min_conf=0.2)
    assert list(zip(pi.tolist(), ki.tolist())) == [(0, 0), (0, 2), (1, 1)]  # peak by peak, strongest channel first
    np.testing.assert_allclose(val, [1.0, 0.7, 0.6], atol=0.01)
    # a stricter share drops channel 2; a higher floor drops peak B's only label
    assert peak_labels(heat, xy, min_conf=0.2, rel=0.8)[1].tolist() == [0, 1]
    assert peak_labels(heat, xy, min_conf=0.65)[1].tolist() == [0, 2]
    assert len(peak_labels(heat, np.zeros((0, 2)), min_conf=0.2)[0]) == 0


def test_match_is_greedy_one_to_one_and_gated():
    model = np.array([[0.0, 0.0], [10.0, 0.0], [0.0, 10.0], [np.nan, np.nan]])
    peaks = np.array([[9.0, 0.5], [0.5, 0.2], [0.8, 0.0], [50.0, 50.0]])
    j = match_to_projection(peaks, model, gate_px=3.0)
    # peak 1 is nearer keypoint 0 than peak 2 is, so it takes it; peak 2 is left unmatched
    # (each keypoint takes one peak) and peak 3 is beyond the gate
    assert j.tolist() == [1, 0, -1, -1]
    assert match_to_projection(peaks, model, gate_px=0.1).tolist() == [-1, -1, -1, -1]
    assert match_to_projection(np.zeros((0, 2)), model, 3.0).shape == (0,)
