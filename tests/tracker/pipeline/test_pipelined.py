"""The pipelined frame loop: the same poses as the sequential loop on a file, every frame in order,
the newest frame of a live source, failures and interrupts surfacing on the calling thread."""

import threading
import time

import numpy as np
import pytest

pytest.importorskip("torch")

from kptrack_testing import DOT_COLORS, OracleHeatmaps, make_color_dot_model, write_dot_video  # noqa: E402

from tracker.camera import Camera  # noqa: E402
from tracker.cli import main  # noqa: E402
from tracker.errors import KptrackError  # noqa: E402
from tracker.formats.bop_results import read_results_csv  # noqa: E402
from tracker.objects import load_object  # noqa: E402
from tracker.pipeline.loop import Interrupts  # noqa: E402
from tracker.pipeline.pipelined import run_pipelined  # noqa: E402
from tracker.pipeline.sinks import read_jsonl  # noqa: E402
from tracker.pipeline.source import FrameSource, _Reader  # noqa: E402
from tracker.pipeline.tracker import Tracker  # noqa: E402

W, H = 320, 240


@pytest.fixture(scope="module")
def clip(tmp_path_factory):
    d = tmp_path_factory.mktemp("pipelined")
    obj = load_object("default")
    cam = Camera.from_fov(60.0, W, H)
    model = make_color_dot_model(d / "dots.onnx", DOT_COLORS[: obj.num_keypoints], obj.keypoint_names)
    video = write_dot_video(d / "clip.avi", obj, cam, 60, hidden=lambda i: 25 <= i < 32)  # lost, then search again
    cam.to_yaml(d / "camera.yaml")
    return {"model": model, "video": video, "obj": obj, "cam": cam}


def _track(clip, out_dir, loop):
    poses = out_dir / f"{loop}.csv"
    rc = main(["track", "--source", str(clip["video"]), "--model", str(clip["model"]), "--out", str(out_dir / f"{loop}.avi"),
               "--poses", str(poses), "--device", "cpu", "--threads", "1", "--loop", loop])
    assert rc == 0
    return read_results_csv(poses), read_jsonl(poses.with_suffix(".jsonl"))


def test_pipelined_and_sequential_loops_give_identical_poses(clip, tmp_path, capsys):
    seq_rows, seq_log = _track(clip, tmp_path, "sequential")
    pip_rows, pip_log = _track(clip, tmp_path, "pipelined")
    assert "pipelined loop" in capsys.readouterr().out
    assert [d["index"] for d in pip_log] == list(range(60))  # every frame, in order
    assert [d["status"] for d in pip_log] == [d["status"] for d in seq_log]
    assert {"searching", "tracking"} <= {d["status"] for d in seq_log}  # the clip exercises loss and recovery
    assert [r.im_id for r in pip_rows] == [r.im_id for r in seq_rows] and len(seq_rows) >= 40
    for a, b in zip(seq_rows, pip_rows):
        assert np.array_equal(a.R_m2c, b.R_m2c) and np.array_equal(a.t_m2c, b.t_m2c)
    assert all(d["timings_ms"]["latency"] >= 0 for d in pip_log)  # capture -> result carried per frame


def _live_source(n, period_s):
    """A live FrameSource producing n black frames, one every period_s seconds."""
    left = iter(range(1, n))

    def read():
        i = next(left, None)
        if i is None:
            return False, None
        time.sleep(period_s)
        return True, np.zeros((H, W, 3), np.uint8)

    return FrameSource("live-test", _Reader(read=read), np.zeros((H, W, 3), np.uint8), live=True, fps=None)


class SlowOracle(OracleHeatmaps):
    def __call__(self, crops, affines=None, frame_index=None):
        time.sleep(0.01)  # slower than the source: stale frames must be dropped, not queued
        return super().__call__(crops, affines, frame_index)


def test_live_source_newest_frame_wins(clip):
    obj = clip["obj"]
    tracker = Tracker(SlowOracle(obj.keypoint_names, lambda i: None), obj, clip["cam"])
    got = []
    with _live_source(120, 0.001) as src:
        stats = run_pipelined(src, tracker, on_result=got.append)
        dropped = src.stats.dropped
    idx = [r.index for r in got]
    assert idx == sorted(idx) and len(set(idx)) == len(idx)
    assert dropped > 0 and len(idx) + dropped >= 110  # every frame was either tracked or dropped stale
    assert len(stats.latency_ms) == len(idx) and stats.latency(99) < 1000


def test_a_failure_on_the_track_thread_is_raised_here(clip):
    obj = clip["obj"]
    tracker = Tracker(OracleHeatmaps(obj.keypoint_names, lambda i: None), obj, Camera.from_fov(60.0, 64, 48))
    with _live_source(3, 0.0) as src, pytest.raises(KptrackError, match="does not match the camera"):
        run_pipelined(src, tracker)  # frames 320x240 against a 64x48 calibration


def test_a_requested_stop_ends_the_run(clip):
    obj = clip["obj"]
    tracker = Tracker(OracleHeatmaps(obj.keypoint_names, lambda i: None), obj, clip["cam"])
    stop = Interrupts()
    threading.Timer(0.3, lambda: setattr(stop, "requested", True)).start()
    with _live_source(100000, 0.002) as src:
        stats = run_pipelined(src, tracker, stop=stop)
    assert stats.interrupted and stats.frames > 0
    assert not any(t.name.startswith("kptrack-track") for t in threading.enumerate())


def test_window_keys_reach_the_track_thread_and_drawing_runs_on_its_own_thread(clip, monkeypatch):
    from tracker.pipeline.sinks import WindowSink

    obj = clip["obj"]
    tracker = Tracker(OracleHeatmaps(obj.keypoint_names, lambda i: None), obj, clip["cam"])
    resets = []
    monkeypatch.setattr(tracker, "reset", lambda: resets.append(1))
    shown = []

    def waitkey(ms):  # 'r' on the second frame shown, 'q' once the track thread has reset
        return ord("r") if len(shown) == 2 else (ord("q") if resets else -1)

    window = WindowSink("t", imshow=lambda title, img: shown.append(img.shape), waitkey=waitkey)
    drawn_on = set()

    def drawer(image, r, fps, render_ms):
        drawn_on.add(threading.current_thread().name)
        return image

    with _live_source(1000, 0.002) as src:
        stats = run_pipelined(src, tracker, sinks=[window], drawer=drawer)
    assert stats.stopped_by_user and stats.frames >= 3 and shown == [(H, W, 3)] * stats.frames
    assert resets == [1] and drawn_on == {"kptrack-draw"}


def test_a_stop_requested_while_no_frame_comes_still_ends_the_run(clip):
    obj = clip["obj"]
    tracker = Tracker(OracleHeatmaps(obj.keypoint_names, lambda i: None), obj, clip["cam"])
    stop = Interrupts()
    threading.Timer(0.3, lambda: setattr(stop, "requested", True)).start()
    with _live_source(100, 1.0) as src:  # one frame now, the next in a second
        t0 = time.monotonic()
        stats = run_pipelined(src, tracker, stop=stop)
        assert time.monotonic() - t0 < 0.8
    assert stats.interrupted and stats.frames == 1
