"""The built-in default object: size, asymmetry, colours, keypoints, caching."""

import itertools

import numpy as np
import pytest
from scipy.spatial import cKDTree
from scipy.spatial.transform import Rotation

from tracker.objects.drill import PART_NAMES, default_mesh, default_object
from tracker.objects import ObjectModel, keypoint_surface_distance, load_object, sample_surface


@pytest.fixture(scope="module")
def obj() -> ObjectModel:
    return load_object("default")


def test_load_default_is_cached_and_read_only(obj):
    assert load_object("default") is obj
    assert default_object() is obj
    from tracker.objects import default_object as via_objects

    assert via_objects() is obj
    assert isinstance(obj, ObjectModel) and obj.name == "default"
    for arr in (obj.vertices, obj.faces, obj.vertex_colors, obj.keypoints, obj.bbox_min, obj.bbox_size):
        assert not arr.flags.writeable
    with pytest.raises(ValueError):
        obj.vertices[0, 0] = 1.0
    with pytest.raises(Exception):
        obj.name = "other"  # frozen dataclass


def test_dtypes_and_triangle_budget(obj):
    assert obj.vertices.dtype == np.float64 and obj.vertices.shape[1] == 3
    assert obj.faces.dtype == np.int32 and obj.faces.shape[1] == 3
    assert obj.vertex_colors.dtype == np.uint8 and obj.vertex_colors.shape == obj.vertices.shape
    assert obj.uv is None and obj.texture is None
    assert 2000 <= len(obj.faces) <= 6000
    assert obj.faces.min() == 0 and obj.faces.max() == len(obj.vertices) - 1
    # no zero-area triangles (they would only confuse normals and sampling)
    tri = obj.vertices[obj.faces]
    area = 0.5 * np.linalg.norm(np.cross(tri[:, 1] - tri[:, 0], tri[:, 2] - tri[:, 0]), axis=1)
    assert area.min() > 1e-6


def test_size_is_hand_held(obj):
    assert 100.0 <= obj.bbox_size.max() <= 200.0
    assert 100.0 <= obj.diameter <= 200.0
    # the origin is the bounding-box centre
    np.testing.assert_allclose(obj.bbox_min + obj.bbox_size / 2, 0.0, atol=1e-9)
    # diameter is the largest vertex distance (brute force over the box corners it must beat)
    corners_span = np.linalg.norm(obj.vertices[:, None] - obj.vertices[None, ::7], axis=2).max()
    assert obj.diameter >= corners_span - 1e-9
    assert obj.diameter <= np.linalg.norm(obj.bbox_size) + 1e-9


def test_faces_wind_outwards_and_parts_are_closed():
    m = default_mesh()
    tri = m.vertices[m.faces]
    from tracker.objects.keypoints import _winding_numbers

    for p, name in enumerate(PART_NAMES):
        t = tri[m.face_part == p]
        # a point deep inside each convex part: the mean of its triangle centres
        inside = t.mean(axis=(0, 1))
        w_in = _winding_numbers(inside[None], t)[0]
        w_out = _winding_numbers(np.array([[500.0, 500.0, 500.0]]), t)[0]
        assert w_in == pytest.approx(1.0, abs=1e-6), name  # closed and outward (-1 if inward)
        assert w_out == pytest.approx(0.0, abs=1e-6), name


def test_colours_are_flat_per_face_and_parts_differ(obj):
    m = default_mesh()
    c = m.vertex_colors.astype(int)[m.faces]  # (M, 3 corners, 3)
    assert np.all(c == c[:, :1]), "each face must have one flat colour"
    face_col = c[:, 0].astype(float)
    means = np.array([face_col[m.face_part == p].mean(axis=0) for p in range(len(PART_NAMES))])
    for a, b in itertools.combinations(range(len(PART_NAMES)), 2):
        assert np.linalg.norm(means[a] - means[b]) > 40, (PART_NAMES[a], PART_NAMES[b])
    # every part shows more than one colour (pattern or sides), so its orientation is visible
    for p in range(len(PART_NAMES)):
        assert len(np.unique(face_col[m.face_part == p], axis=0)) >= 2, PART_NAMES[p]


def test_body_sides_have_distinct_hues():
    m = default_mesh()
    tri = m.vertices[m.faces]
    n = np.cross(tri[:, 1] - tri[:, 0], tri[:, 2] - tri[:, 0])
    n /= np.linalg.norm(n, axis=1, keepdims=True)
    body = m.face_part == PART_NAMES.index("body")
    side_means = []
    for axis, sign in itertools.product(range(3), (-1, 1)):
        sel = body & (n[:, axis] * sign > 0.99)
        assert sel.sum() >= 2
        side_means.append(m.vertex_colors[m.faces[sel, 0]].astype(float).mean(axis=0))
    for a, b in itertools.combinations(range(6), 2):
        assert np.linalg.norm(side_means[a] - side_means[b]) > 30


def test_keypoints_are_named_distinct_surface_vertices(obj):
    assert obj.num_keypoints >= 8
    assert len(set(obj.keypoint_names)) == obj.num_keypoints
    assert "nozzle_tip" in obj.keypoint_names and "knob_top" in obj.keypoint_names
    # each keypoint is exactly a mesh vertex, and on the surface
    d_vert = np.linalg.norm(obj.vertices[None] - obj.keypoints[:, None], axis=2).min(axis=1)
    assert d_vert.max() < 1e-9
    assert keypoint_surface_distance(obj.vertices, obj.faces, obj.keypoints).max() < 1e-6
    # visually distinct places: well apart from each other
    pair = np.linalg.norm(obj.keypoints[:, None] - obj.keypoints[None], axis=2)
    assert pair[~np.eye(len(pair), dtype=bool)].min() > 15.0
    # the nozzle tip is the front-most point of the object
    assert obj.keypoints[obj.keypoint_names.index("nozzle_tip"), 0] == pytest.approx(obj.vertices[:, 0].max())


def test_no_rotation_maps_the_keypoints_onto_themselves(obj):
    # A rotation mapping the set onto itself permutes it and preserves all distances. When
    # every keypoint's sorted distances to the others are unique, only the identity
    # permutation preserves distances, and 4 non-coplanar points then force R = I.
    kp = obj.keypoints
    d = np.linalg.norm(kp[:, None] - kp[None], axis=2)
    sig = np.sort(d, axis=1)
    for a, b in itertools.combinations(range(len(kp)), 2):
        assert np.abs(sig[a] - sig[b]).max() > 1.0
    centred = kp - kp.mean(axis=0)
    assert np.linalg.svd(centred, compute_uv=False)[-1] > 10.0  # not coplanar


def test_no_rotation_maps_the_shape_onto_itself(obj):
    # Score a rotation about the surface centroid (which any symmetry fixes) by a two-sided
    # 98th-percentile nearest-neighbour distance between two independent surface samplings:
    # a mean would hide a small part (the nozzle) landing where nothing is.
    pts = sample_surface(obj.vertices, obj.faces, 2000, seed=1)
    other = sample_surface(obj.vertices, obj.faces, 2000, seed=2)
    c = pts.mean(axis=0)
    tree = cKDTree(pts)

    def score(R):
        q = (other - c) @ R.T + c
        return max(np.percentile(tree.query(q)[0], 98), np.percentile(cKDTree(q).query(pts)[0], 98))

    baseline = score(np.eye(3))  # sampling noise: what a true symmetry would score
    rots = Rotation.random(1000, random_state=0).as_matrix()
    special = [Rotation.from_rotvec(np.pi / k * np.eye(3)[a]).as_matrix() for a in range(3) for k in (1, 2, 3)]
    special += [Rotation.from_rotvec(np.pi * np.asarray(ax) / np.linalg.norm(ax)).as_matrix()
                for ax in ([1, 1, 0], [1, 0, 1], [0, 1, 1], [1, -1, 0])]
    rots = np.concatenate([rots, np.array(special)])
    angles = np.degrees(np.arccos(np.clip((np.trace(rots, axis1=1, axis2=2) - 1) / 2, -1, 1)))
    rots = rots[angles > 20.0]
    scores = np.array([score(R) for R in rots])
    assert scores.min() > 2.5 * baseline, (scores.min(), baseline)
