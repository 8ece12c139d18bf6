"""The photos ``kptrack object texture`` reads, with their labelled keypoints, masks and poses.

Labels come in either form ``kptrack annotate`` reads or writes:

* **COCO keypoints JSON** (``kptrack annotate``'s ``keypoints_coco.json``, or its folder): each
  annotated image, at the path its ``file_name`` gives relative to the JSON; the photo's frame
  number is the COCO image id.
* **A points file** (CSV ``frame,name,x,y`` or its JSON list, :mod:`tracker.labels.points`) and
  ``frames_from``: the video or image folder its frame numbers index (as ``kptrack track`` counts
  frames: position in the video, or in the folder's natural sort order).

Keypoint names must be the object's. A photo's pose is :func:`tracker.labels.pose.fit_label_pose`
(SQPnP on all labels, then the project's LM, no RANSAC, so a swapped click shows as a large RMS
instead of being dropped): :func:`photo_pose` refuses the photo when the RMS exceeds ``max_rms_px``,
naming the keypoint with the largest residual. A photo of another size than the camera's is
refused too. An optional mask per photo (``<masks>/<photo stem>.png``, any image type;
non-zero = do not use: hands, other objects) keeps pixels out of the texture.
"""

from __future__ import annotations

import json
import logging
from dataclasses import dataclass
from pathlib import Path
from typing import Sequence

import cv2
import numpy as np

from tracker.camera.camera import Camera
from tracker.errors import KptrackError
from tracker.formats.bop_scene import IMAGE_EXTS
from tracker.formats.coco import read_coco
from tracker.labels.frames import read_frames
from tracker.labels.points import read_points
from tracker.labels.pose import MIN_LABELS, LabelFit, fit_label_pose

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class Photo:
    """One labelled photo. name: its file, or ``source#frame``, for messages; stem: the mask's
    file name; frame: frame number (COCO image id); image: (H, W, 3) uint8 BGR as taken; uv:
    (K, 2) float64 pixels of the photo, in the object's keypoint order; v: (K,) int8 (> 0 labelled)."""

    name: str
    stem: str
    frame: int
    image: np.ndarray
    uv: np.ndarray
    v: np.ndarray


def _is_coco(path: Path) -> bool:
    if path.suffix.lower() != ".json":
        return False
    try:
        doc = json.loads(path.read_text())
    except (OSError, UnicodeDecodeError, json.JSONDecodeError):
        return True  # read_coco names the problem
    return isinstance(doc, dict)


def read_photos(labels: str | Path, names: Sequence[str], *, frames_from: str | Path | None = None,
                frames: Sequence[int] | None = None) -> list[Photo]:
    """The labelled photos of ``labels`` (see the module docstring), keypoints in the order of
    ``names`` (the object's); ``frames``: only these frame numbers (None: all labelled ones)."""
    path = Path(labels)
    if path.is_dir():
        path = path / "keypoints_coco.json"
    if not path.is_file():
        raise KptrackError(f"--labels {path}: not found. Pass the keypoints_coco.json of `kptrack annotate` (or its folder), "
                           "or a points CSV with --frames-from.")
    index = {n: i for i, n in enumerate(names)}
    photos = _read_coco_photos(path, index) if _is_coco(path) else _read_points_photos(path, names, index, frames_from, frames)
    if frames is not None:
        missing = sorted(set(frames) - {p.frame for p in photos})
        if missing:
            raise KptrackError(f"--frames: frame(s) {', '.join(map(str, missing[:10]))} have no labels in {path}. "
                               f"Labelled frames: {', '.join(str(p.frame) for p in photos[:20])}.")
        photos = [p for p in photos if p.frame in set(frames)]
    else:
        few = [p for p in photos if int(np.count_nonzero(p.v > 0)) < MIN_LABELS]
        if few:
            log.warning("%d labelled photo(s) with fewer than %d labels left out (frames %s)", len(few), MIN_LABELS,
                        ", ".join(str(p.frame) for p in few[:20]))
        photos = [p for p in photos if int(np.count_nonzero(p.v > 0)) >= MIN_LABELS]
    if not photos:
        raise KptrackError(f"--labels {path}: no labelled photo. Label at least {MIN_LABELS} keypoints on a photo (kptrack annotate).")
    return photos


def _read_coco_photos(path: Path, index: dict[str, int]) -> list[Photo]:
    coco = read_coco(path)
    unknown = [n for n in coco.keypoint_names if n not in index]
    if unknown:
        raise KptrackError(f"--labels {path}: keypoint(s) {', '.join(unknown)} are not the object's ({', '.join(index)}). "
                           "Pass the --object the labels were made for.")
    cols = np.array([index[n] for n in coco.keypoint_names], np.int64)
    photos = []
    for s in sorted(coco.samples, key=lambda s: s.image_id):
        image = cv2.imread(str(s.image_path), cv2.IMREAD_COLOR)
        if image is None:
            raise KptrackError(f"{s.image_path}: the photo of image id {s.image_id} in {path} cannot be read. "
                               "Put the images where the JSON's file_name says (beside it), or fix file_name.")
        uv = np.full((len(index), 2), np.nan)
        v = np.zeros(len(index), np.int8)
        uv[cols], v[cols] = s.uv, s.v
        photos.append(Photo(str(s.image_path), s.image_path.stem, int(s.image_id), image, uv, v))
    return photos


def _read_points_photos(path: Path, names: Sequence[str], index: dict[str, int], frames_from, frames) -> list[Photo]:
    if frames_from is None:
        raise KptrackError(f"--labels {path}: a points file needs --frames-from VIDEO_OR_FOLDER, the source its frame numbers index.")
    points = read_points(path, names)
    wanted = sorted({p.frame for p in points} & (set(frames) if frames is not None else {p.frame for p in points}))
    images, _ = read_frames(str(frames_from), wanted)
    photos = []
    for f in wanted:
        uv = np.full((len(names), 2), np.nan)
        v = np.zeros(len(names), np.int8)
        for p in points:
            if p.frame == f:
                uv[index[p.name]] = (p.x, p.y)
                v[index[p.name]] = 2
        photos.append(Photo(f"{frames_from}#{f}", f"{f:06d}", f, images[f], uv, v))
    return photos


def read_mask(masks: str | Path | None, photo: Photo) -> np.ndarray | None:
    """(H, W) bool ignore mask of ``photo`` (True = do not use) from ``<masks>/<stem>.<ext>``, or
    None when there is no such file. KptrackError for an unreadable mask or one of another size."""
    if masks is None:
        return None
    d = Path(masks)
    if not d.is_dir():
        raise KptrackError(f"--masks {d}: not a folder. Pass a folder of masks named like the photos (e.g. 000012.png).")
    found = [d / f"{photo.stem}{e}" for e in IMAGE_EXTS if (d / f"{photo.stem}{e}").is_file()]
    if not found:
        return None
    m = cv2.imread(str(found[0]), cv2.IMREAD_GRAYSCALE)
    if m is None or m.shape != photo.image.shape[:2]:
        got = "unreadable" if m is None else f"{m.shape[1]}x{m.shape[0]}"
        raise KptrackError(f"{found[0]}: the mask of {photo.name} is {got}; it must be a "
                           f"{photo.image.shape[1]}x{photo.image.shape[0]} image (non-zero = do not use).")
    return m > 0


def photo_pose(xyz_model: np.ndarray, names: Sequence[str], camera: Camera, photo: Photo, max_rms_px: float) -> LabelFit:
    """The pose of the object in ``photo`` from its labels; KptrackError naming the photo when
    its size is not the camera's, it has no pose, or the labels fit with an RMS above ``max_rms_px``."""
    h, w = photo.image.shape[:2]
    if (w, h) != (camera.width, camera.height):
        raise KptrackError(f"{photo.name}: the photo is {w}x{h} but the camera is {camera.width}x{camera.height}. "
                           "Pass the calibration made at this photo size (or resize the photos to the camera's size).")
    fit = fit_label_pose(xyz_model, names, camera, photo.uv, photo.v)
    if not fit.ok:
        raise KptrackError(f"{photo.name}: no pose from its labels ({fit.reason}). Label at least {MIN_LABELS} keypoints, "
                           "not all on one line, or leave this photo out with --frames.")
    if fit.rms_px > max_rms_px:
        worst = int(np.nanargmax(fit.residuals_px))
        raise KptrackError(
            f"{photo.name}: its labels fit the object with an RMS of {fit.rms_px:.1f} px (limit {max_rms_px:g} px); "
            f"keypoint {fit.worst!r} is off by {fit.residuals_px[worst]:.1f} px. Swapped or misplaced clicks are the usual "
            "cause: fix that label (kptrack annotate), leave the photo out with --frames, or raise --max-rms."
        )
    log.info("%s: pose from %d labels, RMS %.2f px (worst %s %.2f px)", photo.name, fit.n_labels, fit.rms_px, fit.worst,
             float(np.nanmax(fit.residuals_px)))
    return fit
