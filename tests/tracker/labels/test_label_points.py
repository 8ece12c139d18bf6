"""Points files and frame choice of kptrack annotate: what they accept and how they refuse."""

import json

import cv2
import numpy as np
import pytest

from tracker.errors import KptrackError
from tracker.labels.frames import parse_frame_list, read_frames
from tracker.labels.points import LabelPoint, read_points, write_points_csv

NAMES = ("a", "b")


def test_csv_round_trip_keeps_full_precision_and_ignores_extra_columns(tmp_path):
    pts = [LabelPoint(3, "a", 1.0 / 3.0, 2.5), LabelPoint(0, "b", 100.125, 7e-3)]
    back = read_points(write_points_csv(tmp_path / "p.csv", pts), NAMES)
    assert [(p.frame, p.name, p.x, p.y) for p in back] == [(p.frame, p.name, p.x, p.y) for p in pts]
    (tmp_path / "q.csv").write_text("y,x,note,name,frame\n1.5,2.5,hi,b,4\n")
    assert read_points(tmp_path / "q.csv", NAMES)[0] == LabelPoint(4, "b", 2.5, 1.5, "line 2")


@pytest.mark.parametrize("text,expect", [
    ("frame,name,x\n1,a,2\n", "lacks y"),
    ("frame,name,x,y\n1.5,a,2,3\n", "line 2: frame '1.5'"),
    ("frame,name,x,y\n-1,a,2,3\n", "non-negative"),
    ("frame,name,x,y\n1,a,,3\n", "empty"),
    ("frame,name,x,y\n1,a,nan,3\n", "finite"),
    ("frame,name,x,y\n1,a,2,3\n1,a,4,5\n", "labelled twice (also line 2)"),
    ("frame,name,x,y\n1,c,2,3\n", "no keypoint 'c' (its keypoints: a, b)"),
])
def test_bad_rows_are_refused_naming_the_file_and_row(tmp_path, text, expect):
    p = tmp_path / "bad.csv"
    p.write_text(text)
    with pytest.raises(KptrackError) as e:
        read_points(p, NAMES)
    assert "bad.csv" in str(e.value) and expect in str(e.value)


def test_json_points(tmp_path):
    (tmp_path / "p.json").write_text(json.dumps([{"frame": 2, "name": "a", "x": 1, "y": 2}]))
    assert read_points(tmp_path / "p.json", NAMES)[0] == LabelPoint(2, "a", 1.0, 2.0, "item 0")
    (tmp_path / "d.json").write_text(json.dumps({"frame": 2}))
    with pytest.raises(KptrackError, match="JSON list"):
        read_points(tmp_path / "d.json", NAMES)
    with pytest.raises(KptrackError, match="no such file"):
        read_points(tmp_path / "none.csv", NAMES)


def test_frame_lists_and_ranges():
    assert parse_frame_list("0,10,20-40:10, 5") == [0, 5, 10, 20, 30, 40]
    assert parse_frame_list("3-5") == [3, 4, 5]
    for bad in ("a", "5-3", "-2", "1-4:0", ","):
        with pytest.raises(KptrackError, match="--frames"):
            parse_frame_list(bad)


@pytest.fixture()
def video(tmp_path):
    path = tmp_path / "clip.avi"
    vw = cv2.VideoWriter(str(path), cv2.VideoWriter_fourcc(*"MJPG"), 10, (64, 48))
    for i in range(9):
        vw.write(np.full((48, 64, 3), 20 * i, np.uint8))
    vw.release()
    return path


def test_reading_chosen_frames_of_a_video(video):
    frames, n = read_frames(str(video), [1, 4], every=None)
    assert sorted(frames) == [1, 4] and abs(int(frames[4].mean()) - 80) <= 3
    frames, n = read_frames(str(video), [1], every=4)
    assert sorted(frames) == [0, 1, 4, 8] and n == 9


def test_a_frame_beyond_the_video_names_the_video_and_its_length(video):
    with pytest.raises(KptrackError) as e:
        read_frames(str(video), [2, 9, 30])
    msg = str(e.value)
    assert "clip.avi" in msg and "frame 9 is beyond the video, which has 9 frames (0..8)" in msg and "9, 30" in msg
    with pytest.raises(KptrackError, match="live camera"):
        read_frames("0", [1])
