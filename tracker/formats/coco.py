"""COCO keypoints JSON (Lin et al., "Microsoft COCO: Common Objects in Context", ECCV 2014).

kptrack writes one file per BOP scene (``keypoints_coco.json``) and reads any COCO keypoints
file with one category::

    images[]:      {id, file_name, width, height}            (id = BOP im_id, file_name relative
                                                              to the JSON's folder, e.g. rgb/000012.jpg)
    annotations[]: {id, image_id, category_id, keypoints: [x, y, v] * K, num_keypoints,
                    bbox: [x, y, w, h], area, iscrowd: 0}
    categories[]:  {id, name, supercategory, keypoints: [names], skeleton: [[i, j], ...]}

Visibility flags as in COCO: v=2 labelled and visible, v=1 labelled but hidden (inside the
image, behind the object itself or an occluder), v=0 not labelled (outside the image or behind
the camera) with x = y = 0. Coordinates are float pixels with kptrack's convention: pixel
centres at integer coordinates (OpenCV), written at full float64 precision.
"""

from __future__ import annotations

import json
import os
from dataclasses import dataclass, field
from pathlib import Path
from typing import Sequence

import numpy as np

from tracker.errors import KptrackError
from tracker.formats.jsonfile import read_json


@dataclass(frozen=True)
class CocoImage:
    id: int
    file_name: str
    width: int
    height: int


@dataclass(frozen=True)
class CocoAnnotation:
    """uv: (K, 2) float64 pixels; v: (K,) int8 in {0, 1, 2}; bbox: [x, y, w, h] pixels."""

    image_id: int
    uv: np.ndarray
    v: np.ndarray
    bbox: tuple[float, float, float, float]
    area: float
    id: int = 0
    category_id: int = 1


@dataclass(frozen=True)
class CocoSample:
    """One annotation joined with its image. image_path is absolute (resolved against the JSON's folder).
    uv: (K, 2) float64 pixels (0 where v == 0); v: (K,) int8."""

    image_id: int
    image_path: Path
    width: int
    height: int
    uv: np.ndarray
    v: np.ndarray
    bbox: tuple[float, float, float, float]
    area: float


@dataclass
class CocoKeypoints:
    """A read COCO keypoints file. ``samples`` joins each annotation with its image."""

    path: Path
    images: list[CocoImage]
    annotations: list[CocoAnnotation]
    keypoint_names: tuple[str, ...]
    category_name: str = "object"
    skeleton: list[list[int]] = field(default_factory=list)

    @property
    def samples(self) -> list[CocoSample]:
        by_id = {im.id: im for im in self.images}
        base = self.path.parent
        out = []
        for a in self.annotations:
            im = by_id[a.image_id]
            out.append(
                CocoSample(
                    image_id=a.image_id,
                    image_path=base / im.file_name,
                    width=im.width,
                    height=im.height,
                    uv=a.uv,
                    v=a.v,
                    bbox=a.bbox,
                    area=a.area,
                )
            )
        return out

    def __len__(self) -> int:
        return len(self.annotations)


def keypoints_flat(uv: np.ndarray, v: np.ndarray) -> list[float]:
    """COCO flat list [x, y, v] * K from uv (K, 2) float64 and v (K,) int; x = y = 0 where v == 0."""
    uv = np.asarray(uv, dtype=np.float64).reshape(-1, 2)
    v = np.asarray(v).reshape(-1)
    out: list[float] = []
    for (x, y), f in zip(uv.tolist(), v.tolist()):
        f = int(f)
        if f == 0:
            out += [0, 0, 0]
        else:
            out += [x, y, f]
    return out


def write_coco(
    path: str | Path,
    images: Sequence[CocoImage],
    annotations: Sequence[CocoAnnotation],
    keypoint_names: Sequence[str],
    *,
    category_name: str = "object",
    skeleton: Sequence[Sequence[int]] = (),
) -> Path:
    """Write a COCO keypoints JSON with one category (id 1). Annotation ids are numbered from 1
    in order when an annotation's id is 0. Returns the path."""
    path = Path(path)
    names = [str(n) for n in keypoint_names]
    anns = []
    for i, a in enumerate(annotations):
        v = np.asarray(a.v).reshape(-1)
        if v.size != len(names):
            raise ValueError(f"annotation for image {a.image_id} has {v.size} keypoints, category has {len(names)}")
        anns.append(
            {
                "id": int(a.id) if a.id else i + 1,
                "image_id": int(a.image_id),
                "category_id": int(a.category_id),
                "keypoints": keypoints_flat(a.uv, v),
                "num_keypoints": int(np.count_nonzero(v > 0)),
                "bbox": [float(x) for x in a.bbox],
                "area": float(a.area),
                "iscrowd": 0,
            }
        )
    doc = {
        "info": {"description": "kptrack keypoints", "version": "1.0"},
        "images": [
            {"id": int(im.id), "file_name": str(im.file_name), "width": int(im.width), "height": int(im.height)}
            for im in images
        ],
        "annotations": anns,
        "categories": [
            {
                "id": 1,
                "name": category_name,
                "supercategory": "object",
                "keypoints": names,
                "skeleton": [[int(i), int(j)] for i, j in skeleton],
            }
        ],
    }
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(path.name + ".tmp")
    with open(tmp, "w", encoding="utf-8") as f:
        json.dump(doc, f, separators=(",", ":"))
    os.replace(tmp, path)
    return path


def _err(path: Path, what: str) -> KptrackError:
    return KptrackError(f"{path}: {what}. Fix the file or re-create it (kptrack synth writes valid ones).")


def read_coco(path: str | Path, category_id: int | None = None) -> CocoKeypoints:
    """Read and validate a COCO keypoints JSON.

    category_id: which category to read when the file has several with keypoints (default: the
    only one). Raises KptrackError naming the file on any structural problem.
    """
    path = Path(path)
    doc = read_json(path, "COCO keypoints file not found. Check the path.",
                    "Fix the file or re-create it (kptrack synth writes valid ones).")
    if not isinstance(doc, dict) or not all(isinstance(doc.get(k), list) for k in ("images", "annotations", "categories")):
        raise _err(path, "needs lists 'images', 'annotations' and 'categories'")
    cats = [c for c in doc["categories"] if isinstance(c, dict) and c.get("keypoints")]
    if category_id is not None:
        cats = [c for c in cats if c.get("id") == category_id]
    if len(cats) != 1:
        raise _err(
            path,
            f"expected one category with keypoint names, found {len(cats)}"
            + ("" if category_id is not None else "; pass category_id to choose"),
        )
    cat = cats[0]
    names = tuple(str(n) for n in cat["keypoints"])
    nk = len(names)
    images = []
    try:
        for im in doc["images"]:
            images.append(CocoImage(int(im["id"]), str(im["file_name"]), int(im["width"]), int(im["height"])))
    except (KeyError, TypeError, ValueError) as e:
        raise _err(path, f"an image entry lacks or has a bad {e} (needs id, file_name, width, height)") from None
    ids = {im.id for im in images}
    if len(ids) != len(images):
        raise _err(path, "duplicate image ids")
    anns = []
    for j, a in enumerate(doc["annotations"]):
        if not isinstance(a, dict):
            raise _err(path, f"annotation {j} is not an object")
        if a.get("category_id", cat["id"]) != cat["id"]:
            continue
        try:
            kp = np.asarray(a["keypoints"], dtype=np.float64)
            image_id = int(a["image_id"])
        except (KeyError, TypeError, ValueError) as e:
            raise _err(path, f"annotation {j} lacks or has a bad {e}") from None
        if kp.shape != (3 * nk,):
            raise _err(path, f"annotation {j} has {kp.size} keypoint numbers, expected 3 x {nk} (names: {', '.join(names)})")
        kp = kp.reshape(nk, 3)
        v = kp[:, 2]
        if not np.all(np.isin(v, (0, 1, 2))):
            raise _err(path, f"annotation {j} has visibility flags other than 0, 1, 2")
        if not np.all(np.isfinite(kp)):
            raise _err(path, f"annotation {j} has non-finite keypoints")
        if image_id not in ids:
            raise _err(path, f"annotation {j} refers to image_id {image_id}, which is not in images[]")
        bbox = a.get("bbox", [0, 0, 0, 0])
        if not (isinstance(bbox, list) and len(bbox) == 4):
            raise _err(path, f"annotation {j} bbox must be [x, y, w, h]")
        anns.append(
            CocoAnnotation(
                image_id=image_id,
                uv=kp[:, :2].copy(),
                v=v.astype(np.int8),
                bbox=tuple(float(x) for x in bbox),
                area=float(a.get("area", 0.0)),
                id=int(a.get("id", j + 1)),
                category_id=int(cat["id"]),
            )
        )
    return CocoKeypoints(
        path=path,
        images=images,
        annotations=anns,
        keypoint_names=names,
        category_name=str(cat.get("name", "object")),
        skeleton=[list(map(int, e)) for e in cat.get("skeleton", []) or []],
    )
