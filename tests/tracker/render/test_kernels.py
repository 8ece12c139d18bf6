"""Tests for tracker/render/kernels.py: each numba kernel against its numpy twin (projection
against tracker.geometry, rasterisation and shading against tracker/render/reference.py)."""

from __future__ import annotations

import numpy as np
import pytest
from render_scenes import make_camera, make_object, random_soup, rot

from tracker.geometry import MIN_DEPTH_MM, project, project_cam, transform
from tracker.objects import load_object
from tracker.render import Renderer, keypoint_visibility
from tracker.render.kernels import edge_pixels_kernel, project_kernel, rasterize_kernel
from tracker.render.reference import edge_pixels_ref, rasterize_ref, shade_ref


def test_project_kernel_agrees_with_geometry_project():
    rng = np.random.default_rng(5)
    K = make_camera(64, 48, f=60.0).K.copy()
    K[0, 1] = 0.7  # skew: both use the full first row of K
    xyz = rng.uniform([-80, -60, -200], [80, 60, 300], (200, 3))
    R, t = np.ascontiguousarray(rot([0.3, -1, 0.4], 40.0)), np.array([2.0, -3.0, 20.0])
    near = 5.0
    uv, z = np.empty((len(xyz), 2)), np.empty(len(xyz))
    umin, vmin, umax, vmax = project_kernel(xyz, K, R, t, near, uv, z)
    xyz_cam = transform(R, t, xyz)
    assert np.allclose(z, xyz_cam[:, 2], rtol=0, atol=1e-12)
    front = z > MIN_DEPTH_MM
    assert 20 < front.sum() < len(xyz) - 20  # points on both sides of the camera plane
    ref = project(xyz, R, t, K)
    assert np.all(np.isnan(ref[~front]))
    assert np.allclose(uv[front], ref[front], rtol=1e-12, atol=1e-9)
    # The returned box bounds the points at or beyond the near plane.
    sel = z >= near
    assert (umin, vmin, umax, vmax) == pytest.approx((*ref[sel].min(0), *ref[sel].max(0)), rel=1e-12, abs=1e-9)
    # Nothing beyond the near plane: an empty box.
    umin, _, umax, _ = project_kernel(xyz, K, R, np.array([0.0, 0.0, -1000.0]), near, uv, z)
    assert umin > umax


def test_numba_rasterizer_agrees_with_numpy_reference():
    rng = np.random.default_rng(7)
    cam = make_camera(64, 48, f=60.0)
    v, f = random_soup(rng)
    z = v[:, 2].copy()
    uv = project_cam(v, cam.K)
    zb, fid, bary = rasterize_ref(uv, z, f, cam.width, cam.height)
    zb2 = np.full((cam.height, cam.width), np.inf)
    fid2 = np.full((cam.height, cam.width), -1, np.int32)
    bary2 = np.zeros((cam.height, cam.width, 2), np.float32)
    rasterize_kernel(uv, z, f.astype(np.int32), 0.0, 0.0, zb2, fid2, bary2, True, 1.0, np.zeros(len(f), np.int8), 1.0)
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
    pc = transform(R, t, v)
    z = pc[:, 2]
    puv = project_cam(pc, cam.K)
    zb, fid, bary = rasterize_ref(puv, z, f, cam.width, cam.height)
    ref = shade_ref(zb, fid, bary, cam.K, R, rend.faces, rend.face_normals, rend.corner_normals,
                    None if colors is None else colors.astype(np.float32), None if uv is None else obj.uv, tex,
                    rend.albedo_const, light / np.linalg.norm(light), 0.3, 0.4, rend.shininess)
    assert np.array_equal(out.mask, fid >= 0)
    agree = out.mask & (fid >= 0)
    diff = np.abs(out.color.astype(int) - ref.astype(int))[agree]
    assert np.mean(diff.max(1) <= 1) > 0.995
    assert len(np.unique(ref[agree], axis=0)) > 20  # the comparison saw varied shading


def test_default_object_renders_like_the_numpy_reference():
    obj = load_object("default")
    cam = make_camera(160, 120, f=150.0)
    R, t = rot([1, -0.6, 0.3], 125.0), np.array([4.0, -3.0, 2.2 * obj.diameter])
    rend = Renderer(obj)
    out = rend.render(cam, R, t)
    pc = transform(R, t, obj.vertices)
    z = pc[:, 2]
    uv = project_cam(pc, cam.K)
    zb, fid, _ = rasterize_ref(uv, z, obj.faces, cam.width, cam.height)  # reference: no culling
    assert out.mask.sum() > 1000
    assert np.mean(out.mask == (fid >= 0)) > 0.999
    both = out.mask & (fid >= 0)
    assert np.allclose(out.depth[both], zb[both], atol=1e-3)
    assert len(np.unique(out.color[out.mask].reshape(-1, 3), axis=0)) > 20  # coloured and shaded
    vis = keypoint_visibility(obj.keypoints, cam, R, t, out.depth)
    assert set(vis.tolist()) <= {1, 2} and (vis == 2).sum() >= 2


def test_edge_pixels_kernel_agrees_with_the_numpy_reference():
    """The drill's faces at a turned pose: silhouette and crease pixels, both sides of each pair."""
    obj = load_object("default")
    cam = make_camera(160, 120, f=150.0)
    R, t = rot([1, -0.6, 0.3], 125.0), np.array([4.0, -3.0, 2.2 * obj.diameter])
    rend = Renderer(obj, smooth=False, cull=False)
    ras = rend.raster(cam.K, cam.width, cam.height, R, t, False)
    fid = np.ascontiguousarray(ras.fid)
    normals = np.ascontiguousarray(rend.face_normals, np.float64)
    for cos_crease in (np.cos(np.radians(30.0)), 0.0):
        out = np.ones(fid.shape, bool)  # the kernel clears it
        edge_pixels_kernel(fid, normals, cos_crease, out)
        ref = edge_pixels_ref(fid, normals, cos_crease)
        assert ref.sum() > 100
        np.testing.assert_array_equal(out, ref)

