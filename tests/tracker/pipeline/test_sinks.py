"""Sinks: the video stays playable when the writer is killed, poses are flushed row by row,
the window's keys map to commands."""

import json
import subprocess
import sys
import textwrap

import cv2
import numpy as np
import pytest

from tracker.formats.bop_results import read_results_csv
from tracker.errors import KptrackError
from kptrack_testing import count_video_frames

from tracker.pipeline.sinks import JsonlSink, PoseCsvSink, VideoSink, WindowSink, read_jsonl
from tracker.pipeline.state import FrameResult, TrackedFrame


def _img(i, w=96, h=64):
    img = np.zeros((h, w, 3), np.uint8)
    img[:, : (i * 3) % w] = (0, 200, 255)
    return img


def _result(i, pose=True):
    R = np.eye(3) if pose else None
    t = np.array([1.5, -2.0, 400.0 + i]) if pose else None
    return FrameResult(
        index=i, timestamp=i / 30, status="tracking" if pose else "lost", mode="track", R_m2c=R, t_m2c=t,
        score=0.8 if pose else 0.0, uv=np.zeros((3, 2)), conf=np.ones(3), rms=0.5, n_inliers=3, affine=None,
        timings={"infer": 1.0, "total": 4.0},
    )


def test_video_round_trip(tmp_path):
    p = tmp_path / "out.avi"
    v = VideoSink(p, fps=15)
    for i in range(12):
        v.write_image(_img(i))
    v.write_image(np.zeros((32, 48, 3), np.uint8))  # another size is resized to the first
    v.close()
    v.close()
    cap = cv2.VideoCapture(str(p))
    assert cap.get(cv2.CAP_PROP_FPS) == pytest.approx(15)
    assert int(cap.get(cv2.CAP_PROP_FRAME_WIDTH)) == 96 and int(cap.get(cv2.CAP_PROP_FRAME_HEIGHT)) == 64
    assert int(cap.get(cv2.CAP_PROP_FRAME_COUNT)) == 13  # header patched by close()
    frames = [cap.read()[1] for _ in range(13)]
    cap.release()
    assert count_video_frames(p) == 13
    # content survives JPEG: the orange bar's width encodes the frame number
    widths = [int((f[32, :, 2] > 128).sum()) for f in frames[:12]]
    assert widths == pytest.approx([(i * 3) % 96 for i in range(12)], abs=2)


def test_video_continues_in_segments(tmp_path):
    p = tmp_path / "seg.avi"
    v = VideoSink(p, fps=30, max_bytes=20_000)
    for i in range(30):
        v.write_image(np.random.default_rng(i).integers(0, 255, (64, 96, 3), dtype=np.uint8))
    v.close()
    assert len(v.segments) > 1 and v.segments[0] == p and v.segments[1].name == "seg.001.avi"
    assert sum(count_video_frames(s) for s in v.segments) == 30
    assert v.frames == 30  # across segments, counted by the writers


def test_video_survives_sigkill(tmp_path):
    p = tmp_path / "killed.avi"
    code = textwrap.dedent(f"""
        import os, signal, numpy as np
        from tracker.pipeline.sinks import VideoSink
        v = VideoSink({str(p)!r}, fps=30)
        for i in range(40):
            img = np.random.default_rng(i).integers(0, 255, (120, 160, 3), dtype=np.uint8)
            v.write_image(img)
        os.kill(os.getpid(), signal.SIGKILL)
    """)
    r = subprocess.run([sys.executable, "-c", code], capture_output=True, timeout=60)
    assert r.returncode == -9
    assert count_video_frames(p) == 40  # every frame is flushed as it is written


def test_video_cut_mid_frame_still_plays(tmp_path):
    # a crash can stop the file anywhere, also inside a JPEG chunk
    p = tmp_path / "full.avi"
    v = VideoSink(p, fps=30)
    for i in range(10):
        v.write_image(np.random.default_rng(i).integers(0, 255, (64, 96, 3), dtype=np.uint8))
    offsets = [off for off, _ in v._writer._index]
    movi = v._writer._movi + 8
    data = p.read_bytes()  # before close: sizes are still 0, no index, as after a kill
    cut = tmp_path / "cut.avi"
    cut.write_bytes(data[: movi + offsets[7] + 100])  # 100 bytes into frame 7
    assert count_video_frames(cut) == 7
    v.close()


def test_video_interrupted_inside_a_write_closes_with_header_index_and_chunks_agreeing(tmp_path):
    """Ctrl-C or SIGTERM can land between a chunk's bytes reaching the file and the writer recording
    it (seen once in a fresh clone: the header said 23 frames, the file held 24). close() keeps only
    recorded chunks, so a clean close always agrees with itself."""
    p = tmp_path / "interrupted.avi"
    v = VideoSink(p, fps=30)
    for i in range(5):
        v.write_image(_img(i))
    w = v._writer
    chunk = b"00dc" + (200).to_bytes(4, "little") + bytes(200)  # written, never recorded
    w._f.write(chunk)
    w._f.flush()
    assert v.frames == 5  # the sink's count is the writer's: the unrecorded chunk is not a frame
    v.close()
    cap = cv2.VideoCapture(str(p))
    assert int(cap.get(cv2.CAP_PROP_FRAME_COUNT)) == 5
    assert all(cap.read()[0] for _ in range(5)) and not cap.read()[0]
    cap.release()
    assert count_video_frames(p) == 5
    assert chunk not in p.read_bytes()


def test_video_rejects_mp4_and_unwritable(tmp_path):
    with pytest.raises(KptrackError, match=r"--out .*clip\.mp4: write the annotated video as \.avi"):
        VideoSink(tmp_path / "clip.mp4")
    blocker = tmp_path / "file"
    blocker.write_text("x")
    with pytest.raises(KptrackError, match="cannot create its folder"):
        VideoSink(blocker / "sub" / "x.avi")


def test_pose_csv_rows_flushed_and_lost_frames_skipped(tmp_path):
    p = tmp_path / "poses.csv"
    s = PoseCsvSink(p, obj_id=3)
    for i in range(6):
        s.write(TrackedFrame(_result(i, pose=i not in (2, 3))))
    # readable while still open: every row is already on disk
    rows = read_results_csv(p)
    assert [r.im_id for r in rows] == [0, 1, 4, 5] and s.rows == 4
    assert rows[0].obj_id == 3 and rows[0].scene_id == 0
    np.testing.assert_allclose(rows[2].t_m2c, [1.5, -2.0, 404.0])
    assert rows[0].time == pytest.approx(0.004) and rows[0].score == pytest.approx(0.8)
    s.close()


def test_jsonl_every_frame_flushed(tmp_path):
    p = tmp_path / "log.jsonl"
    s = JsonlSink(p)
    for i in range(4):
        s.write(TrackedFrame(_result(i, pose=i != 1), None, 30.0, {"render": 0.7}))
    lines = read_jsonl(p)
    assert [d["index"] for d in lines] == [0, 1, 2, 3]
    assert lines[1]["status"] == "lost" and lines[1]["R_m2c"] is None
    assert lines[0]["timings_ms"] == {"infer": 1.0, "total": 4.0, "render": 0.7} and lines[0]["fps"] == 30.0
    s.close()
    with open(p, "a") as f:
        f.write('{"index": 4, "sta')  # a line cut by a kill
    assert len(read_jsonl(p)) == 4
    json.loads(p.read_text().splitlines()[0])


def test_window_keys():
    keys = iter([-1, ord("r"), ord(" "), -1, -1, ord(" "), ord(" "), ord("q"), 27])
    shown = []
    w = WindowSink(imshow=lambda t, im: shown.append(t), waitkey=lambda ms: next(keys))
    img = np.zeros((4, 4, 3), np.uint8)
    assert w.show(img) is None  # no key
    assert w.show(img) == "reset"
    assert w.show(img) is None  # space: paused, two idle polls, space resumes
    assert w.show(img) == "quit"  # space pauses, q quits from the pause
    assert w.show(img) == "quit"  # Esc
    assert len(shown) == 5


def test_window_without_display(monkeypatch):
    monkeypatch.setattr(sys, "platform", "linux")
    monkeypatch.delenv("DISPLAY", raising=False)
    monkeypatch.delenv("WAYLAND_DISPLAY", raising=False)
    with pytest.raises(KptrackError, match="--show: no display"):
        WindowSink()


def test_video_sink_rejects_an_unwritable_path_before_any_frame(tmp_path):
    from tracker.errors import KptrackError
    from tracker.pipeline.sinks import VideoSink

    folder = tmp_path / "clip.avi"
    folder.mkdir()
    with pytest.raises(KptrackError, match="clip.avi"):
        VideoSink(folder)
