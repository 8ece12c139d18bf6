"""`kptrack demo`: the shipped model's absence, --seed, scoring a sequence, the cached sequence."""

import json
from pathlib import Path

import cv2
import pytest

pytest.importorskip("torch")

from kptrack_testing import DOT_COLORS, dot_frames, dot_gt_pose, make_color_dot_model  # noqa: E402

import benchmarks.demo as demo_lib  # noqa: E402
from tracker.camera import Camera  # noqa: E402
from tracker.cli import main  # noqa: E402
from tracker.errors import KptrackError  # noqa: E402
from tracker.formats.bop_scene import BopCamera, BopGt, BopGtInfo, write_scene_camera, write_scene_gt, write_scene_gt_info  # noqa: E402
from tracker.objects import load_object  # noqa: E402
import tracker.paths  # noqa: E402

W, H = 320, 240


@pytest.fixture(scope="module")
def setup(tmp_path_factory):
    d = tmp_path_factory.mktemp("demo")
    obj = load_object("default")
    cam = Camera.from_fov(60.0, W, H)
    model = make_color_dot_model(d / "dots.onnx", DOT_COLORS[: obj.num_keypoints], obj.keypoint_names)
    return {"dir": d, "obj": obj, "cam": cam, "model": model}


def _err(argv, capsys):
    rc = main(argv)
    err = capsys.readouterr().err
    assert rc == 2, err
    assert "Traceback" not in err
    return err


def test_demo_without_shipped_model(monkeypatch, tmp_path, capsys):
    monkeypatch.setattr(tracker.paths, "default_model_path", lambda: tmp_path / "models" / "default" / "model.onnx")
    err = _err(["demo", "--cache", str(tmp_path / "cache")], capsys)
    assert "shipped default model is missing" in err and "kptrack export" in err


def test_demo_seed_picks_another_sequence(setup, monkeypatch, tmp_path, capsys):
    seen = []

    def fake_sequence(cache, frames, seed=demo_lib.DEMO_SEED, size=demo_lib.DEMO_SIZE):
        seen.append(seed)
        raise KptrackError("stop here")

    monkeypatch.setattr(demo_lib, "ensure_demo_sequence", fake_sequence)
    base = ["demo", "--model", str(setup["model"]), "--cache", str(tmp_path), "--device", "cpu"]
    _err(base, capsys)
    _err(base + ["--seed", "5"], capsys)
    assert seen == [demo_lib.DEMO_SEED, 5]
    assert "--seed -2" in _err(base + ["--seed", "-2"], capsys) and seen == [demo_lib.DEMO_SEED, 5]


def _dot_scene(root: Path, obj, cam, n, hidden):
    scene = root / "test_seq" / "000000"
    (scene / "rgb").mkdir(parents=True)
    for i, img in enumerate(dot_frames(obj, cam, n, hidden=lambda i: i in hidden)):
        cv2.imwrite(str(scene / "rgb" / f"{i:06d}.png"), img)
    write_scene_camera(scene / "scene_camera.json", {i: BopCamera(cam.K) for i in range(n)})
    write_scene_gt(scene / "scene_gt.json", {i: [BopGt(1, *dot_gt_pose(i))] for i in range(n)})
    box = (0, 0, 10, 10)
    write_scene_gt_info(scene / "scene_gt_info.json",
                        {i: [BopGtInfo(box, box, 100, 0 if i in hidden else 100, 0.0 if i in hidden else 1.0)] for i in range(n)})
    cam.to_yaml(scene / "camera.yaml")
    (scene / "sequence_info.json").write_text("{}")
    return scene


def test_run_demo_scores_a_sequence(setup, tmp_path):
    from tracker.pipeline.infer import OnnxHeatmapModel

    hidden = set(range(12, 18))
    scene = _dot_scene(tmp_path, setup["obj"], setup["cam"], 30, hidden)
    model = OnnxHeatmapModel(setup["model"], device="cpu")
    report = demo_lib.run_demo(model, setup["obj"], setup["cam"], scene, video=None)
    a = report.accuracy
    assert a["n_scored"] == 30 - len(hidden) and a["n_low_visibility"] == len(hidden)
    assert a["frac_proj"] >= 0.9 and a["frac_add"] >= 0.9 and report.passed
    assert report.stats.frames == 30 and report.stats.fps > 0


def test_demo_sequence_is_cached(tmp_path, monkeypatch):
    calls = []
    real = demo_lib.run_synth

    def counting(cfg):
        calls.append(cfg)
        return real(cfg)

    monkeypatch.setattr(demo_lib, "run_synth", counting)
    a = demo_lib.ensure_demo_sequence(tmp_path, 3, size=(160, 120))
    b = demo_lib.ensure_demo_sequence(tmp_path, 3, size=(160, 120))
    assert a == b and len(calls) == 1
    assert calls[0].sequence and calls[0].frames == 3 and str(calls[0].object) == "default"
    assert (a / "scene_gt.json").is_file() and len(list((a / "rgb").iterdir())) == 3
    assert json.loads((a / "sequence_info.json").read_text())["frames"] == 3
