"""Held-out frame lists: every form a user has at hand, and the clear errors."""

import json

import pytest

from tracker.errors import KptrackError
from train.heldout import check_exclude, parse_exclude


def test_every_form_of_held_out_list(tmp_path):
    assert parse_exclude("3, 10,40-42") == {3, 10, 40, 41, 42}
    (tmp_path / "l.json").write_text(json.dumps([5, 7]))
    assert parse_exclude(str(tmp_path / "l.json")) == {5, 7}
    (tmp_path / "split.json").write_text(json.dumps({"train": [1, 2], "heldout": [8, 9]}))
    assert parse_exclude(str(tmp_path / "split.json")) == {8, 9}
    (tmp_path / "f.txt").write_text("12\n13 14\n")
    assert parse_exclude(str(tmp_path / "f.txt")) == {12, 13, 14}
    coco = {"images": [{"id": 30, "file_name": "frames/IMG_9999.png", "width": 4, "height": 4},
                       {"id": 2, "frame_index": 77, "file_name": "x.png", "width": 4, "height": 4}],
            "annotations": [], "categories": []}
    (tmp_path / "labels.json").write_text(json.dumps(coco))
    assert parse_exclude(str(tmp_path / "labels.json")) == {30, 77}  # annotate's ids are frame indices
    (tmp_path / "clip").mkdir()
    (tmp_path / "clip" / "keypoints_coco.json").write_text(json.dumps(coco))
    assert parse_exclude(str(tmp_path / "clip")) == {30, 77}  # annotate's --out folder


def test_bad_lists_get_one_clear_error(tmp_path):
    with pytest.raises(KptrackError, match="'x' is neither a frame number"):
        parse_exclude("3,x")
    (tmp_path / "s.json").write_text(json.dumps({"train": [1]}))
    with pytest.raises(KptrackError, match="not a frame list"):
        parse_exclude(str(tmp_path / "s.json"))
    with pytest.raises(KptrackError, match=r"names frame\(s\) 10, 11 but clip.mp4 has frames 0..9"):
        check_exclude({2, 10, 11}, 10, "clip.mp4", "2,10-11")
    check_exclude({0, 9}, 10, "clip.mp4", "0,9")
