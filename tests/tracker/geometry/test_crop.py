import cv2
import numpy as np
import pytest

from tracker.geometry.crop import (
    HEATMAP_SIZE,
    INPUT_SIZE,
    apply_affine,
    compose_affine,
    crop_affine,
    crop_to_heatmap,
    frame_to_heatmap,
    heatmap_to_crop,
    heatmap_to_frame,
    invert_affine,
    letterbox_affine,
)


def test_crop_affine_maps_box_centre_and_side():
    A = crop_affine(np.array([300.0, 200.0]), 128.0)
    assert np.allclose(apply_affine(A, [300.0, 200.0]), [127.5, 127.5])
    # a box side of 128 frame px spans 256 crop px
    q0, q1 = apply_affine(A, [[236.0, 200.0], [364.0, 200.0]])
    assert np.isclose(q1[0] - q0[0], 256.0)


def test_rotation_is_counter_clockwise_in_the_image():
    A = crop_affine(np.array([0.0, 0.0]), 256.0, np.pi / 2)
    # a point to the right of the centre moves up (smaller y) after a CCW turn
    q = apply_affine(A, [10.0, 0.0]) - 127.5
    assert np.allclose(q, [0.0, -10.0])


@pytest.mark.parametrize("rot", [0.0, 0.4, -2.5])
def test_invert_and_compose_round_trip(rot):
    rng = np.random.default_rng(0)
    A = crop_affine(rng.uniform(0, 600, 2), rng.uniform(30, 400), rot)
    Ai = invert_affine(A)
    p = rng.uniform(-100, 700, (20, 2))
    assert np.allclose(apply_affine(Ai, apply_affine(A, p)), p, atol=1e-9)
    assert np.allclose(compose_affine(Ai, A), [[1, 0, 0], [0, 1, 0]], atol=1e-12)
    assert np.allclose(invert_affine(Ai), A, atol=1e-9)


def test_singular_affine_raises():
    with pytest.raises(ValueError):
        invert_affine(np.zeros((2, 3)))
    with pytest.raises(ValueError):
        crop_affine(np.zeros(2), 0.0)


def test_udp_heatmap_mapping_is_exact_both_ways():
    # extreme pixel centres map to extreme cell centres
    assert np.allclose(crop_to_heatmap([[0.0, 0.0], [INPUT_SIZE - 1, INPUT_SIZE - 1]]), [[0, 0], [HEATMAP_SIZE - 1, HEATMAP_SIZE - 1]])
    q = np.random.default_rng(1).uniform(0, 255, (50, 2))
    assert np.allclose(heatmap_to_crop(crop_to_heatmap(q)), q, atol=1e-12)
    A = crop_affine(np.array([320.0, 240.0]), 200.0, 0.3)
    p = np.array([[300.5, 250.25]])
    assert np.allclose(heatmap_to_frame(frame_to_heatmap(p, A), A), p, atol=1e-9)


def test_warp_affine_agrees_with_apply_affine():
    # a single bright pixel lands where apply_affine says, under cv2.warpAffine's conventions
    frame = np.zeros((480, 640), np.uint8)
    frame[211, 350] = 255
    A = crop_affine(np.array([330.0, 230.0]), 128.0)  # 2x magnification
    crop = cv2.warpAffine(frame, A, (INPUT_SIZE, INPUT_SIZE), flags=cv2.INTER_LINEAR)
    ys, xs = np.nonzero(crop)
    w = crop[ys, xs].astype(float)
    centroid = np.array([np.sum(xs * w), np.sum(ys * w)]) / w.sum()
    assert np.allclose(centroid, apply_affine(A, [350.0, 211.0]), atol=0.05)


def test_letterbox_fits_the_whole_frame():
    A = letterbox_affine(640, 480)
    corners = apply_affine(A, [[0, 0], [639, 479]])
    assert corners[:, 0].min() >= -0.5 and corners[:, 0].max() <= INPUT_SIZE - 0.5
    assert np.isclose(corners[1, 0] - corners[0, 0], 639 * INPUT_SIZE / 640)
    assert np.allclose(apply_affine(A, [319.5, 239.5]), [127.5, 127.5])
