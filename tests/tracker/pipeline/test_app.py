"""`kptrack track` / `kptrack demo` end to end with a colour-dot ONNX model: outputs, accuracy,
a run killed midway (SIGKILL, SIGINT, SIGTERM), and every bad input the issue lists."""

import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import cv2
import numpy as np
import pytest

pytest.importorskip("torch")

from kptrack_testing import DOT_COLORS, count_video_frames, dot_frames, dot_gt_pose, make_color_dot_model, write_dot_video  # noqa: E402

from tracker.pipeline import app  # noqa: E402
from tracker.formats.bop import BopGt, BopGtInfo, read_results_csv, write_scene_gt, write_scene_gt_info  # noqa: E402
from tracker.camera import Camera  # noqa: E402
from tracker.cli import main  # noqa: E402
from tracker.errors import KptrackError  # noqa: E402
from tracker.geometry import rotation_error_deg  # noqa: E402
from tracker.objects import load_object  # noqa: E402
from tracker.pipeline.sinks import read_jsonl  # noqa: E402

W, H = 320, 240
HIDDEN = range(30, 40)


@pytest.fixture(scope="module")
def setup(tmp_path_factory):
    d = tmp_path_factory.mktemp("track")
    obj = load_object("default")
    cam = Camera.from_fov(60.0, W, H)
    model = make_color_dot_model(d / "dots.onnx", DOT_COLORS[: obj.num_keypoints], obj.keypoint_names)
    vid_dir = d / "clip"
    vid_dir.mkdir()
    video = write_dot_video(vid_dir / "clip.avi", obj, cam, 60, hidden=lambda i: i in HIDDEN)
    cam.to_yaml(vid_dir / "camera.yaml")
    return {"dir": d, "obj": obj, "cam": cam, "model": model, "video": video}


def test_track_video_writes_video_poses_and_log(setup, tmp_path, capsys):
    out, poses = tmp_path / "out" / "annotated.avi", tmp_path / "poses.csv"
    rc = main(["track", "--source", str(setup["video"]), "--model", str(setup["model"]), "--object", "default",
               "--out", str(out), "--poses", str(poses), "--no-smoothing", "--device", "cpu", "--threads", "1"])
    assert rc == 0
    printed = capsys.readouterr().out
    assert "fps end-to-end" in printed and "frames 60" in printed
    assert count_video_frames(out) == 60
    rows = read_results_csv(poses)
    log = read_jsonl(poses.with_suffix(".jsonl"))
    assert [d["index"] for d in log] == list(range(60))
    assert {d["status"] for d in log} <= {"tracking", "lost", "searching"}
    # a row exactly for the frames with a pose; none while the object was hidden
    assert [r.im_id for r in rows] == [d["index"] for d in log if d["R_m2c"] is not None]
    assert not set(HIDDEN) & {r.im_id for r in rows}
    assert len(rows) >= 60 - len(HIDDEN) - 2
    errs = []
    for r in rows:
        R, t = dot_gt_pose(r.im_id)
        errs.append((rotation_error_deg(r.R_m2c, R), np.linalg.norm(r.t_m2c - t)))
    errs = np.array(errs)
    assert np.median(errs[:, 0]) < 1.5 and np.median(errs[:, 1]) < 8.0  # deg, mm at 600 mm
    assert all(set(d["timings_ms"]) >= {"crop", "infer", "decode", "solve", "render", "total"} for d in log)


def _wait_lines(path, n, proc, timeout=90):
    t0 = time.monotonic()
    while time.monotonic() - t0 < timeout:
        if path.exists() and len(read_jsonl(path)) >= n:
            return
        if proc.poll() is not None:
            pytest.fail(f"tracker exited early: {proc.returncode}\n{proc.stderr.read().decode()[-2000:]}")
        time.sleep(0.05)
    pytest.fail("tracker produced no output in time")


@pytest.fixture(scope="module")
def long_video(setup):
    return write_dot_video(setup["dir"] / "clip" / "long.avi", setup["obj"], setup["cam"], 400)


@pytest.mark.parametrize("sig", [signal.SIGKILL, signal.SIGINT, signal.SIGTERM], ids=["SIGKILL", "SIGINT", "SIGTERM"])
def test_track_killed_midway_leaves_usable_outputs(setup, long_video, tmp_path, sig):
    out, poses = tmp_path / "killed.avi", tmp_path / "killed.csv"
    cmd = [sys.executable, "-m", "tracker", "track", "--source", str(long_video), "--model", str(setup["model"]),
           "--out", str(out), "--poses", str(poses), "--device", "cpu", "--threads", "1"]
    env = dict(os.environ, PYTHONUNBUFFERED="1")
    # A child inherits an ignored SIGINT (as in a background job), and Python then installs no
    # KeyboardInterrupt handler: give the child the default disposition, as a terminal would.
    proc = subprocess.Popen(cmd, stdout=subprocess.PIPE, stderr=subprocess.PIPE, env=env, cwd=tmp_path,
                            preexec_fn=lambda: signal.signal(signal.SIGINT, signal.SIG_DFL))
    try:
        _wait_lines(poses.with_suffix(".jsonl"), 15, proc)
        proc.send_signal(sig)
        stdout, stderr = proc.communicate(timeout=60)
    finally:
        if proc.poll() is None:
            proc.kill()
    log = read_jsonl(poses.with_suffix(".jsonl"))
    rows = read_results_csv(poses)  # parses: the header and every row are complete
    n_video = count_video_frames(out)
    assert 15 <= len(log) < 400, "killed midway"
    # each frame goes video -> CSV -> JSONL, each flushed: the log can trail them by one frame
    tracked = [d["index"] for d in log if d["R_m2c"] is not None]
    assert len(tracked) >= 10
    assert [r.im_id for r in rows][: len(tracked)] == tracked and len(rows) <= len(tracked) + 1
    # video frames are flushed before the frame's log line: the video holds every logged frame
    assert len(log) <= n_video <= len(log) + 1
    if sig == signal.SIGKILL:
        assert proc.returncode == -9
    else:
        assert proc.returncode == 130, stderr.decode()[-2000:]
        assert b"interrupted" in stdout
        cap = cv2.VideoCapture(str(out))  # a clean close wrote the AVI index
        assert int(cap.get(cv2.CAP_PROP_FRAME_COUNT)) == n_video
        cap.release()


# ----------------------------------------------------------------------------- bad input
def _err(argv, capsys):
    rc = main(argv)
    err = capsys.readouterr().err
    assert rc == 2, err
    assert "Traceback" not in err
    return err


def test_missing_model(setup, capsys):
    err = _err(["track", "--source", str(setup["video"]), "--model", "nope/model.onnx"], capsys)
    assert "nope/model.onnx: model file not found" in err and "kptrack export" in err


def test_camera_index_that_does_not_open(setup, capsys):
    err = _err(["track", "--source", "97", "--model", str(setup["model"]), "--camera", "fov:60"], capsys)
    assert "--source 97: camera could not be opened" in err


def test_unreadable_video(setup, tmp_path, capsys):
    bad = tmp_path / "bad.avi"
    bad.write_bytes(os.urandom(4096))
    err = _err(["track", "--source", str(bad), "--model", str(setup["model"]), "--camera", "fov:60"], capsys)
    assert "bad.avi" in err


def test_zero_frame_video(setup, tmp_path, capsys):
    empty = tmp_path / "empty.avi"
    cv2.VideoWriter(str(empty), cv2.CAP_OPENCV_MJPEG, cv2.VideoWriter_fourcc(*"MJPG"), 30, (W, H)).release()
    err = _err(["track", "--source", str(empty), "--model", str(setup["model"]), "--camera", "fov:60"], capsys)
    assert "empty.avi" in err and "no readable frames" in err


def test_model_object_mismatch(setup, tmp_path, capsys):
    names = setup["obj"].keypoint_names[:-1]
    other = make_color_dot_model(tmp_path / "nine.onnx", DOT_COLORS[: len(names)], names)
    err = _err(["track", "--source", str(setup["video"]), "--model", str(other), "--object", "default"], capsys)
    assert "predicts 9 keypoints" in err and "has 10" in err


def test_video_without_calibration(setup, tmp_path, capsys):
    lone = tmp_path / "lone.avi"
    lone.write_bytes(setup["video"].read_bytes())
    err = _err(["track", "--source", str(lone), "--model", str(setup["model"])], capsys)
    assert "--camera: this video needs its calibration" in err and "kptrack calibrate" in err and "fov:60" in err


def test_mp4_output_refused(setup, capsys):
    err = _err(["track", "--source", str(setup["video"]), "--model", str(setup["model"]), "--out", "x.mp4"], capsys)
    assert "as .avi" in err


def test_webcam_without_camera_file_explains_calibration():
    with pytest.raises(KptrackError, match=r"a camera needs its calibration.*kptrack calibrate --source 0"):
        app.resolve_camera(None, "0", 640, 480)


def test_camera_rescaled_or_refused(tmp_path):
    cam = Camera.from_fov(60.0, 640, 480)
    cam.to_yaml(tmp_path / "cam.yaml")
    half = app.resolve_camera(str(tmp_path / "cam.yaml"), "clip.avi", 320, 240)
    assert (half.width, half.height) == (320, 240) and half.fx == pytest.approx(cam.fx / 2)
    with pytest.raises(KptrackError, match="another aspect ratio"):
        app.resolve_camera(str(tmp_path / "cam.yaml"), "clip.avi", 320, 320)
    guess = app.resolve_camera("fov:90", "0", 400, 300)
    assert guess.fx == pytest.approx(200.0)
    with pytest.raises(KptrackError, match="fov:60"):
        app.resolve_camera("fov:wide", "0", 400, 300)


# ----------------------------------------------------------------------------- demo
def test_demo_without_shipped_model(monkeypatch, tmp_path, capsys):
    monkeypatch.setattr(app, "default_model_path", lambda: tmp_path / "models" / "default" / "model.onnx")
    err = _err(["demo", "--cache", str(tmp_path / "cache")], capsys)
    assert "shipped default model is missing" in err and "kptrack export" in err


def test_demo_seed_picks_another_sequence(setup, monkeypatch, tmp_path, capsys):
    seen = []

    def fake_sequence(cache, frames, seed=app.DEMO_SEED, size=app.DEMO_SIZE):
        seen.append(seed)
        raise KptrackError("stop here")

    monkeypatch.setattr(app, "ensure_demo_sequence", fake_sequence)
    base = ["demo", "--model", str(setup["model"]), "--cache", str(tmp_path), "--device", "cpu"]
    _err(base, capsys)
    _err(base + ["--seed", "5"], capsys)
    assert seen == [app.DEMO_SEED, 5]
    assert "--seed -2" in _err(base + ["--seed", "-2"], capsys) and seen == [app.DEMO_SEED, 5]


def _dot_scene(root: Path, obj, cam, n, hidden):
    scene = root / "test_seq" / "000000"
    (scene / "rgb").mkdir(parents=True)
    for i, img in enumerate(dot_frames(obj, cam, n, hidden=lambda i: i in hidden)):
        cv2.imwrite(str(scene / "rgb" / f"{i:06d}.png"), img)
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
    report = app.run_demo(model, setup["obj"], setup["cam"], scene, video=None)
    a = report.accuracy
    assert a["n_scored"] == 30 - len(hidden) and a["n_low_visibility"] == len(hidden)
    assert a["frac_proj"] >= 0.9 and a["frac_add"] >= 0.9 and report.passed
    assert report.stats.frames == 30 and report.stats.fps > 0


def test_demo_sequence_is_cached(tmp_path, monkeypatch):
    calls = []
    import train.synth as synth

    real = synth.run_synth

    def counting(cfg):
        calls.append(cfg)
        return real(cfg)

    monkeypatch.setattr(synth, "run_synth", counting)
    a = app.ensure_demo_sequence(tmp_path, 3, size=(160, 120))
    b = app.ensure_demo_sequence(tmp_path, 3, size=(160, 120))
    assert a == b and len(calls) == 1
    assert calls[0].sequence and calls[0].frames == 3 and str(calls[0].object) == "default"
    assert (a / "scene_gt.json").is_file() and len(list((a / "rgb").iterdir())) == 3
    assert json.loads((a / "sequence_info.json").read_text())["frames"] == 3
