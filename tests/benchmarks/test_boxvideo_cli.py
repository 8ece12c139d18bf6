"""benchmarks/boxvideo_cli.py on a small rendered stand-in for box.mp4: a textured box at known
poses, its projected corners as labels; the camera command must find the focal length and peer (a)
must track the held-out frames with small corner errors."""

from __future__ import annotations

import json

import cv2
import numpy as np
import pytest

from benchmarks.boxvideo import read_labels
from benchmarks.boxvideo_cli import main, run_peer
from tracker.camera import Camera
from tracker.camera.yaml_io import read_camera_yaml
from tracker.geometry import look_at, so3_exp
from tracker.objects import load_object
from tracker.objects.object_dir import init_object
from tracker.objects.primitives import box_keypoints, box_mesh
from tracker.render import Renderer

F = 600.0


@pytest.fixture(scope="module")
def scene(tmp_path_factory):
    d = tmp_path_factory.mktemp("boxvideo")
    rng = np.random.default_rng(0)
    tex = cv2.resize(rng.integers(0, 255, (96, 144, 3), dtype=np.uint8), (576, 384), interpolation=cv2.INTER_CUBIC)
    size = (258.0, 189.0, 81.0)
    obj_dir = init_object(box_mesh(size, tex), keypoints=box_keypoints(size), out_dir=d / "object", name="box")
    obj = load_object(obj_dir)
    cam = Camera.from_intrinsics(F, F, 319.5, 239.5, 640, 480)
    R0, t0 = look_at(np.array([150.0, -450.0, 380.0]), np.zeros(3))
    rend = Renderer(obj)
    bg = np.full((480, 640, 3), 90, np.uint8)
    writer = cv2.VideoWriter(str(d / "box.avi"), cv2.VideoWriter_fourcc(*"MJPG"), 10, (640, 480))
    rows = ["frame,name,x,y"]
    for i in range(6):
        R, t = so3_exp(np.radians(2.0 * i) * np.array([0.2, 1.0, 0.1]) / 1.03) @ R0, t0 + np.array([6.0 * i, -3.0 * i, 4.0 * i])
        out = rend.render(cam, R, t)
        frame = np.where(out.mask[..., None], out.color, bg)
        writer.write(frame)
        uv = cam.project(obj.keypoints, R, t)
        rows += [f"{i},{n},{u:.2f},{v:.2f}" for n, (u, v) in zip(obj.keypoint_names, uv)]
    writer.release()
    (d / "labels.csv").write_text("\n".join(rows) + "\n")
    (d / "split.json").write_text(json.dumps({"texture": [0], "heldout": [2, 3, 4, 5]}))
    return d, obj, cam


def test_camera_command_fits_the_focal_length(scene, capsys):
    d, _, _ = scene
    out = d / "camera.yaml"
    assert main(["camera", "--object", str(d / "object"), "--labels", str(d / "labels.csv"), "--out", str(out)]) == 0
    K, dist, w, h = read_camera_yaml(out)
    assert abs(K[0, 0] - F) < 2.0 and (w, h) == (640, 480) and len(dist) == 0
    assert main(["camera", "--object", str(d / "object"), "--labels", str(d / "labels.csv"), "--out", str(out)]) == 2
    assert "--force" in capsys.readouterr().err  # nothing the user has is overwritten


def test_peer_tracks_the_heldout_frames(scene):
    d, obj, cam = scene
    labels = read_labels(d / "labels.csv", list(obj.keypoint_names))
    r = run_peer(d / "box.avi", obj, cam, labels, register_frame=0, heldout=[2, 3, 4, 5])
    assert r.frames == 6 and r.posed >= 5 and r.registered > 50
    assert r.heldout_posed >= 3 and len(r.corner_errors) == 8 * r.heldout_posed
    assert np.median(r.corner_errors) < 2.0


def test_peer_refuses_a_heldout_registration_frame(scene, capsys):
    d, _, _ = scene
    rc = main(["peer", "--object", str(d / "object"), "--labels", str(d / "labels.csv"), "--split", str(d / "split.json"),
               "--camera", str(d / "camera.yaml"), "--video", str(d / "box.avi"), "--register", "3"])
    assert rc == 2 and "held-out" in capsys.readouterr().err
