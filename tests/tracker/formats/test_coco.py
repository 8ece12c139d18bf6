"""COCO keypoints JSON round trip and validation errors."""

from __future__ import annotations

import json

import numpy as np
import pytest

from tracker.formats.coco import CocoAnnotation, CocoImage, keypoints_flat, read_coco, write_coco
from tracker.errors import KptrackError

NAMES = ("tip", "corner", "joint")


def _write(tmp_path):
    rng = np.random.default_rng(0)
    images = [CocoImage(i, f"rgb/{i:06d}.jpg", 256, 256) for i in (0, 1, 5)]
    anns = []
    for im in images:
        uv = rng.random((3, 2)) * 255
        v = np.array([2, 1, 0], np.int8)
        anns.append(CocoAnnotation(image_id=im.id, uv=uv, v=v, bbox=(1.0, 2.0, 30.0, 40.0), area=777.0))
    p = write_coco(tmp_path / "scene" / "keypoints_coco.json", images, anns, NAMES, skeleton=[(0, 1)])
    return p, images, anns


def test_round_trip_exact_and_coco_conventions(tmp_path):
    p, images, anns = _write(tmp_path)
    doc = json.loads(p.read_text())
    a0 = doc["annotations"][0]
    assert a0["keypoints"][6:9] == [0, 0, 0]  # v=0 -> x=y=0 as COCO does
    assert a0["num_keypoints"] == 2 and a0["iscrowd"] == 0 and a0["category_id"] == 1
    assert [a["id"] for a in doc["annotations"]] == [1, 2, 3]
    assert doc["categories"][0]["keypoints"] == list(NAMES) and doc["categories"][0]["skeleton"] == [[0, 1]]

    c = read_coco(p)
    assert c.keypoint_names == NAMES and len(c) == 3 and c.skeleton == [[0, 1]]
    assert c.images == images
    for s, a in zip(c.samples, anns):
        assert s.image_path == p.parent / "rgb" / f"{a.image_id:06d}.jpg"
        assert s.uv.shape == (3, 2) and s.v.dtype == np.int8
        assert np.array_equal(s.uv[:2], a.uv[:2])  # bit-exact floats
        assert np.array_equal(s.uv[2], [0, 0]) and list(s.v) == [2, 1, 0]
        assert s.bbox == (1.0, 2.0, 30.0, 40.0) and s.area == 777.0 and (s.width, s.height) == (256, 256)


def test_keypoints_flat():
    assert keypoints_flat(np.array([[1.5, 2.5], [3, 4]]), [1, 0]) == [1.5, 2.5, 1, 0, 0, 0]


def _mutate(tmp_path, fn):
    p, _, _ = _write(tmp_path)
    doc = json.loads(p.read_text())
    fn(doc)
    p.write_text(json.dumps(doc))
    return p


@pytest.mark.parametrize(
    "fn, msg",
    [
        (lambda d: d["annotations"][0].__setitem__("keypoints", [1, 2, 2]), "3 x 3"),
        (lambda d: d["annotations"][1]["keypoints"].__setitem__(2, 7), "visibility flags"),
        (lambda d: d["annotations"][0].__setitem__("image_id", 99), "image_id 99"),
        (lambda d: d.pop("images"), "needs lists"),
        (lambda d: d["categories"][0].pop("keypoints"), "one category with keypoint names"),
        (lambda d: d["images"][0].pop("width"), "width"),
        (lambda d: d["images"].append(dict(d["images"][0])), "duplicate image ids"),
    ],
)
def test_validation_errors_name_the_file(tmp_path, fn, msg):
    p = _mutate(tmp_path, fn)
    with pytest.raises(KptrackError, match=msg) as e:
        read_coco(p)
    assert str(p) in str(e.value)


def test_missing_and_non_json(tmp_path):
    with pytest.raises(KptrackError, match="not found"):
        read_coco(tmp_path / "nope.json")
    p = tmp_path / "x.json"
    p.write_text("[1,")
    with pytest.raises(KptrackError, match="x.json: not a readable JSON file"):
        read_coco(p)
    d = tmp_path / "dir.json"
    d.mkdir()
    with pytest.raises(KptrackError, match="dir.json: not a readable JSON file"):  # a folder given as the file
        read_coco(d)


def test_write_rejects_wrong_keypoint_count(tmp_path):
    with pytest.raises(ValueError):
        write_coco(tmp_path / "a.json", [CocoImage(0, "a.jpg", 2, 2)], [CocoAnnotation(0, np.zeros((2, 2)), np.zeros(2), (0, 0, 0, 0), 0)], NAMES)
