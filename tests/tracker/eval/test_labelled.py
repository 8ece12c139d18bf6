"""The scorer on labelled real frames (kptrack eval --labels), on hand-made cases."""

import csv
import json

import numpy as np
import pytest
from label_box import NAMES, box_object, camera, corners_uv, pose, write_box, write_frames

from tracker.errors import KptrackError
from tracker.eval.labelled import LabelledEvalConfig, read_tracked_poses, run_labelled_eval, score_labelled
from tracker.formats.bop_results import BopResult, write_results_csv
from tracker.labels import AnnotateConfig, LabelPoint, run_annotate, write_points_csv

ALL = np.full(8, 2, np.int8)


def _score(labels, poses):
    obj = box_object()
    return score_labelled(np.asarray(obj.keypoints), NAMES, camera(), labels, poses)


def test_known_pixel_offsets_give_their_errors_and_pck():
    obj, cam = box_object(), camera()
    uv1 = corners_uv(obj, cam, 1) + [3.0, 0.0]  # every label 3 px off
    uv2 = corners_uv(obj, cam, 2)
    uv2[:4] += [0.0, 12.0]  # half the labels 12 px off, half exact
    poses = {1: (*pose(1), 0.9), 2: (*pose(2), 0.8)}
    res = _score([(1, uv1, ALL), (2, uv2, ALL)], poses)
    pf, a = res["per_frame"], res["aggregate"]
    np.testing.assert_allclose(pf["kp_mean_px"], [3.0, 6.0], atol=1e-6)
    np.testing.assert_allclose(pf["kp_max_px"], [3.0, 12.0], atol=1e-6)
    np.testing.assert_allclose(pf["kp_rms_px"], [3.0, np.sqrt(72.0)], atol=1e-6)
    assert pf["pck_5px"] == [1.0, 0.5] and pf["pck_10px"] == [1.0, 0.5]
    assert a["pck"] == {"5px": 0.75, "10px": 0.75} and a["frac_with_pose"] == 1.0
    assert a["frac_frames_kp_lt"] == {"5px": 0.5, "10px": 1.0}
    assert a["kp_error_px"]["median"] == pytest.approx(4.5)


def test_a_frame_without_a_pose_misses_its_labels_and_exact_labels_fit_themselves():
    obj, cam = box_object(), camera()
    v3 = ALL.copy()
    v3[[0, 5]] = 0  # two corners not visible
    labels = [(3, corners_uv(obj, cam, 3), v3), (4, corners_uv(obj, cam, 4), ALL), (6, corners_uv(obj, cam, 6), np.zeros(8))]
    res = _score(labels, {3: (*pose(3), 1.0), 9: (*pose(9), 1.0)})
    pf, a = res["per_frame"], res["aggregate"]
    assert pf["frame"] == [3, 4]  # frame 6 has no label: not a labelled frame
    assert pf["labels"] == [6, 8] and pf["estimated"] == [True, False]
    assert a["frac_with_pose"] == 0.5 and a["with_pose"] == 1
    assert a["pck"]["5px"] == pytest.approx(6 / 14) and a["pck_posed"]["5px"] == 1.0
    assert a["median_kp_px_all_frames"] == np.inf  # half the frames without a pose
    assert pf["kp_mean_px"][0] < 1e-6 and np.isnan(pf["kp_mean_px"][1])
    assert max(pf["label_fit_rms_px"]) < 1e-6  # exact labels: the PnP + LM fit reproduces them
    assert pf["rot_deg_vs_labels"][0] < 1e-6 and pf["trans_mm_vs_labels"][0] < 1e-6


def test_fewer_than_four_labels_are_scored_without_a_label_fit():
    obj, cam = box_object(), camera()
    v = np.array([2, 2, 2, 0, 0, 0, 0, 0])
    res = _score([(1, corners_uv(obj, cam, 1), v)], {1: (*pose(1), 1.0)})
    pf = res["per_frame"]
    assert pf["kp_mean_px"][0] < 1e-6 and np.isnan(pf["label_fit_rms_px"][0]) and np.isnan(pf["rot_deg_vs_labels"][0])


def test_csv_and_jsonl_poses_read_the_same(tmp_path):
    R, t = pose(2)
    write_results_csv(tmp_path / "p.csv", [BopResult(0, 2, 1, 0.7, R, t), BopResult(0, 3, 1, 0.0, R, t),
                                           BopResult(0, 4, 2, 0.9, R, t)])
    lines = [{"index": 2, "score": 0.7, "R_m2c": R.ravel().tolist(), "t_m2c": t.tolist()},
             {"index": 3, "score": 0.0, "R_m2c": None, "t_m2c": None}]
    (tmp_path / "p.jsonl").write_text("\n".join(json.dumps(x) for x in lines) + "\n")
    a, b = read_tracked_poses(tmp_path / "p.csv"), read_tracked_poses(tmp_path / "p.jsonl")
    assert sorted(a) == sorted(b) == [2]  # a score-0 row and another object's row are no pose
    np.testing.assert_allclose(a[2][0], b[2][0])
    with pytest.raises(KptrackError, match="no such file"):
        read_tracked_poses(tmp_path / "nope.jsonl")


@pytest.fixture()
def labelled(tmp_path):
    obj_dir = write_box(tmp_path / "box")
    frames = write_frames(tmp_path / "frames", 8)
    camera().to_yaml(tmp_path / "cam.yaml")
    obj, cam = box_object(), camera()
    pts = [LabelPoint(f, n, float(x), float(y)) for f in (1, 3, 5) for n, (x, y) in zip(NAMES, corners_uv(obj, cam, f))]
    run_annotate(AnnotateConfig(source=str(frames), out=str(tmp_path / "labels"), object=str(obj_dir),
                                camera=str(tmp_path / "cam.yaml"), points=str(write_points_csv(tmp_path / "pts.csv", pts)),
                                check_pictures=False))
    write_results_csv(tmp_path / "poses.csv", [BopResult(0, f, 1, 1.0, *pose(f)) for f in (1, 3, 6)])
    return tmp_path, obj_dir


def test_run_writes_metrics_csv_and_plot_from_an_annotate_folder(labelled):
    tmp, obj_dir = labelled
    # no --camera: the calibration annotate copied into the labels folder
    res = run_labelled_eval(LabelledEvalConfig(poses=str(tmp / "poses.csv"), labels=str(tmp / "labels"), object=str(obj_dir),
                                               out=str(tmp / "ev")))
    a = res["aggregate"]
    assert a["frames"] == 3 and a["with_pose"] == 2 and a["kp_error_px"]["median"] < 1e-6
    doc = json.loads((tmp / "ev" / "metrics.json").read_text())
    assert doc["aggregate"]["frac_with_pose"] == pytest.approx(2 / 3) and doc["per_frame"]["kp_mean_px"][2] is None
    rows = list(csv.DictReader(open(tmp / "ev" / "labelled_per_frame.csv")))
    assert [r["frame"] for r in rows] == ["1", "3", "5"] and rows[2]["kp_mean_px"] == ""
    assert (tmp / "ev" / "errors_labelled.png").stat().st_size > 1000


def test_labels_of_another_object_are_refused(labelled):
    tmp, _ = labelled
    with pytest.raises(KptrackError, match="--object"):
        run_labelled_eval(LabelledEvalConfig(poses=str(tmp / "poses.csv"), labels=str(tmp / "labels"), object="default"))
