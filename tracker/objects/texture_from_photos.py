"""``kptrack object texture``'s library: the object's appearance from labelled photos.

:func:`texture_object` (one call per command run):

1. loads the object and the camera, reads the labelled photos and their masks
   (:mod:`tracker.objects.texture_photos`), and fits each photo's pose from its labels, refusing a
   photo of the wrong size or whose labels fit badly (before anything is written);
2. gives the mesh uv (its own, or an xatlas atlas) and bakes the texture from the photos
   (:mod:`tracker.objects.texture_bake`), reporting the coverage;
3. writes a new object directory (``model.ply`` with uv and the texture's colours per vertex,
   ``texture.png``, the same ``keypoints.json`` and ``models_info.json``), plus
   ``texture_check.jpg``: the textured model from six sides (+x, -x, +y, -y, +z, -z), then each
   photo with the textured model drawn over it at its pose, and ``texture_report.json``
   (coverage, per-photo RMS and worst keypoint). The directory is written under a temporary
   name and renamed when complete; an existing ``out`` (the input included) is never touched.
"""

from __future__ import annotations

import dataclasses
import json
import logging
import math
import os
import shutil
from dataclasses import dataclass
from pathlib import Path

import cv2
import numpy as np

from tracker.camera.camera import Camera
from tracker.errors import KptrackError
from tracker.geometry.se3 import look_at
from tracker.objects.object_dir import load_object, write_object_dir
from tracker.objects.texture import sample_texture
from tracker.objects.texture_bake import View, atlas_uv, bake_texture
from tracker.objects.texture_photos import photo_pose, read_mask, read_photos
from tracker.render.draw import draw_hud, draw_overlay
from tracker.render.renderer import Renderer

log = logging.getLogger(__name__)

CHECK_FILE = "texture_check.jpg"
REPORT_FILE = "texture_report.json"
_TILE = 256  # side of a six-sides tile, px
_PHOTO_W = 512  # width of a photo tile, px


@dataclass(frozen=True)
class TextureConfig:
    """Options of ``kptrack object texture``.

    object: the object directory to texture; labels: COCO keypoints JSON (or its folder) or a
    points file; camera: OpenCV YAML of the photos' camera; out: the new object directory
    (must not exist). frames_from: with a points file, the video or image folder its frames
    index; frames: only these labelled frames (None: all with >= 4 labels); masks: folder of
    ignore masks named like the photos. size: texture's longer side, texels (None: the mesh's
    texture size, or 1024). max_rms_px: refuse a photo whose labels fit worse. unseen: 'mesh'
    or 'median' (see :mod:`tracker.objects.texture_bake`). min_cos, border_px: the view weight.
    """

    object: str | Path
    labels: str | Path
    camera: str | Path
    out: str | Path
    frames_from: str | Path | None = None
    frames: tuple[int, ...] | None = None
    masks: str | Path | None = None
    size: int | None = None
    max_rms_px: float = 4.0
    unseen: str = "mesh"
    min_cos: float = 0.15
    border_px: float = 20.0


@dataclass(frozen=True)
class TextureResult:
    """What :func:`texture_object` made. out: the object directory; coverage: fraction of the
    surface seen; photos: per photo (name, RMS px, worst keypoint, fraction of the surface seen);
    unwrapped: xatlas made the uv; picture: the check picture."""

    out: Path
    coverage: float
    photos: tuple[tuple[str, float, str, float], ...]
    unwrapped: bool
    picture: Path


def _check_config(cfg: TextureConfig) -> Path:
    out = Path(cfg.out)
    if out.exists():
        raise KptrackError(f"--out {out}: already exists. Choose a new directory; kptrack object texture never overwrites one.")
    if cfg.size is not None and not 16 <= int(cfg.size) <= 4096:
        # a texel carries ~100 bytes of surface point, normal and weights while baking: 4096^2 is ~2 GB
        raise KptrackError(f"--size {cfg.size}: give 16 to 4096 texels.")
    if not cfg.max_rms_px > 0:
        raise KptrackError(f"--max-rms {cfg.max_rms_px}: must be > 0 px.")
    if cfg.unseen not in ("mesh", "median"):
        raise KptrackError(f"--unseen {cfg.unseen!r}: use mesh or median.")
    return out


def texture_object(cfg: TextureConfig) -> TextureResult:
    """Texture an object from labelled photos (see the module docstring); returns what it wrote."""
    out = _check_config(cfg)
    obj = load_object(cfg.object)
    camera = Camera.from_yaml(cfg.camera)
    photos = read_photos(cfg.labels, obj.keypoint_names, frames_from=cfg.frames_from, frames=cfg.frames)
    fits = [photo_pose(obj.keypoints, obj.keypoint_names, camera, p, cfg.max_rms_px) for p in photos]
    views = [View(p.image, f.R_m2c, f.t_m2c, read_mask(cfg.masks, p), p.name) for p, f in zip(photos, fits)]
    atlas = atlas_uv(obj, cfg.size, name=str(cfg.object))
    baked = bake_texture(obj, atlas, camera, views, unseen=cfg.unseen, min_cos=cfg.min_cos, border_px=cfg.border_px)
    textured = dataclasses.replace(
        obj, vertices=atlas.vertices, faces=atlas.faces, uv=atlas.uv.astype(np.float32), texture=baked.texture,
        vertex_colors=sample_texture(baked.texture, atlas.uv), path=None,
    )
    rows = tuple((p.name, f.rms_px, str(f.worst), s) for p, f, s in zip(photos, fits, baked.per_view))
    tmp = out.with_name(f".{out.name}.tmp{os.getpid()}")
    try:
        write_object_dir(textured, tmp)
        cv2.imwrite(str(tmp / CHECK_FILE), check_picture(textured, camera, views, rows), [cv2.IMWRITE_JPEG_QUALITY, 90])
        report = {"coverage_percent": 100 * baked.coverage, "unwrapped_with_xatlas": atlas.unwrapped,
                  "texture_size": list(atlas.size), "unseen": cfg.unseen,
                  "photos": [{"photo": n, "rms_px": r, "worst_keypoint": w, "surface_seen_percent": 100 * s} for n, r, w, s in rows]}
        (tmp / REPORT_FILE).write_text(json.dumps(report, indent=1) + "\n")
        os.rename(tmp, out)  # fails rather than replaces if out appeared meanwhile
    except OSError as e:
        shutil.rmtree(tmp, ignore_errors=True)
        raise KptrackError(f"--out {out}: cannot write the object directory ({e.strerror or e}). Choose a new, writable --out.") from None
    finally:
        shutil.rmtree(tmp, ignore_errors=True)
    log.info("textured %s from %d photo(s): %.1f %% of the surface seen -> %s", cfg.object, len(photos), 100 * baked.coverage, out)
    return TextureResult(out, baked.coverage, rows, atlas.unwrapped, out / CHECK_FILE)


def six_sides(obj, renderer: Renderer | None = None, tile: int = _TILE) -> np.ndarray:
    """(tile, 6 * tile, 3) uint8 BGR: the object rendered from +x, -x, +y, -y, +z, -z, its
    bounding box filling about 85 % of each tile, lit mostly by ambient light so the texture shows."""
    renderer = renderer or Renderer(obj)
    cam = Camera.from_fov(30.0, tile, tile)
    centre = obj.bbox_min + obj.bbox_size / 2.0
    size = np.asarray(obj.bbox_size, np.float64)
    tiles = []
    for axis in range(6):
        across = max(np.delete(size, axis // 2).max(), 1e-6)  # the box's larger side seen from this axis
        dist = 0.5 * across / math.tan(math.radians(15.0)) / 0.85 + 0.5 * size[axis // 2]
        d = np.zeros(3)
        d[axis // 2] = 1.0 if axis % 2 == 0 else -1.0
        up = np.array([0.0, 0.0, 1.0]) if axis < 4 else np.array([0.0, 1.0, 0.0])
        R, t = look_at(centre + dist * d, centre, up=up)
        img = renderer.render(cam, R, t, ambient=0.7, specular=0.0, background=np.full((tile, tile, 3), 40, np.uint8)).color
        tiles.append(draw_hud(img, [f"{'+-'[axis % 2]}{'xyz'[axis // 2]}"]))
    return np.concatenate(tiles, axis=1)


def check_picture(obj, camera: Camera, views: list[View], rows) -> np.ndarray:
    """The check picture (see the module docstring): six sides on top, then the photos (three
    per row, undistorted when the camera has distortion) with the model drawn half-transparent
    at each photo's pose and its name, RMS and share of the surface written on it."""
    renderer = Renderer(obj)
    top = six_sides(obj, renderer)
    width = top.shape[1]
    per_row = max(1, width // _PHOTO_W)
    scale = _PHOTO_W / camera.width
    ph = int(round(camera.height * scale))
    pinhole = camera.without_distortion() if camera.has_distortion else camera
    tiles = []
    for view, (name, rms, worst, seen) in zip(views, rows):
        img = cv2.undistort(view.image, camera.K, camera.dist) if camera.has_distortion else view.image.copy()
        draw_overlay(img, obj, pinhole, view.R_m2c, view.t_m2c, renderer=renderer, mode="shaded", alpha=0.5, axes=False)
        img = cv2.resize(img, (_PHOTO_W, ph), interpolation=cv2.INTER_AREA)
        tiles.append(draw_hud(img, [Path(name).name, f"RMS {rms:.2f} px (worst {worst})", f"sees {100 * seen:.0f} % of the surface"]))
    rows_img = [top]
    for i in range(0, len(tiles), per_row):
        row = np.zeros((ph, width, 3), np.uint8)
        for j, t in enumerate(tiles[i:i + per_row]):
            row[:, j * _PHOTO_W:(j + 1) * _PHOTO_W] = t
        rows_img.append(row)
    return np.concatenate(rows_img, axis=0)
