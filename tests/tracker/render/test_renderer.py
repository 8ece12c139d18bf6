"""Tests for tracker/render/renderer.py: analytic depth and silhouettes, occlusion, texturing,
the near plane, back-face culling, buffer reuse across threads, and input errors."""

from __future__ import annotations

from concurrent.futures import ThreadPoolExecutor

import numpy as np
import pytest
import trimesh
from render_scenes import analytic_polygon_mask, make_camera, make_object, quad, rot

from tracker.camera import Camera
from tracker.errors import KptrackError
from tracker.geometry import MIN_DEPTH_MM, project, transform
from tracker.render import Renderer
from tracker.render.renderer import project_points


# ------------------------------------------------------------------ geometry of the raster
def test_tilted_plane_depth_matches_analytic_plane_at_pixel_centres():
    cam = make_camera()
    v, f = quad(30.0)
    obj = make_object(v, f)
    R = rot([1, 0.4, 0.1], 35.0)
    t = np.array([3.0, -2.0, 150.0])
    depth, mask = Renderer(obj).render_depth(cam, R, t)
    assert mask.sum() > 500
    # Plane n . X = d in the camera frame; the ray through pixel p is X = z * K^-1 p.
    n = R @ np.array([0, 0, 1.0])
    d = n @ t
    ys, xs = np.nonzero(mask)
    rays = np.stack([xs, ys, np.ones_like(xs)], 1).astype(np.float64) @ np.linalg.inv(cam.K).T
    z_true = d / (rays @ n)
    assert np.max(np.abs(depth[ys, xs] - z_true)) < 1e-3
    assert np.all(depth[~mask] == 0)
    assert depth.dtype == np.float32


def test_silhouette_matches_analytic_projected_polygon():
    cam = make_camera(120, 100)
    v, f = quad(25.0)
    obj = make_object(v, f)
    R = rot([0.3, 1, 0.2], 50.0)
    t = np.array([-4.0, 5.0, 130.0])
    out = Renderer(obj).render(cam, R, t)
    truth = analytic_polygon_mask(project(v, R, t, cam.K), cam.width, cam.height)
    iou = (out.mask & truth).sum() / (out.mask | truth).sum()
    assert iou > 0.99
    assert out.mask.sum() > 300


def test_near_triangle_hides_far_one_regardless_of_face_order():
    cam = make_camera()
    near_v, _ = quad(20.0, z=0.0)
    far_v, _ = quad(35.0, z=40.0)
    v = np.concatenate([near_v, far_v])
    red, blue = [0, 0, 255], [255, 0, 0]
    colors = [red] * 4 + [blue] * 4
    t = np.array([0, 0, 200.0])
    for faces in ([[4, 5, 6], [4, 6, 7], [0, 1, 2], [0, 2, 3]], [[0, 1, 2], [0, 2, 3], [4, 5, 6], [4, 6, 7]]):
        out = Renderer(make_object(v, faces, colors)).render(cam, np.eye(3), t, ambient=1.0, specular=0.0)
        c = (cam.height - 1) // 2, (cam.width - 1) // 2
        assert abs(out.depth[c] - 200.0) < 1e-3
        assert tuple(out.color[c]) == tuple(red)
        # Outside the near square but inside the far one: the far one shows.
        near_px = project(near_v, np.eye(3), t, cam.K)
        col = int(np.ceil(near_px[:, 0].max())) + 2
        assert abs(out.depth[c[0], col] - 240.0) < 1e-3
        assert tuple(out.color[c[0], col]) == tuple(blue)


def test_texture_mapped_quad_shows_right_texels():
    # 4x4 texels; fronto-parallel quad whose texel centres land exactly on pixel centres.
    cam = Camera(K=np.array([[100.0, 0, 50], [0, 100.0, 50], [0, 0, 1]]), dist=None, width=101, height=101)
    rng = np.random.default_rng(3)
    tex = rng.integers(0, 256, (4, 4, 3), dtype=np.uint8)
    v, f = quad(30.0)
    # Model y grows downwards in the image (R = I), and texture row 0 is v = 1 (top).
    uv = np.array([[0.0, 1.0], [1.0, 1.0], [1.0, 0.0], [0.0, 0.0]])
    obj = make_object(v, f, uv=uv, texture=tex)
    out = Renderer(obj).render(cam, np.eye(3), np.array([0, 0, 100.0]), ambient=1.0, specular=0.0)
    for r in range(4):
        for c in range(4):
            px = 20 + 20 * c, 20 + 20 * r
            got = out.color[px[1], px[0]].astype(int)
            assert np.all(np.abs(got - tex[r, c].astype(int)) <= 1), (r, c, got, tex[r, c])
    # Between texels: the bilinear mix of the two neighbours.
    mid = out.color[20, 30].astype(float)
    assert np.all(np.abs(mid - 0.5 * (tex[0, 0].astype(float) + tex[0, 1])) <= 1.0)


def test_object_behind_camera_renders_nothing_and_keeps_background():
    cam = make_camera()
    v, f = quad(30.0)
    bg = np.full((cam.height, cam.width, 3), 77, np.uint8)
    out = Renderer(make_object(v, f)).render(cam, np.eye(3), np.array([0, 0, -150.0]), background=bg)
    assert not out.mask.any()
    assert np.all(out.depth == 0)
    assert np.all(out.color == 77)
    assert out.color is not bg


def test_straddling_near_plane_skips_only_those_triangles():
    cam = make_camera()
    v = np.array([[-10, -10, 100], [10, -10, 100], [0, 10, 100], [-10, -10, -5], [10, -10, 0.5], [0, 10, 50]], float)
    obj = make_object(v, [[0, 1, 2], [3, 4, 5]])
    depth, mask = Renderer(obj).render_depth(cam, np.eye(3), np.zeros(3))
    assert mask.any()
    assert np.allclose(depth[mask], 100.0, atol=1e-3)


def test_render_depth_equals_render_and_background_composited():
    cam = make_camera()
    v, f = quad(30.0)
    rend = Renderer(make_object(v, f, colors=np.full((4, 3), 200)))
    R, t = rot([1, 1, 0], 20), np.array([0, 0, 160.0])
    bg = np.random.default_rng(0).integers(0, 255, (cam.height, cam.width, 3), dtype=np.uint8)
    out = rend.render(cam, R, t, background=bg)
    d, m = rend.render_depth(cam, R, t)
    assert np.array_equal(d, out.depth) and np.array_equal(m, out.mask)
    assert np.array_equal(out.color[~out.mask], bg[~out.mask])
    assert not np.array_equal(out.color[out.mask], bg[out.mask])


def test_reused_buffers_give_the_same_images_across_sizes_and_threads():
    cam = make_camera(120, 100)
    v, f = quad(30.0)
    obj = make_object(v, f, colors=np.array([[255, 0, 0], [0, 255, 0], [0, 0, 255], [255, 255, 0]]))
    poses = [(rot([1, 1, 0], 20), np.array([0, 0, z])) for z in (90.0, 400.0, 150.0, 90.0)]
    fresh = [Renderer(obj).render(cam, R, t) for R, t in poses]
    shared = Renderer(obj)
    for (R, t), ref in zip(poses, fresh):
        got = shared.render(cam, R, t)
        assert np.array_equal(got.color, ref.color) and np.array_equal(got.depth, ref.depth)
    with ThreadPoolExecutor(4) as ex:
        outs = list(ex.map(lambda i: shared.render(cam, *poses[i % 4]), range(32)))
    for i, got in enumerate(outs):
        assert np.array_equal(got.color, fresh[i % 4].color) and np.array_equal(got.depth, fresh[i % 4].depth)


def test_project_points_is_the_geometry_projection_in_front_of_the_camera():
    cam = make_camera()
    R, t = rot([0.5, -1, 0.2], 70.0), np.array([5.0, -8.0, 40.0])
    xyz = np.random.default_rng(4).uniform(-60, 60, (50, 3))
    z, uv = project_points(xyz, cam.K, R, t)
    front = z > MIN_DEPTH_MM
    assert 0 < front.sum() < len(xyz)
    assert np.allclose(uv[front], project(xyz, R, t, cam.K)[front], rtol=1e-12, atol=1e-9)
    assert np.allclose(z, transform(R, t, xyz)[:, 2], rtol=0, atol=1e-12)


# ------------------------------------------------------------------ back-face culling
def test_culling_changes_nothing_on_closed_meshes():
    cam = make_camera(80, 64)
    box = trimesh.creation.box(extents=(30, 20, 25))
    sph = trimesh.creation.icosphere(subdivisions=2, radius=12.0)
    v = np.concatenate([box.vertices, sph.vertices + [20.0, 0, 0]])
    f = np.concatenate([box.faces, (sph.faces + len(box.vertices))[:, ::-1]])
    obj = make_object(v, f, colors=np.random.default_rng(2).integers(0, 256, (len(v), 3)))
    culled, full = Renderer(obj), Renderer(obj, cull=False)
    assert np.all(culled.cull != 0)
    for axis, deg in (([1, 0, 0], 0.0), ([1, 1, 0], 60.0), ([0.2, 1, 0.5], 200.0)):
        R, t = rot(axis, deg), np.array([3.0, -1.0, 120.0])
        a, b = culled.render(cam, R, t), full.render(cam, R, t)
        assert np.array_equal(a.mask, b.mask)
        assert np.array_equal(a.depth, b.depth)
        assert np.array_equal(a.color, b.color)


# ------------------------------------------------------------------ errors
def test_bad_inputs_raise_kptrack_error():
    cam = make_camera()
    v, f = quad(30.0)
    rend = Renderer(make_object(v, f))
    with pytest.raises(KptrackError, match="R_m2c"):
        rend.render(cam, np.eye(4), np.zeros(3))
    with pytest.raises(KptrackError, match="t_m2c"):
        rend.render(cam, np.eye(3), np.array([0, 0, np.nan]))
    with pytest.raises(KptrackError, match="background"):
        rend.render(cam, np.eye(3), np.array([0, 0, 100.0]), background=np.zeros((10, 10, 3), np.uint8))
    # Renderer takes any object with the ObjectModel fields, and checks them itself.
    class Loose:
        name, vertices, faces, vertex_colors, uv, texture, diameter = "loose", v, np.array([[0, 1, 9]]), None, None, None, 1.0

    with pytest.raises(KptrackError, match="face indices"):
        Renderer(Loose())
    with pytest.raises(KptrackError, match="light_dir_cam"):
        rend.render(cam, np.eye(3), np.array([0, 0, 100.0]), light_dir_cam=(0, 0, 0))
