"""The renderer's numba kernels: vertex projection, z-buffer rasterisation, deferred shading, and
the silhouette and crease pixels of a raster.

Rasterisation is a classic scan-conversion z-buffer (Catmull 1974) over each triangle's
projected bounding box, with edge functions evaluated at integer pixel centres (Pineda, "A
Parallel Algorithm for Polygon Rasterization", SIGGRAPH 1988) and perspective-correct
attribute interpolation through ``1/z`` (Heckbert & Moreton, "Interpolation for Polygon
Texture Mapping and Shading", 1991). Shading is Lambert diffuse + ambient + Blinn-Phong
specular (Blinn, "Models of Light Reflection for Computer Synthesized Pictures", 1977).

Every kernel has a plain numpy twin that the tests compare against: :func:`project_kernel`
has :func:`tracker.geometry.transform` + :func:`tracker.geometry.project_cam`;
:func:`rasterize_kernel`, :func:`shade_kernel` and :func:`edge_pixels_kernel` have
:mod:`tracker.render.reference`. Kernels are compiled once and cached on disk (``cache=True``),
release the GIL, and write only into the buffers they are given, so threads may call them
concurrently on their own buffers. :class:`tracker.render.renderer.Renderer` is the only caller
in the library but for :func:`edge_pixels_kernel`, which :class:`tracker.pipeline.edges.EdgeScorer`
runs on a raster's face ids.
"""

from __future__ import annotations

import math

import numpy as np
from numba import njit


@njit(cache=True, nogil=True, error_model="numpy")
def project_kernel(vertices, K, R, t, near, uv, z):
    """Project model points into ``uv`` ((N, 2) pixels) and ``z`` ((N,) camera z mm).

    vertices: (N, 3) float64 mm; K, R: (3, 3); t: (3,) mm. Returns the pixel bounding box
    (umin, vmin, umax, vmax) of the points with ``z >= near`` (umin > umax when there are
    none). The numpy twin is :func:`tracker.geometry.transform` then
    :func:`tracker.geometry.project_cam` (which agree with ``uv`` wherever ``z > 1e-6`` mm)
    plus a masked min/max.
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
def rasterize_kernel(uv, z, faces, x0, y0, zbuf, fid, bary, want_bary, near, cull, cull_k):
    """Z-buffer the triangles into ``zbuf``/``fid``/``bary`` (region offset ``x0, y0``).

    uv: (N, 2) float64 frame pixels; z: (N,) float64 camera z mm; faces: (M, 3) int32.
    zbuf: (h, w) float64 initialised to +inf; fid: (h, w) int32 initialised to -1;
    bary: (h, w, 2) float32 (written only when ``want_bary``).
    cull: (M,) int8 per-face back-face sign (0 = never cull), cull_k: sign(fx * fy); a face
    is skipped when ``signed_screen_area * cull[f] * cull_k > 0`` (see
    :func:`tracker.render.mesh_prep.cull_signs`). The numpy twin is
    :func:`tracker.render.reference.rasterize_ref`.
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
        # so each is stepped by the constant ex along a row (and recomputed at each row start).
        e0x = -(cy - by) * inv_area
        e1x = -(ay - cy) * inv_area
        e2x = -(by - ay) * inv_area
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
def shade_kernel(
    zbuf, fid, bary, x0, y0, kinv, rot, faces, face_normals, corner_normals,
    colors, has_colors, uvs, texture, has_texture, albedo_const,
    light, ambient, specular, shininess, alpha, out, depth, mask, write_depth,
):
    """Shade every covered pixel of a region and write it into full-frame buffers.

    zbuf/fid/bary: the region's first pass (see :func:`rasterize_kernel`), at frame offset
    (x0, y0) ints. kinv: (3, 3) inverse intrinsics; rot: (3, 3) R_m2c; face_normals: (M, 3)
    model frame unit; corner_normals: (M, 3, 3) model frame unit, each on its face normal's
    side; colors: (N, 3) float32 BGR; uvs: (N, 2) float64; texture: (Ht, Wt, 3) uint8;
    albedo_const: (3,) float64; light: (3,) float64 unit, towards the light, camera frame;
    shininess: int. out: (H, W, 3) uint8 BGR frame: covered pixels are set to the shaded
    colour when ``alpha >= 1``, else blended ``alpha * shaded + (1 - alpha) * out``.
    depth (H, W) float32 and mask (H, W) bool get z and True when ``write_depth``.
    The numpy twin is :func:`tracker.render.reference.shade_ref`.
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


@njit(cache=True, nogil=True, error_model="numpy")
def edge_pixels_kernel(fid, face_normals, cos_crease, out):
    """Mark in ``out`` ((h, w) bool, cleared here) the pixels of a raster's face ids ``fid``
    ((h, w) int32, -1 = empty) that lie on the object's silhouette or on a crease: a 4-neighbour
    across the mask's border, or on another face whose normal (``face_normals`` (F, 3), unit)
    differs by more than the crease angle (``|n_a . n_b| < cos_crease``, sign-agnostic: meshes
    from the wild are not consistently wound). Both pixels of such a pair are marked. The numpy
    twin is :func:`tracker.render.reference.edge_pixels_ref`."""
    h, w = fid.shape
    out[:, :] = False
    for y in range(h):
        for x in range(w):
            a = fid[y, x]
            for dy, dx in ((0, 1), (1, 0)):
                yy = y + dy
                xx = x + dx
                if yy >= h or xx >= w:
                    continue
                b = fid[yy, xx]
                if a == b:
                    continue
                hit = False
                if (a < 0) != (b < 0):
                    hit = True
                elif a >= 0:
                    dot = (face_normals[a, 0] * face_normals[b, 0] + face_normals[a, 1] * face_normals[b, 1]
                           + face_normals[a, 2] * face_normals[b, 2])
                    hit = abs(dot) < cos_crease
                if hit:
                    out[y, x] = True
                    out[yy, xx] = True
