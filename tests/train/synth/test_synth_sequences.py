"""train/synth/sequences: the episode plan, and a rendered sequence's files, motion and events."""

from __future__ import annotations

import json

import cv2
import numpy as np
import pytest

from tracker.camera import Camera
from tracker.formats.bop_scene import read_scene_camera, read_scene_gt, read_scene_gt_info
from tracker.formats.coco import read_coco
from tracker.geometry import rotation_error_deg
from tracker.objects import load_object
from train import synth
from train.synth import SynthConfig, run_synth

OBJ = load_object("default")


def _cfg(out, **kw):
    kw.setdefault("progress", False)
    return SynthConfig(out=str(out), **kw)


def test_episode_plan():
    rng = np.random.default_rng(0)
    eps = synth.plan_episodes(rng, 300)
    assert {e.kind for e in eps} == {"exit", "fast", "full_occlusion", "partial_occlusion"}
    assert eps[0].start >= 30 and eps[-1].end <= 300
    assert all(a.end <= b.start for a, b in zip(eps, eps[1:]))
    assert len(synth.plan_episodes(np.random.default_rng(0), 60)) <= 1
    assert synth.plan_episodes(np.random.default_rng(0), 20) == []
    assert len(synth.plan_episodes(np.random.default_rng(0), 900)) > 4


@pytest.fixture(scope="module")
def seq_ds(tmp_path_factory):
    out = tmp_path_factory.mktemp("seq_ds")
    sd = run_synth(_cfg(out, sequence=True, frames=280, seed=2, workers=2, width=256, height=192))
    return out, sd


def test_sequence_files(seq_ds):
    out, sd = seq_ds
    assert sd == out / "test_seq" / "000000"
    cap = cv2.VideoCapture(str(sd / "video.mp4"))
    assert cap.isOpened() and int(cap.get(cv2.CAP_PROP_FRAME_COUNT)) == 280
    ok, frame = cap.read()
    assert ok and frame.shape == (192, 256, 3)
    n_read = 1
    while cap.read()[0]:
        n_read += 1
    assert n_read == 280
    cam = Camera.from_yaml(sd / "camera.yaml")
    cams = read_scene_camera(sd / "scene_camera.json")
    assert (cam.width, cam.height) == (256, 192) and np.allclose(cam.K, cams[0].K, atol=1e-9)
    gts = read_scene_gt(sd / "scene_gt.json")
    assert sorted(gts) == list(range(280))  # im_id = frame index, a pose for every frame
    assert sorted(int(p.stem) for p in (sd / "rgb").iterdir()) == list(range(280))
    coco = read_coco(sd / "keypoints_coco.json")
    for s in coco.samples:
        g = gts[s.image_id][0]
        X = OBJ.keypoints @ g.R_m2c.T + g.t_m2c
        uv = X[:, :2] / X[:, 2:] * [cam.fx, cam.fy] + [cam.cx, cam.cy]
        lab = s.v > 0
        if lab.any():
            assert np.abs(uv[lab] - s.uv[lab]).max() < 0.01


def test_sequence_motion_and_events(seq_ds):
    out, sd = seq_ds
    gts = read_scene_gt(sd / "scene_gt.json")
    infos = read_scene_gt_info(sd / "scene_gt_info.json")
    R = np.array([gts[i][0].R_m2c for i in range(280)])
    t = np.array([gts[i][0].t_m2c for i in range(280)])
    vf = np.array([infos[i][0].visib_fract for i in range(280)])
    boxes = np.array([infos[i][0].bbox_obj for i in range(280)])  # x, y, w, h; may pass the border
    inside = (boxes[:, 0] >= 0) & (boxes[:, 0] + boxes[:, 2] <= 256)
    in_view = (boxes[:, 0] + boxes[:, 2] > 0) & (boxes[:, 0] < 256)
    step_deg = np.array([rotation_error_deg(R[i], R[i + 1]) for i in range(279)])
    step_mm = np.linalg.norm(np.diff(t, axis=0), axis=1)
    assert step_deg.max() < 12 and np.median(step_deg) > 0.3  # smooth but moving
    assert step_mm.max() < 60
    episodes = json.loads((sd / "sequence_info.json").read_text())["episodes"]
    ev = {}
    for e in episodes:
        ev.setdefault(e["kind"], e)
    assert set(ev) == {"fast", "partial_occlusion", "full_occlusion", "exit"}
    f = ev["fast"]
    assert np.median(step_deg[f["start"]:f["end"] - 1]) > 1.8 * np.median(step_deg)
    # full occlusion: >= 30 frames with nothing visible while the object is inside the image
    e = ev["full_occlusion"]
    hidden = (vf[e["start"]:e["end"]] == 0) & inside[e["start"]:e["end"]]
    assert hidden.sum() >= 30
    # partial occlusion: partly visible frames
    p = ev["partial_occlusion"]
    assert np.any((vf[p["start"]:p["end"]] > 0.2) & (vf[p["start"]:p["end"]] < 0.95))
    # exit: the whole silhouette leaves the image and comes back
    x = ev["exit"]
    assert in_view[: x["start"]].all() and not in_view[x["start"]:x["end"]].all() and in_view[x["end"]:].all()
    gone = np.nonzero(~in_view)[0]
    assert vf[gone].max() == 0.0 and np.all((gone >= x["start"]) & (gone < x["end"]))
    assert all(infos[i][0].px_count_all > 0 for i in range(280))  # silhouette counted past the border
    assert vf[: min(ev_["start"] for ev_ in ev.values())].min() == 1.0  # clean start
