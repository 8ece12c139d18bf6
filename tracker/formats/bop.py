"""BOP dataset format: scene JSON files, the results CSV, and a per-object dataset reader.

The layout and field names are those of the BOP benchmark (Hodaň et al., "BOP: Benchmark for
6D Object Pose Estimation", ECCV 2018; format described in the bop_toolkit ``docs/bop_datasets_format.md``),
so datasets such as LINEMOD, LM-O or YCB-V converted to BOP can be read as they are::

    <root>/<split>/<scene_id:06d>/
        scene_camera.json   {"<im_id>": {"cam_K": [9 row-major], "depth_scale": float}}
        scene_gt.json       {"<im_id>": [{"cam_R_m2c": [9 row-major], "cam_t_m2c": [3 mm], "obj_id": int}, ...]}
        scene_gt_info.json  {"<im_id>": [{"bbox_obj": [x,y,w,h], "bbox_visib": [x,y,w,h],
                                          "px_count_all", "px_count_visib", "visib_fract"}, ...]}
        rgb/<im_id:06d>.png|.jpg   (or gray/)
        mask_visib/<im_id:06d>_<gt_idx:06d>.png

Poses are model-to-camera, ``x_cam = R_m2c @ x_model + t_m2c`` with t in millimetres; cameras
are pinhole (BOP images are undistorted). Pixel centres sit at integer coordinates (OpenCV).

Results CSV (BOP challenge format): header ``scene_id,im_id,obj_id,score,R,t,time``; ``R`` is
9 space-separated numbers (row-major), ``t`` 3 space-separated numbers in mm, ``time`` seconds
per image (-1 when unknown).

JSON floats are written with Python's shortest round-trip repr, so a float64 written and read
back is bit-identical (synthetic labels stay exact to well under 0.01 px).
"""

from __future__ import annotations

import csv
import json
import logging
import math
import os
from dataclasses import dataclass
from pathlib import Path
from typing import Iterable, Iterator, Mapping, Sequence

import numpy as np

from tracker.errors import KptrackError
from tracker.geometry import project

log = logging.getLogger(__name__)

RESULTS_HEADER = ("scene_id", "im_id", "obj_id", "score", "R", "t", "time")
IMAGE_EXTS = (".png", ".jpg", ".jpeg", ".tif", ".tiff", ".bmp")


# ----------------------------------------------------------------------------- json helpers
def _load_json(path: Path) -> object:
    try:
        with open(path, "r", encoding="utf-8") as f:
            return json.load(f)
    except FileNotFoundError:
        raise KptrackError(f"{path}: file not found. Check the dataset path.") from None
    except (json.JSONDecodeError, UnicodeDecodeError) as e:
        raise KptrackError(f"{path}: not valid JSON ({e}). Re-create or repair the file.") from None


def _dump_json(path: Path, obj: Mapping[str, object]) -> None:
    """Write one top-level dict with one line per key: readable diffs, fast to write, and
    floats in shortest round-trip repr (exact for float64)."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    parts = [f"  {json.dumps(str(k))}: {json.dumps(v, separators=(', ', ': '))}" for k, v in obj.items()]
    tmp = path.with_name(path.name + ".tmp")
    with open(tmp, "w", encoding="utf-8") as f:
        f.write("{\n" + ",\n".join(parts) + "\n}\n")
    os.replace(tmp, path)


def _floats(x: np.ndarray) -> list[float]:
    return [float(v) for v in np.asarray(x, dtype=np.float64).ravel()]


def _array(value: object, n: int, path: Path, what: str) -> np.ndarray:
    try:
        a = np.asarray(value, dtype=np.float64).ravel()
    except (TypeError, ValueError):
        a = np.zeros(0)
    if a.size != n or not np.all(np.isfinite(a)):
        raise KptrackError(f"{path}: {what} must be {n} finite numbers, got {value!r}. Fix or re-create the file.")
    return a


def _im_key(key: str, path: Path) -> int:
    try:
        return int(key)
    except ValueError:
        raise KptrackError(f"{path}: key {key!r} is not an integer image id. BOP files map im_id -> entry.") from None


def _top_dict(data: object, path: Path) -> dict:
    if not isinstance(data, dict):
        raise KptrackError(f"{path}: expected a JSON object mapping im_id -> entry, got {type(data).__name__}.")
    return data


# ----------------------------------------------------------------------------- scene_camera.json
@dataclass(frozen=True)
class BopCamera:
    """One image's camera. K: (3, 3) float64 pixels; depth_scale: depth PNG units -> mm."""

    K: np.ndarray
    depth_scale: float = 1.0


def read_scene_camera(path: str | Path) -> dict[int, BopCamera]:
    """Read ``scene_camera.json`` -> {im_id: BopCamera}."""
    path = Path(path)
    out: dict[int, BopCamera] = {}
    for k, v in _top_dict(_load_json(path), path).items():
        if not isinstance(v, dict) or "cam_K" not in v:
            raise KptrackError(f"{path}: entry {k!r} has no cam_K. Each image needs cam_K (9 numbers, row-major).")
        K = _array(v["cam_K"], 9, path, f"cam_K of image {k}").reshape(3, 3)
        out[_im_key(k, path)] = BopCamera(K=K, depth_scale=float(v.get("depth_scale", 1.0)))
    return out


def write_scene_camera(path: str | Path, cameras: Mapping[int, BopCamera | np.ndarray]) -> None:
    """Write ``scene_camera.json``. cameras: {im_id: BopCamera or K (3, 3)}."""
    obj = {}
    for im_id in sorted(cameras):
        c = cameras[im_id]
        if not isinstance(c, BopCamera):
            c = BopCamera(K=np.asarray(c, dtype=np.float64))
        obj[str(int(im_id))] = {"cam_K": _floats(c.K), "depth_scale": float(c.depth_scale)}
    _dump_json(Path(path), obj)


# ----------------------------------------------------------------------------- scene_gt.json
@dataclass(frozen=True)
class BopGt:
    """One object instance's ground-truth pose. R_m2c: (3, 3) float64; t_m2c: (3,) float64 mm."""

    obj_id: int
    R_m2c: np.ndarray
    t_m2c: np.ndarray


def read_scene_gt(path: str | Path) -> dict[int, list[BopGt]]:
    """Read ``scene_gt.json`` -> {im_id: [BopGt, ...]} (list order = gt index used by mask names)."""
    path = Path(path)
    out: dict[int, list[BopGt]] = {}
    for k, lst in _top_dict(_load_json(path), path).items():
        if not isinstance(lst, list):
            raise KptrackError(f"{path}: entry {k!r} must be a list of instances. Fix or re-create the file.")
        gts = []
        for j, g in enumerate(lst):
            if not isinstance(g, dict) or not {"cam_R_m2c", "cam_t_m2c", "obj_id"} <= g.keys():
                raise KptrackError(f"{path}: image {k} instance {j} needs cam_R_m2c, cam_t_m2c and obj_id.")
            R = _array(g["cam_R_m2c"], 9, path, f"cam_R_m2c of image {k} instance {j}").reshape(3, 3)
            t = _array(g["cam_t_m2c"], 3, path, f"cam_t_m2c of image {k} instance {j}")
            gts.append(BopGt(obj_id=int(g["obj_id"]), R_m2c=R, t_m2c=t))
        out[_im_key(k, path)] = gts
    return out


def write_scene_gt(path: str | Path, gt: Mapping[int, Sequence[BopGt]]) -> None:
    """Write ``scene_gt.json``. gt: {im_id: [BopGt, ...]}."""
    obj = {
        str(int(im_id)): [
            {"cam_R_m2c": _floats(g.R_m2c), "cam_t_m2c": _floats(g.t_m2c), "obj_id": int(g.obj_id)} for g in gt[im_id]
        ]
        for im_id in sorted(gt)
    }
    _dump_json(Path(path), obj)


# ----------------------------------------------------------------------------- scene_gt_info.json
@dataclass(frozen=True)
class BopGtInfo:
    """Per-instance visibility statistics. Boxes are [x, y, w, h] in integer pixels
    ([-1, -1, -1, -1] when empty, as BOP writes); visib_fract = px_count_visib / px_count_all."""

    bbox_obj: tuple[int, int, int, int]
    bbox_visib: tuple[int, int, int, int]
    px_count_all: int
    px_count_visib: int
    visib_fract: float


EMPTY_BOX = (-1, -1, -1, -1)


def mask_bbox(mask: np.ndarray) -> tuple[int, int, int, int]:
    """[x, y, w, h] of the True pixels of mask (H, W) bool; (-1, -1, -1, -1) if empty."""
    ys = np.flatnonzero(mask.any(axis=1))
    if ys.size == 0:
        return EMPTY_BOX
    xs = np.flatnonzero(mask.any(axis=0))
    return (int(xs[0]), int(ys[0]), int(xs[-1] - xs[0] + 1), int(ys[-1] - ys[0] + 1))


def gt_info_from_masks(mask_all: np.ndarray, mask_visib: np.ndarray) -> BopGtInfo:
    """BopGtInfo from the unoccluded object mask and the visible mask, both (H, W) bool.

    As in BOP, ``bbox_obj`` is the box of the full object mask (here clipped to the image)."""
    n_all = int(np.count_nonzero(mask_all))
    n_vis = int(np.count_nonzero(mask_visib))
    return BopGtInfo(
        bbox_obj=mask_bbox(mask_all),
        bbox_visib=mask_bbox(mask_visib),
        px_count_all=n_all,
        px_count_visib=n_vis,
        visib_fract=float(n_vis / n_all) if n_all > 0 else 0.0,
    )


def read_scene_gt_info(path: str | Path) -> dict[int, list[BopGtInfo]]:
    """Read ``scene_gt_info.json`` -> {im_id: [BopGtInfo, ...]}."""
    path = Path(path)
    out: dict[int, list[BopGtInfo]] = {}
    for k, lst in _top_dict(_load_json(path), path).items():
        if not isinstance(lst, list):
            raise KptrackError(f"{path}: entry {k!r} must be a list of instances. Fix or re-create the file.")
        infos = []
        for j, g in enumerate(lst):
            try:
                infos.append(
                    BopGtInfo(
                        bbox_obj=tuple(int(x) for x in _array(g["bbox_obj"], 4, path, f"bbox_obj of image {k}")),
                        bbox_visib=tuple(int(x) for x in _array(g["bbox_visib"], 4, path, f"bbox_visib of image {k}")),
                        px_count_all=int(g.get("px_count_all", -1)),
                        px_count_visib=int(g.get("px_count_visib", -1)),
                        visib_fract=float(g["visib_fract"]),
                    )
                )
            except (KeyError, TypeError) as e:
                raise KptrackError(
                    f"{path}: image {k} instance {j} lacks {e} (needs bbox_obj, bbox_visib, visib_fract). "
                    "Re-create the file with the BOP toolkit's calc_gt_info.py."
                ) from None
        out[_im_key(k, path)] = infos
    return out


def write_scene_gt_info(path: str | Path, info: Mapping[int, Sequence[BopGtInfo]]) -> None:
    """Write ``scene_gt_info.json``. info: {im_id: [BopGtInfo, ...]}."""
    obj = {
        str(int(im_id)): [
            {
                "bbox_obj": [int(x) for x in g.bbox_obj],
                "bbox_visib": [int(x) for x in g.bbox_visib],
                "px_count_all": int(g.px_count_all),
                "px_count_visib": int(g.px_count_visib),
                "visib_fract": float(g.visib_fract),
            }
            for g in info[im_id]
        ]
        for im_id in sorted(info)
    }
    _dump_json(Path(path), obj)


# ----------------------------------------------------------------------------- results CSV
@dataclass(frozen=True)
class BopResult:
    """One row of a BOP results CSV. R_m2c: (3, 3) float64; t_m2c: (3,) float64 mm; time: s (-1 unknown)."""

    scene_id: int
    im_id: int
    obj_id: int
    score: float
    R_m2c: np.ndarray
    t_m2c: np.ndarray
    time: float = -1.0


def _result_row(r: BopResult) -> list[str]:
    return [
        str(int(r.scene_id)),
        str(int(r.im_id)),
        str(int(r.obj_id)),
        repr(float(r.score)),
        " ".join(repr(v) for v in _floats(r.R_m2c)),
        " ".join(repr(v) for v in _floats(r.t_m2c)),
        repr(float(r.time)),
    ]


class ResultsCsvWriter:
    """Streaming BOP results CSV writer: writes the header at once and flushes every row, so a
    crashed or interrupted run still leaves every pose it computed. Use as a context manager."""

    def __init__(self, path: str | Path):
        self.path = Path(path)
        try:
            self.path.parent.mkdir(parents=True, exist_ok=True)
            self._f = open(self.path, "w", newline="", encoding="utf-8")
        except OSError as e:
            raise KptrackError(f"{self.path}: cannot write results CSV ({e.strerror}). Choose a writable path.") from None
        self._w = csv.writer(self._f, lineterminator="\n")
        self._w.writerow(RESULTS_HEADER)
        self._f.flush()
        self.rows = 0

    def write(self, result: BopResult) -> None:
        self._w.writerow(_result_row(result))
        self._f.flush()
        self.rows += 1

    def close(self) -> None:
        if not self._f.closed:
            self._f.close()

    def __enter__(self) -> "ResultsCsvWriter":
        return self

    def __exit__(self, *exc) -> None:
        self.close()


def write_results_csv(path: str | Path, results: Iterable[BopResult]) -> Path:
    """Write a whole BOP results CSV. Returns the path."""
    with ResultsCsvWriter(path) as w:
        for r in results:
            w.write(r)
    return Path(path)


def read_results_csv(path: str | Path) -> list[BopResult]:
    """Read a BOP results CSV (header ``scene_id,im_id,obj_id,score,R,t,time``; ``time`` optional)."""
    path = Path(path)
    try:
        f = open(path, "r", newline="", encoding="utf-8")
    except FileNotFoundError:
        raise KptrackError(f"{path}: results CSV not found. Check the --poses path.") from None
    with f:
        reader = csv.reader(f)
        header = next(reader, None)
        if header is None or [h.strip() for h in header[:6]] != list(RESULTS_HEADER[:6]):
            raise KptrackError(
                f"{path}: not a BOP results CSV; the header must be '{','.join(RESULTS_HEADER)}', got {header!r}."
            )
        has_time = len(header) > 6
        out = []
        for lineno, row in enumerate(reader, start=2):
            if not row:
                continue
            try:
                R = np.array([float(x) for x in row[4].split()], dtype=np.float64)
                t = np.array([float(x) for x in row[5].split()], dtype=np.float64)
                if R.size != 9 or t.size != 3:
                    raise ValueError("R needs 9 numbers and t 3")
                out.append(
                    BopResult(
                        scene_id=int(row[0]),
                        im_id=int(row[1]),
                        obj_id=int(row[2]),
                        score=float(row[3]),
                        R_m2c=R.reshape(3, 3),
                        t_m2c=t,
                        time=float(row[6]) if has_time and len(row) > 6 else -1.0,
                    )
                )
            except (ValueError, IndexError) as e:
                raise KptrackError(f"{path}:{lineno}: bad results row {row!r} ({e}). Fix or re-create the file.") from None
    return out


# ----------------------------------------------------------------------------- dataset reader
def project_points(xyz_model: np.ndarray, R_m2c: np.ndarray, t_m2c: np.ndarray, K: np.ndarray) -> np.ndarray:
    """Pinhole projection (BOP images are undistorted), :func:`tracker.geometry.project` without distortion.

    xyz_model: (N, 3) float64 mm; R_m2c (3, 3); t_m2c (3,) mm; K (3, 3).
    Returns uv: (N, 2) float64 pixels, NaN where the point is not in front of the camera (z <= 1e-6 mm).
    """
    return project(np.asarray(xyz_model, dtype=np.float64).reshape(-1, 3), R_m2c, t_m2c, K)


@dataclass(frozen=True)
class BopSample:
    """One instance of the chosen object in one image.

    K: (3, 3) float64; R_m2c: (3, 3) float64; t_m2c: (3,) float64 mm;
    keypoints_uv: (K, 2) float64 pixels (projected with K, R_m2c, t_m2c; NaN behind the camera;
    (0, 2) when no keypoints were given); visib_fract NaN and boxes None when the scene has no
    scene_gt_info.json; mask_path None when mask_visib/ has no file for it.
    """

    scene_id: int
    im_id: int
    gt_index: int
    obj_id: int
    image_path: Path
    K: np.ndarray
    R_m2c: np.ndarray
    t_m2c: np.ndarray
    mask_path: Path | None
    keypoints_uv: np.ndarray
    visib_fract: float
    bbox_obj: tuple[int, int, int, int] | None
    bbox_visib: tuple[int, int, int, int] | None


def is_scene_dir(path: Path) -> bool:
    """A BOP scene folder: has scene_camera.json or an rgb/ (or gray/) image folder."""
    return (path / "scene_camera.json").is_file() or (path / "rgb").is_dir() or (path / "gray").is_dir()


def find_scene_dirs(root: str | Path, split: str | None = None) -> list[Path]:
    """Scene folders of a BOP dataset, sorted.

    root may be a dataset root (with ``split``, or with a single split folder when split is None),
    a split folder, or one scene folder. Raises KptrackError naming the folder when none is found.
    """
    root = Path(root)
    if not root.is_dir():
        raise KptrackError(f"{root}: dataset folder not found. Pass a BOP dataset root, split folder or scene folder.")
    if split is not None:
        base = root / split
        if not base.is_dir():
            have = sorted(p.name for p in root.iterdir() if p.is_dir() and p.name != "models")
            raise KptrackError(f"{base}: split folder not found (found: {', '.join(have) or 'nothing'}). Pass an existing split.")
    else:
        base = root
    if is_scene_dir(base):
        return [base]
    scenes = sorted(p for p in base.iterdir() if p.is_dir() and is_scene_dir(p))
    if scenes:
        return scenes
    if split is None:
        splits = sorted(
            p for p in base.iterdir() if p.is_dir() and any(q.is_dir() and is_scene_dir(q) for q in p.iterdir())
        )
        if len(splits) == 1:
            return sorted(q for q in splits[0].iterdir() if q.is_dir() and is_scene_dir(q))
        if len(splits) > 1:
            names = ", ".join(p.name for p in splits)
            raise KptrackError(f"{base}: holds several splits ({names}). Choose one (e.g. split='{splits[0].name}').")
    raise KptrackError(
        f"{base}: no BOP scene folders (<scene_id>/ with scene_camera.json, scene_gt.json and rgb/). "
        "Point to a BOP dataset root, split folder or scene folder."
    )


def _scene_id(scene_dir: Path) -> int:
    try:
        return int(scene_dir.name)
    except ValueError:
        return 0


def _listing(folder: Path) -> dict[str, str]:
    """{stem: filename} of a folder, read once (one listdir beats a stat per image)."""
    try:
        names = os.listdir(folder)
    except FileNotFoundError:
        return {}
    out: dict[str, str] = {}
    for n in sorted(names):
        stem, ext = os.path.splitext(n)
        if ext.lower() in IMAGE_EXTS and stem not in out:
            out[stem] = n
    return out


class BopDataset:
    """All instances of one object in a BOP split (LINEMOD, YCB-V, or kptrack synth output).

    root: dataset root (or split/scene folder, see :func:`find_scene_dirs`); split: e.g. 'train_pbr',
    'test', 'train_synth'; obj_id: the BOP object id; keypoints_mm: (K, 3) float64 model keypoints
    in mm, or ``object`` (an ObjectModel) to take its keypoints; min_visib_fract: skip instances
    less visible than this (scenes without scene_gt_info.json keep all).
    Indexing gives :class:`BopSample`; images are read with :meth:`load_image`.
    """

    def __init__(
        self,
        root: str | Path,
        split: str | None = None,
        obj_id: int = 1,
        keypoints_mm: np.ndarray | None = None,
        object=None,
        min_visib_fract: float = 0.0,
    ):
        if keypoints_mm is None and object is not None:
            keypoints_mm = object.keypoints
        self.keypoints_mm = (
            np.zeros((0, 3)) if keypoints_mm is None else np.asarray(keypoints_mm, dtype=np.float64).reshape(-1, 3)
        )
        self.root = Path(root)
        self.split = split
        self.obj_id = int(obj_id)
        self.scene_dirs = find_scene_dirs(root, split)
        self.samples: list[BopSample] = []
        for sd in self.scene_dirs:
            self.samples.extend(self._scan_scene(sd, min_visib_fract))
        if not self.samples:
            log.warning("%s: no instances of obj_id %d", self.root, self.obj_id)

    def _scan_scene(self, sd: Path, min_visib_fract: float) -> list[BopSample]:
        gt_path = sd / "scene_gt.json"
        if not gt_path.is_file():
            raise KptrackError(
                f"{sd}: no scene_gt.json, so this scene has no ground-truth poses. "
                "Use a BOP split with annotations (e.g. train_pbr or test, not test_targets-only folders), "
                "or write scene_gt.json (see tracker.formats.bop.write_scene_gt)."
            )
        cam_path = sd / "scene_camera.json"
        if not cam_path.is_file():
            raise KptrackError(f"{sd}: no scene_camera.json (the camera matrices). Add it or use a complete BOP scene.")
        gts = read_scene_gt(gt_path)
        cams = read_scene_camera(cam_path)
        info_path = sd / "scene_gt_info.json"
        infos = read_scene_gt_info(info_path) if info_path.is_file() else None
        img_dir = sd / "rgb" if (sd / "rgb").is_dir() else sd / "gray"
        images = _listing(img_dir)
        masks = _listing(sd / "mask_visib")
        scene_id = _scene_id(sd)
        out = []
        for im_id in sorted(gts):
            stem = f"{im_id:06d}"
            fname = images.get(stem)
            for j, g in enumerate(gts[im_id]):
                if g.obj_id != self.obj_id:
                    continue
                if im_id not in cams:
                    raise KptrackError(f"{cam_path}: no camera for image {im_id}. Every image in scene_gt.json needs cam_K.")
                if fname is None:
                    raise KptrackError(f"{img_dir}: no image {stem}.png/.jpg for im_id {im_id}. The scene is incomplete.")
                vf, bo, bv = math.nan, None, None
                if infos is not None:
                    lst = infos.get(im_id, [])
                    if j < len(lst):
                        vf, bo, bv = lst[j].visib_fract, lst[j].bbox_obj, lst[j].bbox_visib
                if infos is not None and vf < min_visib_fract:
                    continue
                mname = masks.get(f"{stem}_{j:06d}")
                K = cams[im_id].K
                out.append(
                    BopSample(
                        scene_id=scene_id,
                        im_id=im_id,
                        gt_index=j,
                        obj_id=g.obj_id,
                        image_path=img_dir / fname,
                        K=K,
                        R_m2c=g.R_m2c,
                        t_m2c=g.t_m2c,
                        mask_path=(sd / "mask_visib" / mname) if mname else None,
                        keypoints_uv=project_points(self.keypoints_mm, g.R_m2c, g.t_m2c, K),
                        visib_fract=vf,
                        bbox_obj=bo,
                        bbox_visib=bv,
                    )
                )
        return out

    def __len__(self) -> int:
        return len(self.samples)

    def __getitem__(self, i: int) -> BopSample:
        return self.samples[i]

    def __iter__(self) -> Iterator[BopSample]:
        return iter(self.samples)

    @staticmethod
    def load_image(sample: BopSample) -> np.ndarray | None:
        """(H, W, 3) uint8 BGR, or None (logged) if the file is missing or corrupt."""
        import cv2

        img = cv2.imread(str(sample.image_path), cv2.IMREAD_COLOR)
        if img is None:
            log.warning("%s: unreadable image, skipped", sample.image_path)
        return img

    @staticmethod
    def load_mask(sample: BopSample) -> np.ndarray | None:
        """Visible mask (H, W) bool, or None when the sample has none or it is unreadable."""
        import cv2

        if sample.mask_path is None:
            return None
        m = cv2.imread(str(sample.mask_path), cv2.IMREAD_GRAYSCALE)
        if m is None:
            log.warning("%s: unreadable mask, skipped", sample.mask_path)
            return None
        return m > 127
