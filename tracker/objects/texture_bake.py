"""Baking a texture from photos of the object at known poses: the UV atlas, the texels' surface
points, and the colour each texel takes from the photos that see it.

1. **UVs** (:func:`atlas_uv`): a mesh's own uv in [0, 1] is kept; a mesh without uv (or whose uv
   repeats outside [0, 1]) is unwrapped by xatlas (Young, "xatlas", a maintained port of
   Castano's thekla_atlas: chart segmentation, LSCM parametrisation, packing). Vertices are split
   at chart seams; faces keep their order.
2. **Texels** (:func:`texel_surface`): the uv triangles are drawn into texel space by the
   project's own rasteriser (:class:`~tracker.render.renderer.Renderer`, with each vertex placed
   at its texel position at unit depth and an identity camera), which gives every covered texel
   its face and barycentrics, hence its surface point (model frame, mm) and face normal.
3. **Fill** (:func:`bake_texture`): each texel's colour is the weighted mean over the photos
   where its surface point is visible: its face is rendered at that photo's pose where the
   point projects (the renderer's depth buffer does the occlusion test: the rendered depth at
   that pixel equals the depth of the texel's face plane along the pixel's ray, within
   ``0.5 mm + 0.2 %``), the face looks towards the camera (for closed, consistently wound
   meshes, whose outside is known), the pixel is two pixels inside the rendered silhouette (a
   pose a pixel off must not pull in the background), and outside the photo's ignore mask
   (hands). The weight is ``cos^2`` of the angle between the face normal and the ray to the
   camera (zero below ``min_cos``: grazing views smear) times ``min(1, distance to the image
   border / border_px)``. Photos are sampled bilinearly at the point's projection with the
   camera's distortion.
4. **Unseen texels** next to seen ones (the silhouette margin, small gaps) take the seen
   colours grown into them, up to ``EDGE_GROW_TEXELS``, but only on faces that share a vertex
   with a seen face, so no colour crosses a chart edge onto a face no photo saw. The others keep
   the mesh's colour (its old texture, or its vertex colours interpolated) or, for
   ``unseen='median'`` or a mesh without colours, the median of the seen texels. Texels outside
   every chart are grown from their neighbours (a gutter, so bilinear lookups at chart edges do
   not pick up black). Coverage counts the seen texels only.
5. **Coverage** is area-weighted: each face's 3D area is shared among its texels, so the figure
   is the fraction of the surface (not of the atlas) that some photo saw.

Texture convention as everywhere (:mod:`tracker.objects.texture`): texel column ``u * (Wt - 1)``,
row ``(1 - v) * (Ht - 1)``; images uint8 BGR.

This module sits above :mod:`tracker.render` (it renders), so :mod:`tracker.objects` does not
re-export it.
"""

from __future__ import annotations

import logging
import types
from dataclasses import dataclass
from typing import Any, Sequence

import cv2
import numpy as np

from tracker.camera.camera import Camera
from tracker.errors import KptrackError
from tracker.render.mesh_prep import face_normals
from tracker.render.renderer import Renderer, project_points
from tracker.objects.texture import sample_texture

log = logging.getLogger(__name__)

ATLAS_PADDING = 4  # texels between xatlas charts, room for the gutter
GUTTER_TEXELS = 8  # how far colours are grown past chart edges
EDGE_GROW_TEXELS = 16  # how far seen colours are grown into unseen texels of the faces around them


@dataclass(frozen=True)
class Atlas:
    """A mesh with texture coordinates. vertices (N, 3) float64 mm; faces (M, 3) int32 (the
    input's faces, in order); uv (N, 2) float64; vertex_colors (N, 3) uint8 BGR or None;
    source_vertex (N,) int: the input vertex each vertex came from; size (Wt, Ht) texels;
    unwrapped: True when xatlas made the uv."""

    vertices: np.ndarray
    faces: np.ndarray
    uv: np.ndarray
    vertex_colors: np.ndarray | None
    source_vertex: np.ndarray
    size: tuple[int, int]
    unwrapped: bool


def atlas_uv(obj: Any, size: int | None = None, name: str = "the mesh") -> Atlas:
    """The mesh's own uv when it has them in [0, 1], else an xatlas atlas; ``size``: the texture's
    longer side in texels (None: the mesh's texture size, or 1024). obj: an ObjectModel (or
    anything with vertices, faces, uv, texture, vertex_colors). KptrackError naming ``name`` when
    xatlas cannot unwrap the mesh."""
    v = np.asarray(obj.vertices, np.float64)
    f = np.asarray(obj.faces, np.int32)
    vc = None if obj.vertex_colors is None else np.asarray(obj.vertex_colors, np.uint8)
    uv = None if obj.uv is None else np.asarray(obj.uv, np.float64)
    if uv is not None and uv.min() >= -1e-4 and uv.max() <= 1 + 1e-4:
        if size is None and obj.texture is not None:
            th, tw = np.asarray(obj.texture).shape[:2]
            return Atlas(v, f, np.clip(uv, 0, 1), vc, np.arange(len(v)), (tw, th), False)
        s = int(size or 1024)
        return Atlas(v, f, np.clip(uv, 0, 1), vc, np.arange(len(v)), (s, s), False)
    if uv is not None:
        log.warning("%s: its uv repeat outside [0, 1]; unwrapping it again with xatlas", name)
    s = int(size or 1024)
    vmap, faces, new_uv, (w, h) = _xatlas_unwrap(v, f, s, name)
    return Atlas(v[vmap], faces, new_uv, None if vc is None else vc[vmap], vmap, (w, h), True)


def _xatlas_unwrap(v: np.ndarray, f: np.ndarray, size: int, name: str):
    """(vmap (N',) int, faces (M, 3) int32, uv (N', 2) float64, (Wt, Ht)) from xatlas."""
    try:
        import xatlas  # lazy: only unwrapping needs it, and an install older than this module may lack it
    except ImportError:
        raise KptrackError("xatlas is not installed (it unwraps meshes without uv). Run `pip install xatlas`, "
                           "or `pip install -e .` in the kptrack checkout.") from None
    fix = "Repair the mesh (e.g. MeshLab: remove duplicate/zero-area faces) or give it uv in [0, 1]."
    try:
        atlas = xatlas.Atlas()
        atlas.add_mesh(v.astype(np.float32), f.astype(np.uint32))
        po = xatlas.PackOptions()
        po.resolution, po.padding, po.bilinear = int(size), ATLAS_PADDING, True
        atlas.generate(xatlas.ChartOptions(), po)
        vmap, faces, uv = atlas[0]
        w, h = int(atlas.width), int(atlas.height)
        if max(w, h) > size:  # xatlas may overshoot its resolution a little; uv are normalised, so just sample coarser
            w, h = max(2, round(w * size / max(w, h))), max(2, round(h * size / max(w, h)))
    except (RuntimeError, ValueError, IndexError) as e:
        raise KptrackError(f"{name}: xatlas cannot unwrap it ({e}). {fix}") from None
    faces = np.asarray(faces, np.int64)
    uv = np.asarray(uv, np.float64)
    if faces.shape != f.shape or w < 2 or h < 2:
        raise KptrackError(f"{name}: xatlas cannot unwrap it (it returned {len(faces)} faces for {len(f)}, a {w}x{h} atlas). {fix}")
    _, area = face_normals(v, f)
    bad = ~np.isfinite(uv).all(1)
    if np.any(bad[faces[area > 0]]):
        raise KptrackError(f"{name}: xatlas cannot unwrap it ({int(bad.sum())} vertices got no uv). {fix}")
    uv[bad] = 0.0  # only on zero-area faces, which cover no texel
    return np.asarray(vmap, np.int64), faces.astype(np.int32), uv, (w, h)


@dataclass(frozen=True)
class Texels:
    """The texels a face covers. rows, cols (T,) int; face (T,) int; xyz (T, 3) float64 mm
    (model frame); normal (T, 3) float64 unit face normals; bary (T, 3) float64 weights of the
    face's corners; area (T,) float64 mm^2 of surface per texel (a face's area shared by its texels)."""

    rows: np.ndarray
    cols: np.ndarray
    face: np.ndarray
    xyz: np.ndarray
    normal: np.ndarray
    bary: np.ndarray
    area: np.ndarray


def texel_surface(atlas: Atlas) -> Texels:
    """Rasterise the uv triangles of ``atlas`` into its (Ht, Wt) texel grid with the renderer
    (see the module docstring) and give every covered texel its surface point."""
    w, h = atlas.size
    uvpx = np.stack([atlas.uv[:, 0] * (w - 1), (1.0 - atlas.uv[:, 1]) * (h - 1), np.ones(len(atlas.uv))], 1)
    flat = types.SimpleNamespace(name="uv atlas", vertices=uvpx, faces=atlas.faces, diameter=float(max(w, h)))
    ras = Renderer(flat, smooth=False, near_mm=1e-6, cull=False).raster(np.eye(3), w, h, np.eye(3), np.zeros(3), True)
    if ras is None:
        raise KptrackError("the uv atlas covers no texel. Give the mesh uv in [0, 1], or remove them to unwrap it with xatlas.")
    rr, cc = np.nonzero(ras.fid >= 0)
    face = ras.fid[rr, cc].astype(np.int64)
    b12 = ras.bary[rr, cc].astype(np.float64)
    bary = np.concatenate([1.0 - b12.sum(1, keepdims=True), b12], 1)
    corners = atlas.vertices[atlas.faces[face]]  # (T, 3, 3)
    xyz = np.einsum("tk,tkj->tj", bary, corners)
    fn, farea = face_normals(atlas.vertices, atlas.faces)
    count = np.bincount(face, minlength=len(atlas.faces))
    return Texels(rr + ras.y0, cc + ras.x0, face, xyz, fn[face], bary, farea[face] / count[face])


@dataclass(frozen=True)
class View:
    """One photo at a known pose. image: (H, W, 3) uint8 BGR as taken (with the camera's
    distortion); R_m2c (3, 3), t_m2c (3,) mm; ignore: (H, W) bool, True where the photo must
    not be used (hands), or None; name: for messages."""

    image: np.ndarray
    R_m2c: np.ndarray
    t_m2c: np.ndarray
    ignore: np.ndarray | None = None
    name: str = "photo"


def view_weights(texels: Texels, renderer: Renderer, camera: Camera, view: View, *, min_cos: float = 0.15,
                 border_px: float = 20.0) -> tuple[np.ndarray, np.ndarray]:
    """Weight (T,) float64 (0 = not seen) and colour (T, 3) float64 BGR of every texel in one
    view (see the module docstring for the tests and the weight)."""
    K = np.asarray(camera.K, np.float64)
    R, t = np.asarray(view.R_m2c, np.float64), np.asarray(view.t_m2c, np.float64)
    H, W = camera.height, camera.width
    depth, mask = renderer.render_depth(camera, R, t)
    inner = cv2.erode(mask.view(np.uint8), np.ones((5, 5), np.uint8)) > 0
    z, uv_ideal = project_points(texels.xyz, K, R, t)
    weight = np.zeros(len(z))
    with np.errstate(invalid="ignore"):
        col = np.floor(uv_ideal[:, 0] + 0.5)
        row = np.floor(uv_ideal[:, 1] + 0.5)
    ok = (z > 1e-6) & np.isfinite(col) & np.isfinite(row) & (col >= 0) & (col < W) & (row >= 0) & (row < H)
    idx = np.flatnonzero(ok)
    ci, ri = col[idx].astype(np.int64), row[idx].astype(np.int64)
    idx, ci, ri = idx[inner[ri, ci]], ci[inner[ri, ci]], ri[inner[ri, ci]]
    pc = texels.xyz[idx] @ R.T + t  # camera frame, mm
    nc = texels.normal[idx] @ R.T
    facing = np.einsum("ij,ij->i", nc, pc)  # < 0: the normal points towards the camera
    cos = np.abs(facing) / np.linalg.norm(pc, axis=1)
    outward = renderer.cull[texels.face[idx]].astype(np.float64)  # +1/-1 where the winding fixes the outside, else 0
    front = (outward * facing <= 0) & (cos >= min_cos)
    idx, ci, ri, pc, nc, cos = idx[front], ci[front], ri[front], pc[front], nc[front], cos[front]
    # depth of the texel's own face plane along the ray of the pixel centre it is looked up at:
    # equal to the rendered depth there when that face is what the photo shows, to within
    # float error, however slanted the face (the texel's own depth would differ by up to
    # half a pixel times the slope, as much as a neighbouring face's)
    ray = np.stack([ci, ri, np.ones(len(ci))], 1) @ np.linalg.inv(K).T
    z_plane = np.einsum("ij,ij->i", nc, pc) / np.einsum("ij,ij->i", nc, ray)
    seen = np.abs(depth[ri, ci] - z_plane) <= 0.5 + 0.002 * z_plane
    idx, cos = idx[seen], cos[seen]
    uv = camera.project(texels.xyz[idx], R, t) if camera.has_distortion else uv_ideal[idx]
    border = np.minimum.reduce([uv[:, 0], uv[:, 1], W - 1 - uv[:, 0], H - 1 - uv[:, 1]])
    w = cos * cos * np.clip(border / max(border_px, 1e-9), 0.0, 1.0)
    if view.ignore is not None:
        rc = np.clip(np.floor(uv + 0.5).astype(np.int64), 0, [W - 1, H - 1])
        w = np.where(view.ignore[rc[:, 1], rc[:, 0]], 0.0, w)
    weight[idx] = w
    colour = np.zeros((len(z), 3))
    colour[idx] = _bilinear(view.image, uv)
    return weight, colour


def _bilinear(image: np.ndarray, uv: np.ndarray) -> np.ndarray:
    """(N, 3) float64 BGR of ``image`` (H, W, 3) uint8 at pixels uv (N, 2), bilinear. The points
    go to cv2.remap as rows of 4096 (it takes at most 32767 rows or columns)."""
    n = len(uv)
    if n == 0:
        return np.zeros((0, 3))
    cols = 4096
    maps = np.zeros((-(-n // cols) * cols, 2), np.float32)
    maps[:n] = uv
    out = cv2.remap(image, maps.reshape(-1, cols, 2), None, cv2.INTER_LINEAR, borderMode=cv2.BORDER_REPLICATE)
    return out.reshape(-1, 3)[:n].astype(np.float64)


@dataclass(frozen=True)
class Baked:
    """A baked texture. texture: (Ht, Wt, 3) uint8 BGR; seen: (Ht, Wt) bool, texels some photo
    saw; coverage: fraction (0..1) of the surface area seen; per_view: fraction of the surface
    each view contributed to."""

    texture: np.ndarray
    seen: np.ndarray
    coverage: float
    per_view: tuple[float, ...]


def bake_texture(obj: Any, atlas: Atlas, camera: Camera, views: Sequence[View], *, unseen: str = "mesh",
                 min_cos: float = 0.15, border_px: float = 20.0) -> Baked:
    """Fill the texture of ``atlas`` (from :func:`atlas_uv` of ``obj``) from ``views`` seen by
    ``camera``. unseen: 'mesh' (keep the mesh's colour; the median when it has none) or 'median'."""
    if unseen not in ("mesh", "median"):
        raise KptrackError(f"--unseen {unseen!r}: use mesh or median.")
    texels = texel_surface(atlas)
    renderer = Renderer(obj)
    acc_w = np.zeros(len(texels.xyz))
    acc_c = np.zeros((len(texels.xyz), 3))
    total = float(texels.area.sum())
    per_view = []
    for view in views:
        w, c = view_weights(texels, renderer, camera, view, min_cos=min_cos, border_px=border_px)
        acc_w += w
        acc_c += w[:, None] * c
        per_view.append(float(texels.area[w > 0].sum()) / total)
        log.info("%s: sees %.1f %% of the surface", view.name, 100 * per_view[-1])
    seen = acc_w > 0
    if not np.any(seen):
        raise KptrackError("no photo sees any part of the object's surface at its pose. Check the photos, their labels and the masks.")
    rows, cols = texels.rows, texels.cols
    colour = acc_c[seen] / acc_w[seen, None]
    median = np.median(colour, axis=0)
    w, h = atlas.size
    tex = np.zeros((h, w, 3), np.float32)
    tex[rows[seen], cols[seen]] = colour
    seen_img = np.zeros((h, w), bool)
    seen_img[rows[seen], cols[seen]] = True
    # the strip a photo's silhouette margin left out (and other small gaps) takes the colours
    # next to it, but only on faces that touch a seen face: never across a chart edge onto a
    # face no photo saw
    near = np.zeros(len(atlas.vertices), bool)
    near[atlas.faces[np.unique(texels.face[seen])]] = True
    allowed = np.zeros((h, w), bool)
    allowed[rows, cols] = near[atlas.faces].any(1)[texels.face]
    tex, filled = _grow(tex, seen_img, allowed, EDGE_GROW_TEXELS)
    rest = ~filled[rows, cols]
    tex[rows[rest], cols[rest]] = _unseen_colours(obj, atlas, texels, rest, median, unseen)
    covered = np.zeros((h, w), bool)
    covered[rows, cols] = True
    tex, have = _grow(tex, covered, np.ones((h, w), bool), GUTTER_TEXELS)
    tex[~have] = median
    texture = np.clip(np.rint(tex), 0, 255).astype(np.uint8)
    return Baked(texture, seen_img, float(texels.area[seen].sum()) / total, tuple(per_view))


def _unseen_colours(obj: Any, atlas: Atlas, texels: Texels, sel: np.ndarray, median: np.ndarray, unseen: str) -> np.ndarray:
    """(n, 3) float64 BGR for the unseen texels ``sel``: the mesh's own colour, or the median."""
    if unseen == "mesh" and obj.texture is not None and not atlas.unwrapped:
        uv = np.einsum("tk,tkj->tj", texels.bary[sel], atlas.uv[atlas.faces[texels.face[sel]]])
        return sample_texture(np.asarray(obj.texture), uv).astype(np.float64)
    if unseen == "mesh" and atlas.vertex_colors is not None:
        cols = atlas.vertex_colors[atlas.faces[texels.face[sel]]].astype(np.float64)  # (n, 3 corners, 3)
        return np.einsum("tk,tkj->tj", texels.bary[sel], cols)
    if unseen == "mesh":
        log.info("the mesh has no colours; unseen texels get the median of the seen ones")
    return np.broadcast_to(median, (int(sel.sum()), 3))


def _grow(tex: np.ndarray, have: np.ndarray, allowed: np.ndarray, steps: int) -> tuple[np.ndarray, np.ndarray]:
    """Grow the colours of the texels ``have`` into the ``allowed`` texels around them, one ring
    per step, each new texel the mean of its 3x3 neighbours with a colour. tex: (Ht, Wt, 3)
    float32; have, allowed: (Ht, Wt) bool. Returns new (tex, have)."""
    tex, got = tex.copy(), have.astype(np.float32)
    for _ in range(steps):
        n = cv2.blur(got, (3, 3), borderType=cv2.BORDER_CONSTANT)
        s = cv2.blur(tex * got[..., None], (3, 3), borderType=cv2.BORDER_CONSTANT)
        grow = (got == 0) & (n > 0) & allowed
        if not np.any(grow):
            break
        tex[grow] = s[grow] / n[grow, None]
        got[grow] = 1.0
    return tex, got > 0
