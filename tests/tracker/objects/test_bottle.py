"""The built-in bottle: size, closed outward mesh, keypoints on the axis and rims, its continuous
symmetry true in geometry and colour, and --object bottle wherever --object default works."""

import numpy as np
import pytest

import tracker.paths as paths
from tracker.errors import KptrackError
from tracker.objects import keypoint_surface_distance, load_object
from tracker.objects.bottle import bottle_object
from tracker.objects.keypoints import _is_closed
from tracker.objects.symmetry import check_symmetries
from tracker.objects.symmetry_detect import detect_symmetries
from tracker.paths import resolve_model


def test_bottle_shape_and_keypoints():
    b = load_object("bottle")
    assert b is bottle_object() and b.name == "bottle"
    assert np.allclose(b.bbox_size, [66, 66, 200]) and np.allclose(b.bbox_min + b.bbox_size / 2, 0)
    assert _is_closed(b.vertices, b.faces)
    assert b.keypoint_names[:3] == ("axis_top", "axis_bottom", "axis_centre") and b.num_keypoints == 9
    assert np.all(keypoint_surface_distance(b.vertices, b.faces, b.keypoints) < 0.1)
    rim = b.keypoints[3:]
    assert np.allclose(np.linalg.norm(rim[:3, :2], axis=1), 16) and np.allclose(np.linalg.norm(rim[3:, :2], axis=1), 33)


def test_bottle_symmetry_is_true_and_detected():
    b = bottle_object()
    check_symmetries(b.vertices, b.faces, [], b.symmetries_continuous, b.diameter)
    cands = detect_symmetries(b.vertices, b.faces, b.vertex_colors)
    acc = [c for c in cands if c.accepted]
    assert [c.kind for c in acc] == ["continuous"] and np.allclose(np.abs(acc[0].axis), [0, 0, 1])
    assert acc[0].colour < 10  # bands: the colours turn with it


def test_bottle_model_missing_names_the_training_commands(tmp_path, monkeypatch):
    monkeypatch.setattr(paths, "REPO_ROOT", tmp_path)
    monkeypatch.chdir(tmp_path)
    with pytest.raises(KptrackError, match=r"bottle model has not been trained yet.*kptrack synth --object bottle.*kptrack train"):
        resolve_model(None, object_name="bottle")
