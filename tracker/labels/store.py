"""Where ``kptrack annotate`` keeps its labels: a BOP scene folder with a COCO keypoints file.

::

    <out>/keypoints_coco.json   the labels (COCO keypoints, :mod:`tracker.formats.coco`)
    <out>/rgb/<frame:06d>.png   the labelled frames, as decoded from the source (lossless)
    <out>/scene_camera.json     K of every frame          \\  written by
    <out>/scene_gt.json         pose of every frame with   > :mod:`tracker.labels.pose`
    <out>/labels_report.json    >= 4 labels, RMS per frame/
    <out>/check/<frame:06d>.jpg the projected CAD over each labelled frame
    <out>/camera.yaml           the calibration used (when absent)

A COCO image's ``id`` is the frame index in the source (the BOP ``im_id`` too), which is how
``kptrack eval --labels`` matches labels with the rows of ``kptrack track --poses``. Every
chosen frame has an image entry; a frame gets an annotation once it was visited (a keypoint
placed or skipped). Visibility: 2 placed, 0 not (COCO). The file is replaced atomically
(temporary file, then rename) at every save, so a crash leaves the last complete save.
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import Mapping, Sequence

import cv2
import numpy as np

from tracker.errors import KptrackError
from tracker.formats.coco import CocoAnnotation, CocoImage, read_coco, write_coco
from tracker.labels.session import FrameLabels

LABELS_FILE = "keypoints_coco.json"
IMAGES_DIR = "rgb"
SAME_FRAME_TOL = 2.0


def labels_path(spec: str | Path) -> Path:
    """The labels file of a ``--labels``/``--out`` argument: the JSON itself, or keypoints_coco.json in a folder."""
    p = Path(spec)
    return p / LABELS_FILE if p.is_dir() or not p.suffix else p


def image_name(frame: int) -> str:
    """COCO file_name of a frame, relative to the labels file's folder."""
    return f"{IMAGES_DIR}/{int(frame):06d}.png"


def write_frames(out: Path, frames: Mapping[int, np.ndarray]) -> int:
    """Write each frame (H, W, 3) uint8 BGR to ``out/rgb/<frame>.png`` unless that file exists
    (a resumed session keeps its images). Returns the number written.

    An existing image that is not the same frame (another size, or a mean difference over
    ``SAME_FRAME_TOL`` grey levels: decoders agree to rounding) means the folder holds labels of
    another video: KptrackError before anything is written."""
    for f, img in sorted(frames.items()):
        p = out / image_name(f)
        old = cv2.imread(str(p), cv2.IMREAD_COLOR) if p.exists() else None
        if old is not None and (old.shape != img.shape or np.abs(old.astype(np.int16) - img).mean() > SAME_FRAME_TOL):
            raise KptrackError(f"{p}: this labels folder holds another frame {f} than the source gives (labels of another "
                               "video?). Pass another --out for this video, or the source these labels were made on.")
    d = out / IMAGES_DIR
    try:
        d.mkdir(parents=True, exist_ok=True)
    except OSError as e:
        raise KptrackError(f"{d}: cannot create the images folder ({e.strerror}). Choose a writable --out.") from None
    n = 0
    for f, img in sorted(frames.items()):
        p = out / image_name(f)
        if p.exists():
            continue
        tmp = p.with_name(p.stem + ".tmp.png")
        if not cv2.imwrite(str(tmp), img):
            raise KptrackError(f"{p}: cannot write the frame. Choose a writable --out with free space.")
        os.replace(tmp, p)
        n += 1
    return n


def _bbox(uv: np.ndarray, v: np.ndarray) -> tuple[float, float, float, float]:
    """[x, y, w, h] around the placed keypoints (0s when none)."""
    pts = uv[v > 0]
    if not len(pts):
        return (0.0, 0.0, 0.0, 0.0)
    lo, hi = pts.min(0), pts.max(0)
    return (float(lo[0]), float(lo[1]), float(hi[0] - lo[0]), float(hi[1] - lo[1]))


def save_labels(path: Path, labels: Mapping[int, FrameLabels], names: Sequence[str], sizes: Mapping[int, tuple[int, int]],
                category_name: str = "object") -> Path:
    """Write the COCO keypoints file: an image per frame of ``sizes`` ({frame: (width, height)}),
    an annotation per visited frame of ``labels``. Atomic (see the module docstring)."""
    images = [CocoImage(int(f), image_name(f), int(w), int(h)) for f, (w, h) in sorted(sizes.items())]
    anns = []
    for f in sorted(labels):
        lab = labels[f]
        if not lab.visited:
            continue
        if f not in sizes:
            raise ValueError(f"frame {f} has labels but no image size")
        bbox = _bbox(lab.uv, lab.v)
        anns.append(CocoAnnotation(image_id=int(f), uv=np.nan_to_num(lab.uv), v=lab.v, bbox=bbox, area=bbox[2] * bbox[3]))
    try:
        return write_coco(path, images, anns, names, category_name=category_name)
    except OSError as e:
        raise KptrackError(f"{path}: cannot write the labels ({e.strerror}). Choose a writable --out; the last save is kept.") from None


def load_labels(path: Path, names: Sequence[str]) -> tuple[dict[int, FrameLabels], dict[int, tuple[int, int]]]:
    """Read a labels file written by :func:`save_labels` (or any COCO keypoints file whose image
    ids are frame indices) for an object with keypoints ``names``.

    Returns ({frame: FrameLabels (visited)}, {frame: (width, height)}). Raises KptrackError naming
    the file when its keypoint names are not the object's."""
    coco = read_coco(path)
    if tuple(coco.keypoint_names) != tuple(names):
        raise KptrackError(
            f"{path}: labels for keypoints ({', '.join(coco.keypoint_names)}) but the object has ({', '.join(names)}). "
            "Pass the --object these labels were made for, or another --out folder for new labels."
        )
    sizes = {im.id: (im.width, im.height) for im in coco.images}
    labels = {}
    for a in coco.annotations:
        uv = np.where((a.v > 0)[:, None], a.uv, np.nan)
        labels[int(a.image_id)] = FrameLabels(uv=uv, v=np.where(a.v > 0, 2, 0).astype(np.int8), visited=True)
    return labels, sizes
