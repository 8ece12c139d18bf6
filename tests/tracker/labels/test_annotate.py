"""kptrack annotate, headless: points -> COCO JSON -> BOP poses, resuming, and the bad inputs."""

import json

import cv2
import numpy as np
import pytest
from label_box import NAMES, box_object, camera, corners_uv, pose, write_box, write_frames

from tracker.errors import KptrackError
from tracker.formats.bop_scene import load_scene_gt, read_scene_camera
from tracker.formats.coco import read_coco
from tracker.geometry import rotation_error_deg
from tracker.labels import AnnotateConfig, LabelPoint, run_annotate, write_points_csv


@pytest.fixture()
def setup(tmp_path):
    obj_dir = write_box(tmp_path / "box")
    frames = write_frames(tmp_path / "frames", 12)
    cam_path = camera().to_yaml(tmp_path / "cam.yaml")
    return tmp_path, obj_dir, frames, cam_path


def _points(frames, drop=()):
    obj, cam = box_object(), camera()
    pts = []
    for f in frames:
        uv = corners_uv(obj, cam, f)
        pts += [LabelPoint(f, n, float(x), float(y)) for k, (n, (x, y)) in enumerate(zip(NAMES, uv)) if (f, k) not in drop]
    return pts


def test_headless_import_round_trips_to_coco_and_the_known_bop_pose(setup):
    tmp, obj_dir, frames, cam_path = setup
    # frame 7 keeps only 3 labels: 2D labels without a pose, reported
    pts = _points([2, 5, 7], drop={(7, k) for k in range(3, 8)} | {(5, 0), (5, 6)})
    csv = write_points_csv(tmp / "pts.csv", pts)
    out = tmp / "labels"
    rep = run_annotate(AnnotateConfig(source=str(frames), out=str(out), object=str(obj_dir), camera=str(cam_path),
                                      points=str(csv), frames="9"))
    coco = read_coco(out / "keypoints_coco.json")
    assert coco.keypoint_names == NAMES
    assert sorted(im.id for im in coco.images) == [2, 5, 7, 9]  # image id = the source's frame index
    assert {im.id: im.file_name for im in coco.images}[5] == "rgb/000005.png"
    assert (out / "rgb" / "000009.png").is_file() and (out / "check" / "000002.jpg").is_file()
    ann = {a.image_id: a for a in coco.annotations}
    assert sorted(ann) == [2, 5, 7]  # frame 9 was chosen but not labelled
    np.testing.assert_allclose(ann[2].uv, corners_uv(box_object(), camera(), 2), atol=1e-9)
    assert ann[5].v.tolist() == [0, 2, 2, 2, 2, 2, 0, 2] and ann[7].v.sum() == 6
    gt = load_scene_gt(out)
    assert gt.im_ids.tolist() == [2, 5]
    for i, f in enumerate(gt.im_ids):
        R, t = pose(int(f))
        assert rotation_error_deg(gt.R_m2c[i], R) < 1e-6
        np.testing.assert_allclose(gt.t_m2c[i], t, atol=1e-6)
    assert sorted(read_scene_camera(out / "scene_camera.json")) == [2, 5, 7, 9]
    report = json.loads((out / "labels_report.json").read_text())
    assert report["summary"]["with_pose"] == 2 and report["summary"]["rms_px_max"] < 1e-6
    assert report["without_pose"] == [{"frame": 7, "reason": "3 label(s), a pose needs 4"}]
    assert rep.without_pose[0]["frame"] == 7 and "frame 7" in rep.summary()


def test_a_swapped_click_shows_as_rms_and_names_a_swapped_keypoint(setup, caplog):
    tmp, obj_dir, frames, cam_path = setup
    pts = _points([3])
    a, b = pts[0], pts[7]
    pts[0], pts[7] = LabelPoint(3, a.name, b.x, b.y), LabelPoint(3, b.name, a.x, a.y)
    rep = run_annotate(AnnotateConfig(source=str(frames), out=str(tmp / "l"), object=str(obj_dir), camera=str(cam_path),
                                      points=str(write_points_csv(tmp / "p.csv", pts)), check_pictures=False))
    fr = rep.report["frames"][0]
    assert fr["rms_px"] > 10 and fr["worst_keypoint"] in (a.name, b.name)
    assert "frame 3" in caplog.text and "swapped" in caplog.text


def test_json_points_and_a_second_import_resume_the_labels(setup):
    tmp, obj_dir, frames, cam_path = setup
    out = tmp / "labels"
    first = [p.__dict__ for p in _points([1])]
    (tmp / "a.json").write_text(json.dumps([{k: d[k] for k in ("frame", "name", "x", "y")} for d in first]))
    cfg = dict(source=str(frames), out=str(out), object=str(obj_dir), camera=str(cam_path), check_pictures=False)
    run_annotate(AnnotateConfig(points=str(tmp / "a.json"), **cfg))
    before = (out / "rgb" / "000001.png").stat().st_mtime_ns
    run_annotate(AnnotateConfig(points=str(write_points_csv(tmp / "b.csv", _points([4]))), **cfg))
    coco = read_coco(out / "keypoints_coco.json")
    assert sorted(a.image_id for a in coco.annotations) == [1, 4]  # the first import's labels are kept
    assert (out / "rgb" / "000001.png").stat().st_mtime_ns == before  # and its frame is not rewritten
    assert load_scene_gt(out).im_ids.tolist() == [1, 4]


def _error(fn, *a, **kw) -> str:
    with pytest.raises(KptrackError) as e:
        fn(*a, **kw)
    return str(e.value)


def test_a_frame_beyond_the_video_is_refused_and_nothing_is_lost(setup):
    tmp, obj_dir, frames, cam_path = setup
    out = tmp / "labels"
    cfg = dict(source=str(frames), out=str(out), object=str(obj_dir), camera=str(cam_path), check_pictures=False)
    run_annotate(AnnotateConfig(points=str(write_points_csv(tmp / "a.csv", _points([1]))), **cfg))
    saved = (out / "keypoints_coco.json").read_bytes()
    msg = _error(run_annotate, AnnotateConfig(points=str(write_points_csv(tmp / "b.csv", _points([3, 40]))), **cfg))
    assert str(frames) in msg and "frame 40" in msg and "12 frames" in msg and "below 12" in msg
    assert (out / "keypoints_coco.json").read_bytes() == saved
    assert not (out / "rgb" / "000003.png").exists()


def test_an_unknown_keypoint_names_the_file_row_and_the_object_keypoints(setup):
    tmp, obj_dir, frames, cam_path = setup
    (tmp / "bad.csv").write_text("frame,name,x,y\n1,corner_0,10,20\n1,lid,30,40\n")
    msg = _error(run_annotate, AnnotateConfig(source=str(frames), out=str(tmp / "o"), object=str(obj_dir),
                                              camera=str(cam_path), points=str(tmp / "bad.csv")))
    assert "bad.csv" in msg and "line 3" in msg and "'lid'" in msg and "corner_7" in msg
    assert not (tmp / "o").exists()


def test_the_window_without_a_display_is_refused_before_anything_is_written(setup, monkeypatch):
    tmp, obj_dir, frames, cam_path = setup
    monkeypatch.delenv("DISPLAY", raising=False)
    monkeypatch.delenv("WAYLAND_DISPLAY", raising=False)
    msg = _error(run_annotate, AnnotateConfig(source=str(frames), out=str(tmp / "o"), object=str(obj_dir), camera=str(cam_path),
                                              every=3))
    assert "--points" in msg and not (tmp / "o").exists()


def test_labels_for_another_object_are_refused(setup, monkeypatch):
    monkeypatch.setenv("DISPLAY", ":99")  # the refusal comes before any window
    tmp, obj_dir, frames, cam_path = setup
    out = tmp / "labels"
    cfg = dict(source=str(frames), out=str(out), camera=str(cam_path), check_pictures=False)
    run_annotate(AnnotateConfig(object=str(obj_dir), points=str(write_points_csv(tmp / "a.csv", _points([1]))), **cfg))
    msg = _error(run_annotate, AnnotateConfig(object="default", frames="2", points=None, **cfg))
    assert "keypoints_coco.json" in msg and "--object" in msg


def test_a_labels_folder_of_another_video_is_refused(setup):
    tmp, obj_dir, frames, cam_path = setup
    out = tmp / "labels"
    cfg = dict(out=str(out), object=str(obj_dir), camera=str(cam_path), check_pictures=False)
    run_annotate(AnnotateConfig(source=str(frames), points=str(write_points_csv(tmp / "a.csv", _points([1]))), **cfg))
    other = write_frames(tmp / "other", 3)
    cv2.imwrite(str(other / "0001.png"), np.full((480, 640, 3), 200, np.uint8))
    saved = (out / "keypoints_coco.json").read_bytes()
    msg = _error(run_annotate, AnnotateConfig(source=str(other), points=str(write_points_csv(tmp / "b.csv", _points([1]))), **cfg))
    assert "000001.png" in msg and "another" in msg and "--out" in msg
    assert (out / "keypoints_coco.json").read_bytes() == saved
