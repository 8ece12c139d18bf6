"""Software z-buffer renderer of one :class:`~tracker.objects.ObjectModel`: :class:`Renderer`,
its output :class:`RenderOutput`, and the camera and pose checks every render entry point runs.

The renderer is deferred: a first pass (:meth:`Renderer.raster`) writes, per pixel, the
camera depth, the index of the nearest face and its perspective-correct barycentrics; a
second pass (:meth:`Renderer.shade`) shades each visible pixel once. :meth:`Renderer.render_depth`
runs only the first pass. Both passes work inside the bounding box of the object's projection
(clipped to the image) so cost scales with the object's size on screen, not the frame's. The
passes are the numba kernels of :mod:`tracker.render.kernels` (algorithms and citations there).

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
  face is drawn from both sides (:func:`tracker.render.mesh_prep.cull_signs`). Lighting flips
  each face's normal to face the viewer. (A camera inside a closed component sees nothing of it.)
* Normals: per face-corner normals averaged over the faces around a vertex whose normals are
  within ``crease_deg`` (sign-agnostic, so inconsistent winding still smooths); sharper
  edges stay flat (:func:`tracker.render.mesh_prep.corner_normals`). ``smooth=False`` gives
  flat shading.
* Albedo: the texture (bilinear, uv convention ``col = u*(Wt-1)``, ``row = (1-v)*(Ht-1)``,
  uv clamped to [0, 1]) when the object has ``uv`` and ``texture``; else interpolated vertex
  colours; else a uniform grey.

A Renderer keeps one set of first-pass buffers per thread, so one Renderer may be shared by
threads (the kernels release the GIL). Cost grows with the object's on-screen area (about
35 ns per covered pixel to shade on one core) and its triangle count; at 640x480 a
5k-triangle object about 150 px across renders in about 1 ms (``benchmarks/test_bench_render.py``).
"""

from __future__ import annotations

import math
import threading
from dataclasses import dataclass
from typing import Any, NamedTuple

import numpy as np

from tracker.errors import KptrackError
from tracker.render.kernels import project_kernel, rasterize_kernel, shade_kernel
from tracker.render.mesh_prep import corner_normals, crease_edges, cull_signs, face_normals

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


class Raster(NamedTuple):
    """First-pass result inside the region of interest ``[y0:y0+h, x0:x0+w]`` of the frame
    (from :meth:`Renderer.raster`; its arrays are the thread's scratch, valid until the next call)."""

    x0: int
    y0: int
    zbuf: np.ndarray  # (h, w) float64 camera z, +inf = empty
    fid: np.ndarray  # (h, w) int32 face index, -1 = empty
    bary: np.ndarray  # (h, w, 2) float32 perspective-correct barycentrics of corners 1 and 2
    uv: np.ndarray  # (N, 2) float64 projected vertices, frame pixels
    z: np.ndarray  # (N,) float64 vertex camera z, mm


# --------------------------------------------------------------------------- checks, projection
def check_pose(R_m2c: Any, t_m2c: Any) -> tuple[np.ndarray, np.ndarray]:
    """A model-to-camera pose as float64 arrays: (R (3, 3), t (3,) mm); raises KptrackError
    naming the argument when either has the wrong shape or is not finite."""
    R = np.asarray(R_m2c, dtype=np.float64)
    t = np.asarray(t_m2c, dtype=np.float64).reshape(-1)
    if R.shape != (3, 3) or not np.all(np.isfinite(R)):
        raise KptrackError(f"R_m2c: expected a finite (3, 3) rotation matrix, got shape {R.shape}. Pass the model-to-camera rotation.")
    if t.shape != (3,) or not np.all(np.isfinite(t)):
        raise KptrackError(f"t_m2c: expected a finite (3,) translation in mm, got shape {t.shape}. Pass the model-to-camera translation.")
    return R, t


def check_camera(camera: Any) -> tuple[np.ndarray, int, int]:
    """(K (3, 3) float64, width, height) of a camera (anything with ``K``, ``width``,
    ``height``); raises KptrackError when K is not a finite intrinsics matrix or the size is
    not positive."""
    K = np.asarray(camera.K, dtype=np.float64)
    if K.shape != (3, 3) or not np.all(np.isfinite(K)) or abs(K[2, 2]) < 1e-12:
        raise KptrackError(f"camera.K: expected a finite (3, 3) intrinsics matrix with K[2,2] != 0, got {K.shape}. Check the calibration.")
    w, h = int(camera.width), int(camera.height)
    if w <= 0 or h <= 0:
        raise KptrackError(f"camera: image size {w}x{h} is not positive. Check width/height in the calibration.")
    return K, w, h


def project_points(xyz_model: np.ndarray, K: np.ndarray, R: np.ndarray, t: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Camera z (N,) float64 mm and pixels uv (N, 2) float64 of model points, through the
    renderer's own projection kernel, so overlays and visibility tests land on exactly the
    pixels the renderer draws (uv is meaningless where z <= 0).

    xyz_model: (N, 3) mm; K, R (3, 3) and t (3,) mm float64, as from :func:`check_camera` and
    :func:`check_pose`. Agrees with :func:`tracker.geometry.project` wherever z > 1e-6 mm
    (``tests/tracker/render/test_kernels.py``); the kernel avoids its per-call numpy overhead.
    """
    pts = np.ascontiguousarray(xyz_model, dtype=np.float64)
    n = len(pts)
    uv = np.empty((n, 2))
    z = np.empty(n)
    project_kernel(pts, np.ascontiguousarray(K), np.ascontiguousarray(R), t, 0.0, uv, z)
    return z, uv


# --------------------------------------------------------------------------- renderer
class Renderer:
    """Z-buffer renderer of one object.

    obj: an ObjectModel (fields used: vertices (N,3) float64 mm, faces (M,3) int,
    vertex_colors (N,3) uint8 BGR or None, uv (N,2) or None, texture (Ht,Wt,3) uint8 BGR or None,
    diameter mm). ``smooth``/``crease_deg`` pick per-corner normals (see the module docstring);
    ``near_mm``: triangles with a vertex nearer than this are skipped; ``shininess``: the
    Blinn-Phong exponent (an integer); ``cull``: 'auto' culls back faces of closed,
    consistently wound components only (:func:`~tracker.render.mesh_prep.cull_signs`), False never culls.
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
            self.face_normals, _ = face_normals(v, self.faces)
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
    def raster(self, K: np.ndarray, w: int, h: int, R: np.ndarray, t: np.ndarray, want_bary: bool,
               pad: int = 0) -> Raster | None:
        """First pass (depth, face id and, if ``want_bary``, barycentrics) over a camera and
        pose already checked by :func:`check_camera` (K (3, 3), width ``w``, height ``h``) and
        :func:`check_pose` (R (3, 3), t (3,) mm); ``pad`` widens the region by that many pixels.
        Returns a :class:`Raster` (this thread's scratch buffers), or None when nothing lands
        in the frame."""
        n = len(self.vertices)
        uv = np.empty((n, 2))
        z = np.empty(n)
        umin, vmin, umax, vmax = project_kernel(self.vertices, np.ascontiguousarray(K), np.ascontiguousarray(R), t, self.near, uv, z)
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
        rasterize_kernel(uv, z, self.faces, float(x0), float(y0), zbuf, fid, bary, want_bary, self.near, self.cull, cull_k)
        return Raster(x0, y0, zbuf, fid, bary, uv, z)

    # ---- pass 2
    def shade(self, ras: Raster, K: np.ndarray, R: np.ndarray, light_dir_cam: Any, ambient: float, specular: float,
              out: np.ndarray, alpha: float = 1.0, depth: np.ndarray | None = None, mask: np.ndarray | None = None) -> None:
        """Shade the region ``ras`` (from :meth:`raster` with ``want_bary``) into the full frame.

        K (3, 3), R (3, 3) R_m2c as given to :meth:`raster`; light_dir_cam, ambient, specular
        as in :meth:`render`. out: (H, W, 3) uint8 BGR, C-contiguous, written in place: set to
        the shaded colour where the object is when ``alpha >= 1``, else blended
        ``alpha * shaded + (1 - alpha) * out``. depth (H, W) float32 / mask (H, W) bool, if both
        given, get camera z mm and True there.
        """
        light = np.asarray(DEFAULT_LIGHT_DIR_CAM if light_dir_cam is None else light_dir_cam, np.float64).reshape(-1)
        n = np.linalg.norm(light) if light.shape == (3,) else 0.0
        if not np.isfinite(n) or n < 1e-12:
            raise KptrackError(f"light_dir_cam: expected a non-zero (3,) direction towards the light, camera frame; got {light_dir_cam!r}.")
        write_depth = depth is not None and mask is not None
        if not write_depth:
            depth = np.zeros((1, 1), np.float32)
            mask = np.zeros((1, 1), np.bool_)
        shade_kernel(
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
        K, w, h = check_camera(camera)
        R, t = check_pose(R_m2c, t_m2c)
        ras = self.raster(K, w, h, R, t, True)
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
        self.shade(ras, K, R, light_dir_cam, ambient, specular, color, 1.0, depth, mask)
        return RenderOutput(color, depth, mask)

    def render_depth(self, camera: Any, R_m2c: Any, t_m2c: Any) -> tuple[np.ndarray, np.ndarray]:
        """Depth only: (depth (H, W) float32 camera z mm, 0 = background; mask (H, W) bool)."""
        K, w, h = check_camera(camera)
        R, t = check_pose(R_m2c, t_m2c)
        ras = self.raster(K, w, h, R, t, False)
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
        ``crease_deg`` (sign-agnostic). Computed once (:func:`tracker.render.mesh_prep.crease_edges`)."""
        if self._edges is None:
            self._edges = crease_edges(self.vertices, self.faces, self.face_normals, self.crease_deg)
        return self._edges
