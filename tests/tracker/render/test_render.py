"""Tests for tracker/render.py: analytic depth and silhouettes, occlusion, texturing,
keypoint visibility, numba-vs-numpy twins and overlays."""

from __future__ import annotations

import math

import numpy as np
import pytest

from tracker.camera import Camera
from tracker.errors import KptrackError
from tracker.objects import ObjectModel, load_object
from tracker.render import (
    Renderer,
    _rasterize_kernel,
    corner_normals,
    cull_signs,
    draw_hud,
    draw_overlay,
    keypoint_visibility,
    rasterize_ref,
    shade_ref,
)


def make_camera(width=96, height=80, f=90.0, cx=None, cy=None):
    K = np.array([[f, 0.0, (width - 1) / 2 if cx is None else cx], [0.0, f * 1.05, (height - 1) / 2 if cy is None else cy], [0, 0, 1.0]])
    return Camera(K=K, dist=None, width=width, height=height)


def make_object(vertices, faces, colors=None, uv=None, texture=None, keypoints=None):
    kp = np.zeros((0, 3)) if keypoints is None else np.asarray(keypoints, np.float64)
    return ObjectModel.from_mesh(
        "test", np.asarray(vertices, np.float64), np.asarray(faces, np.int32), [f"k{i}" for i in range(len(kp))], kp,
        vertex_colors=None if colors is None else np.asarray(colors, np.uint8),
        uv=None if uv is None else np.asarray(uv, np.float32), texture=texture,
    )


def quad(half=30.0, z=0.0):
    v = np.array([[-half, -half, z], [half, -half, z], [half, half, z], [-half, half, z]])
    return v, np.array([[0, 1, 2], [0, 2, 3]])


def rot(axis, deg):
    axis = np.asarray(axis, float) / np.linalg.norm(axis)
    a = math.radians(deg)
    Kx = np.array([[0, -axis[2], axis[1]], [axis[2], 0, -axis[0]], [-axis[1], axis[0], 0]])
    return np.eye(3) + math.sin(a) * Kx + (1 - math.cos(a)) * Kx @ Kx


def analytic_polygon_mask(poly_uv, width, height):
    """Pixel centres inside a convex polygon (any winding)."""
    ys, xs = np.mgrid[0:height, 0:width].astype(np.float64)
    n = len(poly_uv)
    signs = []
    for i in range(n):
        a, b = poly_uv[i], poly_uv[(i + 1) % n]
        signs.append((b[0] - a[0]) * (ys - a[1]) - (b[1] - a[1]) * (xs - a[0]))
    s = np.stack(signs)
    return np.all(s >= 0, 0) | np.all(s <= 0, 0)


def project(K, R, t, pts):
    pc = pts @ R.T + t
    q = pc @ K.T
    return q[:, :2] / q[:, 2:3]


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
    truth = analytic_polygon_mask(project(cam.K, R, t, v), cam.width, cam.height)
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
        near_px = project(cam.K, np.eye(3), t, near_v)
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
    from concurrent.futures import ThreadPoolExecutor

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


# ------------------------------------------------------------------ numba vs numpy twins
def random_soup(rng, n_tri=40):
    centres = rng.uniform([-40, -30, 120], [40, 30, 220], (n_tri, 3))
    v = (centres[:, None, :] + rng.normal(0, 12, (n_tri, 3, 3))).reshape(-1, 3)
    f = np.arange(3 * n_tri).reshape(-1, 3)
    return v, f


def test_numba_rasterizer_agrees_with_numpy_reference():
    rng = np.random.default_rng(7)
    cam = make_camera(64, 48, f=60.0)
    v, f = random_soup(rng)
    z = v[:, 2].copy()
    uv = (v @ cam.K.T)[:, :2] / z[:, None]
    zb, fid, bary = rasterize_ref(uv, z, f, cam.width, cam.height)
    zb2 = np.full((cam.height, cam.width), np.inf)
    fid2 = np.full((cam.height, cam.width), -1, np.int32)
    bary2 = np.zeros((cam.height, cam.width, 2), np.float32)
    _rasterize_kernel(uv, z, f.astype(np.int32), 0.0, 0.0, zb2, fid2, bary2, True, 1.0, np.zeros(len(f), np.int8), 1.0)
    assert (fid >= 0).sum() > 300
    assert np.array_equal(fid >= 0, fid2 >= 0)
    cov = fid >= 0
    assert np.allclose(zb[cov], zb2[cov], rtol=0, atol=1e-7)
    # Face ids may differ only at genuine depth ties.
    assert np.mean(fid[cov] == fid2[cov]) > 0.995
    same = cov & (fid == fid2)
    assert np.allclose(bary[same], bary2[same], atol=1e-5)


@pytest.mark.parametrize("appearance", ["colors", "texture", "plain"])
def test_numba_render_agrees_with_numpy_rasterize_and_shade(appearance):
    rng = np.random.default_rng(11)
    cam = make_camera(64, 48, f=60.0)
    v, f = random_soup(rng, 25)
    v[:, 2] -= 170.0
    colors = rng.integers(0, 256, (len(v), 3)) if appearance == "colors" else None
    uv = rng.uniform(-0.1, 1.1, (len(v), 2)) if appearance == "texture" else None
    tex = rng.integers(0, 256, (7, 9, 3), dtype=np.uint8) if appearance == "texture" else None
    obj = make_object(v, f, colors=colors, uv=uv, texture=tex)
    rend = Renderer(obj)
    R, t = rot([0.2, 1, 0], 30), np.array([1.0, -2.0, 170.0])
    light = np.array([0.3, -0.5, -1.0])
    out = rend.render(cam, R, t, light_dir_cam=light, ambient=0.3, specular=0.4)
    pc = v @ R.T + t
    z = pc[:, 2]
    puv = (pc @ cam.K.T)[:, :2] / z[:, None]
    zb, fid, bary = rasterize_ref(puv, z, f, cam.width, cam.height)
    ref = shade_ref(zb, fid, bary, cam.K, R, rend.faces, rend.face_normals, rend.corner_normals,
                    None if colors is None else colors.astype(np.float32), None if uv is None else obj.uv, tex,
                    rend.albedo_const, light / np.linalg.norm(light), 0.3, 0.4, rend.shininess)
    assert np.array_equal(out.mask, fid >= 0)
    agree = out.mask & (fid >= 0)
    diff = np.abs(out.color.astype(int) - ref.astype(int))[agree]
    assert np.mean(diff.max(1) <= 1) > 0.995
    assert len(np.unique(ref[agree], axis=0)) > 20  # the comparison saw varied shading


# ------------------------------------------------------------------ normals
def test_corner_normals_smooth_sphere_despite_flipped_winding_and_keep_cube_flat():
    import trimesh

    sph = trimesh.creation.icosphere(subdivisions=2, radius=1.0)
    faces = np.array(sph.faces)
    flip = np.random.default_rng(0).random(len(faces)) < 0.4
    faces[flip] = faces[flip][:, ::-1]
    v = np.array(sph.vertices)
    fn, cn = corner_normals(v, faces, crease_deg=40.0)
    radial = v[faces]  # unit sphere: the true normal is the position
    cosang = np.abs(np.sum(cn * radial, axis=2))
    assert cosang.min() > 0.999
    # Each corner normal is on its face normal's side.
    assert np.all(np.sum(cn * fn[:, None, :], axis=2) > 0)
    box = trimesh.creation.box(extents=(1, 1, 1))
    fn, cn = corner_normals(np.array(box.vertices), np.array(box.faces), crease_deg=40.0)
    assert np.allclose(cn, fn[:, None, :])


def test_cull_signs_only_for_closed_consistent_components():
    import trimesh

    sph = trimesh.creation.icosphere(subdivisions=2, radius=10.0)
    v, f = np.array(sph.vertices), np.array(sph.faces)
    assert np.all(cull_signs(v, f) == 1)
    assert np.all(cull_signs(v, f[:, ::-1]) == -1)
    mixed = f.copy()
    mixed[::7] = mixed[::7, ::-1]
    assert np.all(cull_signs(v, mixed) == 0)
    assert np.all(cull_signs(v, f[:-1]) == 0)  # a hole: open
    # Two components, the second wound inward and split into separate vertices at a seam.
    v2 = np.concatenate([v, v + [40.0, 0, 0]])
    f2 = np.concatenate([f, (f + len(v))[:, ::-1]])
    s = cull_signs(v2, f2)
    assert np.all(s[: len(f)] == 1) and np.all(s[len(f):] == -1)
    unshared = v2[f2].reshape(-1, 3)  # every face with its own three vertices
    assert np.array_equal(cull_signs(unshared, np.arange(len(unshared)).reshape(-1, 3)), s)


def test_culling_changes_nothing_on_closed_meshes():
    import trimesh

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


# ------------------------------------------------------------------ keypoint visibility
def test_keypoint_visibility_visible_hidden_outside_behind():
    cam = make_camera()
    v, f = quad(30.0)
    R, t = np.eye(3), np.array([0, 0, 150.0])
    depth, _ = Renderer(make_object(v, f)).render_depth(cam, R, t)
    kps = np.array([
        [5.0, 3.0, 0.0],     # on the surface
        [-8.0, 2.0, -20.0],  # in front of it
        [4.0, -6.0, 25.0],   # behind the plane, inside its silhouette
        [900.0, 0.0, 0.0],   # projects outside the image
        [0.0, 0.0, -400.0],  # behind the camera
        [29.9, 29.9, 0.0],   # on the silhouette corner
    ])
    vis = keypoint_visibility(kps, cam, R, t, depth)
    assert vis.dtype == np.int8
    assert vis.tolist() == [2, 2, 1, 0, 0, 2]
    # A tighter tolerance than the gap still hides; a looser one sees through.
    assert keypoint_visibility(kps[2:3], cam, R, t, depth, tol_mm=30.0).tolist() == [2]


def test_keypoint_visibility_rejects_wrong_shapes():
    cam = make_camera()
    with pytest.raises(KptrackError, match="keypoints_mm"):
        keypoint_visibility(np.zeros((3, 2)), cam, np.eye(3), np.zeros(3), np.zeros((cam.height, cam.width)))
    with pytest.raises(KptrackError, match="depth"):
        keypoint_visibility(np.zeros((3, 3)), cam, np.eye(3), np.zeros(3), np.zeros((5, 5)))


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


# ------------------------------------------------------------------ overlays
def test_shaded_overlay_changes_only_pixels_where_model_projects():
    cam = make_camera(120, 100)
    v, f = quad(25.0)
    obj = make_object(v, f, colors=np.full((4, 3), 250))
    R, t = rot([1, 0.5, 0], 30), np.array([2.0, 1.0, 140.0])
    frame = np.random.default_rng(1).integers(0, 120, (cam.height, cam.width, 3), dtype=np.uint8)
    before = frame.copy()
    rend = Renderer(obj)
    res = draw_overlay(frame, obj, cam, R, t, renderer=rend, mode="shaded", axes=False)
    assert res is frame
    _, mask = rend.render_depth(cam, R, t)
    changed = np.any(frame != before, axis=2)
    assert changed.any()
    assert not np.any(changed & ~mask)
    assert changed[mask].mean() > 0.9
    # The blend is alpha * model + (1 - alpha) * frame inside the mask.
    shaded = rend.render(cam, R, t).color.astype(float)
    expect = 0.45 * shaded + 0.55 * before
    assert np.max(np.abs(frame[mask] - expect[mask])) <= 1.0
    # Without a renderer argument it builds (and caches) its own, and draws the same.
    frame2 = before.copy()
    draw_overlay(frame2, obj, cam, R, t, mode="shaded", axes=False)
    assert np.array_equal(frame2, frame)


def test_edges_overlay_axes_keypoints_and_hud_draw_something():
    cam = make_camera(120, 100)
    v, f = quad(25.0)
    obj = make_object(v, f)
    R, t = rot([1, 0.5, 0], 30), np.array([0.0, 0.0, 140.0])
    frame = np.zeros((cam.height, cam.width, 3), np.uint8)
    out = draw_overlay(frame, obj, cam, R, t, mode="edges", axes=False, color=(0, 255, 0))
    assert out is frame and frame[:, :, 1].max() > 0 and frame[:, :, 0].max() == 0
    frame[:] = 0
    draw_overlay(frame, obj, cam, R, t, mode="edges", axes=True)
    assert frame[:, :, 2].max() > 0 and frame[:, :, 0].max() > 0  # X red and Z blue axes
    frame[:] = 0
    kuv = np.array([[20.0, 20.0], [np.nan, np.nan], [90.0, 70.0]])
    draw_overlay(frame, obj, cam, R, t, mode="edges", axes=False, keypoints_uv=kuv, confidences=[0.0, 0.5, 1.0])
    assert tuple(frame[20, 20]) == (0, 0, 255)  # confidence 0: red
    assert tuple(frame[70, 90]) == (0, 255, 0)  # confidence 1: green
    hud = np.full((60, 200, 3), 200, np.uint8)
    assert draw_hud(hud, ["fps 30.0", "tracking"]) is hud
    assert hud[5:40, 5:60].min() < 100
    with pytest.raises(KptrackError, match="frame"):
        draw_overlay(np.zeros((10, 10, 3), np.uint8), obj, cam, R, t)
    with pytest.raises(KptrackError, match="mode"):
        draw_overlay(frame, obj, cam, R, t, mode="wire")


# ------------------------------------------------------------------ the built-in object
def test_default_object_renders_like_the_numpy_reference():
    obj = load_object("default")
    cam = make_camera(160, 120, f=150.0)
    R, t = rot([1, -0.6, 0.3], 125.0), np.array([4.0, -3.0, 2.2 * obj.diameter])
    rend = Renderer(obj)
    out = rend.render(cam, R, t)
    pc = obj.vertices @ R.T + t
    z = pc[:, 2]
    uv = (pc @ cam.K.T)[:, :2] / z[:, None]
    zb, fid, _ = rasterize_ref(uv, z, obj.faces, cam.width, cam.height)  # reference: no culling
    assert out.mask.sum() > 1000
    assert np.mean(out.mask == (fid >= 0)) > 0.999
    both = out.mask & (fid >= 0)
    assert np.allclose(out.depth[both], zb[both], atol=1e-3)
    assert len(np.unique(out.color[out.mask].reshape(-1, 3), axis=0)) > 20  # coloured and shaded
    vis = keypoint_visibility(obj.keypoints, cam, R, t, out.depth)
    assert set(vis.tolist()) <= {1, 2} and (vis == 2).sum() >= 2
