"""Model-coordinate targets (--coord-weight): the rendered target, its loss, the head beside the
network, and training, resuming and refusing with it."""

import csv
import json
import math

import cv2
import numpy as np
import pytest
import torch

from kp_meshes import box_object, cylinder_object
from kp_tinydata import write_tiny_bop
from tracker.errors import KptrackError
from tracker.geometry import project
from tracker.geometry.crop import crop_affine, crop_to_heatmap
from tracker.objects import write_object_dir
from tracker.objects.symmetry import apply_transform, rotation_about, symmetry_group
from tracker.objects.symmetry_keypoints import SymmetricLabels
from train.checkpoint import load_checkpoint, model_from_checkpoint
from train.augment import AugmentConfig
from train.config import TrainConfig
from train.coords import (AUTO_WEIGHT, CoordHead, CoordTargets, WithCoords, coord_loss, half_resolution,
                          masked_mean_channels, resolve_weight)
from train.dataset import CropDataset
from train.records import load_records
from train.loop import train
from train.models import build_model

FAST = dict(batch=2, workers=0, threads=1, width=0.25, val_every=2, log_every=1, warmup=0)


@pytest.fixture(scope="module")
def box():
    return box_object("coordbox")


@pytest.fixture(scope="module")
def data(tmp_path_factory, box):
    return write_tiny_bop(tmp_path_factory.mktemp("coords"), box, n=6, size=96)


def _pose(angle_deg: float = 25.0):
    a = math.radians(angle_deg)
    R = np.array([[math.cos(a), 0, math.sin(a)], [0, 1, 0], [-math.sin(a), 0, math.cos(a)]]) @ np.array(
        [[1, 0, 0], [0, math.cos(0.5), -math.sin(0.5)], [0, math.sin(0.5), math.cos(0.5)]])
    t = np.array([10.0, -5.0, 400.0])
    K = np.array([[500.0, 0, 319.5], [0, 500.0, 239.5], [0, 0, 1]])
    return R, t, K


def test_target_cells_reproject_onto_themselves_in_a_rotated_crop(box):
    """Each covered cell's model coordinates, projected with the pose and the crop, land on that cell."""
    R, t, K = _pose()
    corners = project(box.box_corners, R, t, K)
    A = crop_affine(corners.mean(0), 1.4 * float(np.ptp(corners, axis=0).max()), rotation_rad=0.4)
    target = CoordTargets(box)((R, t, K), (480, 640), A)
    assert target.shape == (4, 64, 64) and target.dtype == np.float32
    assert 0.0 <= target[0].min() and target[0].max() <= 1.0
    on = target[0] > 0.99
    assert on.sum() > 200
    ys, xs = np.nonzero(on)
    model_xyz = target[1:, ys, xs].T * (box.bbox_size / 2) + (box.bbox_min + box.bbox_size / 2)
    cells = crop_to_heatmap(np.c_[project(model_xyz, R, t, K), np.ones(len(xs))] @ A.T)
    err = np.linalg.norm(cells - np.c_[xs, ys], axis=1)
    assert np.median(err) < 0.1 and err.max() < 0.75
    # the object's cells span the box: its coordinates reach both ends of every axis seen
    assert np.sum(target[1:, on].min(axis=1) < -0.9) + np.sum(target[1:, on].max(axis=1) > 0.9) >= 4
    assert target[0, 0, 0] == 0 and np.all(target[1:, 0, 0] == 0)  # far from the object: empty


def test_target_of_a_crop_that_misses_the_object_is_empty(box):
    R, t, K = _pose()
    A = crop_affine(np.array([30.0, 30.0]), 40.0)
    assert not CoordTargets(box)((R, t, K), (480, 640), A).any()


def test_loss_is_zero_on_the_target_and_ignores_crops_without_a_pose():
    rng = np.random.default_rng(0)
    raw = rng.random((3, 4, 8, 8)).astype(np.float32)
    target = torch.from_numpy(np.stack([masked_mean_channels(r) for r in raw]))
    has = torch.tensor([True, False, True])
    assert float(coord_loss(target.clone(), target, has)) == 0.0
    pred = target.clone()
    pred[1] += 5.0  # the crop without a pose: free
    assert float(coord_loss(pred, target, has)) == 0.0
    pred[0, 1:] += 0.5  # coordinates off by 0.5 on each axis where the object covers > half a cell
    assert float(coord_loss(pred, target, has)) > 0.0
    assert float(coord_loss(pred, target, torch.zeros(3, dtype=torch.bool))) == 0.0


def test_half_resolution_keeps_coordinates_and_averages_coverage():
    t = torch.zeros(1, 4, 4, 4)
    t[0, 0, :2, :2] = 1.0  # one full block
    t[0, 0, 2, 2] = 1.0  # a quarter of another
    t[0, 1:, :, :] = torch.tensor([0.5, -0.25, 1.0])[:, None, None] * t[0, :1]
    h = half_resolution(t)
    assert h.shape == (1, 4, 2, 2)
    assert torch.allclose(h[0, 0], torch.tensor([[1.0, 0.0], [0.0, 0.25]]))
    assert torch.allclose(h[0, 1:, 1, 1], torch.tensor([0.5, -0.25, 1.0]))  # a quarter covered, same coordinates
    assert torch.all(h[0, 1:, 0, 1] == 0)


@pytest.mark.parametrize("preset,grid", [("lite", 16), ("hourglass", 32)])
def test_head_reads_the_decoders_features_and_leaves_the_network_as_it_was(preset, grid):
    kw = {"width": 0.25} if preset == "lite" else {"stacks": 1, "features": 32}
    model = build_model(preset, 5, **kw)
    keys = set(model.state_dict())
    both = WithCoords(model, CoordHead(model)).train()
    outs, coords = both(torch.zeros(2, 3, 128, 128))
    # lite: its 1/8 stage, half the heatmap's grid; hourglass: the features its last head reads
    assert coords.shape == (2, 4, grid, grid) and outs[-1].shape == (2, 5, 32, 32)
    assert set(model.state_dict()) == keys  # the exported network is unchanged
    model.eval()
    assert model(torch.zeros(1, 3, 256, 256)).shape == (1, 5, 64, 64)


def test_loss_pools_the_target_to_the_heads_grid():
    t = torch.zeros(1, 4, 8, 8)
    t[0, 0] = 1.0
    t[0, 1:] = torch.tensor([0.2, -0.4, 0.6])[:, None, None]
    has = torch.ones(1, dtype=torch.bool)
    assert float(coord_loss(half_resolution(half_resolution(t)), t, has)) < 1e-12
    assert float(coord_loss(torch.zeros(1, 4, 2, 2), t, has)) > 0.5
    with pytest.raises(ValueError, match="prediction"):
        coord_loss(torch.zeros(1, 4, 3, 3), t, has)


def test_dataset_items_carry_coordinates_only_where_the_record_has_a_pose(data, box):
    recs = load_records(data, box)
    ds = CropDataset(recs, coords=CoordTargets(box))
    it = ds[0]
    assert it["has_coords"] and it["coords"].shape == (4, 64, 64) and it["coords"][0].max() > 0.5
    no_pose = [type(r)(**{**r.__dict__, "pose": None}) for r in recs]
    it = CropDataset(no_pose, coords=CoordTargets(box))[0]
    assert not it["has_coords"] and not it["coords"].any()
    assert "coords" not in CropDataset(recs)[0]


def _loss_rows(run):
    with open(run / "log.csv", newline="") as f:
        return [float(r["loss"]) for r in csv.DictReader(f) if r["loss"]]


def test_training_with_coordinates_adds_the_loss_saves_the_head_and_resumes(data, box, tmp_path):
    kw = dict(data=str(data), object=str(_object_dir(box, tmp_path)), iters=2, low_res=0.5, **FAST)
    base = train(TrainConfig(out=str(tmp_path / "p"), coord_weight=0.0, **kw))
    run = tmp_path / "c"
    res = train(TrainConfig(out=str(run), coord_weight=10.0, **kw))
    # the first step: same weights and batch, plus the coordinate term
    assert _loss_rows(run)[0] > _loss_rows(base.run_dir)[0]
    ck = torch.load(run / "last.pt", weights_only=True)
    assert set(ck["coord_head"]) == {"conv.weight", "conv.bias"} and ck["config"]["coord_weight"] == 10.0
    # the saved network loads as any other (the head is not part of it)
    model_from_checkpoint(load_checkpoint(run / "best.pt"))
    more = train(TrainConfig(out=str(run), resume=str(run / "last.pt"), coord_weight=10.0, **{**kw, "iters": 4}))
    assert more.iteration == 4 and res.iteration == 2
    with pytest.raises(KptrackError, match="without --coord-weight"):
        train(TrainConfig(out=str(base.run_dir), resume=str(base.run_dir / "last.pt"), coord_weight=10.0, **{**kw, "iters": 4}))
    # by default an object without symmetries trains with the head; a run without it resumes without it
    auto = train(TrainConfig(out=str(tmp_path / "a"), **kw))
    assert "coord_head" in torch.load(auto.run_dir / "last.pt", weights_only=True)
    again = train(TrainConfig(out=str(base.run_dir), resume=str(base.run_dir / "last.pt"), **{**kw, "iters": 3}))
    assert again.iteration == 3 and "coord_head" not in torch.load(base.run_dir / "last.pt", weights_only=True)
    # the run folder's config.json records the weight as resolved, for the model card
    assert json.loads((auto.run_dir / "config.json").read_text())["coord_weight"] == AUTO_WEIGHT
    assert json.loads((base.run_dir / "config.json").read_text())["coord_weight"] == 0.0


@pytest.mark.parametrize("obj", [box_object("symbox", "box"), cylinder_object("cyl")], ids=["box", "cylinder"])
def test_symmetric_views_get_the_same_coordinates_as_well_as_the_same_keypoints(obj):
    """Two ground truths that look the same (equivalent under the object's symmetry) give one
    target: the canonical equivalent's coordinates, which reproject onto their cells under it."""
    R, t, K = _pose(35.0)
    group = symmetry_group(obj)
    turns = group.discrete[1:] if group.axis is None else [rotation_about(group.axis, a, group.offset) for a in (0.9, 2.5, 4.0)]
    corners = project(obj.box_corners, R, t, K)
    A = crop_affine(corners.mean(0), 1.4 * float(np.ptp(corners, axis=0).max()), rotation_rad=0.3)
    targets, raw = CoordTargets(obj), []
    canon = SymmetricLabels(R, t, K, obj.keypoints, group).labels_and_pose(0.3)[2:]
    first = targets((*canon, K), (480, 640), A)
    for S in turns:
        R2, t2 = apply_transform(R, t, S)
        raw.append(targets((R2, t2, K), (480, 640), A))
        labels = SymmetricLabels(R2, t2, K, obj.keypoints, group)
        np.testing.assert_allclose(labels(0.3)[0], SymmetricLabels(R, t, K, obj.keypoints, group)(0.3)[0], atol=1e-6)
        np.testing.assert_allclose(targets((*labels.labels_and_pose(0.3)[2:], K), (480, 640), A), first, atol=2e-3)
    # the equivalents' own coordinates differ: without the canonical pose the targets would disagree
    assert max(float(np.abs(r[1:] - first[1:]).max()) for r in raw) > 0.5
    on = first[0] > 0.99
    ys, xs = np.nonzero(on)
    model_xyz = first[1:, ys, xs].T * (obj.bbox_size / 2) + (obj.bbox_min + obj.bbox_size / 2)
    cells = crop_to_heatmap(np.c_[project(model_xyz, *canon, K), np.ones(len(xs))] @ A.T)
    assert np.median(np.linalg.norm(cells - np.c_[xs, ys], axis=1)) < 0.2


def test_a_symmetric_objects_crops_carry_the_canonical_equivalents_coordinates(tmp_path):
    """Through the dataset: each crop's coordinate target is the one of the pose its keypoint
    labels come from (turned with the crop's roll)."""
    obj = box_object("symbox", "box")
    root = write_tiny_bop(tmp_path / "d", obj, n=3, size=96)
    records = load_records(str(root), obj)
    ds = CropDataset(records, sigma=2.0, augment=AugmentConfig(), coords=CoordTargets(obj))
    for i in range(len(records)):
        item = ds[(i, 11 + i)]
        A, rec = item["affine"], records[i]
        roll = math.atan2(A[1, 0], A[0, 0])
        R, t = rec.symmetric.labels_and_pose(roll)[2:]
        assert item["has_coords"]
        np.testing.assert_allclose(item["keypoints"], np.c_[project(obj.keypoints, R, t, rec.pose[2]), np.ones(len(obj.keypoints))] @ A.T, atol=1e-3)
        expect = CoordTargets(obj)((R, t, rec.pose[2]), cv2.imread(str(rec.image_path)).shape[:2], A)
        np.testing.assert_allclose(item["coords"], expect, atol=1e-5)


def test_a_symmetric_object_trains_coordinates_only_when_asked_and_not_with_the_min_loss(data, tmp_path):
    sym = _object_dir(box_object("symbox", "box"), tmp_path)
    res = train(TrainConfig(data=str(data), object=str(sym), out=str(tmp_path / "d"), iters=1, **FAST))
    assert res.iteration == 1 and "coord_head" not in torch.load(res.run_dir / "last.pt", weights_only=True)
    res = train(TrainConfig(data=str(data), object=str(sym), out=str(tmp_path / "w"), iters=1, coord_weight=5.0, **FAST))
    assert res.iteration == 1 and "coord_head" in torch.load(res.run_dir / "last.pt", weights_only=True)
    with pytest.raises(KptrackError, match="--coord-weight 5.0 with --symmetric-loss min"):
        train(TrainConfig(data=str(data), object=str(sym), out=str(tmp_path / "m"), iters=1, coord_weight=5.0,
                          symmetric_loss="min", **FAST))


def test_weight_resolution():
    assert resolve_weight(None, symmetric=False) == AUTO_WEIGHT > 0
    assert resolve_weight(None, symmetric=True) == 0.0
    assert resolve_weight(None, symmetric=False, resume={"model": {}}) == 0.0  # a run trained without the head
    assert resolve_weight(None, symmetric=False, resume={"coord_head": {}}) == AUTO_WEIGHT
    assert resolve_weight(0.0, symmetric=True) == 0.0 and resolve_weight(3.0, symmetric=False) == 3.0
    assert resolve_weight(3.0, symmetric=True) == 3.0  # the canonical equivalent's coordinates
    assert resolve_weight(3.0, symmetric=False, min_loss=True) == 3.0  # the min loss is for symmetric objects only
    with pytest.raises(KptrackError, match="symmetric-loss min"):
        resolve_weight(3.0, symmetric=True, min_loss=True)


def test_a_negative_weight_is_refused(data, tmp_path):
    with pytest.raises(KptrackError, match="--coord-weight -1.0"):
        train(TrainConfig(data=str(data), out=str(tmp_path / "n"), iters=1, coord_weight=-1.0, **FAST))


def _object_dir(obj, tmp_path):
    d = tmp_path / f"obj_{obj.name}"
    if not d.is_dir():
        return write_object_dir(obj, d)
    return d
