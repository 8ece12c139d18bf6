"""ObjectModel (copies, validation, read-only, pickling, trimesh export) and the BOP diameter."""

import numpy as np
import pytest
from kp_meshes import QUAD_BGR, TET_F, TET_UV, TET_V

from tracker.objects.model import ObjectModel, mesh_diameter
from tracker.objects.object_dir import load_object


def test_object_model_copies_validates_and_is_read_only():
    v = TET_V.copy()
    obj = ObjectModel.from_mesh("tet", v, TET_F, ["a", "b", "c", "d"], TET_V, vertex_colors=QUAD_BGR)
    v[0, 0] = 99.0  # the model holds its own copy
    assert obj.vertices[0, 0] == 0.0
    assert obj.vertices.dtype == np.float64 and obj.faces.dtype == np.int32 and obj.vertex_colors.dtype == np.uint8
    assert not obj.vertices.flags.writeable and not obj.keypoints.flags.writeable
    np.testing.assert_allclose(obj.bbox_min, [0, 0, 0])
    np.testing.assert_allclose(obj.bbox_size, [100, 80, 60])
    assert obj.diameter == pytest.approx(np.hypot(100, 80))
    assert obj.num_keypoints == 4 and not obj.is_symmetric and not obj.is_textured
    corners = obj.box_corners
    assert corners.shape == (8, 3)
    assert {tuple(c) for c in corners} == {(x, y, z) for x in (0, 100) for y in (0, 80) for z in (0, 60)}
    with pytest.raises(ValueError):
        ObjectModel.from_mesh("bad", TET_V[:, :2], TET_F, ["a"] * 4, TET_V)
    with pytest.raises(ValueError):
        ObjectModel.from_mesh("bad", TET_V, TET_F + 10, ["a"] * 4, TET_V)
    with pytest.raises(ValueError):
        ObjectModel.from_mesh("bad", TET_V, TET_F, ["a"] * 3, TET_V)
    with pytest.raises(ValueError):  # uv without a texture
        ObjectModel.from_mesh("bad", TET_V, TET_F, ["a"] * 4, TET_V, uv=TET_UV)
    sym = ObjectModel.from_mesh("s", TET_V, TET_F, ["a"] * 4, TET_V, symmetries_continuous=[{"axis": [0, 0, 1], "offset": [0, 0, 0]}])
    assert sym.is_symmetric


def test_pickle_round_trip_stays_read_only_and_to_trimesh():
    import pickle

    obj = load_object("default")
    back = pickle.loads(pickle.dumps(obj))
    np.testing.assert_array_equal(back.vertices, obj.vertices)
    np.testing.assert_array_equal(back.vertex_colors, obj.vertex_colors)
    assert back.keypoint_names == obj.keypoint_names and back.diameter == obj.diameter
    assert not back.vertices.flags.writeable and not back.faces.flags.writeable
    tm = obj.to_trimesh()
    assert len(tm.vertices) == len(obj.vertices) and len(tm.faces) == len(obj.faces)
    np.testing.assert_array_equal(np.asarray(tm.visual.vertex_colors)[:, :3], obj.vertex_colors[:, ::-1])


def test_mesh_diameter_matches_brute_force():
    rng = np.random.default_rng(0)
    for pts in (rng.normal(size=(300, 3)) * [50, 20, 5], np.c_[rng.normal(size=(200, 2)), np.zeros(200)]):  # 3D and flat
        brute = np.linalg.norm(pts[:, None] - pts[None], axis=2).max()
        assert mesh_diameter(pts) == pytest.approx(brute, rel=1e-12)
    # a large round hull takes the directional-extremes path: within 5e-4 of the diameter
    sph = rng.normal(size=(3000, 3))
    sph = sph / np.linalg.norm(sph, axis=1, keepdims=True) * [80, 60, 50]
    exact = mesh_diameter(sph, exact_limit=10**9)
    approx = mesh_diameter(sph, exact_limit=500)
    assert exact * (1 - 5e-4) <= approx <= exact + 1e-9
