"""Object directories: write/load round trips (plain, textured, BOP models folder),
`kptrack object init` and the missing-file errors a user can cause."""

import json

import numpy as np
import pytest
import trimesh
from kp_meshes import BOX_CORNERS, QUAD_BGR, TET_UV, TET_V, colored_box, quad_texture, write_keypoints, write_textured_obj
from kp_meshes import kptrack_error_text as _err

from tracker.cli import main
from tracker.objects.keypoints import keypoint_surface_distance
from tracker.objects.mesh_io import write_ply
from tracker.objects.model import ObjectModel
from tracker.objects.object_dir import init_object, load_object, write_object_dir


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
