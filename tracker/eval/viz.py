"""The seed figures for one image: ``kptrack viz``.

Writes four PNGs into ``out``, the figures of the seed README:

``gt_keypoints.png``
    The object crop with its ground-truth keypoints (only when the image belongs to the BOP
    dataset or COCO file given as ``dataset``, so the labels are known).
``heatmaps.png``
    The K predicted heatmaps as a grid over the crop, each labelled with its keypoint name and
    peak confidence.
``pred_keypoints.png``
    The crop with the decoded (DARK, sub-pixel) keypoints, coloured per keypoint, hollow where
    the confidence is below 0.3; lines to the ground truth when it is known.
``projected_cad.png``
    The whole image with the CAD model drawn at the pose the keypoint pass fitted.

Every crop, inference, decoding and pose fit is the tracker's own keypoint pass
(:mod:`tracker.pipeline.keypoint_pass`, as :class:`~tracker.pipeline.tracker.Tracker` builds it
for the object and the tracker preset: a symmetric object's equivalents and edge check, the
accurate preset's edge refinement) with its crops (:mod:`tracker.pipeline.search`): with a
ground-truth pose, the tracking crop around it; with a ground-truth box only (COCO), the square
around it; without ground truth, the tracker's search views (the one whose keypoints are most
confident wins), then the tracking crop around the pose found there (or the crop where its
keypoints gather) and a second pass, as the tracker does. The network runs through ONNX Runtime
(no torch).
"""

from __future__ import annotations

import logging
from dataclasses import dataclass
from pathlib import Path

import cv2
import numpy as np

from tracker.camera import Camera
from tracker.errors import KptrackError
from tracker.eval.figures import draw_heatmap_grid, draw_keypoints_crop
from tracker.formats.bop_dataset import BopDataset
from tracker.formats.bop_scene import is_scene_dir
from tracker.formats.coco import read_coco
from tracker.geometry import project
from tracker.geometry.crop import apply_affine
from tracker.objects import load_object
from tracker.paths import resolve_model
from tracker.pipeline.config import TrackerConfig
from tracker.pipeline.infer import OnnxHeatmapModel, check_model_matches_object
from tracker.pipeline.keypoint_pass import KeypointPass, PassResult, StageClock
from tracker.pipeline.search import box_crop, keypoint_crop, search_views, square_crop
from tracker.pipeline.tracker import Tracker
from tracker.render import draw_hud, draw_overlay

log = logging.getLogger(__name__)

FIGURES = ("gt_keypoints.png", "heatmaps.png", "pred_keypoints.png", "projected_cad.png")


@dataclass(frozen=True)
class VizConfig:
    """Options of ``kptrack viz``: image, out folder, model (None: the shipped one), object, camera
    (OpenCV YAML; None: from the dataset, else a 60 degree guess), dataset (BOP root or COCO JSON
    the image belongs to), device, preset (the tracker's: fast | accurate)."""

    image: str
    out: str
    model: str | None = None
    object: str = "default"
    camera: str | None = None
    dataset: str | None = None
    device: str = "cpu"
    preset: str = "fast"


@dataclass
class VizResult:
    """paths: {figure name: PNG path}; A: (2, 3) the crop affine used; keypoints_uv: (K, 2) float64
    predicted frame px; conf: (K,); pose: the pass's PoseResult or None; gt: GroundTruth or None."""

    paths: dict[str, Path]
    A: np.ndarray
    keypoints_uv: np.ndarray
    conf: np.ndarray
    pose: object | None
    gt: "GroundTruth | None"


@dataclass
class GroundTruth:
    """keypoints_uv: (K, 2) float64 frame px; visibility: (K,) int8 COCO flags; box: (x, y, w, h) px;
    R_m2c/t_m2c: the GT pose when known (BOP); K: (3, 3) camera matrix when known."""

    keypoints_uv: np.ndarray
    visibility: np.ndarray
    box: tuple[float, float, float, float]
    R_m2c: np.ndarray | None = None
    t_m2c: np.ndarray | None = None
    K: np.ndarray | None = None


def _box_of(uv: np.ndarray) -> tuple[float, float, float, float] | None:
    ok = np.all(np.isfinite(uv), axis=1)
    if not ok.any():
        return None
    lo, hi = uv[ok].min(0), uv[ok].max(0)
    return (float(lo[0]), float(lo[1]), float(hi[0] - lo[0] + 1), float(hi[1] - lo[1] + 1))


def _same(a: Path, b: Path) -> bool:
    try:
        return a.resolve() == b.resolve()
    except OSError:
        return False


def find_ground_truth(image: Path, dataset: str | Path, obj) -> GroundTruth | None:
    """GT keypoints of ``obj`` for ``image`` from a BOP dataset (the image's own scene folder) or a
    COCO keypoints JSON. None (logged) when the image is not part of it."""
    ds = Path(dataset)
    if not ds.exists():
        raise KptrackError(f"--dataset {ds}: not found. Pass the BOP dataset root the image comes from, or a COCO keypoints JSON.")
    if ds.is_file():
        coco = read_coco(ds)
        if len(coco.keypoint_names) != obj.num_keypoints:
            raise KptrackError(f"--dataset {ds}: {len(coco.keypoint_names)} keypoints, but the object has {obj.num_keypoints}. Pass the matching --object.")
        for s in coco.samples:
            if _same(s.image_path, image):
                uv = np.where((s.v > 0)[:, None], s.uv, np.nan)
                box = tuple(float(x) for x in s.bbox) if s.bbox[2] > 0 else _box_of(uv)
                return GroundTruth(uv, s.v.astype(np.int8), box)
        log.warning("%s is not in %s: no ground truth", image, ds)
        return None
    scene = image.parent.parent
    if not is_scene_dir(scene) or ds.resolve() not in [scene.resolve(), *scene.resolve().parents]:
        log.warning("%s is not inside the BOP dataset %s: no ground truth", image, ds)
        return None
    bop = BopDataset(scene, obj_id=1, object=obj)
    for s in bop:
        if _same(s.image_path, image):
            v = None
            kp = scene / "keypoints_coco.json"
            if kp.is_file() and s.gt_index == 0:
                for a in read_coco(kp).annotations:
                    if a.image_id == s.im_id and len(a.v) == obj.num_keypoints:
                        v = a.v.astype(np.int8)
                        break
            uv = np.asarray(s.keypoints_uv, dtype=np.float64)
            if v is None:
                v = np.where(np.all(np.isfinite(uv), axis=1), 2, 0).astype(np.int8)
            box = _box_of(project(obj.box_corners, s.R_m2c, s.t_m2c, s.K)) or _box_of(uv)
            return GroundTruth(uv, v, box, s.R_m2c, s.t_m2c, s.K)
    log.warning("%s has no ground truth for object 1 in %s", image, scene)
    return None




# ---------------------------------------------------------------------------- the passes
def _view_score(p: PassResult) -> float:
    """How confidently a search view sees the object: the sum of its top half of confidences."""
    return float(np.sort(p.conf)[::-1][: max(4, len(p.conf) // 2)].sum())


def _passes(kp: KeypointPass, image: np.ndarray, camera: Camera, obj, gt: GroundTruth | None) -> tuple[PassResult, str]:
    """The pass the figures show, and how its crop was chosen (see the module docstring)."""
    cfg, clock, s = kp.config, StageClock(), kp.input_size
    h, w = image.shape[:2]
    if gt is not None and gt.R_m2c is not None:
        A = box_crop(camera, obj.box_corners, gt.R_m2c, gt.t_m2c, cfg.roi_margin, cfg.min_roi_px, s)
        if A is not None:
            return kp(image, A, None, None, clock), "crop around the ground-truth pose"
    if gt is not None and gt.box is not None:
        x, y, bw, bh = gt.box
        lo, hi = np.array([x, y]), np.array([x + bw - 1, y + bh - 1])
        A = square_crop(lo, hi, cfg.roi_margin, cfg.min_roi_px, 4.0 * max(w, h), s)
        return kp(image, A, None, None, clock), "crop around the ground-truth box"
    best = max((kp(image, V, None, None, clock) for V in search_views(w, h, s, cfg.search_windows)), key=_view_score)
    if best.pose is not None:
        A = box_crop(camera, obj.box_corners, best.pose.R_m2c, best.pose.t_m2c, cfg.roi_margin, cfg.min_roi_px, s)
        if A is not None:
            return kp(image, A, None, (best.pose.R_m2c, best.pose.t_m2c), clock), "search, then re-crop around the found object"
    A = keypoint_crop(best.uv, best.conf, best.affine, 0.5 * cfg.min_conf, cfg.roi_margin * 1.5, cfg.min_roi_px, s)
    if A is not None:
        return kp(image, A, None, None, clock), "search, then a closer look where the keypoints gather"
    return best, "search view"


# ---------------------------------------------------------------------------- the command
def _camera(cfg: VizConfig, gt: GroundTruth | None, w: int, h: int) -> Camera:
    if cfg.camera:
        camera = Camera.from_yaml(cfg.camera)
        return camera.scaled(w / camera.width, h / camera.height) if (camera.width, camera.height) != (w, h) else camera
    if gt is not None and gt.K is not None:
        return Camera.from_intrinsics(gt.K[0, 0], gt.K[1, 1], gt.K[0, 2], gt.K[1, 2], w, h)
    log.warning("no --camera: assuming a 60 degree horizontal field of view; the projected CAD scale may be off")
    return Camera.from_fov(60.0, w, h)


def _write(paths: dict[str, Path], figs: dict[str, np.ndarray], out: Path) -> None:
    for name, img in figs.items():
        if not cv2.imwrite(str(paths[name]), img):
            raise KptrackError(f"--out {out}: could not write {name}. Check free space and permissions.")


def run_viz(cfg: VizConfig) -> VizResult:
    """Write the four seed figures for one image. Returns the paths, keypoints and pose."""
    if cfg.model is not None and Path(cfg.model).suffix.lower() in (".pt", ".pth"):
        raise KptrackError(
            f"--model {cfg.model}: kptrack viz runs exported ONNX models. Export it first: "
            f"kptrack export --checkpoint {cfg.model} --out {Path(cfg.model).with_suffix('.onnx')}"
        )
    image_path = Path(cfg.image)
    image = cv2.imread(str(image_path), cv2.IMREAD_COLOR)
    if image is None:
        raise KptrackError(f"--image {image_path}: {'not found' if not image_path.exists() else 'not a readable image'}. Pass a PNG/JPEG file.")
    h, w = image.shape[:2]
    obj = load_object(cfg.object)
    tracker_cfg = TrackerConfig.preset(cfg.preset)
    mpath = resolve_model(cfg.model)
    model = OnnxHeatmapModel(mpath, device=cfg.device)
    check_model_matches_object(model.meta, obj, f"--model {mpath}")
    names = model.meta.keypoint_names
    gt = find_ground_truth(image_path, cfg.dataset, obj) if cfg.dataset else None
    camera = _camera(cfg, gt, w, h)
    kp = Tracker(model, obj, camera, tracker_cfg).keypass
    p, how = _passes(kp, image, camera, obj, gt)
    A, crop, uv, conf, pose = p.affine, p.crop, p.uv, p.conf, p.pose

    out = Path(cfg.out)
    try:
        out.mkdir(parents=True, exist_ok=True)
    except OSError as e:
        raise KptrackError(f"--out {out}: cannot create the folder ({e.strerror or e}). Choose a writable path.") from None
    figs: dict[str, np.ndarray] = {}
    if gt is not None:
        figs["gt_keypoints.png"] = draw_keypoints_crop(crop, A, gt.keypoints_uv, names, visibility=gt.visibility,
                                                       title="ground truth (hollow: hidden)")
    else:
        figs["gt_keypoints.png"] = draw_keypoints_crop(crop, A, np.full((len(names), 2), np.nan), names, title="ground truth: unknown")
        log.info("no ground truth for %s (pass --dataset with the BOP root or COCO file it belongs to)", image_path)
    figs["heatmaps.png"] = draw_heatmap_grid(crop, p.heatmaps, names, conf)
    errs = ""
    if gt is not None:
        e = np.linalg.norm(apply_affine(A, uv) - apply_affine(A, gt.keypoints_uv), axis=1)
        vis = (gt.visibility == 2) & np.isfinite(e)
        if vis.any():
            errs = f"\nmean error {e[vis].mean():.2f} px (256 px crop)"
    figs["pred_keypoints.png"] = draw_keypoints_crop(crop, A, uv, names, conf=conf, gt_uv=gt.keypoints_uv if gt is not None else None,
                                                     title=f"predicted: {how}{errs}")
    # Small images are shown 2x (camera and keypoints scaled with them) so the drawing is readable.
    f = 2 if max(w, h) < 480 else 1
    frame = cv2.resize(image, (w * f, h * f), interpolation=cv2.INTER_LINEAR) if f > 1 else image.copy()
    if pose is not None:
        cam_f = camera.scaled(f) if f > 1 else camera
        draw_overlay(frame, obj, cam_f, pose.R_m2c, pose.t_m2c, keypoints_uv=(uv + 0.5) * f - 0.5, confidences=np.clip(conf, 0, 1))
        lines = [f"pose: {pose.n_inliers} inlier keypoints, rms {pose.rms:.2f} px",
                 "t = [" + ", ".join(f"{v:.0f}" for v in pose.t_m2c) + "] mm"]
    else:
        lines = [f"pose: not found (fewer than {kp.config.min_keypoints} keypoints above confidence {kp.config.min_conf})"]
    figs["projected_cad.png"] = draw_hud(frame, lines, scale=float(np.clip(frame.shape[1] / 1100.0, 0.4, 0.7)))
    paths = {n: out / n for n in FIGURES}
    _write(paths, figs, out)
    return VizResult(paths, A, uv, conf, pose, gt)
