"""Mesh reading (PLY/OBJ/STL/GLB, vertex and face colours, textures, glTF scenes and atlases)
and the unreadable-mesh errors a user can cause."""

import numpy as np
import pytest
import trimesh
from kp_meshes import QUAD_BGR, TET_UV, TET_V, colored_box, quad_texture, write_textured_glb, write_textured_obj
from kp_meshes import kptrack_error_text as _err

from tracker.cli import main
from tracker.objects.mesh_io import read_mesh
from tracker.objects.object_dir import init_object
from tracker.objects.texture import sample_texture


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


# ---------------------------------------------------------------- user errors
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
