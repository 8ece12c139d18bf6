"""Plain numpy twins of the renderer's numba kernels, for the equivalence tests (slow).

:func:`rasterize_ref` is the reference for :func:`tracker.render.kernels.rasterize_kernel`
(z-buffer over pixel centres, perspective-correct barycentrics through ``1/z``, Heckbert &
Moreton 1991) and :func:`shade_ref` for :func:`tracker.render.kernels.shade_kernel` (Lambert
+ ambient + Blinn-Phong, Blinn 1977); :func:`edge_pixels_ref` for
:func:`tracker.render.kernels.edge_pixels_kernel`. They are written for clarity, vectorised per
triangle or per pixel; the library never calls them.
"""

from __future__ import annotations

import numpy as np


def rasterize_ref(uv: np.ndarray, z: np.ndarray, faces: np.ndarray, width: int, height: int,
                  near: float = 1.0, cull: np.ndarray | None = None, cull_k: float = 1.0) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Plain numpy z-buffer, the reference for :func:`~tracker.render.kernels.rasterize_kernel` (slow; tests only).

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
    """Plain numpy twin of :func:`~tracker.render.kernels.shade_kernel` over a whole image (tests only).

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


def edge_pixels_ref(fid: np.ndarray, face_normals: np.ndarray, cos_crease: float) -> np.ndarray:
    """Plain numpy silhouette and crease pixels of a raster's face ids, the reference for
    :func:`~tracker.render.kernels.edge_pixels_kernel` (tests only): (h, w) bool."""
    inside = fid >= 0
    e = np.zeros(fid.shape, bool)
    for a, b in ((np.s_[1:, :], np.s_[:-1, :]), (np.s_[:, 1:], np.s_[:, :-1])):
        hit = inside[a] != inside[b]
        fa, fb = fid[a], fid[b]
        meet = inside[a] & inside[b] & (fa != fb)
        hit[meet] = np.abs(np.einsum("ij,ij->i", face_normals[fa[meet]], face_normals[fb[meet]])) < cos_crease
        e[a] |= hit
        e[b] |= hit
    return e
