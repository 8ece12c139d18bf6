"""Training data: sources, exact keypoints through the augmentation affine, hold-out, bad input."""

import json

import cv2
import numpy as np
import pytest

from kp_tinydata import write_tiny_bop
from tracker.geometry.crop import INPUT_SIZE, apply_affine
from tracker.errors import KptrackError
from tracker.objects import load_object
from train.augment import AugmentConfig, _colour_matrix, _noise, occlude_keypoint, photometric, sample_affine, warp
from train.dataset import (
    CropDataset,
    InfiniteBatchSampler,
    collate,
    normalise_batch,
    split_holdout,
)
from train.records import Record, load_records


@pytest.fixture(scope="module")
def obj():
    return load_object("default")


@pytest.fixture(scope="module")
def tiny(tmp_path_factory, obj):
    return write_tiny_bop(tmp_path_factory.mktemp("tiny"), obj, n=6, corrupt=(3,))


def _dot_centroid(img: np.ndarray) -> np.ndarray:
    w = img.astype(np.float64)
    ys, xs = np.mgrid[: img.shape[0], : img.shape[1]]
    return np.array([(w * xs).sum() / w.sum(), (w * ys).sum() / w.sum()])


@pytest.mark.parametrize("seed", range(6))
def test_dot_lands_on_transformed_keypoint(seed):
    """Warp an image with a blurred dot at a keypoint: the dot's centroid is the affine-mapped keypoint."""
    rng = np.random.default_rng(seed)
    h, w = 300, 400
    p = rng.uniform([120, 100], [280, 200])
    img = np.zeros((h, w), np.float32)
    ys, xs = np.mgrid[:h, :w]
    img = np.exp(-((xs - p[0]) ** 2 + (ys - p[1]) ** 2) / (2 * 6.0**2)).astype(np.float32)
    cfg = AugmentConfig(rotation_deg=180.0, search_prob=0.5)
    A, _ = sample_affine(rng, np.array([100.0, 80.0, 200.0, 140.0]), (w, h), cfg)
    crop = cv2.warpAffine(img, A, (INPUT_SIZE, INPUT_SIZE), flags=cv2.INTER_LINEAR)
    q = apply_affine(A, p)
    assert np.linalg.norm(_dot_centroid(crop) - q) < 0.05


def test_bop_source_gives_exact_keypoints_and_targets(tiny, obj):
    recs = load_records(tiny, obj)
    assert len(recs) == 6 and recs[0].keypoints_uv.shape == (obj.num_keypoints, 2)
    ds = CropDataset(recs, augment=None)
    item = ds[0]
    assert item["image"].shape == (INPUT_SIZE, INPUT_SIZE, 3) and item["image"].dtype == np.uint8
    assert item["target"].shape == (obj.num_keypoints, 64, 64)
    # the crop has the drawn dot (a saturated colour) at every in-crop keypoint
    for j, q in enumerate(item["keypoints"]):
        x, y = np.round(q).astype(int)
        if 3 <= x < INPUT_SIZE - 3 and 3 <= y < INPUT_SIZE - 3:
            px = item["image"][y, x].astype(int)
            assert px.max() - px.min() > 80, (j, px)  # coloured, not the grey body or background


def test_augmented_items_are_deterministic_per_seed_and_vary(tiny, obj):
    recs = load_records(tiny, obj)
    ds = CropDataset(recs, augment=AugmentConfig(rotation_deg=90))
    a, b, c = ds[(1, 123)], ds[(1, 123)], ds[(1, 124)]
    np.testing.assert_array_equal(a["image"], b["image"])
    np.testing.assert_array_equal(a["affine"], b["affine"])
    assert not np.array_equal(a["affine"], c["affine"])


def test_corrupt_image_is_skipped_and_reported(tiny, obj):
    recs = load_records(tiny, obj)
    bad_idx = next(i for i, r in enumerate(recs) if r.image_path.name.startswith("000003"))
    ds = CropDataset(recs, augment=AugmentConfig())
    item = ds[(bad_idx, 5)]
    assert item["bad"] == [bad_idx] and item["image"].shape == (INPUT_SIZE, INPUT_SIZE, 3)
    val = CropDataset(recs, augment=None)
    assert val[bad_idx]["bad"] == [bad_idx]
    batch = collate([ds[(i, i)] for i in range(len(recs))])
    assert batch["image"].shape == (len(recs), INPUT_SIZE, INPUT_SIZE, 3) and bad_idx in batch["bad"]


def test_all_images_corrupt_is_a_clear_error(tmp_path, obj):
    root = write_tiny_bop(tmp_path, obj, n=3, corrupt=(0, 1, 2))
    ds = CropDataset(load_records(root, obj), augment=AugmentConfig())
    with pytest.raises(KptrackError, match="could not be read"):
        ds[(0, 1)]


def test_keypoint_count_mismatch_and_empty_dataset(tmp_path, tiny, obj):
    fewer = obj.with_keypoints(obj.keypoint_names[:5], obj.keypoints[:5])
    # the dataset's models/keypoints.json says 10 keypoints
    (tiny / "models").mkdir(exist_ok=True)
    (tiny / "models" / "keypoints.json").write_text(json.dumps({"names": list(obj.keypoint_names), "points_mm": obj.keypoints.tolist()}))
    with pytest.raises(KptrackError, match="5"):
        load_records(tiny, fewer)
    # a COCO file with a different keypoint count
    from tracker.formats.coco import CocoAnnotation, CocoImage, write_coco

    coco = write_coco(
        tmp_path / "c.json", [CocoImage(1, "a.png", 10, 10)],
        [CocoAnnotation(1, np.zeros((3, 2)), np.array([2, 2, 2], np.int8), (0, 0, 5, 5), 25.0)], ["a", "b", "c"],
    )
    with pytest.raises(KptrackError, match="3 keypoints"):
        load_records(coco, obj)
    # an empty dataset: a scene with no instances of the object
    empty = tmp_path / "empty" / "train" / "000000"
    (empty / "rgb").mkdir(parents=True)
    (empty / "scene_gt.json").write_text("{}")
    (empty / "scene_camera.json").write_text("{}")
    with pytest.raises(KptrackError, match="empty dataset"):
        load_records(tmp_path / "empty", obj)
    with pytest.raises(KptrackError, match="not found"):
        load_records(tmp_path / "nope", obj)


def test_coco_source(tmp_path, obj):
    from tracker.formats.coco import CocoAnnotation, CocoImage, write_coco

    img = np.zeros((100, 120, 3), np.uint8)
    cv2.imwrite(str(tmp_path / "im.png"), img)
    k = obj.num_keypoints
    uv = np.stack([np.linspace(20, 90, k), np.linspace(30, 70, k)], 1)
    v = np.array([2] * (k - 2) + [1, 0], np.int8)
    path = write_coco(tmp_path / "k.json", [CocoImage(7, "im.png", 120, 100)], [CocoAnnotation(7, uv, v, (15, 25, 80, 50), 1.0)], obj.keypoint_names)
    recs = load_records(path, obj)
    assert len(recs) == 1 and np.isnan(recs[0].keypoints_uv[-1]).all()
    item = CropDataset(recs)[0]
    np.testing.assert_array_equal(item["weight"], [1] * (k - 1) + [0])
    np.testing.assert_allclose(item["keypoints"][0], apply_affine(item["affine"], uv[0]), atol=1e-4)


def test_holdout_is_fixed_disjoint_and_bounded():
    tr, va = split_holdout(1000)
    tr2, va2 = split_holdout(1000)
    np.testing.assert_array_equal(va, va2)
    assert len(va) == 50 and not set(tr) & set(va) and len(tr) + len(va) == 1000
    assert len(split_holdout(20000)[1]) == 500
    assert len(split_holdout(3)[1]) == 1
    with pytest.raises(KptrackError, match="at least 2"):
        split_holdout(1)


def test_sampler_resume_and_ranks_are_consistent():
    full = InfiniteBatchSampler(10, 4, seed=3, start=0, stop=6)
    resumed = InfiniteBatchSampler(10, 4, seed=3, start=3, stop=6)
    assert list(full)[3:] == list(resumed)
    r0 = InfiniteBatchSampler(10, 2, seed=3, rank=0, world=2).batch_at(4)
    r1 = InfiniteBatchSampler(10, 2, seed=3, rank=1, world=2).batch_at(4)
    assert not set(r0) & set(r1)
    # one epoch visits every item once
    idx = [i for b in InfiniteBatchSampler(10, 5, seed=1, stop=2) for i, _ in b]
    assert sorted(idx) == list(range(10))


def test_normalise_batch_matches_modelmeta():
    import torch

    from tracker.formats.modelmeta import ModelMeta

    meta = ModelMeta(keypoint_names=("a",))
    x = np.random.default_rng(0).integers(0, 256, (2, 16, 16, 3), dtype=np.uint8)
    ours = normalise_batch(torch.from_numpy(x), meta.mean, meta.std, meta.channel_order).numpy()
    np.testing.assert_allclose(ours, meta.normalise(x), atol=1e-5)


def test_normalise_batch_in_channels_last_is_the_same_input_in_that_layout():
    import torch

    from tracker.formats.modelmeta import ModelMeta

    meta = ModelMeta(keypoint_names=("a",))
    x = torch.from_numpy(np.random.default_rng(1).integers(0, 256, (2, 16, 16, 3), dtype=np.uint8))
    ours = normalise_batch(x, meta.mean, meta.std, meta.channel_order, torch.channels_last)
    assert ours.is_contiguous(memory_format=torch.channels_last) and not ours.is_contiguous()
    np.testing.assert_allclose(ours.numpy(), meta.normalise(x.numpy()), atol=1e-5)


def _colour_reference(img, a, c, b):
    """The colour jitter written pixel by pixel: saturation about the grey, then contrast about the mean, plus brightness."""
    f = img.astype(np.float64)
    gray = f @ np.array([0.114, 0.587, 0.299])
    f = gray[..., None] + a * (f - gray[..., None])
    return np.clip((f - f.mean()) * c + f.mean() + b, 0, 255)


@pytest.mark.parametrize("a, c, b", [(1.3, 0.7, 30.0), (0.7, 1.3, -30.0), (1.0, 1.0, 0.0), (0.9, 1.1, 5.5)])
def test_the_colour_matrix_is_the_per_pixel_colour_jitter(a, c, b):
    img = np.random.default_rng(2).integers(0, 256, (32, 32, 3), dtype=np.uint8)
    out = cv2.transform(img, _colour_matrix(cv2.mean(img)[:3], a, c, b))
    assert np.abs(out - _colour_reference(img, a, c, b)).max() < 1.0  # within one grey level (cv2 rounds, in float32)


def test_noise_is_seeded_standard_normal_windows():
    n1, n2 = _noise(np.random.default_rng(3), (256, 256, 3)), _noise(np.random.default_rng(3), (256, 256, 3))
    other = _noise(np.random.default_rng(4), (256, 256, 3))
    assert n1.shape == (256, 256, 3) and n1.dtype == np.float32
    np.testing.assert_array_equal(n1, n2)
    assert not np.array_equal(n1, other)
    assert abs(float(n1.std()) - 1.0) < 0.02 and abs(float(n1.mean())) < 0.02
    assert _noise(np.random.default_rng(3), (600, 40, 3)).shape == (600, 40, 3)  # larger than the bank
    # added to a flat grey crop it has the drawn strength (uniform 1..noise_std)
    flat = np.full((256, 256, 3), 128, np.uint8)
    cfg = AugmentConfig(color_prob=0, blur_prob=0, noise_prob=1, cutout_prob=0, noise_std=8.0)
    sds = [float((photometric(np.random.default_rng(i), flat, cfg).astype(float) - 128).std()) for i in range(6)]
    assert all(0.9 < sd < 8.1 for sd in sds) and max(sds) - min(sds) > 1.0


def test_photometric_keeps_shape_and_changes_pixels():
    rng = np.random.default_rng(0)
    crop = np.full((64, 64, 3), 120, np.uint8)
    out = photometric(rng, crop, AugmentConfig(color_prob=1, blur_prob=1, noise_prob=1, cutout_prob=1))
    assert out.shape == crop.shape and out.dtype == np.uint8 and not np.array_equal(out, crop)
    assert np.array_equal(crop, np.full((64, 64, 3), 120, np.uint8))  # input untouched


@pytest.mark.parametrize("seed", range(5))
def test_keypoint_bar_covers_a_visible_keypoint(seed):
    """The bar always lies over one of the visible keypoints inside the crop, never over only hidden
    or outside ones, and crosses the crop (it is a bar, not a patch)."""
    crop = np.full((128, 128, 3), 128, np.uint8)
    kp = np.array([[30.0, 40.0], [90.0, 100.0], [200.0, 50.0]])  # the third lies outside the crop
    vis = np.array([2, 1, 2])
    cfg = AugmentConfig(keypoint_bar_prob=1.0)
    out = occlude_keypoint(np.random.default_rng(seed), crop, kp, vis, cfg)
    changed = np.any(out != crop, axis=2)
    assert changed[40, 30]  # the only visible keypoint inside the crop is under the bar
    edge = np.zeros_like(changed)
    edge[[0, -1], :] = edge[:, [0, -1]] = True
    ys, xs = np.nonzero(changed & edge)
    assert max(np.ptp(xs), np.ptp(ys)) > 40  # enters and leaves through the crop's border: a bar, not a patch
    assert np.array_equal(crop, np.full((128, 128, 3), 128, np.uint8))  # input untouched


def test_keypoint_bar_leaves_crops_without_a_visible_keypoint():
    crop = np.full((64, 64, 3), 128, np.uint8)
    cfg = AugmentConfig(keypoint_bar_prob=1.0)
    hidden = occlude_keypoint(np.random.default_rng(0), crop, np.array([[10.0, 10.0]]), np.array([1]), cfg)
    outside = occlude_keypoint(np.random.default_rng(0), crop, np.array([[-5.0, 10.0]]), np.array([2]), cfg)
    assert hidden is crop and outside is crop
    rng = np.random.default_rng(0)
    assert occlude_keypoint(rng, crop, np.array([[10.0, 10.0]]), np.array([2]), AugmentConfig()) is crop
    assert rng.random() == np.random.default_rng(0).random()  # off by default, and draws nothing then
    with pytest.raises(ValueError, match="keypoint_bar_prob"):
        AugmentConfig(keypoint_bar_prob=1.5)


def test_keypoint_bar_keeps_the_labels(tiny, obj):
    """A crop with a bar keeps its keypoints and targets: the net learns where an occluded
    keypoint is, not that it vanished."""
    recs = load_records(tiny, obj)
    plain = CropDataset(recs, augment=AugmentConfig(search_prob=0.0))[(0, 11)]
    barred = CropDataset(recs, augment=AugmentConfig(search_prob=0.0, keypoint_bar_prob=1.0))[(0, 11)]
    np.testing.assert_array_equal(plain["keypoints"], barred["keypoints"])
    np.testing.assert_array_equal(plain["target"], barred["target"])
    assert not np.array_equal(plain["image"], barred["image"])


def test_visibility_from_bounds_when_no_labels(tmp_path):
    img = np.zeros((50, 60, 3), np.uint8)
    p = tmp_path / "a.png"
    cv2.imwrite(str(p), img)
    rec = Record(p, np.array([[10.0, 10.0], [70.0, 10.0], [np.nan, np.nan]]), None, (0, 0, 40, 40), "k")
    item = CropDataset([rec])[0]
    np.testing.assert_array_equal(item["visibility"], [2, 0, 0])
    np.testing.assert_array_equal(item["weight"], [1, 0, 0])
    assert warp(img, item["affine"]).shape == (INPUT_SIZE, INPUT_SIZE, 3)
