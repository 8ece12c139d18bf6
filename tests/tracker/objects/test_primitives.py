"""Box and cylinder meshes for `kptrack object init --box / --cylinder`: sizes, outward faces,
closed surfaces with their keypoints on them, texture layout, and the command with its bad input."""

import cv2
import numpy as np
import pytest

from tracker.camera import Camera
from tracker.cli import main
from tracker.errors import KptrackError
from tracker.geometry import look_at
from tracker.objects import keypoint_surface_distance, load_object
from tracker.objects.primitives import box_keypoints, box_mesh, cylinder_keypoints, cylinder_mesh, parse_dims
from tracker.render import Renderer


def _outward(m):
    v, f = m.vertices, m.faces
    n = np.cross(v[f[:, 1]] - v[f[:, 0]], v[f[:, 2]] - v[f[:, 0]])
    centre = v[f].mean(1)
    return np.einsum("ij,ij->i", n, centre)  # > 0: the face's normal points away from the origin


def test_box_size_faces_and_texture_cells():
    tex = np.zeros((200, 300, 3), np.uint8)
    m = box_mesh((80.0, 60.0, 40.0), tex)
    assert m.vertices.shape == (24, 3) and m.faces.shape == (12, 3)
    assert np.allclose(m.vertices.max(0) - m.vertices.min(0), [80, 60, 40]) and np.allclose(m.vertices.mean(0), 0)
    assert np.all(_outward(m) > 0)
    cells = {(int(u * 3), int((1 - v) * 2)) for u, v in m.uv.reshape(6, 4, 2).mean(1)}
    assert len(cells) == 6  # every face its own cell of the 3 x 2 grid
    plain = box_mesh((80.0, 60.0, 40.0))
    assert plain.texture is None and len({tuple(c) for c in plain.vertex_colors}) == 6


def test_cylinder_size_and_outward_faces():
    m = cylinder_mesh(30.0, 100.0, segments=32)
    assert np.allclose(m.vertices.max(0), [30, 30, 50], atol=1e-9) and np.allclose(m.vertices.min(0), [-30, -30, -50], atol=1e-9)
    assert np.all(_outward(m) > 0)
    t = cylinder_mesh(30.0, 100.0, np.zeros((90, 90, 3), np.uint8), segments=32)
    assert t.uv.min() >= 0 and t.uv.max() <= 1 and len(t.uv) == len(t.vertices)


def _closed(m) -> bool:
    """Every edge of the mesh, vertices welded by position, is used once in each direction:
    a closed, consistently wound (watertight) surface."""
    _, weld = np.unique(np.round(m.vertices, 6), axis=0, return_inverse=True)
    f = weld.reshape(-1)[m.faces]
    directed = np.concatenate([f[:, [0, 1]], f[:, [1, 2]], f[:, [2, 0]]])
    if np.any(directed[:, 0] == directed[:, 1]):
        return False
    fwd = {tuple(e) for e in directed.tolist()}
    return len(fwd) == len(directed) and all((b, a) in fwd for a, b in fwd)


@pytest.mark.parametrize("mesh, kps", [
    (box_mesh((258.0, 189.0, 75.0)), box_keypoints((258.0, 189.0, 75.0))),
    (cylinder_mesh(30.0, 100.0), cylinder_keypoints(30.0, 100.0)),
    (cylinder_mesh(30.0, 100.0, np.zeros((90, 90, 3), np.uint8), segments=24), cylinder_keypoints(30.0, 100.0)),
])
def test_primitives_are_closed_with_keypoints_on_the_surface(mesh, kps):
    assert _closed(mesh)
    names, pts = kps
    assert len(set(names)) == len(names) == len(pts)
    assert np.all(keypoint_surface_distance(mesh.vertices, mesh.faces, pts) < 1e-6)


def test_primitive_keypoints_are_the_corners_and_the_axis_ends_and_rims():
    names, pts = box_keypoints((80.0, 60.0, 40.0))
    assert len(pts) == 8 and len({tuple(p) for p in pts.tolist()}) == 8
    assert np.allclose(np.abs(pts), [40.0, 30.0, 20.0])
    assert np.allclose(pts[names.index("corner+x-y+z")], [40.0, -30.0, 20.0])
    names, pts = cylinder_keypoints(30.0, 100.0)
    assert np.allclose(pts[names.index("top")], [0, 0, 50]) and np.allclose(pts[names.index("bottom")], [0, 0, -50])
    rim = pts[[i for i, n in enumerate(names) if "rim" in n]]
    assert len(rim) == 8 and np.allclose(np.hypot(rim[:, 0], rim[:, 1]), 30.0) and np.allclose(np.abs(rim[:, 2]), 50.0)
    assert np.allclose(pts[names.index("top_rim_90")], [0, 30, 50], atol=1e-9)


def test_parse_dims():
    assert parse_dims("80x60x40", 3, "--box") == (80.0, 60.0, 40.0)
    assert parse_dims("60x100", 2, "--cylinder") == (60.0, 100.0)
    for bad in ("80x60", "80x-1x40", "axbxc", "80x0x40", "80x60x", "80x60x40x5", "nanx1x1", "", "80x60xinf"):
        with pytest.raises(KptrackError, match="--box"):
            parse_dims(bad, 3, "--box")
    for bad in ("0x100", "-60x100", "60", "60x100x5", "60xabc"):
        with pytest.raises(KptrackError, match="--cylinder"):
            parse_dims(bad, 2, "--cylinder")


def test_object_init_box_with_texture_renders_each_face_from_its_cell(tmp_path, capsys):
    tex = np.zeros((200, 300, 3), np.uint8)
    colours = [(255, 0, 0), (0, 255, 0), (0, 0, 255), (255, 255, 0), (255, 0, 255), (0, 255, 255)]
    for i, c in enumerate(colours):
        tex[(i // 3) * 100:(i // 3 + 1) * 100, (i % 3) * 100:(i % 3 + 1) * 100] = c
    cv2.imwrite(str(tmp_path / "tex.png"), tex)
    assert main(["object", "init", "--box", "80x60x40", "--texture", str(tmp_path / "tex.png"), "--out", str(tmp_path / "box")]) == 0
    obj = load_object(tmp_path / "box")
    assert obj.is_textured and obj.num_keypoints == 8
    # the auto keypoints of a box are its 8 corners
    assert np.allclose(np.abs(obj.keypoints), np.tile([40.0, 30.0, 20.0], (8, 1)))
    # seen from +x, the +x face (cell 0) fills the middle of the image
    cam = Camera.from_fov(40.0, 160, 120)
    R, t = look_at(np.array([400.0, 0.0, 0.0]), np.zeros(3), up=np.array([0.0, 0.0, 1.0]))
    out = Renderer(obj).render(cam, R, t, ambient=1.0, specular=0.0)
    centre = out.color[60, 80].astype(int)
    assert out.mask[60, 80] and centre[0] > 100 and centre[1] < 60 and centre[2] < 60  # pure blue (BGR): cell 0's colour


def test_object_init_cylinder_is_diameter_by_height(tmp_path, capsys):
    assert main(["object", "init", "--cylinder", "60x100", "--out", str(tmp_path / "can")]) == 0
    obj = load_object(tmp_path / "can")
    assert np.allclose(obj.bbox_size, [60.0, 60.0, 100.0], atol=1e-6)
    assert obj.num_keypoints == 10 and obj.keypoint_names[:2] == ("top", "bottom")


def test_object_init_bad_input(tmp_path, capsys):
    assert main(["object", "init", "--out", str(tmp_path / "x")]) == 2
    assert "exactly one of" in capsys.readouterr().err
    assert main(["object", "init", "--box", "1x2", "--out", str(tmp_path / "x")]) == 2
    assert "--box 1x2" in capsys.readouterr().err
    for flag, bad in (("--box", "80x0x40"), ("--box", "80x-60x40"), ("--cylinder", "0x100"), ("--cylinder", "-60x100"),
                      ("--cylinder", "60xten")):
        assert main(["object", "init", f"{flag}={bad}", "--out", str(tmp_path / "x")]) == 2
        assert f"{flag} {bad}" in capsys.readouterr().err
    assert not (tmp_path / "x").exists()
    assert main(["object", "init", "--cylinder", "30x100", "--texture", str(tmp_path / "none.png"), "--out", str(tmp_path / "x")]) == 2
    assert "--texture" in capsys.readouterr().err
