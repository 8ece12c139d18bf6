"""BOP scene folders: the scene JSON files (read and write), the folder layout, and one
object's ground truth along a scene.

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

JSON floats are written with Python's shortest round-trip repr, so a float64 written and read
back is bit-identical (synthetic labels stay exact to well under 0.01 px).

:func:`read_scene` is the one reader of a scene's three JSON files: :func:`load_scene_gt`
(what ``kptrack eval``, ``kptrack demo`` and ``kptrack bench`` score against: per frame, in
im_id order, the camera matrix, the model-to-camera pose and the visible fraction of the first
instance of one object) and :class:`tracker.formats.bop_dataset.BopDataset` both go through it.
"""

from __future__ import annotations

import json
import math
import os
from dataclasses import dataclass
from pathlib import Path
from typing import Mapping, Sequence

import numpy as np

from tracker.errors import KptrackError
from tracker.formats.jsonfile import read_json

IMAGE_EXTS = (".png", ".jpg", ".jpeg", ".tif", ".tiff", ".bmp")


# ----------------------------------------------------------------------------- json helpers
def _load_json(path: Path) -> object:
    return read_json(path, "file not found. Check the dataset path.", "Re-create or repair the file.")


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


# ----------------------------------------------------------------------------- scene folders
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


def scene_id_of(scene_dir: Path) -> int:
    """The scene id a BOP scene folder's name gives (``000048`` -> 48), or 0 for other names."""
    try:
        return int(Path(scene_dir).name)
    except ValueError:
        return 0


@dataclass(frozen=True)
class BopScene:
    """The JSON files of one scene folder, read. gt: {im_id: [BopGt, ...]} (list order = gt
    index); cameras: {im_id: BopCamera}; gt_info: {im_id: [BopGtInfo, ...]} or None when the
    scene has no scene_gt_info.json."""

    scene_dir: Path
    scene_id: int
    gt: dict[int, list[BopGt]]
    cameras: dict[int, BopCamera]
    gt_info: dict[int, list[BopGtInfo]] | None

    def camera(self, im_id: int) -> BopCamera:
        """The camera of image ``im_id``; KptrackError naming scene_camera.json when it has none."""
        cam = self.cameras.get(im_id)
        if cam is None:
            raise KptrackError(
                f"{self.scene_dir / 'scene_camera.json'}: no cam_K for image {im_id}. Every image in scene_gt.json needs one."
            )
        return cam


def read_scene(scene_dir: str | Path) -> BopScene:
    """Read a scene folder's scene_gt.json, scene_camera.json and (when present)
    scene_gt_info.json. Raises KptrackError naming the folder when one of the first two is missing."""
    sd = Path(scene_dir)
    gt_path, cam_path, info_path = sd / "scene_gt.json", sd / "scene_camera.json", sd / "scene_gt_info.json"
    if not gt_path.is_file():
        raise KptrackError(
            f"{sd}: no scene_gt.json, so this scene has no ground-truth poses. "
            "Use a BOP split or scene with annotations (e.g. train_pbr or test, not test_targets-only folders), "
            "or write scene_gt.json (see tracker.formats.bop_scene.write_scene_gt)."
        )
    if not cam_path.is_file():
        raise KptrackError(f"{sd}: no scene_camera.json (the camera matrices). Add it or use a complete BOP scene.")
    return BopScene(
        scene_dir=sd,
        scene_id=scene_id_of(sd),
        gt=read_scene_gt(gt_path),
        cameras=read_scene_camera(cam_path),
        gt_info=read_scene_gt_info(info_path) if info_path.is_file() else None,
    )


# ----------------------------------------------------------------------------- one object's GT
@dataclass
class SceneGt:
    """Ground truth of one object along one scene (sequence), in frame order.

    im_ids: (N,) int; K: (N, 3, 3) float64; R_m2c: (N, 3, 3) float64; t_m2c: (N, 3) float64 mm;
    visib_fract: (N,) float64 (NaN when the scene has no scene_gt_info.json).
    """

    scene_id: int
    scene_dir: Path
    im_ids: np.ndarray
    K: np.ndarray
    R_m2c: np.ndarray
    t_m2c: np.ndarray
    visib_fract: np.ndarray


def load_scene_gt(scene_dir: str | Path, obj_id: int = 1) -> SceneGt:
    """Read one BOP scene's GT of ``obj_id`` (its first instance per image), frames sorted by im_id."""
    scene = read_scene(scene_dir)
    infos = scene.gt_info or {}
    im_ids, Ks, Rs, ts, vis = [], [], [], [], []
    for im_id in sorted(scene.gt):
        for j, g in enumerate(scene.gt[im_id]):
            if g.obj_id != obj_id:
                continue
            lst = infos.get(im_id, [])
            im_ids.append(im_id)
            Ks.append(scene.camera(im_id).K)
            Rs.append(g.R_m2c)
            ts.append(g.t_m2c)
            vis.append(lst[j].visib_fract if j < len(lst) else math.nan)
            break
    if not im_ids:
        raise KptrackError(f"{scene.scene_dir / 'scene_gt.json'}: no instance of obj_id {obj_id}. Pass the right --obj-id or dataset.")
    return SceneGt(scene.scene_id, scene.scene_dir, np.array(im_ids, np.int64), np.array(Ks), np.array(Rs), np.array(ts),
                   np.array(vis, np.float64))
