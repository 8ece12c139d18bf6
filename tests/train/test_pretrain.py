"""Backbone pretraining: procedural objects, the pretext targets the renderer gives, and the
loop (a backbone written, an exact continuation with --resume)."""

import csv

import numpy as np
import pytest
import torch

from tracker.camera import Camera
from tracker.geometry.crop import crop_to_heatmap
from tracker.errors import KptrackError
from train.backbone import load_backbone
from train.pretrain.data import CHANNELS, PretextDataset, edge_map, normals_from_depth
from train.pretrain.loop import PretrainConfig, lr_at, pretrain
from train.pretrain.shapes import extrusion_mesh, random_object, sphere_mesh


def _outward(m):
    v, f = m.vertices, m.faces
    n = np.cross(v[f[:, 1]] - v[f[:, 0]], v[f[:, 2]] - v[f[:, 0]])
    return np.einsum("ij,ij->i", n, v[f].mean(1))


def test_procedural_parts_face_outward_and_objects_repeat_per_seed():
    assert np.all(_outward(sphere_mesh(40.0)) > -1e-9)
    poly = np.array([[30.0, 0.0], [0.0, 20.0], [-25.0, 0.0], [0.0, -15.0]])
    assert np.all(_outward(extrusion_mesh(poly, 30.0)) > 0)
    a, ca = random_object(np.random.default_rng([5, 1]))
    b, cb = random_object(np.random.default_rng([5, 1]))
    assert np.array_equal(a.vertices, b.vertices) and np.array_equal(ca, cb) and a.is_textured
    assert np.allclose((a.vertices.min(0) + a.vertices.max(0)) / 2, 0)


def test_normals_of_a_plane_face_the_camera():
    cam = Camera.from_fov(60.0, 64, 64)
    depth = np.full((64, 64), 500.0, np.float32)  # a wall facing the camera
    n = normals_from_depth(depth, cam.K)
    assert np.allclose(n[10:-10, 10:-10], [0.0, 0.0, -1.0], atol=1e-5)
    assert not np.any(n[0]) and not np.any(n[:, -1])  # no neighbour, no normal
    mask = np.zeros((64, 64), bool)
    mask[16:48, 16:48] = True
    e = edge_map(mask, np.where(mask[..., None], n, 0.0))
    assert e[16, 30] and e[47, 30] and not e[32, 32]  # the silhouette, not the flat inside


def test_pretext_targets_match_the_render():
    ds = PretextDataset(8, seed=3, pool=2, augment=None)
    img, t = ds.sample(4)
    img2, t2 = ds.sample(4)
    assert np.array_equal(img, img2) and np.array_equal(t, t2)  # seeded per sample
    assert img.shape == (256, 256, 3) and img.dtype == np.uint8 and t.shape == (len(CHANNELS), 64, 64)
    on = t[0] > 0.99
    assert 0.01 < t[0].mean() < 0.9 and on.any()
    norms = np.linalg.norm(t[2:5][:, on], axis=0)  # cell averages of unit normals: <= 1, ~1 away from edges
    assert norms.max() <= 1.0 + 1e-5 and np.median(norms) > 0.9
    assert np.all(t[2:5][:, t[0] == 0] == 0) and t[1].max() > 0.5 and 0 <= t[5].min() and t[5].max() <= 1
    # model coordinates: within the object's box, zero off it, spanning the part of the box in view
    xyz = t[6:9][:, on]
    assert np.abs(t[6:9]).max() <= 1.0 + 1e-4 and np.all(t[6:9][:, t[0] == 0] == 0)
    assert np.all(xyz.max(axis=1) - xyz.min(axis=1) > 0.3)


def test_pretext_coordinates_reproject_onto_their_cells():
    """Each covered cell's model coordinates, projected with the sample's pose, land on that cell."""
    ds = PretextDataset(8, seed=3, pool=2, augment=None)
    _, t = ds.sample(2)
    obj, _corners, _rend, cam, R, tr = ds.scene(np.random.default_rng([3, 2]))  # sample 2's scene
    on = t[0] > 0.99
    ys, xs = np.nonzero(on)
    lo, size = np.asarray(obj.bbox_min), np.asarray(obj.bbox_size)
    p = t[6:9, ys, xs].T * (size / 2) + lo + size / 2
    cells = crop_to_heatmap(cam.project(p, R, tr))
    err = np.linalg.norm(cells - np.c_[xs, ys], axis=1)
    assert len(err) > 50 and np.median(err) < 0.25


def test_pretrain_writes_a_backbone_and_resumes(tmp_path):
    assert lr_at(PretrainConfig(out="", iters=100, warmup=10, lr=1.0), 0) == pytest.approx(0.1)
    cfg = dict(out=str(tmp_path / "run"), batch=2, pool=2, workers=0, threads=1, save_every=2, warmup=1)
    pretrain(PretrainConfig(iters=2, **cfg))
    path = pretrain(PretrainConfig(iters=4, resume=True, **cfg))
    doc = load_backbone(path)
    assert doc["preset"] == "lite" and doc["info"]["iterations"] == 4 and doc["info"]["pretext"] == list(CHANNELS)
    with open(tmp_path / "run" / "log.csv", newline="") as f:
        assert [int(r["iter"]) for r in csv.DictReader(f)] == [2, 4]  # the resumed run continues the log
    ck = torch.load(tmp_path / "run" / "last.pt", weights_only=True)
    assert ck["iteration"] == 4
    # a last.pt from before the coordinate channels: refused with the way on
    ck["model"]["head.weight"] = ck["model"]["head.weight"][:6]
    torch.save(ck, tmp_path / "run" / "last.pt")
    with pytest.raises(KptrackError, match="6 pretext channels.*--init"):
        pretrain(PretrainConfig(iters=6, resume=True, **cfg))


def test_pretrain_init_starts_from_a_backbone(tmp_path):
    first = pretrain(PretrainConfig(out=str(tmp_path / "a"), iters=1, batch=2, pool=2, workers=0, threads=1, warmup=1))
    # a further stage: at a vanishing learning rate its backbone is the first one's weights
    second = pretrain(PretrainConfig(out=str(tmp_path / "b"), iters=1, batch=2, pool=2, workers=0, threads=1, warmup=1,
                                     lr=1e-12, seed=1, init=str(first)))
    doc = load_backbone(second)
    a, b = load_backbone(first)["state_dict"], doc["state_dict"]
    assert a.keys() == b.keys()
    for k in a:
        if a[k].is_floating_point() and "running" not in k:  # batch-norm statistics move with the data
            assert torch.allclose(a[k], b[k], atol=1e-6), k
    assert doc["info"]["config"]["init"] == str(first)
    fresh = pretrain(PretrainConfig(out=str(tmp_path / "c"), iters=1, batch=2, pool=2, workers=0, threads=1, warmup=1,
                                    lr=1e-12, seed=1))
    c = load_backbone(fresh)["state_dict"]
    assert not all(torch.allclose(a[k], c[k]) for k in a if a[k].is_floating_point())  # without init: other weights


def test_pretrain_init_refuses_resume_and_a_misfit(tmp_path):
    with pytest.raises(KptrackError, match="--init .* with --resume"):
        pretrain(PretrainConfig(out=str(tmp_path / "a"), iters=1, init="x.pt", resume=True))
    with pytest.raises(KptrackError, match="--init .*no such file"):
        pretrain(PretrainConfig(out=str(tmp_path / "a"), iters=1, workers=0, threads=1, init=str(tmp_path / "missing.pt")))


def test_pretrain_in_bf16_keeps_float32_weights_and_its_loss_near_fp32s(tmp_path):
    cfg = dict(iters=1, batch=2, pool=2, workers=0, threads=1, warmup=1)
    fp32 = pretrain(PretrainConfig(out=str(tmp_path / "fp32"), **cfg))
    bf16 = pretrain(PretrainConfig(out=str(tmp_path / "bf16"), precision="bf16", **cfg))
    doc = load_backbone(bf16)
    assert doc["info"]["config"]["precision"] == "bf16"
    assert all(v.dtype == torch.float32 for v in doc["state_dict"].values() if v.is_floating_point())
    losses = []
    for run in ("fp32", "bf16"):
        with open(tmp_path / run / "log.csv", newline="") as f:
            losses.append(float(next(csv.DictReader(f))["loss"]))
    # same weights and batch: the bf16 forward's loss is the fp32 one's within bfloat16's rounding,
    # and its step differs (gradients in bfloat16)
    assert abs(losses[1] - losses[0]) < 0.05 * losses[0]
    a, b = load_backbone(fp32)["state_dict"], doc["state_dict"]
    assert any(not torch.equal(a[k], b[k]) for k in a if k.endswith("weight") and a[k].dim() == 4)


def test_pretrain_refuses_an_unknown_precision_before_writing(tmp_path):
    with pytest.raises(KptrackError, match="--precision 'fp16': use fp32 or bf16"):
        pretrain(PretrainConfig(out=str(tmp_path / "r"), iters=1, precision="fp16"))
    assert not (tmp_path / "r").exists()
