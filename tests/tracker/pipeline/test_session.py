"""`kptrack track` end to end with a colour-dot ONNX model: outputs, a run killed midway (SIGKILL,
SIGINT, SIGTERM), an interrupt a library swallows, and every bad input the issues list."""

import logging
import os
import signal
import subprocess
import sys
import time

import cv2
import numpy as np
import pytest

pytest.importorskip("torch")

from kptrack_testing import DOT_COLORS, count_video_frames, dot_gt_pose, make_color_dot_model, write_dot_video  # noqa: E402

from tracker.camera import Camera  # noqa: E402
from tracker.cli import main  # noqa: E402
from tracker.formats.bop_results import read_results_csv  # noqa: E402
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




# ----------------------------------------------------------------------------- outputs and defaults
def test_output_that_is_the_source_is_refused(setup, tmp_path, capsys):
    src = tmp_path / "clip.avi"
    src.write_bytes(setup["video"].read_bytes())
    before = src.read_bytes()
    (tmp_path / "camera.yaml").write_bytes((setup["video"].parent / "camera.yaml").read_bytes())
    err = _err(["track", "--source", str(src), "--model", str(setup["model"]), "--out", str(src)], capsys)
    assert "--out" in err and "--source itself" in err
    poses_on_src = tmp_path / "clip.csv"
    src.rename(poses_on_src)
    err = _err(["track", "--source", str(poses_on_src), "--model", str(setup["model"]), "--poses", str(poses_on_src)], capsys)
    assert "--source itself" in err
    assert poses_on_src.read_bytes() == before  # the input is untouched


def test_existing_poses_need_overwrite(setup, tmp_path, capsys):
    poses = tmp_path / "poses.csv"
    poses.write_text("keep me\n")
    base = ["track", "--source", str(setup["video"]), "--model", str(setup["model"]), "--poses", str(poses),
            "--device", "cpu", "--threads", "1", "--max-frames", "3"]
    err = _err(base, capsys)
    assert "exists" in err and "--overwrite" in err and poses.read_text() == "keep me\n"
    assert main(base + ["--overwrite"]) == 0
    assert poses.read_text().startswith("scene_id,im_id")


def test_track_defaults_to_the_shipped_model_from_any_folder(setup, tmp_path, monkeypatch, capsys):
    monkeypatch.chdir(tmp_path)  # outside the checkout: a relative models/default path would not resolve
    rc = main(["track", "--source", str(setup["video"]), "--device", "cpu", "--threads", "1", "--max-frames", "2"])
    out, err = capsys.readouterr()
    assert rc == 0, err
    assert "frames 2" in out


def test_corrupt_video_warns_with_the_frames_read(setup, tmp_path, caplog):
    src = setup["video"].parent / "bad.avi"
    if not src.exists():
        w = cv2.VideoWriter(str(src), cv2.VideoWriter_fourcc(*"mp4v"), 30, (W, H))
        for i in range(60):
            img = np.full((H, W, 3), (i * 4) % 255, np.uint8)
            cv2.circle(img, (100 + i, 120), 30, (0, 0, 255), -1)
            w.write(img)
        w.release()
        data = bytearray(src.read_bytes())
        rng = np.random.default_rng(0)
        for k in range(len(data) // 3, len(data) // 3 + 3000, 7):
            data[k] = int(rng.integers(0, 255))
        src.write_bytes(bytes(data))
    with caplog.at_level(logging.WARNING, logger="tracker.pipeline.source"):
        rc = main(["track", "--source", str(src), "--model", str(setup["model"]), "--device", "cpu", "--threads", "1"])
    assert rc == 0
    msgs = [r.getMessage() for r in caplog.records if "header declares" in r.getMessage()]
    assert len(msgs) == 1 and "of the 60 frames" in msgs[0], [r.getMessage() for r in caplog.records]


def test_no_opencv_or_ffmpeg_noise_on_the_terminal(setup, tmp_path):
    # the corrupt video of the test above makes FFmpeg print "[mpeg4 @ 0x...] Error at MB" by default
    src = setup["video"].parent / "bad.avi"
    if not src.exists():
        pytest.skip("needs the corrupt video of test_corrupt_video_warns_with_the_frames_read")
    env = {k: v for k, v in os.environ.items() if not k.startswith("OPENCV_")}
    p = subprocess.run([sys.executable, "-m", "tracker", "track", "--source", str(src), "--model", str(setup["model"]),
                        "--device", "cpu", "--threads", "1"], capture_output=True, text=True, env=env, timeout=120)
    assert p.returncode == 0, p.stderr[-2000:]
    noise = [ln for ln in p.stderr.splitlines() if ln.startswith("[") and (" @ 0x" in ln or "WARN:" in ln)]
    assert not noise, noise
    assert "header declares" in p.stderr  # kptrack's own one line says what happened
