"""Object models: ObjectModel, mesh reading (PLY/OBJ/STL/GLB, colours, textures), object
directories, automatic keypoints, keypoint checks, the `kptrack object init` CLI and the
errors a user can cause."""

import json
import struct
from pathlib import Path

import cv2
import numpy as np
import pytest
import trimesh

from tracker.cli import main
from tracker.errors import KptrackError
from tracker.objects import (
    ObjectModel,
    _closest_point_distances,
    _winding_numbers,
    auto_keypoints,
    farthest_point_sampling,
    init_object,
    keypoint_surface_distance,
    load_object,
    mesh_centroid,
    mesh_diameter,
    read_mesh,
    sample_surface,
    sample_texture,
    write_object_dir,
    write_ply,
)

# A tetrahedron with one texture quadrant per vertex: its vertex colours are known exactly.
TET_V = np.array([[0, 0, 0], [100, 0, 0], [0, 80, 0], [0, 0, 60]], float)
TET_F = np.array([[0, 2, 1], [0, 1, 3], [0, 3, 2], [1, 2, 3]])
TET_UV = np.array([[0.25, 0.75], [0.75, 0.75], [0.25, 0.25], [0.75, 0.25]])  # v up: TL, TR, BL, BR
QUAD_BGR = np.array([[0, 0, 255], [0, 255, 0], [255, 0, 0], [0, 255, 255]], np.uint8)  # red green blue yellow


def quad_texture(colors=QUAD_BGR, n=64):
    t = np.zeros((n, n, 3), np.uint8)
    h = n // 2
    t[:h, :h], t[:h, h:], t[h:, :h], t[h:, h:] = colors
    return t


def write_textured_obj(d: Path) -> Path:
    cv2.imwrite(str(d / "tex.png"), quad_texture())
    (d / "tex.mtl").write_text("newmtl mat0\nKd 1 1 1\nmap_Kd tex.png\n")
    lines = ["mtllib tex.mtl"] + [f"v {x} {y} {z}" for x, y, z in TET_V] + [f"vt {u} {v}" for u, v in TET_UV]
    lines += ["usemtl mat0"] + [f"f {a + 1}/{a + 1} {b + 1}/{b + 1} {c + 1}/{c + 1}" for a, b, c in TET_F]
    (d / "tet.obj").write_text("\n".join(lines) + "\n")
    return d / "tet.obj"


def write_textured_glb(path: Path, translations=((0, 0, 0),), second_texture=None) -> Path:
    """A binary glTF of the tetrahedron (one node per translation). With second_texture
    (BGR colours of 4 quadrants), the second node uses a second mesh/material/texture."""
    textures = [quad_texture()] + ([quad_texture(second_texture)] if second_texture is not None else [])
    blobs = [TET_V.astype("<f4").tobytes(),
             np.stack([TET_UV[:, 0], 1 - TET_UV[:, 1]], 1).astype("<f4").tobytes(),  # glTF uv: v down
             TET_F.astype("<u4").tobytes()] + [cv2.imencode(".png", t)[1].tobytes() for t in textures]
    views, buf = [], b""
    for b in blobs:
        views.append({"buffer": 0, "byteOffset": len(buf), "byteLength": len(b)})
        buf += b + b"\0" * (-len(b) % 4)
    n_mat = len(textures)
    meshes = [{"primitives": [{"attributes": {"POSITION": 0, "TEXCOORD_0": 1}, "indices": 2, "material": m}]} for m in range(n_mat)]
    hdr = {
        "asset": {"version": "2.0"}, "scene": 0, "scenes": [{"nodes": list(range(len(translations)))}],
        "nodes": [{"mesh": min(i, n_mat - 1), "translation": list(map(float, t))} for i, t in enumerate(translations)],
        "meshes": meshes,
        "materials": [{"name": f"quad{m}", "pbrMetallicRoughness": {"baseColorTexture": {"index": m}}} for m in range(n_mat)],
        "textures": [{"source": m} for m in range(n_mat)],
        "images": [{"bufferView": 3 + m, "mimeType": "image/png"} for m in range(n_mat)],
        "accessors": [
            {"bufferView": 0, "componentType": 5126, "count": 4, "type": "VEC3", "min": TET_V.min(0).tolist(), "max": TET_V.max(0).tolist()},
            {"bufferView": 1, "componentType": 5126, "count": 4, "type": "VEC2"},
            {"bufferView": 2, "componentType": 5125, "count": 12, "type": "SCALAR"},
        ],
        "bufferViews": views, "buffers": [{"byteLength": len(buf)}],
    }
    js = json.dumps(hdr).encode()
    js += b" " * (-len(js) % 4)
    out = struct.pack("<4sII", b"glTF", 2, 12 + 8 + len(js) + 8 + len(buf))
    out += struct.pack("<I4s", len(js), b"JSON") + js + struct.pack("<I4s", len(buf), b"BIN\0") + buf
    path.write_bytes(out)
    return path


def colored_box(extents=(100.0, 60.0, 40.0)) -> trimesh.Trimesh:
    """A box with its 4 low-x corners blue, the rest red (trimesh colours are RGBA)."""
    b = trimesh.creation.box(extents)
    c = np.tile([255, 0, 0, 255], (len(b.vertices), 1)).astype(np.uint8)
    c[b.vertices[:, 0] < 0] = [0, 0, 255, 255]
    b.visual.vertex_colors = c
    return b


def write_keypoints(path: Path, names, points) -> Path:
    path.write_text(json.dumps({"names": list(names), "points_mm": np.asarray(points).tolist()}))
    return path


BOX_CORNERS = np.array([[x, y, z] for x in (-50, 50) for y in (-30, 30) for z in (-20, 20)], float)


# ---------------------------------------------------------------- ObjectModel
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


def test_pillow_images_convert_to_bgr():
    from tracker.objects import _pil_to_bgr

    class FakePil:  # what trimesh hands over when Pillow is installed
        def convert(self, mode):
            assert mode == "RGB"
            return np.array([[[10, 20, 30]]], np.uint8)

    np.testing.assert_array_equal(_pil_to_bgr(FakePil()), [[[30, 20, 10]]])
    assert _pil_to_bgr(None) is None


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


# ---------------------------------------------------------------- mesh reading
@pytest.mark.parametrize("ext", ["ply", "obj", "glb", "stl"])
def test_read_mesh_formats_keep_vertex_colours(tmp_path, ext):
    b = colored_box()
    path = tmp_path / f"box.{ext}"
    b.export(path)
    m = read_mesh(path)
    assert m.faces.shape == (12, 3) and m.faces.dtype == np.int32
    tri = m.vertices[m.faces]
    np.testing.assert_allclose(np.sort(tri.reshape(-1, 3), axis=0)[[0, -1]], [[-50, -30, -20], [50, 30, 20]])
    if ext == "stl":
        assert m.vertex_colors is None
        return
    # BGR: blue where x < 0, red elsewhere
    expect = np.where((m.vertices[:, 0] < 0)[:, None], [255, 0, 0], [0, 0, 255])
    np.testing.assert_array_equal(m.vertex_colors, expect)


def test_read_ply_face_colours_become_flat_vertex_colours(tmp_path):
    b = trimesh.creation.box((10, 10, 10))
    fc = np.zeros((12, 4), np.uint8)
    fc[:, 3] = 255
    fc[:, 1] = np.arange(12) * 20  # green channel identifies the face
    b.visual.face_colors = fc
    b.export(tmp_path / "fc.ply")
    m = read_mesh(tmp_path / "fc.ply")
    assert len(m.vertices) == 36
    np.testing.assert_array_equal(m.vertex_colors[m.faces[:, 0], 1], np.arange(12) * 20)
    assert np.all(m.vertex_colors[m.faces] == m.vertex_colors[m.faces][:, :1])


@pytest.mark.parametrize("kind", ["obj", "glb"])
def test_read_textured_mesh(tmp_path, kind):
    path = write_textured_obj(tmp_path) if kind == "obj" else write_textured_glb(tmp_path / "tet.glb")
    m = read_mesh(path)
    assert m.texture is not None and m.texture.shape == (64, 64, 3) and m.texture.dtype == np.uint8
    np.testing.assert_array_equal(m.texture, quad_texture())
    # match vertices to the tetrahedron's (loaders may reorder/split), then check uv and colours
    order = np.linalg.norm(m.vertices[:, None] - TET_V[None], axis=2).argmin(axis=1)
    np.testing.assert_allclose(m.vertices, TET_V[order])
    np.testing.assert_allclose(m.uv, TET_UV[order], atol=1e-6)
    np.testing.assert_array_equal(m.vertex_colors, QUAD_BGR[order])


def test_glb_scene_applies_node_transforms_and_builds_an_atlas(tmp_path):
    second = QUAD_BGR[::-1].copy()
    path = write_textured_glb(tmp_path / "two.glb", translations=((0, 0, 0), (300, 0, 0)), second_texture=second)
    m = read_mesh(path)
    assert len(m.vertices) == 8 and len(m.faces) == 8
    moved = m.vertices[:, 0] > 150
    assert moved.sum() == 4
    np.testing.assert_allclose(np.sort(m.vertices[moved], axis=0), np.sort(TET_V + [300, 0, 0], axis=0))
    # one atlas holding both textures; looking it up at the remapped uv gives each part's colours
    assert m.texture.shape[0] > 64
    order = np.linalg.norm((m.vertices - np.where(moved[:, None], [300, 0, 0], 0))[:, None] - TET_V[None], axis=2).argmin(axis=1)
    expect = np.where(moved[:, None], second[order], QUAD_BGR[order])
    np.testing.assert_array_equal(m.vertex_colors, expect)
    np.testing.assert_array_equal(sample_texture(m.texture, m.uv), expect)


def test_sample_texture_bilinear_and_repeat():
    t = np.zeros((2, 2, 3), np.uint8)
    t[0, 0], t[0, 1], t[1, 0], t[1, 1] = 0, 100, 200, 60  # rows: v=1 on top
    got = sample_texture(t, np.array([[0.0, 1.0], [1.0, 1.0], [0.0, 0.0], [0.5, 0.5], [1.5, 0.0]]))[:, 0]
    np.testing.assert_array_equal(got, [0, 100, 200, 90, 130])  # last: u=1.5 repeats to 0.5


# ---------------------------------------------------------------- object directories
def test_write_and_load_object_dir_round_trip(tmp_path):
    obj = load_object("default")
    sym = np.eye(4)
    sym[:3, :3] = np.diag([-1.0, -1.0, 1.0])
    obj2 = ObjectModel.from_mesh("drill", obj.vertices, obj.faces, obj.keypoint_names, obj.keypoints,
                                 vertex_colors=obj.vertex_colors, symmetries_discrete=[sym])
    d = write_object_dir(obj2, tmp_path / "drill")
    assert {p.name for p in d.iterdir()} == {"model.ply", "keypoints.json", "models_info.json"}
    info = json.loads((d / "models_info.json").read_text())["1"]
    assert info["diameter"] == pytest.approx(obj.diameter)
    assert [info[k] for k in ("min_x", "min_y", "min_z")] == pytest.approx(obj.bbox_min.tolist())
    assert [info[k] for k in ("size_x", "size_y", "size_z")] == pytest.approx(obj.bbox_size.tolist())
    assert info["symmetries_discrete"] == [sym.reshape(-1).tolist()]
    back = load_object(d)
    assert back.name == "drill" and back.path == d
    np.testing.assert_allclose(back.vertices, obj.vertices, atol=1e-4)  # float32 in the PLY
    np.testing.assert_array_equal(back.faces, obj.faces)
    np.testing.assert_array_equal(back.vertex_colors, obj.vertex_colors)
    assert back.keypoint_names == obj.keypoint_names
    np.testing.assert_allclose(back.keypoints, obj.keypoints)
    assert back.diameter == pytest.approx(obj.diameter)
    np.testing.assert_allclose(back.symmetries_discrete[0], sym)


def test_textured_object_dir_keeps_texture_and_uv(tmp_path):
    d = init_object(write_textured_obj(tmp_path), out_dir=tmp_path / "o", num_keypoints=3)
    assert (d / "texture.png").is_file()
    assert b"TextureFile texture.png" in (d / "model.ply").read_bytes()[:400]
    obj = load_object(d)
    assert obj.is_textured
    np.testing.assert_array_equal(obj.texture, quad_texture())
    order = np.linalg.norm(obj.vertices[:, None] - TET_V[None], axis=2).argmin(axis=1)
    np.testing.assert_allclose(obj.uv, TET_UV[order], atol=1e-6)
    np.testing.assert_array_equal(obj.vertex_colors, QUAD_BGR[order])


def test_load_bop_models_folder(tmp_path):
    b = colored_box()
    write_ply(tmp_path / "obj_000001.ply", b.vertices, b.faces, np.asarray(b.visual.vertex_colors)[:, 2::-1])
    write_keypoints(tmp_path / "keypoints.json", [f"c{i}" for i in range(8)], BOX_CORNERS)
    (tmp_path / "models_info.json").write_text(json.dumps({"1": {"diameter": 123.0}}))
    obj = load_object(tmp_path)
    assert obj.diameter == 123.0 and obj.num_keypoints == 8 and len(obj.faces) == 12


# ---------------------------------------------------------------- init + CLI
@pytest.mark.parametrize("ext", ["ply", "obj", "stl", "glb"])
@pytest.mark.parametrize("units", ["mm", "m"])
def test_cli_object_init(tmp_path, capsys, ext, units):
    scale = 0.001 if units == "m" else 1.0
    b = colored_box()
    b.apply_scale(scale)
    b.export(tmp_path / f"box.{ext}")
    out = tmp_path / "obj"
    rc = main(["object", "init", str(tmp_path / f"box.{ext}"), "--keypoints", "auto", "--num-keypoints", "6",
               "--units", units, "--out", str(out)])
    assert rc == 0 and str(out) in capsys.readouterr().out
    obj = load_object(out)
    assert obj.name == "box"
    np.testing.assert_allclose(obj.bbox_size, [100, 60, 40], atol=1e-4)  # always mm on disk
    assert obj.diameter == pytest.approx(np.linalg.norm([100, 60, 40]), rel=1e-6)
    assert obj.keypoint_names == ("kp0", "kp1", "kp2", "kp3", "kp4", "kp5", "centroid")
    assert keypoint_surface_distance(obj.vertices, obj.faces, obj.keypoints).max() < 1e-3
    if ext == "stl":
        assert obj.vertex_colors is None
    else:
        blue = obj.vertices[:, 0] < 0
        assert np.all(obj.vertex_colors[blue] == [255, 0, 0]) and np.all(obj.vertex_colors[~blue] == [0, 0, 255])


def test_init_with_keypoint_file(tmp_path):
    trimesh.creation.box((100, 60, 40)).export(tmp_path / "box.ply")
    names = ["front", "back", "top", "side", "middle"]
    pts = [[50, 0, 0], [-50, 0, 0], [0, 0, 20], [0, 30, 0], [0, 0, 0]]  # 'middle' is inside: allowed
    kp = write_keypoints(tmp_path / "kp.json", names, pts)
    obj = load_object(init_object(tmp_path / "box.ply", keypoints=kp, out_dir=tmp_path / "o"))
    assert obj.keypoint_names == tuple(names)
    np.testing.assert_allclose(obj.keypoints, pts)


# ---------------------------------------------------------------- user errors
def _err(fn, *args, **kw) -> str:
    with pytest.raises(KptrackError) as e:
        fn(*args, **kw)
    return str(e.value)


@pytest.mark.parametrize("name,content", [("junk.ply", b"hello" * 20), ("junk.glb", b"\0" * 64), ("junk.stl", b"solid x\nfacet nonsense\n")])
def test_unreadable_mesh(tmp_path, name, content):
    (tmp_path / name).write_bytes(content)
    msg = _err(init_object, tmp_path / name, out_dir=tmp_path / "o")
    assert name in msg and ("re-export" in msg.lower() or "export a triangle mesh" in msg.lower())


def test_unreadable_mesh_via_cli_prints_one_line(tmp_path, capsys):
    (tmp_path / "junk.ply").write_bytes(b"not a mesh")
    rc = main(["object", "init", str(tmp_path / "junk.ply"), "--out", str(tmp_path / "o")])
    err = capsys.readouterr().err
    assert rc == 2 and "junk.ply" in err and "Traceback" not in err and len(err.strip().splitlines()) == 1


def test_empty_mesh_missing_mesh_and_unknown_format(tmp_path):
    (tmp_path / "pts.obj").write_text("v 0 0 0\nv 1 0 0\nv 0 1 0\n")
    msg = _err(init_object, tmp_path / "pts.obj", out_dir=tmp_path / "o")
    assert "pts.obj" in msg and "no faces" in msg
    msg = _err(init_object, tmp_path / "nope.ply", out_dir=tmp_path / "o")
    assert "nope.ply" in msg and "not found" in msg
    (tmp_path / "m.fbx").write_bytes(b"x")
    msg = _err(init_object, tmp_path / "m.fbx", out_dir=tmp_path / "o")
    assert "m.fbx" in msg and "PLY, OBJ, STL or GLB" in msg


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


def test_bad_init_arguments(tmp_path):
    trimesh.creation.box((100, 60, 40)).export(tmp_path / "box.ply")
    assert "--units" in _err(init_object, tmp_path / "box.ply", out_dir=tmp_path / "o", units="cm")
    assert "--num-keypoints" in _err(init_object, tmp_path / "box.ply", out_dir=tmp_path / "o", num_keypoints=2)
    assert "kp.json" in _err(init_object, tmp_path / "box.ply", keypoints=tmp_path / "kp.json", out_dir=tmp_path / "o")


def test_object_dir_missing_files(tmp_path):
    trimesh.creation.box((100, 60, 40)).export(tmp_path / "box.ply")
    d = init_object(tmp_path / "box.ply", out_dir=tmp_path / "o")
    assert load_object(d).num_keypoints == 9
    assert "no such object directory" in _err(load_object, tmp_path / "missing")
    assert "mesh file, not an object directory" in _err(load_object, tmp_path / "box.ply")
    (d / "models_info.json").rename(tmp_path / "mi.json")
    msg = _err(load_object, d)
    assert "models_info.json" in msg and "kptrack object init" in msg
    (tmp_path / "mi.json").rename(d / "models_info.json")
    (d / "keypoints.json").rename(tmp_path / "kp.json")
    msg = _err(load_object, d)
    assert "keypoints.json" in msg and "kptrack object init" in msg
    (tmp_path / "kp.json").rename(d / "keypoints.json")
    (d / "model.ply").rename(tmp_path / "model.ply")
    msg = _err(load_object, d)
    assert "no mesh file" in msg and str(d) in msg
    (d / "a.ply").write_bytes((tmp_path / "model.ply").read_bytes())
    (d / "b.obj").write_text("v 0 0 0\n")
    assert "several mesh files" in _err(load_object, d)
    (d / "models_info.json").write_text("{not json")
    assert "models_info.json" in _err(load_object, d)
