"""Software z-buffer renderer and frame overlays for an :class:`~tracker.objects.ObjectModel`.

The renderer is a classic scan-conversion z-buffer (Catmull 1974) over the triangles'
projected bounding boxes, with edge functions evaluated at integer pixel centres (Pineda,
"A Parallel Algorithm for Polygon Rasterization", SIGGRAPH 1988) and perspective-correct
attribute interpolation through ``1/z`` (Heckbert & Moreton, "Interpolation for Polygon
Texture Mapping and Shading", 1991). Shading is Lambert diffuse + ambient + Blinn-Phong
specular (Blinn, "Models of Light Reflection for Computer Synthesized Pictures", 1977).

It is deferred: a first pass writes, per pixel, the camera depth, the index of the nearest
face and its perspective-correct barycentrics; a second pass shades each visible pixel once.
:meth:`Renderer.render_depth` runs only the first pass. Both passes work inside the
bounding box of the object's projection (clipped to the image) so cost scales with the
object's size on screen, not the frame's.

Conventions and simplifications (all deliberate):

* Pinhole only: ``camera.dist`` is ignored; pixels are ideal (undistorted) pixels. Pixel
  centres are at integer coordinates (OpenCV); a pixel is covered when its centre is inside
  (or on an edge of) a triangle.
* Depth is the camera-frame ``z`` in millimetres, float32, ``0`` = background.
* Near plane: a triangle with any vertex closer than ``near_mm`` (default 1 mm) is skipped
  whole rather than clipped. Objects in front of a camera never come that close; a mesh that
  straddles the camera loses the triangles that cross its plane.
* Back faces and two-sided lighting: meshes from the wild are not reliably consistently
  wound, so a face is culled only when its connected component (vertices merged by position)
  is closed, consistently wound and of non-zero volume, which fixes its outside; every other
  face is drawn from both sides. Lighting flips each face's normal to face the viewer. (A
  camera inside a closed component sees nothing of it.)
* Normals: per face-corner normals averaged over the faces around a vertex whose normals are
  within ``crease_deg`` (sign-agnostic, so inconsistent winding still smooths); sharper
  edges stay flat. ``smooth=False`` gives flat shading.
* Albedo: the texture (bilinear, uv convention ``col = u*(Wt-1)``, ``row = (1-v)*(Ht-1)``,
  uv clamped to [0, 1]) when the object has ``uv`` and ``texture``; else interpolated vertex
  colours; else a uniform grey.

Every numba kernel has a plain numpy twin (``rasterize_ref``, ``shade_ref``) that the tests
compare against. Kernels are compiled once and cached on disk (``cache=True``) and release
the GIL; a Renderer keeps one set of first-pass buffers per thread, so one Renderer may be
shared by threads. Cost grows with the object's on-screen area (about 35 ns per covered
pixel to shade on one core) and its triangle count; at 640x480 a 5k-triangle object about
150 px across renders in about 1 ms (``benchmarks/test_bench_render.py``).
"""

from __future__ import annotations

import logging
import math
import threading
import weakref
from dataclasses import dataclass
from typing import Any, NamedTuple, Sequence

import cv2
import numpy as np
from numba import njit

from tracker.errors import KptrackError

log = logging.getLogger(__name__)

DEFAULT_ALBEDO_BGR = (170, 170, 170)
# Direction from the surface towards the light, camera frame: from the camera, a little above
# (camera y points down, so "above" is -y).
DEFAULT_LIGHT_DIR_CAM = (0.0, -0.35, -1.0)


@dataclass
class RenderOutput:
    """One rendered view.

    color: (H, W, 3) uint8 BGR (the background, or black, where the object is absent).
    depth: (H, W) float32, camera-frame z in mm, 0 = background.
    mask: (H, W) bool, True where the object is drawn.
    """

    color: np.ndarray
    depth: np.ndarray
    mask: np.ndarray


class _Raster(NamedTuple):
    """First-pass result inside the region of interest ``[y0:y0+h, x0:x0+w]`` of the frame."""

    x0: int
    y0: int
    zbuf: np.ndarray  # (h, w) float64 camera z, +inf = empty
    fid: np.ndarray  # (h, w) int32 face index, -1 = empty
    bary: np.ndarray  # (h, w, 2) float32 perspective-correct barycentrics of corners 1 and 2
    uv: np.ndarray  # (N, 2) float64 projected vertices, frame pixels
    z: np.ndarray  # (N,) float64 vertex camera z, mm


# --------------------------------------------------------------------------- numba kernels
@njit(cache=True, nogil=True, error_model="numpy")
def _project_kernel(vertices, K, R, t, near, uv, z):
    """Project model points into ``uv`` ((N, 2) pixels) and ``z`` ((N,) camera z mm).

    vertices: (N, 3) float64 mm; K, R: (3, 3); t: (3,) mm. Returns the pixel bounding box
    (umin, vmin, umax, vmax) of the points with ``z >= near`` (umin > umax when there are
    none). The numpy twin is :func:`_project` plus a masked min/max.
    """
    umin = np.inf
    vmin = np.inf
    umax = -np.inf
    vmax = -np.inf
    for i in range(vertices.shape[0]):
        x = vertices[i, 0]
        y = vertices[i, 1]
        w = vertices[i, 2]
        X = R[0, 0] * x + R[0, 1] * y + R[0, 2] * w + t[0]
        Y = R[1, 0] * x + R[1, 1] * y + R[1, 2] * w + t[1]
        Z = R[2, 0] * x + R[2, 1] * y + R[2, 2] * w + t[2]
        zs = Z if abs(Z) > 1e-12 else 1e-12
        u = (K[0, 0] * X + K[0, 1] * Y + K[0, 2] * Z) / zs
        v = (K[1, 0] * X + K[1, 1] * Y + K[1, 2] * Z) / zs
        uv[i, 0] = u
        uv[i, 1] = v
        z[i] = Z
        if Z >= near:
            umin = min(umin, u)
            umax = max(umax, u)
            vmin = min(vmin, v)
            vmax = max(vmax, v)
    return umin, vmin, umax, vmax


@njit(cache=True, nogil=True, error_model="numpy")
def _rasterize_kernel(uv, z, faces, x0, y0, zbuf, fid, bary, want_bary, near, cull, cull_k):
    """Z-buffer the triangles into ``zbuf``/``fid``/``bary`` (region offset ``x0, y0``).

    uv: (N, 2) float64 frame pixels; z: (N,) float64 camera z mm; faces: (M, 3) int32.
    zbuf: (h, w) float64 initialised to +inf; fid: (h, w) int32 initialised to -1;
    bary: (h, w, 2) float32 (written only when ``want_bary``).
    cull: (M,) int8 per-face back-face sign (0 = never cull), cull_k: sign(fx * fy); a face
    is skipped when ``signed_screen_area * cull[f] * cull_k > 0`` (see :func:`cull_signs`).
    """
    h, w = zbuf.shape
    for f in range(faces.shape[0]):
        i0 = faces[f, 0]
        i1 = faces[f, 1]
        i2 = faces[f, 2]
        z0 = z[i0]
        z1 = z[i1]
        z2 = z[i2]
        if z0 < near or z1 < near or z2 < near:
            continue
        ax = uv[i0, 0] - x0
        ay = uv[i0, 1] - y0
        bx = uv[i1, 0] - x0
        by = uv[i1, 1] - y0
        cx = uv[i2, 0] - x0
        cy = uv[i2, 1] - y0
        area = (bx - ax) * (cy - ay) - (by - ay) * (cx - ax)
        if abs(area) < 1e-12 or area * cull[f] * cull_k > 0.0:
            continue
        xmin = max(math.ceil(min(ax, min(bx, cx))), 0)
        xmax = min(math.floor(max(ax, max(bx, cx))), w - 1)
        ymin = max(math.ceil(min(ay, min(by, cy))), 0)
        ymax = min(math.floor(max(ay, max(by, cy))), h - 1)
        if xmin > xmax or ymin > ymax:
            continue
        inv_area = 1.0 / area
        iz0 = 1.0 / z0
        iz1 = 1.0 / z1
        iz2 = 1.0 / z2
        # Normalised edge functions are affine in (x, y): e(x, y) = e00 + ex * x + ey * y,
        # so each is stepped by a constant along a row.
        e0x = -(cy - by) * inv_area
        e0y = (cx - bx) * inv_area
        e1x = -(ay - cy) * inv_area
        e1y = (ax - cx) * inv_area
        e2x = -(by - ay) * inv_area
        e2y = (bx - ax) * inv_area
        for py in range(ymin, ymax + 1):
            w0 = ((cx - bx) * (py - by) - (cy - by) * (xmin - bx)) * inv_area
            w1 = ((ax - cx) * (py - cy) - (ay - cy) * (xmin - cx)) * inv_area
            w2 = ((bx - ax) * (py - ay) - (by - ay) * (xmin - ax)) * inv_area
            for px in range(xmin, xmax + 1):
                # A small negative tolerance so a pixel centre exactly on an edge shared by
                # two triangles is never lost to rounding in both.
                if w0 >= -1e-9 and w1 >= -1e-9 and w2 >= -1e-9:
                    invz = w0 * iz0 + w1 * iz1 + w2 * iz2
                    zz = 1.0 / invz
                    if zz < zbuf[py, px]:
                        zbuf[py, px] = zz
                        fid[py, px] = f
                        if want_bary:
                            bary[py, px, 0] = w1 * iz1 * zz
                            bary[py, px, 1] = w2 * iz2 * zz
                w0 += e0x
                w1 += e1x
                w2 += e2x
    return 0


@njit(cache=True, nogil=True, error_model="numpy", fastmath=True)
def _shade_kernel(
    zbuf, fid, bary, x0, y0, kinv, rot, faces, face_normals, corner_normals,
    colors, has_colors, uvs, texture, has_texture, albedo_const,
    light, ambient, specular, shininess, alpha, out, depth, mask, write_depth,
):
    """Shade every covered pixel of a region and write it into full-frame buffers.

    zbuf/fid/bary: the region's first pass (see :func:`_rasterize_kernel`), at frame offset
    (x0, y0) ints. kinv: (3, 3) inverse intrinsics; rot: (3, 3) R_m2c; face_normals: (M, 3)
    model frame unit; corner_normals: (M, 3, 3) model frame unit, each on its face normal's
    side; colors: (N, 3) float32 BGR; uvs: (N, 2) float64; texture: (Ht, Wt, 3) uint8;
    albedo_const: (3,) float64; light: (3,) float64 unit, towards the light, camera frame;
    shininess: int. out: (H, W, 3) uint8 BGR frame: covered pixels are set to the shaded
    colour when ``alpha >= 1``, else blended ``alpha * shaded + (1 - alpha) * out``.
    depth (H, W) float32 and mask (H, W) bool get z and True when ``write_depth``.
    """
    h, w = zbuf.shape
    th = texture.shape[0]
    tw = texture.shape[1]
    diffuse_gain = 1.0 - ambient
    spec_gain = specular * 255.0
    blend = alpha < 1.0
    beta = 1.0 - alpha
    # Constants in locals: the output is uint8 memory the compiler must assume may alias them.
    r00, r01, r02 = rot[0, 0], rot[0, 1], rot[0, 2]
    r10, r11, r12 = rot[1, 0], rot[1, 1], rot[1, 2]
    r20, r21, r22 = rot[2, 0], rot[2, 1], rot[2, 2]
    k00, k01, k02 = kinv[0, 0], kinv[0, 1], kinv[0, 2]
    k10, k11, k12 = kinv[1, 0], kinv[1, 1], kinv[1, 2]
    k20, k21, k22 = kinv[2, 0], kinv[2, 1], kinv[2, 2]
    lx, ly, lz = light[0], light[1], light[2]
    for py in range(h):
        gy = py + y0
        for px in range(w):
            f = fid[py, px]
            if f < 0:
                continue
            gx = px + x0
            b1 = np.float64(bary[py, px, 0])
            b2 = np.float64(bary[py, px, 1])
            b0 = 1.0 - b1 - b2
            zz = zbuf[py, px]
            # Unit vector from the surface point towards the camera (the point is z * K^-1 p).
            X = k00 * gx + k01 * gy + k02
            Y = k10 * gx + k11 * gy + k12
            Z = k20 * gx + k21 * gy + k22
            vn = 1.0 / math.sqrt(X * X + Y * Y + Z * Z)
            vx = -X * vn
            vy = -Y * vn
            vz = -Z * vn
            # Two-sided: the face's geometric normal decides, for the whole face, which side
            # the viewer is on.
            fx = face_normals[f, 0]
            fy = face_normals[f, 1]
            fz = face_normals[f, 2]
            fcx = r00 * fx + r01 * fy + r02 * fz
            fcy = r10 * fx + r11 * fy + r12 * fz
            fcz = r20 * fx + r21 * fy + r22 * fz
            side = 1.0 if fcx * vx + fcy * vy + fcz * vz >= 0.0 else -1.0
            mx = b0 * corner_normals[f, 0, 0] + b1 * corner_normals[f, 1, 0] + b2 * corner_normals[f, 2, 0]
            my = b0 * corner_normals[f, 0, 1] + b1 * corner_normals[f, 1, 1] + b2 * corner_normals[f, 2, 1]
            mz = b0 * corner_normals[f, 0, 2] + b1 * corner_normals[f, 1, 2] + b2 * corner_normals[f, 2, 2]
            nx = r00 * mx + r01 * my + r02 * mz
            ny = r10 * mx + r11 * my + r12 * mz
            nz = r20 * mx + r21 * my + r22 * mz
            nn = math.sqrt(nx * nx + ny * ny + nz * nz)
            if nn < 1e-12:
                nx = fcx
                ny = fcy
                nz = fcz
                nn = 1.0
            nn = side / nn
            nx *= nn
            ny *= nn
            nz *= nn
            ndl = nx * lx + ny * ly + nz * lz
            if ndl < 0.0:
                ndl = 0.0
            hx = lx + vx
            hy = ly + vy
            hz = lz + vz
            hn = math.sqrt(hx * hx + hy * hy + hz * hz)
            spec = 0.0
            if hn > 1e-12 and spec_gain > 0.0:
                ndh = (nx * hx + ny * hy + nz * hz) / hn
                if ndh > 0.0:
                    spec = spec_gain * ndh ** shininess
            # Albedo.
            if has_texture:
                i0 = faces[f, 0]
                i1 = faces[f, 1]
                i2 = faces[f, 2]
                u = b0 * uvs[i0, 0] + b1 * uvs[i1, 0] + b2 * uvs[i2, 0]
                v = b0 * uvs[i0, 1] + b1 * uvs[i1, 1] + b2 * uvs[i2, 1]
                u = min(max(u, 0.0), 1.0)
                v = min(max(v, 0.0), 1.0)
                col = u * (tw - 1)
                row = (1.0 - v) * (th - 1)
                c0 = min(int(col), tw - 1)
                r0 = min(int(row), th - 1)
                c1 = min(c0 + 1, tw - 1)
                r1 = min(r0 + 1, th - 1)
                fc = col - c0
                fr = row - r0
                w00 = (1.0 - fc) * (1.0 - fr)
                w01 = fc * (1.0 - fr)
                w10 = (1.0 - fc) * fr
                w11 = fc * fr
                a0 = w00 * texture[r0, c0, 0] + w01 * texture[r0, c1, 0] + w10 * texture[r1, c0, 0] + w11 * texture[r1, c1, 0]
                a1 = w00 * texture[r0, c0, 1] + w01 * texture[r0, c1, 1] + w10 * texture[r1, c0, 1] + w11 * texture[r1, c1, 1]
                a2 = w00 * texture[r0, c0, 2] + w01 * texture[r0, c1, 2] + w10 * texture[r1, c0, 2] + w11 * texture[r1, c1, 2]
            elif has_colors:
                i0 = faces[f, 0]
                i1 = faces[f, 1]
                i2 = faces[f, 2]
                a0 = b0 * colors[i0, 0] + b1 * colors[i1, 0] + b2 * colors[i2, 0]
                a1 = b0 * colors[i0, 1] + b1 * colors[i1, 1] + b2 * colors[i2, 1]
                a2 = b0 * colors[i0, 2] + b1 * colors[i1, 2] + b2 * colors[i2, 2]
            else:
                a0 = albedo_const[0]
                a1 = albedo_const[1]
                a2 = albedo_const[2]
            k = ambient + diffuse_gain * ndl
            c0v = min(max(a0 * k + spec, 0.0), 255.0)
            c1v = min(max(a1 * k + spec, 0.0), 255.0)
            c2v = min(max(a2 * k + spec, 0.0), 255.0)
            if blend:
                c0v = alpha * c0v + beta * out[gy, gx, 0]
                c1v = alpha * c1v + beta * out[gy, gx, 1]
                c2v = alpha * c2v + beta * out[gy, gx, 2]
            out[gy, gx, 0] = np.uint8(c0v + 0.5)
            out[gy, gx, 1] = np.uint8(c1v + 0.5)
            out[gy, gx, 2] = np.uint8(c2v + 0.5)
            if write_depth:
                depth[gy, gx] = zz
                mask[gy, gx] = True
    return 0


# --------------------------------------------------------------------------- numpy twins
def rasterize_ref(uv: np.ndarray, z: np.ndarray, faces: np.ndarray, width: int, height: int,
                  near: float = 1.0, cull: np.ndarray | None = None, cull_k: float = 1.0) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Plain numpy z-buffer, the reference for :func:`_rasterize_kernel` (slow; tests only).

    uv: (N, 2) float64 pixels; z: (N,) float64 camera z mm; faces: (M, 3) int;
    cull: (M,) per-face back-face sign or None (as in the kernel).
    Returns zbuf (H, W) float64 (+inf empty), fid (H, W) int32 (-1 empty) and
    bary (H, W, 2) float64 perspective-correct barycentrics of corners 1 and 2.
    """
    zbuf = np.full((height, width), np.inf)
    fid = np.full((height, width), -1, np.int32)
    bary = np.zeros((height, width, 2))
    for f, (i0, i1, i2) in enumerate(np.asarray(faces)):
        zs = z[[i0, i1, i2]]
        if np.any(zs < near):
            continue
        a, b, c = uv[i0], uv[i1], uv[i2]
        area = (b[0] - a[0]) * (c[1] - a[1]) - (b[1] - a[1]) * (c[0] - a[0])
        if abs(area) < 1e-12 or (cull is not None and area * cull[f] * cull_k > 0):
            continue
        pts = np.stack([a, b, c])
        x_lo, y_lo = np.maximum(np.ceil(pts.min(0)), 0).astype(int)
        x_hi = min(int(np.floor(pts[:, 0].max())), width - 1)
        y_hi = min(int(np.floor(pts[:, 1].max())), height - 1)
        if x_lo > x_hi or y_lo > y_hi:
            continue
        ys, xs = np.mgrid[y_lo:y_hi + 1, x_lo:x_hi + 1]
        w0 = ((c[0] - b[0]) * (ys - b[1]) - (c[1] - b[1]) * (xs - b[0])) / area
        w1 = ((a[0] - c[0]) * (ys - c[1]) - (a[1] - c[1]) * (xs - c[0])) / area
        w2 = ((b[0] - a[0]) * (ys - a[1]) - (b[1] - a[1]) * (xs - a[0])) / area
        inside = (w0 >= -1e-9) & (w1 >= -1e-9) & (w2 >= -1e-9)
        zz = 1.0 / (w0 / zs[0] + w1 / zs[1] + w2 / zs[2])
        sub = zbuf[y_lo:y_hi + 1, x_lo:x_hi + 1]
        win = inside & (zz < sub)
        sub[win] = zz[win]
        fid[y_lo:y_hi + 1, x_lo:x_hi + 1][win] = f
        bary[y_lo:y_hi + 1, x_lo:x_hi + 1, 0][win] = (w1 / zs[1] * zz)[win]
        bary[y_lo:y_hi + 1, x_lo:x_hi + 1, 1][win] = (w2 / zs[2] * zz)[win]
    return zbuf, fid, bary


def shade_ref(zbuf, fid, bary, K, R_m2c, faces, face_normals, corner_normals, colors, uvs, texture,
              albedo_const, light, ambient, specular, shininess) -> np.ndarray:
    """Plain numpy twin of :func:`_shade_kernel` over a whole image (tests only).

    Same arguments as the kernel with region offset 0 and ``colors``/``uvs``/``texture``
    ``None`` when absent. Returns (H, W, 3) uint8 BGR, 0 where ``fid < 0``.
    """
    h, w = zbuf.shape
    out = np.zeros((h, w, 3), np.uint8)
    ys, xs = np.nonzero(fid >= 0)
    if len(ys) == 0:
        return out
    f = fid[ys, xs]
    b = np.empty((len(f), 3))
    b[:, 1:] = bary[ys, xs].astype(np.float64)
    b[:, 0] = 1.0 - b[:, 1] - b[:, 2]
    tri = faces[f]
    p = zbuf[ys, xs, None] * (np.stack([xs, ys, np.ones_like(xs)], 1).astype(np.float64) @ np.linalg.inv(K).T)
    v = -p / np.linalg.norm(p, axis=1, keepdims=True)
    fn_cam = face_normals[f] @ R_m2c.T
    side = np.where(np.sum(fn_cam * v, 1) >= 0, 1.0, -1.0)
    n = np.einsum("pk,pkj->pj", b, corner_normals[f]) @ R_m2c.T
    nn = np.linalg.norm(n, axis=1, keepdims=True)
    n = np.where(nn < 1e-12, fn_cam, n / np.maximum(nn, 1e-300)) * side[:, None]
    light = np.asarray(light, np.float64)
    ndl = np.clip(n @ light, 0.0, None)
    hv = light[None] + v
    hn = np.linalg.norm(hv, axis=1)
    ndh = np.sum(n * hv, 1) / np.maximum(hn, 1e-300)
    spec = np.where((hn > 1e-12) & (ndh > 0) & (specular > 0), specular * 255.0 * np.clip(ndh, 0, None) ** shininess, 0.0)
    if texture is not None and uvs is not None:
        uvp = np.einsum("pk,pkj->pj", b, uvs[tri].astype(np.float64))
        uvp = np.clip(uvp, 0.0, 1.0)
        th, tw = texture.shape[:2]
        col = uvp[:, 0] * (tw - 1)
        row = (1.0 - uvp[:, 1]) * (th - 1)
        c0 = np.minimum(col.astype(int), tw - 1)
        r0 = np.minimum(row.astype(int), th - 1)
        c1 = np.minimum(c0 + 1, tw - 1)
        r1 = np.minimum(r0 + 1, th - 1)
        fc = (col - c0)[:, None]
        fr = (row - r0)[:, None]
        t = texture.astype(np.float64)
        alb = ((1 - fc) * (1 - fr) * t[r0, c0] + fc * (1 - fr) * t[r0, c1]
               + (1 - fc) * fr * t[r1, c0] + fc * fr * t[r1, c1])
    elif colors is not None:
        alb = np.einsum("pk,pkj->pj", b, colors[tri].astype(np.float64))
    else:
        alb = np.broadcast_to(np.asarray(albedo_const, np.float64), (len(f), 3))
    val = np.clip(alb * (ambient + (1.0 - ambient) * ndl)[:, None] + spec[:, None], 0, 255)
    out[ys, xs] = (val + 0.5).astype(np.uint8)
    return out


# --------------------------------------------------------------------------- geometry prep
def _face_normals(vertices: np.ndarray, faces: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Unit face normals (M, 3) (zero for degenerate faces) and face areas (M,)."""
    v = vertices[faces]
    cr = np.cross(v[:, 1] - v[:, 0], v[:, 2] - v[:, 0])
    norm = np.linalg.norm(cr, axis=1)
    fn = np.zeros_like(cr)
    ok = norm > 1e-12
    fn[ok] = cr[ok] / norm[ok, None]
    return fn, 0.5 * norm


def corner_normals(vertices: np.ndarray, faces: np.ndarray, crease_deg: float = 40.0,
                   max_pairs: int = 20_000_000) -> tuple[np.ndarray, np.ndarray]:
    """Per face-corner normals smoothed within a crease angle, tolerant of inconsistent winding.

    vertices: (N, 3) float64 mm; faces: (M, 3) int. A corner's normal is the area-weighted sum
    of the normals of the faces around its vertex whose normal is within ``crease_deg`` of its
    own face's normal up to sign (flipped to agree with it), so smoothing never crosses a
    crease and does not care about winding. Returns (face_normals (M, 3), corner (M, 3, 3)),
    model frame, unit, each corner normal on the same side as its face normal.
    """
    fn, area = _face_normals(vertices, faces)
    m = len(faces)
    corner = np.repeat(fn[:, None, :], 3, axis=1)
    if m == 0:
        return fn, corner
    inc_v = faces.reshape(-1).astype(np.int64)  # incidence k = 3*f + j
    order = np.argsort(inc_v, kind="stable")
    sv = inc_v[order]
    starts = np.searchsorted(sv, sv, side="left")
    ends = np.searchsorted(sv, sv, side="right")
    counts = ends - starts
    total = int(counts.sum())
    if total > max_pairs:
        log.warning("mesh has vertices of very high degree (%d corner pairs); using flat shading", total)
        return fn, corner
    # All (corner, neighbour-incidence) pairs sharing a vertex.
    src = np.repeat(np.arange(len(sv)), counts)
    within = np.arange(total) - np.repeat(np.cumsum(counts) - counts, counts)
    nbr = starts[src] + within
    ci = order[src]  # corner incidence index
    fi = ci // 3
    fj = order[nbr] // 3
    d = np.sum(fn[fi] * fn[fj], axis=1)
    keep = np.abs(d) >= math.cos(math.radians(crease_deg))
    contrib = (np.sign(d) * area[fj])[:, None] * fn[fj]
    acc = np.zeros((3 * m, 3))
    np.add.at(acc, ci[keep], contrib[keep])
    nrm = np.linalg.norm(acc, axis=1)
    ok = nrm > 1e-12
    flat = corner.reshape(-1, 3).copy()
    flat[ok] = acc[ok] / nrm[ok, None]
    return fn, flat.reshape(m, 3, 3)


def _merged_vertex_ids(vertices: np.ndarray) -> np.ndarray:
    """(N,) ids equal for vertices at the same position (within 1e-6 of the mesh size), so
    meshes split at uv or normal seams still count as closed."""
    if len(vertices) == 0:
        return np.zeros(0, np.int64)
    scale = max(float(np.abs(vertices).max()), 1e-9)
    q = np.round(vertices / (scale * 1e-6)).astype(np.int64)
    _, ids = np.unique(q, axis=0, return_inverse=True)
    return ids.reshape(-1)


def _components(n: int, edges: np.ndarray) -> np.ndarray:
    """(n,) connected-component label of each node of an undirected graph (edges (E, 2))."""
    label = np.arange(n)
    if len(edges) == 0:
        return label
    a, b = edges[:, 0], edges[:, 1]
    while True:
        lo = np.minimum(label[a], label[b])
        new = label.copy()
        np.minimum.at(new, a, lo)
        np.minimum.at(new, b, lo)
        new = new[new]  # pointer jumping: converges in O(log diameter) sweeps in practice
        new = new[new]
        if np.array_equal(new, label):
            return label
        label = new


def cull_signs(vertices: np.ndarray, faces: np.ndarray) -> np.ndarray:
    """Per-face back-face culling sign, (M,) int8: +1 where the face's component is closed and
    wound with outward normals (``cross(v1 - v0, v2 - v0)`` points out), -1 where closed and
    wound inward, 0 (never cull) where the component is open, non-manifold, inconsistently
    wound or flat.

    vertices: (N, 3) float64; faces: (M, 3) int. Topology uses vertices merged by position.
    For a face on a closed, consistently wound surface, its back side is always hidden by the
    surface itself when the camera is outside, so skipping it changes nothing but the time.
    """
    m = len(faces)
    out = np.zeros(m, np.int8)
    if m == 0:
        return out
    ids = _merged_vertex_ids(vertices)
    f = ids[np.asarray(faces, np.int64)]
    n = int(ids.max()) + 1
    e = np.stack([f[:, [0, 1]], f[:, [1, 2]], f[:, [2, 0]]], axis=1).reshape(-1, 2)
    key = e[:, 0] * n + e[:, 1]
    rkey = e[:, 1] * n + e[:, 0]
    sk = np.sort(key)
    cnt = np.searchsorted(sk, key, "right") - np.searchsorted(sk, key, "left")
    rcnt = np.searchsorted(sk, rkey, "right") - np.searchsorted(sk, rkey, "left")
    # Closed and consistently wound: every directed edge appears once and so does its reverse.
    edge_ok = (cnt == 1) & (rcnt == 1) & (e[:, 0] != e[:, 1])
    face_ok = edge_ok.reshape(m, 3).all(axis=1)
    vlab = _components(n, e)
    flab = vlab[f[:, 0]]
    _, comp = np.unique(flab, return_inverse=True)
    comp = comp.reshape(-1)
    ncomp = int(comp.max()) + 1
    bad = np.bincount(comp, weights=(~face_ok).astype(np.float64), minlength=ncomp) > 0
    v = np.asarray(vertices, np.float64)[np.asarray(faces, np.int64)]
    c0 = v.mean(axis=(0, 1))  # volume about the centroid: less cancellation far from origin
    vol6 = np.einsum("ij,ij->i", v[:, 0] - c0, np.cross(v[:, 1] - c0, v[:, 2] - c0))
    cvol = np.bincount(comp, weights=vol6, minlength=ncomp)
    cabs = np.bincount(comp, weights=np.abs(vol6), minlength=ncomp)
    sign = np.where(bad | (np.abs(cvol) <= 1e-6 * np.maximum(cabs, 1e-300)), 0, np.sign(cvol)).astype(np.int8)
    return sign[comp]


def _check_pose(R_m2c: Any, t_m2c: Any) -> tuple[np.ndarray, np.ndarray]:
    R = np.asarray(R_m2c, dtype=np.float64)
    t = np.asarray(t_m2c, dtype=np.float64).reshape(-1)
    if R.shape != (3, 3) or not np.all(np.isfinite(R)):
        raise KptrackError(f"R_m2c: expected a finite (3, 3) rotation matrix, got shape {R.shape}. Pass the model-to-camera rotation.")
    if t.shape != (3,) or not np.all(np.isfinite(t)):
        raise KptrackError(f"t_m2c: expected a finite (3,) translation in mm, got shape {t.shape}. Pass the model-to-camera translation.")
    return R, t


def _camera_size(camera: Any) -> tuple[np.ndarray, int, int]:
    K = np.asarray(camera.K, dtype=np.float64)
    if K.shape != (3, 3) or not np.all(np.isfinite(K)) or abs(K[2, 2]) < 1e-12:
        raise KptrackError(f"camera.K: expected a finite (3, 3) intrinsics matrix with K[2,2] != 0, got {K.shape}. Check the calibration.")
    w, h = int(camera.width), int(camera.height)
    if w <= 0 or h <= 0:
        raise KptrackError(f"camera: image size {w}x{h} is not positive. Check width/height in the calibration.")
    return K, w, h


def _project(vertices: np.ndarray, K: np.ndarray, R: np.ndarray, t: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Camera z (N,) and pixel uv (N, 2) of model points (uv meaningless where z <= 0)."""
    pc = vertices @ R.T + t
    z = pc[:, 2]
    zs = np.where(np.abs(z) > 1e-12, z, 1e-12)
    q = pc @ K.T
    uv = q[:, :2] / zs[:, None]
    return z, uv


# --------------------------------------------------------------------------- renderer
class Renderer:
    """Z-buffer renderer of one object.

    obj: an ObjectModel (fields used: vertices (N,3) float64 mm, faces (M,3) int,
    vertex_colors (N,3) uint8 BGR or None, uv (N,2) or None, texture (Ht,Wt,3) uint8 BGR or None,
    diameter mm). ``smooth``/``crease_deg`` pick per-corner normals (see the module docstring);
    ``near_mm``: triangles with a vertex nearer than this are skipped; ``shininess``: the
    Blinn-Phong exponent (an integer); ``cull``: 'auto' culls back faces of closed,
    consistently wound components only (:func:`cull_signs`), False never culls.
    """

    def __init__(self, obj: Any, *, smooth: bool = True, crease_deg: float = 40.0, near_mm: float = 1.0,
                 shininess: int = 32, cull: str | bool = "auto") -> None:
        name = getattr(obj, "name", "object")
        # Private writable copies: one numba signature whatever the caller's arrays (the
        # object model's are read-only), so the on-disk compile cache always hits.
        v = np.array(obj.vertices, dtype=np.float64, order="C")
        f = np.asarray(obj.faces)
        if v.ndim != 2 or v.shape[1] != 3 or not np.all(np.isfinite(v)):
            raise KptrackError(f"object {name!r}: vertices must be a finite (N, 3) array in mm, got {v.shape}. Check the mesh file.")
        if f.ndim != 2 or f.shape[1] != 3 or not np.issubdtype(f.dtype, np.integer):
            raise KptrackError(f"object {name!r}: faces must be an integer (M, 3) triangle array, got {f.shape} {f.dtype}. Triangulate the mesh.")
        if len(f) and (f.min() < 0 or f.max() >= len(v)):
            raise KptrackError(f"object {name!r}: face indices out of range 0..{len(v) - 1}. The mesh file is corrupt.")
        self.obj = obj
        self.vertices = v
        self.faces = np.ascontiguousarray(f, dtype=np.int32)
        self.near = float(near_mm)
        self.shininess = int(shininess)
        if cull not in ("auto", False):
            raise KptrackError(f"cull: {cull!r} is not 'auto' or False.")
        self.cull = cull_signs(v, self.faces) if cull == "auto" else np.zeros(len(self.faces), np.int8)
        self.crease_deg = float(crease_deg)
        if smooth:
            self.face_normals, self.corner_normals = corner_normals(v, self.faces, crease_deg)
        else:
            self.face_normals, _ = _face_normals(v, self.faces)
            self.corner_normals = np.repeat(self.face_normals[:, None, :], 3, axis=1)
        self.face_normals = np.ascontiguousarray(self.face_normals)
        self.corner_normals = np.ascontiguousarray(self.corner_normals)
        vc = getattr(obj, "vertex_colors", None)
        uv = getattr(obj, "uv", None)
        tex = getattr(obj, "texture", None)
        self.has_texture = uv is not None and tex is not None
        self.has_colors = vc is not None
        if self.has_texture:
            self.uvs = np.array(uv, dtype=np.float64, order="C")
            self.texture = np.array(tex, dtype=np.uint8, order="C")
            if self.uvs.shape != (len(v), 2) or self.texture.ndim != 3 or self.texture.shape[2] != 3:
                raise KptrackError(f"object {name!r}: uv must be (N, 2) and texture (Ht, Wt, 3) uint8, got {self.uvs.shape} and {self.texture.shape}. Re-export the textured mesh.")
        else:
            self.uvs = np.zeros((1, 2))
            self.texture = np.zeros((1, 1, 3), np.uint8)
        if self.has_colors:
            self.colors = np.array(np.asarray(vc)[:, :3], dtype=np.float32, order="C")
            if self.colors.shape != (len(v), 3):
                raise KptrackError(f"object {name!r}: vertex_colors must be (N, 3) BGR, got {np.shape(vc)}. Re-export the mesh colours.")
        else:
            self.colors = np.zeros((1, 3), np.float32)
        self.albedo_const = np.asarray(DEFAULT_ALBEDO_BGR, np.float64)
        diam = getattr(obj, "diameter", None)
        if diam is None or not np.isfinite(diam) or diam <= 0:
            ext = v.max(0) - v.min(0) if len(v) else np.zeros(3)
            diam = float(np.linalg.norm(ext))
        self.diameter = float(diam)
        self._edges: np.ndarray | None = None
        # Per-thread first-pass buffers, reused across calls: fresh multi-megabyte arrays
        # every frame cost more in page faults than the rasterisation itself.
        self._scratch: dict[int, tuple[np.ndarray, np.ndarray, np.ndarray]] = {}

    def _buffers(self, rh: int, rw: int, want_bary: bool) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        """C-contiguous (rh, rw) zbuf (+inf), fid (-1) and (rh, rw, 2) bary views of this
        thread's scratch. They are overwritten by the next call on the same thread."""
        n = rh * rw
        key = threading.get_ident()
        buf = self._scratch.get(key)
        if buf is None or len(buf[0]) < n:
            cap = max(n, 2 * len(buf[0]) if buf is not None else 0)
            buf = (np.empty(cap), np.empty(cap, np.int32), np.empty(2 * cap, np.float32))
            self._scratch[key] = buf
        zbuf = buf[0][:n].reshape(rh, rw)
        fid = buf[1][:n].reshape(rh, rw)
        zbuf.fill(np.inf)
        fid.fill(-1)
        bary = buf[2][: 2 * n].reshape(rh, rw, 2) if want_bary else buf[2][:2].reshape(1, 1, 2)
        return zbuf, fid, bary

    def __getstate__(self) -> dict:
        state = self.__dict__.copy()
        state["_scratch"] = {}  # scratch is per process and per thread
        return state

    # ---- pass 1
    def _raster(self, K: np.ndarray, w: int, h: int, R: np.ndarray, t: np.ndarray, want_bary: bool,
                pad: int = 0) -> _Raster | None:
        """First pass over a checked camera (:func:`_camera_size`) and pose (:func:`_check_pose`);
        None when nothing lands in the frame."""
        n = len(self.vertices)
        uv = np.empty((n, 2))
        z = np.empty(n)
        umin, vmin, umax, vmax = _project_kernel(self.vertices, np.ascontiguousarray(K), np.ascontiguousarray(R), t, self.near, uv, z)
        if not umin <= umax or len(self.faces) == 0:
            return None
        # Clamp before int(): a vertex just past the near plane can project absurdly far.
        x0 = int(max(math.floor(min(umin, w)) - pad, 0))
        y0 = int(max(math.floor(min(vmin, h)) - pad, 0))
        x1 = int(min(math.ceil(max(umax, -1.0)) + pad, w - 1))
        y1 = int(min(math.ceil(max(vmax, -1.0)) + pad, h - 1))
        if x1 < x0 or y1 < y0:
            return None
        rh, rw = y1 - y0 + 1, x1 - x0 + 1
        zbuf, fid, bary = self._buffers(rh, rw, want_bary)
        cull_k = 1.0 if K[0, 0] * K[1, 1] > 0 else -1.0
        _rasterize_kernel(uv, z, self.faces, float(x0), float(y0), zbuf, fid, bary, want_bary, self.near, self.cull, cull_k)
        return _Raster(x0, y0, zbuf, fid, bary, uv, z)

    # ---- pass 2
    def _shade(self, ras: _Raster, K: np.ndarray, R: np.ndarray, light_dir_cam: Any, ambient: float, specular: float,
               out: np.ndarray, alpha: float = 1.0, depth: np.ndarray | None = None, mask: np.ndarray | None = None) -> None:
        """Shade the region ``ras`` into the full frame ``out`` (and ``depth``/``mask`` if given)."""
        light = np.asarray(DEFAULT_LIGHT_DIR_CAM if light_dir_cam is None else light_dir_cam, np.float64).reshape(-1)
        n = np.linalg.norm(light) if light.shape == (3,) else 0.0
        if not np.isfinite(n) or n < 1e-12:
            raise KptrackError(f"light_dir_cam: expected a non-zero (3,) direction towards the light, camera frame; got {light_dir_cam!r}.")
        write_depth = depth is not None and mask is not None
        if not write_depth:
            depth = np.zeros((1, 1), np.float32)
            mask = np.zeros((1, 1), np.bool_)
        _shade_kernel(
            ras.zbuf, ras.fid, ras.bary, int(ras.x0), int(ras.y0), np.linalg.inv(K), np.ascontiguousarray(R), self.faces,
            self.face_normals, self.corner_normals, self.colors, self.has_colors, self.uvs, self.texture,
            self.has_texture, self.albedo_const, light / n, float(ambient), float(specular), self.shininess,
            float(alpha), out, depth, mask, write_depth,
        )

    def render(self, camera: Any, R_m2c: Any, t_m2c: Any, *, light_dir_cam: Any = None, ambient: float = 0.35,
               specular: float = 0.25, background: np.ndarray | None = None) -> RenderOutput:
        """Render the object at pose (R_m2c (3,3), t_m2c (3,) mm) seen by ``camera`` (K, width, height).

        light_dir_cam: (3,) direction from the surface towards the light, camera frame
        (default: from the camera, slightly above). ambient: fraction of albedo lit without
        light; specular: Blinn-Phong highlight strength (0 disables).
        background: optional (H, W, 3) uint8 BGR image composited under the object (copied).
        Returns :class:`RenderOutput` (color BGR uint8, depth float32 mm 0 = background, mask bool).
        """
        K, w, h = _camera_size(camera)
        R, t = _check_pose(R_m2c, t_m2c)
        ras = self._raster(K, w, h, R, t, True)
        if background is not None:
            bg = np.asarray(background)
            if bg.shape != (h, w, 3):
                raise KptrackError(f"background: expected a ({h}, {w}, 3) BGR image matching the camera, got {bg.shape}. Resize it to the camera size.")
            color = np.ascontiguousarray(bg, dtype=np.uint8).copy()
        else:
            color = np.zeros((h, w, 3), np.uint8)
        depth = np.zeros((h, w), np.float32)
        mask = np.zeros((h, w), bool)
        if ras is None:
            return RenderOutput(color, depth, mask)
        self._shade(ras, K, R, light_dir_cam, ambient, specular, color, 1.0, depth, mask)
        return RenderOutput(color, depth, mask)

    def render_depth(self, camera: Any, R_m2c: Any, t_m2c: Any) -> tuple[np.ndarray, np.ndarray]:
        """Depth only: (depth (H, W) float32 camera z mm, 0 = background; mask (H, W) bool)."""
        K, w, h = _camera_size(camera)
        R, t = _check_pose(R_m2c, t_m2c)
        ras = self._raster(K, w, h, R, t, False)
        depth = np.zeros((h, w), np.float32)
        mask = np.zeros((h, w), bool)
        if ras is not None:
            rh, rw = ras.zbuf.shape
            roi_mask = ras.fid >= 0
            depth[ras.y0:ras.y0 + rh, ras.x0:ras.x0 + rw] = np.where(roi_mask, ras.zbuf, 0.0)
            mask[ras.y0:ras.y0 + rh, ras.x0:ras.x0 + rw] = roi_mask
        return depth, mask

    # ---- edges for overlays
    def crease_edges(self) -> np.ndarray:
        """(E, 2) int32 vertex pairs: boundary edges and edges whose faces meet at more than
        ``crease_deg`` (sign-agnostic). Computed once."""
        if self._edges is None:
            f0 = self.faces.astype(np.int64)
            m = len(f0)
            e0 = np.concatenate([f0[:, [0, 1]], f0[:, [1, 2]], f0[:, [2, 0]]])
            # Topology on vertices merged by position (flat-coloured meshes split every face).
            ids = _merged_vertex_ids(self.vertices)
            e = ids[e0]
            ef = np.concatenate([np.arange(m)] * 3)
            swap = e[:, 0] > e[:, 1]
            e[swap] = e[swap][:, ::-1]
            key = e[:, 0] * (len(self.vertices) + 1) + e[:, 1]
            order = np.argsort(key, kind="stable")
            key_s, e_s, ef_s = key[order], e0[order], ef[order]
            first = np.ones(len(key_s), bool)
            first[1:] = key_s[1:] != key_s[:-1]
            starts = np.nonzero(first)[0]
            counts = np.diff(np.append(starts, len(key_s)))
            keep = counts != 2  # boundary or non-manifold
            two = counts == 2
            fa = ef_s[starts[two]]
            fb = ef_s[starts[two] + 1]
            d = np.abs(np.sum(self.face_normals[fa] * self.face_normals[fb], 1))
            sharp = d < math.cos(math.radians(self.crease_deg))
            keep[np.nonzero(two)[0][sharp]] = True
            keep &= e[order][starts, 0] != e[order][starts, 1]  # collapsed (zero-length) edges
            self._edges = np.ascontiguousarray(e_s[starts[keep]], dtype=np.int32)
        return self._edges


# --------------------------------------------------------------------------- visibility
def keypoint_visibility(keypoints_mm: np.ndarray, camera: Any, R_m2c: Any, t_m2c: Any, depth: np.ndarray,
                        tol_mm: float | None = None) -> np.ndarray:
    """COCO-style visibility of model keypoints against a rendered depth map.

    keypoints_mm: (K, 3) float64 model frame mm; depth: (H, W) float32 camera z mm, 0 =
    background (e.g. from :meth:`Renderer.render_depth` at the same pose).
    tol_mm: how far behind the rendered surface a keypoint may lie and still count as seen;
    default ``max(2 mm, 1 % of the keypoints' extent, 0.5 % of the keypoint's depth)``.
    Returns v: (K,) int8 -- 2 visible; 1 inside the image but hidden; 0 outside the image or
    behind the camera. A keypoint is visible when, somewhere in the 3x3 pixels around its
    projection, nothing is rendered or the rendered surface is no more than ``tol_mm`` in
    front of it; the neighbourhood keeps points on silhouettes and steep surfaces visible.
    """
    kp = np.asarray(keypoints_mm, dtype=np.float64)
    if kp.ndim != 2 or kp.shape[1] != 3:
        raise KptrackError(f"keypoints_mm: expected (K, 3) model points in mm, got {kp.shape}.")
    K, w, h = _camera_size(camera)
    d = np.asarray(depth)
    if d.shape != (h, w):
        raise KptrackError(f"depth: expected ({h}, {w}) matching the camera, got {d.shape}. Render at the same camera.")
    R, t = _check_pose(R_m2c, t_m2c)
    z, uv = _project(kp, K, R, t)
    vis = np.zeros(len(kp), np.int8)
    if len(kp) == 0:
        return vis
    extent = float(np.linalg.norm(kp.max(0) - kp.min(0)))
    with np.errstate(invalid="ignore"):
        col = np.floor(uv[:, 0] + 0.5)
        row = np.floor(uv[:, 1] + 0.5)
    inside = (z > 1e-6) & np.isfinite(col) & np.isfinite(row) & (col >= 0) & (col < w) & (row >= 0) & (row < h)
    for k in np.nonzero(inside)[0]:
        c, r = int(col[k]), int(row[k])
        tol = tol_mm if tol_mm is not None else max(2.0, 0.01 * extent, 0.005 * z[k])
        patch = d[max(r - 1, 0):r + 2, max(c - 1, 0):c + 2]
        seen = (patch <= 0) | (patch >= z[k] - tol)
        vis[k] = 2 if np.any(seen) else 1
    return vis


# --------------------------------------------------------------------------- overlays
_RENDERER_CACHE: "weakref.WeakKeyDictionary[Any, Renderer]" = weakref.WeakKeyDictionary()


def _renderer_for(obj: Any) -> Renderer:
    """A Renderer per live object, so per-frame overlays don't rebuild normals."""
    try:
        return _RENDERER_CACHE[obj]
    except KeyError:
        pass
    except TypeError:  # not hashable / weak-referenceable: no caching
        return Renderer(obj)
    r = Renderer(obj)
    _RENDERER_CACHE[obj] = r
    return r


def _conf_color(c: float) -> tuple[int, int, int]:
    """BGR from red (confidence 0) through yellow to green (confidence 1)."""
    c = float(min(max(c, 0.0), 1.0))
    return (0, int(round(255 * min(1.0, 2 * c))), int(round(255 * min(1.0, 2 * (1 - c)))))


def draw_overlay(frame: np.ndarray, obj: Any, camera: Any, R_m2c: Any, t_m2c: Any, *, renderer: Renderer | None = None,
                 mode: str = "shaded", alpha: float = 0.45, keypoints_uv: np.ndarray | None = None,
                 confidences: np.ndarray | None = None, axes: bool = True, color: Sequence[int] = (0, 255, 0),
                 show_conf: bool = False) -> np.ndarray:
    """Draw the object at a pose over ``frame`` in place and return it.

    frame: (H, W, 3) uint8 BGR matching camera (width, height); R_m2c (3,3), t_m2c (3,) mm.
    mode: 'shaded' alpha-blends the rendered model (``alpha`` = model weight) inside its mask;
    'edges' draws the silhouette and the visible crease edges in ``color``.
    keypoints_uv: (K, 2) float64 frame pixels (NaN rows skipped), drawn as circles whose
    radius and colour (red -> green) grow with confidences (K,) in [0, 1] (default 1);
    ``show_conf`` writes the number beside each. axes: X red, Y green, Z blue, from the model
    origin, 0.5 * diameter long.
    """
    img = frame
    if not isinstance(img, np.ndarray) or img.dtype != np.uint8 or img.ndim != 3 or img.shape[2] != 3:
        raise KptrackError(f"frame: expected an (H, W, 3) uint8 BGR image, got {getattr(img, 'shape', type(img))}.")
    if mode not in ("shaded", "edges"):
        raise KptrackError(f"mode: {mode!r} is not one of 'shaded', 'edges'.")
    K, w, h = _camera_size(camera)
    if img.shape[:2] != (h, w):
        raise KptrackError(f"frame: size {img.shape[1]}x{img.shape[0]} does not match the camera {w}x{h}. Use the calibration for this video size (Camera.scaled).")
    rend = renderer if renderer is not None else _renderer_for(obj)
    R, t = _check_pose(R_m2c, t_m2c)
    col = tuple(int(c) for c in color)
    if mode == "shaded":
        ras = rend._raster(K, w, h, R, t, True)
        if ras is not None:
            if img.flags.c_contiguous:
                rend._shade(ras, K, R, None, 0.35, 0.25, img, float(alpha))
            else:  # the kernel writes through a contiguous view; copy back for odd strides
                tmp = np.ascontiguousarray(img)
                rend._shade(ras, K, R, None, 0.35, 0.25, tmp, float(alpha))
                img[...] = tmp
    else:
        ras = rend._raster(K, w, h, R, t, False)
        if ras is not None:
            roi_mask = (ras.fid >= 0).astype(np.uint8)
            contours, _ = cv2.findContours(roi_mask, cv2.RETR_EXTERNAL, cv2.CHAIN_APPROX_SIMPLE, offset=(ras.x0, ras.y0))
            cv2.drawContours(img, contours, -1, col, 2, cv2.LINE_AA)
            edges = rend.crease_edges()
            if len(edges):
                _draw_visible_edges(img, rend, ras, edges, col)
    if axes:
        L = 0.5 * rend.diameter
        pts = np.array([[0, 0, 0], [L, 0, 0], [0, L, 0], [0, 0, L]], np.float64)
        z, uv = _project(pts, K, R, t)
        if np.all(z > rend.near) and np.all(np.abs(uv) < 1e5):
            o = tuple(int(round(c)) for c in uv[0])
            for i, c in ((1, (0, 0, 255)), (2, (0, 255, 0)), (3, (255, 0, 0))):
                cv2.line(img, o, tuple(int(round(v)) for v in uv[i]), c, 2, cv2.LINE_AA)
    if keypoints_uv is not None:
        kuv = np.asarray(keypoints_uv, np.float64).reshape(-1, 2)
        conf = np.ones(len(kuv)) if confidences is None else np.asarray(confidences, np.float64).reshape(-1)
        if len(conf) != len(kuv):
            raise KptrackError(f"confidences: {len(conf)} values for {len(kuv)} keypoints; pass one per keypoint.")
        for (u, v), c in zip(kuv, conf):
            if not (np.isfinite(u) and np.isfinite(v)) or abs(u) > 1e5 or abs(v) > 1e5:
                continue
            cc = float(c) if np.isfinite(c) else 0.0
            p = (int(round(u)), int(round(v)))
            cv2.circle(img, p, int(round(2 + 4 * min(max(cc, 0.0), 1.0))), _conf_color(cc), -1, cv2.LINE_AA)
            if show_conf:
                cv2.putText(img, f"{cc:.2f}", (p[0] + 6, p[1] - 4), cv2.FONT_HERSHEY_SIMPLEX, 0.35, (255, 255, 255), 1, cv2.LINE_AA)
    return img


def _draw_visible_edges(img, rend: Renderer, ras: _Raster, edges, col) -> None:
    """Draw crease edges whose midpoint is not hidden behind the rendered surface."""
    z, uv = ras.z, ras.uv
    a, b = edges[:, 0], edges[:, 1]
    ok = (z[a] >= rend.near) & (z[b] >= rend.near)
    a, b = a[ok], b[ok]
    if len(a) == 0:
        return
    # The 3D midpoint of an edge projects to the 2D midpoint of... nothing simple, so test the
    # 2D midpoint, whose depth along the edge is exact in 1/z (perspective-correct).
    mu = 0.5 * (uv[a] + uv[b])
    mz = 2.0 / (1.0 / z[a] + 1.0 / z[b])
    rh, rw = ras.zbuf.shape
    c = np.floor(mu[:, 0] + 0.5) - ras.x0
    r = np.floor(mu[:, 1] + 0.5) - ras.y0
    inb = (c >= 0) & (c < rw) & (r >= 0) & (r < rh)
    c = np.clip(c, 0, rw - 1).astype(np.intp)
    r = np.clip(r, 0, rh - 1).astype(np.intp)
    # Visible when some pixel of the 3x3 around it has the edge no farther than the surface
    # there (plus a tolerance): an edge lies on the surface, on a silhouette or a crease.
    tol = max(1.0, 0.01 * rend.diameter)
    far = np.full(len(c), -np.inf)
    for dy in (-1, 0, 1):
        rr = np.clip(r + dy, 0, rh - 1)
        for dx in (-1, 0, 1):
            zz = ras.zbuf[rr, np.clip(c + dx, 0, rw - 1)]
            far = np.maximum(far, np.where(np.isfinite(zz), zz, -np.inf))
    vis = inb & ((far == -np.inf) | (mz <= far + tol))
    if not np.any(vis):
        return
    segs = np.stack([uv[a[vis]], uv[b[vis]]], 1)
    segs = np.round(np.clip(segs, -1e5, 1e5)).astype(np.int32)
    cv2.polylines(img, list(segs), False, col, 1, cv2.LINE_AA)


def draw_hud(frame: np.ndarray, lines: Sequence[str], *, origin: tuple[int, int] = (8, 8), scale: float = 0.5) -> np.ndarray:
    """Draw text ``lines`` top-left over a darkened box, in place; returns ``frame``.

    frame: (H, W, 3) uint8 BGR.
    """
    if not lines:
        return frame
    font = cv2.FONT_HERSHEY_SIMPLEX
    sizes = [cv2.getTextSize(s, font, scale, 1) for s in lines]
    lh = max(sz[0][1] + sz[1] for sz in sizes) + 4
    bw = max(sz[0][0] for sz in sizes) + 10
    x0, y0 = origin
    h, w = frame.shape[:2]
    x1, y1 = min(x0 + bw, w), min(y0 + lh * len(lines) + 6, h)
    if x1 > x0 and y1 > y0:
        box = frame[y0:y1, x0:x1]
        box[:] = (box.astype(np.uint16) * 3 // 10).astype(np.uint8)
    for i, s in enumerate(lines):
        cv2.putText(frame, s, (x0 + 5, y0 + 3 + lh * (i + 1) - 4), font, scale, (255, 255, 255), 1, cv2.LINE_AA)
    return frame
