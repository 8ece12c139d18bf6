"""Mixed training sources: PATH[:WEIGHT] parsing, batches drawn in proportion to the weights, per-source validation."""

import json

import numpy as np
import pytest

from kp_tinydata import write_tiny_bop
from tracker.errors import KptrackError
from tracker.objects import load_object
from train.augment import AugmentConfig
from train.config import TrainConfig
from train.dataset import InfiniteBatchSampler
from train.loop import train
from train.sources import (
    WeightedBatchSampler,
    batch_sampler,
    data_sources,
    parse_source,
    source_datasets,
    validation_groups,
)

OBJ = load_object("default")


def test_parse_source_weights_and_paths_with_colons(tmp_path):
    assert parse_source("data/synth") == parse_source("data/synth:1")
    s = parse_source("data/pseudo:2.5")
    assert s.path == "data/pseudo" and s.weight == 2.5 and s.name == "pseudo"
    odd = tmp_path / "a:3"
    odd.mkdir()
    assert parse_source(str(odd)).path == str(odd)  # an existing path is never split
    assert parse_source("c:/x/y").path == "c:/x/y"  # not a number after the colon: all path
    with pytest.raises(KptrackError, match="weight -1 must be a positive"):
        parse_source("data/real:-1")
    assert [s.path for s in data_sources("one")] == ["one"] and len(data_sources(("a", "b:2"))) == 2


def test_weighted_sampler_draws_each_source_in_proportion_to_its_weight():
    sizes, weights = [100, 10, 1000], [1.0, 2.0, 1.0]  # the small source gets half the batches, whatever its size
    smp = WeightedBatchSampler(sizes, weights, batch=8, seed=3, stop=600)
    pos = np.array([p for b in smp for p, _ in b])
    which = np.searchsorted(np.cumsum(sizes), pos, side="right")
    share = np.bincount(which, minlength=3) / len(pos)
    assert np.allclose(share, [0.25, 0.5, 0.25], atol=0.03), share
    assert pos.min() >= 0 and pos.max() < sum(sizes)
    assert len(set(pos[which == 1])) == 10  # every item of the small source is drawn
    # a pure function of (seed, iteration): resuming draws the same batches; ranks shard the global batch
    assert smp.batch_at(17) == WeightedBatchSampler(sizes, weights, 8, 3, start=17).batch_at(17)
    r0 = WeightedBatchSampler(sizes, weights, 4, 3, rank=0, world=2).batch_at(5)
    r1 = WeightedBatchSampler(sizes, weights, 4, 3, rank=1, world=2).batch_at(5)
    assert r0 + r1 == smp.batch_at(5)
    with pytest.raises(ValueError):
        WeightedBatchSampler([5, 0], [1, 1], 2, 0)


@pytest.fixture(scope="module")
def two_sets(tmp_path_factory):
    root = tmp_path_factory.mktemp("mix")
    a = write_tiny_bop(root / "synth", OBJ, n=20, size=96, seed=1)
    b = write_tiny_bop(root / "real", OBJ, n=6, size=96, seed=2)
    return a, b


def test_source_datasets_hold_out_each_source_and_keep_one_source_as_before(two_sets):
    a, b = two_sets
    train_ds, val_ds = source_datasets((str(a), f"{b}:3"), OBJ, AugmentConfig(), 2.0)
    assert [(n, w) for n, w, _, _ in train_ds.sources] == [("synth", 1.0), ("real", 3.0)]
    assert len(train_ds) == 19 + 5 and [(n, b - a) for n, a, b in validation_groups(val_ds)] == [("synth", 1), ("real", 1)]
    assert isinstance(batch_sampler(train_ds, 2, 0, stop=3), WeightedBatchSampler)
    one, _ = source_datasets(str(a), OBJ, AugmentConfig(), 2.0)
    assert isinstance(batch_sampler(one, 2, 0, stop=3), InfiniteBatchSampler) and len(one) == 19


def test_sources_labelled_with_other_keypoints_are_refused(two_sets, tmp_path):
    a, _ = two_sets
    other = write_tiny_bop(tmp_path / "other", OBJ, n=4, size=96)
    (other / "models").mkdir()
    names = list(reversed(OBJ.keypoint_names))
    (other / "models" / "keypoints.json").write_text(json.dumps({"names": names, "points_mm": OBJ.keypoints.tolist()}))
    with pytest.raises(KptrackError, match=f"--data {other}: labelled with keypoints"):
        source_datasets((str(a), str(other)), OBJ, AugmentConfig(), 2.0)


def test_training_on_two_sources_reports_validation_per_source(two_sets, tmp_path):
    a, b = two_sets
    run = tmp_path / "run"
    train(TrainConfig(data=(str(a), f"{b}:2"), out=str(run), iters=2, batch=2, workers=0, threads=1, width=0.25,
                      val_every=2, log_every=1, warmup=0, init="none"))
    rows = [json.loads(r) for r in (run / "val_sources.jsonl").read_text().splitlines()]
    assert [(r["iter"], r["source"]) for r in rows] == [(2, "synth"), (2, "real")]
    assert all(0 <= r["pck5"] <= 1 and r["n_images"] == 1 for r in rows)
