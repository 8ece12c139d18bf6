"""Keypoint geometry (surface distance, winding numbers, sampling, FPS, centroid), automatic
keypoints, and the keypoints.json errors a user can cause."""

import json

import numpy as np
import pytest
import trimesh
from kp_meshes import BOX_CORNERS, TET_F, TET_V, write_keypoints
from kp_meshes import kptrack_error_text as _err

from tracker.objects.keypoints import (
    _closest_point_distances,
    _winding_numbers,
    auto_keypoints,
    farthest_point_sampling,
    keypoint_surface_distance,
    mesh_centroid,
    sample_surface,
)
from tracker.objects.object_dir import init_object


def test_closest_point_distance_matches_dense_reference():
    rng = np.random.default_rng(1)
    tri = rng.normal(size=(3, 3, 3)) * 30.0
    pts = rng.normal(size=(40, 3)) * 50.0  # points in every Voronoi region of the triangles
    d = _closest_point_distances(pts, tri)
    n = 300
    a, b = np.meshgrid(np.linspace(0, 1, n), np.linspace(0, 1, n))
    keep = (a + b) <= 1
    bary = np.c_[1 - a[keep] - b[keep], a[keep], b[keep]]
    dense = np.concatenate([bary @ t for t in tri])
    ref = np.array([np.linalg.norm(dense - p, axis=1).min() for p in pts])
    assert np.all(d <= ref + 1e-9)  # exact distance can't exceed any sample's
    np.testing.assert_allclose(d, ref, atol=0.5)  # grid spacing ~0.3 mm


def test_winding_number_and_surface_distance_of_a_closed_box():
    b = trimesh.creation.box((100, 60, 40))
    tri = b.vertices[b.faces]
    w = _winding_numbers(np.array([[0.0, 0, 0], [40, 20, 10], [60, 0, 0], [0, 0, 30]]), tri)
    np.testing.assert_allclose(w, [1, 1, 0, 0], atol=1e-9)
    d = keypoint_surface_distance(b.vertices, b.faces, np.array([[0.0, 0, 0], [60, 0, 0], [50, 30, 20], [0, 0, 30]]))
    np.testing.assert_allclose(d, [0.0, 10.0, 0.0, 10.0], atol=1e-9)  # inside counts as on the object


def test_sampling_and_fps_are_deterministic_and_on_the_surface():
    b = trimesh.creation.box((100, 60, 40))
    s1 = sample_surface(b.vertices, b.faces, 500, seed=3)
    np.testing.assert_array_equal(s1, sample_surface(b.vertices, b.faces, 500, seed=3))
    assert not np.array_equal(s1, sample_surface(b.vertices, b.faces, 500, seed=4))
    # every sample is on some face of the box: one coordinate at +-half extent
    on_face = np.isclose(np.abs(s1), [50, 30, 20], atol=1e-9).any(axis=1)
    assert on_face.all() and np.all(np.abs(s1) <= [50 + 1e-9, 30 + 1e-9, 20 + 1e-9])
    idx = farthest_point_sampling(BOX_CORNERS, 8)
    assert sorted(idx.tolist()) == list(range(8))


def test_auto_keypoints_pick_spread_points_and_the_centroid():
    b = trimesh.creation.box((100, 60, 40))
    b.apply_translation([5.0, -3.0, 2.0])
    names, pts = auto_keypoints(b.vertices, b.faces, 8)
    assert names == tuple(f"kp{i}" for i in range(8)) + ("centroid",)
    np.testing.assert_allclose(pts[-1], [5, -3, 2], atol=1e-9)  # volume centroid of a closed box
    # on a box the 8 farthest-point picks are its 8 corners
    corners = BOX_CORNERS + [5, -3, 2]
    assert np.linalg.norm(pts[:8, None] - corners[None], axis=2).min(axis=1).max() < 1e-9
    names2, pts2 = auto_keypoints(b.vertices, b.faces, 8)
    np.testing.assert_array_equal(pts, pts2)
    # more keypoints than vertices: the corners first, then spread surface samples
    _, pts12 = auto_keypoints(b.vertices, b.faces, 12)
    assert np.linalg.norm(pts12[:8, None] - corners[None], axis=2).min(axis=1).max() < 1e-9
    assert keypoint_surface_distance(b.vertices, b.faces, pts12).max() < 1e-6
    extra = pts12[8:12]
    assert np.linalg.norm(extra[:, None] - pts12[None, :8], axis=2).min() > 20.0


def test_closed_mesh_centroid_is_the_volume_centroid_even_when_split():
    split_v = TET_V[TET_F].reshape(-1, 3)  # every face its own vertices (flat colours)
    split_f = np.arange(12).reshape(4, 3)
    np.testing.assert_allclose(mesh_centroid(split_v, split_f), TET_V.mean(axis=0), atol=1e-9)
    # without the last face it is open: the area-weighted surface centroid instead
    tri = TET_V[TET_F[:3]]
    area = 0.5 * np.linalg.norm(np.cross(tri[:, 1] - tri[:, 0], tri[:, 2] - tri[:, 0]), axis=1)
    expect = (area[:, None] * tri.mean(axis=1)).sum(0) / area.sum()
    np.testing.assert_allclose(mesh_centroid(split_v[:9], split_f[:3]), expect, atol=1e-9)


def test_open_mesh_centroid_is_the_surface_centroid():
    plane = trimesh.Trimesh([[0, 0, 0], [10, 0, 0], [10, 10, 0], [0, 10, 0]], [[0, 1, 2], [0, 2, 3]], process=False)
    np.testing.assert_allclose(mesh_centroid(plane.vertices, plane.faces), [5, 5, 0])


# ---------------------------------------------------------------- user errors
@pytest.mark.parametrize("doc,expect", [
    ({"names": ["a", "b", "c", "d"], "points_mm": [[0, 0], [1, 1], [2, 2], [3, 3]]}, "expected (K, 3)"),
    ({"names": ["a", "b", "c"], "points_mm": [[50, 0, 0], [-50, 0, 0], [0, 30, 0], [0, 0, 20]]}, "3 names for 4 points"),
    ({"names": ["a", "b", "c"], "points_mm": [[50, 0, 0], [-50, 0, 0], [0, 30, 0]]}, "at least 4"),
    ({"names": ["a", "a", "c", "d"], "points_mm": [[50, 0, 0], [-50, 0, 0], [0, 30, 0], [0, 0, 20]]}, "duplicate"),
    ({"names": ["a", "b", "c", "d"], "points_mm": [[50, 0, 0], [-50, 0, 0], [0, 30, 0], [0, 0, float("nan")]]}, "NaN"),
    ({"points_mm": [[50, 0, 0]]}, "missing 'names'"),
    ({"names": ["a", "b", "c", "d"], "points_mm": [[50, 0, 0], [-50, 0, 0], [0, 30, 0], [0, 0, 90]]}, "off the object"),
])
def test_bad_keypoint_files(tmp_path, doc, expect):
    trimesh.creation.box((100, 60, 40)).export(tmp_path / "box.ply")
    (tmp_path / "kp.json").write_text(json.dumps(doc))  # json writes NaN as NaN
    msg = _err(init_object, tmp_path / "box.ply", keypoints=tmp_path / "kp.json", out_dir=tmp_path / "o")
    assert "kp.json" in msg and expect in msg


def test_far_keypoint_threshold_is_ten_percent_of_the_diameter(tmp_path):
    trimesh.creation.box((100, 60, 40)).export(tmp_path / "box.ply")
    diam = np.linalg.norm([100, 60, 40])
    base = [[50, 0, 0], [-50, 0, 0], [0, 30, 0]]
    ok = write_keypoints(tmp_path / "ok.json", "abcd", base + [[0, 0, 20 + 0.09 * diam]])
    init_object(tmp_path / "box.ply", keypoints=ok, out_dir=tmp_path / "o")
    bad = write_keypoints(tmp_path / "bad.json", "abcd", base + [[0, 0, 20 + 0.11 * diam]])
    msg = _err(init_object, tmp_path / "box.ply", keypoints=bad, out_dir=tmp_path / "o2")
    assert "bad.json" in msg and "d (" in msg and "--units" in msg


def test_keypoints_in_metres_for_a_mm_mesh_are_rejected(tmp_path):
    trimesh.creation.box((100, 60, 40)).export(tmp_path / "box.ply")
    kp = write_keypoints(tmp_path / "kp.json", "abcd", BOX_CORNERS[:4] * 10)  # a scale mistake
    assert "off the object" in _err(init_object, tmp_path / "box.ply", keypoints=kp, out_dir=tmp_path / "o")
