"""The seed figures for one image: ``kptrack viz``.

Writes four PNGs into ``--out``, the figures of the seed README:

``gt_keypoints.png``
    The object crop with its ground-truth keypoints (only when the image belongs to the BOP
    dataset or COCO file given by ``--dataset``, so the labels are known).
``heatmaps.png``
    The K predicted heatmaps as a grid over the crop, each labelled with its keypoint name and
    peak confidence.
``pred_keypoints.png``
    The crop with the decoded (DARK, sub-pixel) keypoints, coloured per keypoint, hollow where
    the confidence is below 0.3; lines to the ground truth when it is known.
``projected_cad.png``
    The whole image with the CAD model drawn at the pose fitted to the predicted keypoints
    (:func:`tracker.pipeline.pose.solve_pnp_ransac`: SQPnP in RANSAC, then robust LM).

The crop: with ground truth, the tracker's ROI around the projected 3D box of the GT pose;
without it, the tracker's search (the letterboxed frame and 0.6x windows; the view whose
keypoints are most confident wins), a pose from that view, then the ROI around that pose's
projected box and a second inference, as the tracker does once it has a pose.

The network runs through :class:`tracker.pipeline.infer.OnnxHeatmapModel` (ONNX Runtime, no torch).
"""

from __future__ import annotations

import logging
import math
from dataclasses import dataclass
from pathlib import Path

import cv2
import numpy as np

from tracker.geometry.crop import HEATMAP_SIZE, INPUT_SIZE, apply_affine, crop_affine, letterbox_affine
from tracker.errors import KptrackError

log = logging.getLogger(__name__)

MIN_CONF = 0.3
ROI_MARGIN = 1.25
FIGURES = ("gt_keypoints.png", "heatmaps.png", "pred_keypoints.png", "projected_cad.png")


@dataclass(frozen=True)
class VizConfig:
    image: str
    out: str
    model: str = "models/default/model.onnx"
    object: str = "default"
    camera: str | None = None
    dataset: str | None = None
    device: str = "cpu"


@dataclass
class VizResult:
    """paths: {figure name: PNG path}; A: (2, 3) the crop affine used; keypoints_uv: (K, 2) float64
    predicted frame px; conf: (K,); pose: tracker.pipeline.pose.PoseResult or None; gt: GroundTruth or None."""

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


def palette(k: int) -> list[tuple[int, int, int]]:
    """k distinct saturated BGR colours."""
    hsv = np.stack([np.linspace(0, 179, k, endpoint=False), np.full(k, 230), np.full(k, 255)], 1).astype(np.uint8)[None]
    return [tuple(int(c) for c in bgr) for bgr in cv2.cvtColor(hsv, cv2.COLOR_HSV2BGR)[0]]


# ---------------------------------------------------------------------------- ground truth
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
        from tracker.formats.coco import read_coco

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
    from tracker.formats.bop import BopDataset, is_scene_dir, project_points

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
                from tracker.formats.coco import read_coco

                for a in read_coco(kp).annotations:
                    if a.image_id == s.im_id and len(a.v) == obj.num_keypoints:
                        v = a.v.astype(np.int8)
                        break
            uv = np.asarray(s.keypoints_uv, dtype=np.float64)
            if v is None:
                v = np.where(np.all(np.isfinite(uv), axis=1), 2, 0).astype(np.int8)
            box = _box_of(project_points(obj.box_corners, s.R_m2c, s.t_m2c, s.K)) or _box_of(uv)
            return GroundTruth(uv, v, box, s.R_m2c, s.t_m2c, s.K)
    log.warning("%s has no ground truth for object 1 in %s", image, scene)
    return None


# ---------------------------------------------------------------------------- inference
def _roi_affine(box, margin: float = ROI_MARGIN) -> np.ndarray:
    x, y, w, h = box
    return crop_affine(np.array([x + (w - 1) / 2.0, y + (h - 1) / 2.0]), max(margin * max(w, h), 16.0), 0.0, INPUT_SIZE)


def _infer(model, image: np.ndarray, A: np.ndarray):
    from tracker.pipeline.decode import decode_to_frame

    s = model.meta.input_size
    crop = cv2.warpAffine(image, A, (s, s), flags=cv2.INTER_LINEAR, borderMode=cv2.BORDER_CONSTANT, borderValue=(0, 0, 0))
    hm = model(crop[None])[0]
    uv, conf = decode_to_frame(hm, A, s, model.meta.heatmap_size)
    return crop, hm, uv, conf


def _search_views(w: int, h: int, s: int) -> list[np.ndarray]:
    views = [letterbox_affine(w, h, s)]
    side = 0.6 * max(w, h)
    xs = np.linspace(side / 2, w - side / 2, 2) if w > side else [w / 2.0]
    ys = np.linspace(side / 2, h - side / 2, 2) if h > side else [h / 2.0]
    views += [crop_affine(np.array([x - 0.5, y - 0.5]), side, 0.0, s) for y in ys for x in xs]
    return views


def _fit_pose(obj, camera, uv: np.ndarray, conf: np.ndarray):
    from tracker.pipeline.pose import solve_pnp_ransac

    uv_ideal = camera.undistort_points(uv)  # NaN rows stay NaN and are left out of the fit
    w = np.where(np.all(np.isfinite(uv_ideal), axis=1), conf, 0.0)
    return solve_pnp_ransac(obj.keypoints, uv_ideal, w, camera.K, min_conf=MIN_CONF)


# ---------------------------------------------------------------------------- drawing
def _label(img, text, org, scale=0.45, color=(255, 255, 255)):
    """Text on a dark box (readable over any background)."""
    (tw, th), base = cv2.getTextSize(text, cv2.FONT_HERSHEY_SIMPLEX, scale, 1)
    x, y = int(org[0]), int(org[1])
    cv2.rectangle(img, (x - 2, y - th - 3), (x + tw + 2, y + base), (20, 20, 20), -1)
    cv2.putText(img, text, (x, y), cv2.FONT_HERSHEY_SIMPLEX, scale, color, 1, cv2.LINE_AA)


def _zoom(crop: np.ndarray, f: int = 2) -> np.ndarray:
    return cv2.resize(crop, (crop.shape[1] * f, crop.shape[0] * f), interpolation=cv2.INTER_LINEAR)


def _legend(names, cols, height: int) -> np.ndarray:
    panel = np.full((height, 230, 3), 32, np.uint8)
    for i, (n, c) in enumerate(zip(names, cols)):
        y = 22 + 20 * i
        cv2.circle(panel, (14, y - 5), 6, c, -1, cv2.LINE_AA)
        _label(panel, f"{i}: {n}"[:30], (26, y), 0.42)
    return panel


def draw_keypoints_crop(crop, A, uv, names, *, visibility=None, conf=None, gt_uv=None, title="", zoom: int = 2):
    """The crop zoomed ``zoom`` x with keypoints uv (K, 2) frame px mapped through A (2, 3) and a legend."""
    img = _zoom(crop, zoom)
    cols = palette(len(names))
    if gt_uv is not None:
        for p, g in zip(apply_affine(A, uv) * zoom, apply_affine(A, gt_uv) * zoom):
            if np.all(np.isfinite(p)) and np.all(np.isfinite(g)):
                cv2.line(img, tuple(int(round(x)) for x in g), tuple(int(round(x)) for x in p), (255, 255, 255), 1, cv2.LINE_AA)
    for i, q in enumerate(apply_affine(A, uv) * zoom):
        if not np.all(np.isfinite(q)):
            continue
        c = tuple(int(round(x)) for x in q)
        hidden = visibility is not None and visibility[i] == 1
        weak = conf is not None and conf[i] < MIN_CONF
        cv2.circle(img, c, 7, (0, 0, 0), 3, cv2.LINE_AA)
        cv2.circle(img, c, 6, cols[i], 1 if (hidden or weak) else -1, cv2.LINE_AA)
        _label(img, str(i), (c[0] + 8, c[1] - 6), 0.45, cols[i])
    for j, line in enumerate(title.split("\n") if title else []):
        _label(img, line, (8, 20 + 20 * j), 0.5)
    return np.hstack([img, _legend(names, cols, img.shape[0])])


def draw_heatmap_grid(crop: np.ndarray, heatmaps: np.ndarray, names, conf) -> np.ndarray:
    """Grid of K tiles: the crop in grey with heatmap k (colour-mapped, 0..1) over it, named."""
    k = heatmaps.shape[0]
    cols = int(math.ceil(math.sqrt(k + 1)))
    rows = int(math.ceil((k + 1) / cols))
    t = 200
    base = cv2.cvtColor(cv2.cvtColor(cv2.resize(crop, (t, t), interpolation=cv2.INTER_AREA), cv2.COLOR_BGR2GRAY), cv2.COLOR_GRAY2BGR)
    tiles = []
    for i in range(k + 1):
        hm = heatmaps.max(0) if i == k else heatmaps[i]
        hm8 = (np.clip(cv2.resize(hm, (t, t), interpolation=cv2.INTER_LINEAR), 0, 1) * 255).astype(np.uint8)
        tile = cv2.addWeighted(base, 0.45, cv2.applyColorMap(hm8, cv2.COLORMAP_JET), 0.55, 0)
        _label(tile, (f"{i}: {names[i]}" if i < k else "all (max)")[:26], (5, 16), 0.42)
        if i < k:
            _label(tile, f"peak {conf[i]:.2f}", (5, t - 8), 0.42)
        tiles.append(tile)
    tiles += [np.zeros_like(tiles[0])] * (rows * cols - len(tiles))
    grid = np.vstack([np.hstack(tiles[r * cols : (r + 1) * cols]) for r in range(rows)])
    return grid


# ---------------------------------------------------------------------------- the command
def run_viz(cfg: VizConfig) -> VizResult:
    """Write the four seed figures for one image. Returns the paths, keypoints and pose."""
    from tracker.camera import Camera
    from tracker.pipeline.infer import OnnxHeatmapModel
    from tracker.objects import load_object
    from tracker.render import draw_hud, draw_overlay

    mpath = Path(cfg.model)
    if mpath.suffix.lower() in (".pt", ".pth"):
        raise KptrackError(
            f"--model {mpath}: kptrack viz runs exported ONNX models. Export it first: "
            f"kptrack export --checkpoint {mpath} --out {mpath.with_suffix('.onnx')}"
        )
    image_path = Path(cfg.image)
    image = cv2.imread(str(image_path), cv2.IMREAD_COLOR)
    if image is None:
        raise KptrackError(f"--image {image_path}: {'not found' if not image_path.exists() else 'not a readable image'}. Pass a PNG/JPEG file.")
    h, w = image.shape[:2]
    obj = load_object(cfg.object)
    model = OnnxHeatmapModel(mpath, device=cfg.device)
    names = model.meta.keypoint_names
    if model.meta.num_keypoints != obj.num_keypoints:
        raise KptrackError(
            f"--model {mpath}: the network predicts {model.meta.num_keypoints} keypoints, but --object {cfg.object} has "
            f"{obj.num_keypoints}. Use the object the model was trained for."
        )
    if model.meta.input_size != INPUT_SIZE or model.meta.heatmap_size != HEATMAP_SIZE:
        log.info("model input %d / heatmaps %d", model.meta.input_size, model.meta.heatmap_size)

    gt = find_ground_truth(image_path, cfg.dataset, obj) if cfg.dataset else None
    if cfg.camera:
        camera = Camera.from_yaml(cfg.camera)
        if (camera.width, camera.height) != (w, h):
            camera = camera.scaled(w / camera.width, h / camera.height)
    elif gt is not None and gt.K is not None:
        camera = Camera.from_intrinsics(gt.K[0, 0], gt.K[1, 1], gt.K[0, 2], gt.K[1, 2], w, h)
    else:
        camera = Camera.from_fov(60.0, w, h)
        log.warning("no --camera: assuming a 60 degree horizontal field of view; the projected CAD scale may be off")

    s = model.meta.input_size
    if gt is not None and gt.box is not None:
        A = _roi_affine(gt.box)
        crop, hm, uv, conf = _infer(model, image, A)
        how = "crop around the ground-truth box"
    else:
        best = None
        for V in _search_views(w, h, s):
            r = _infer(model, image, V)
            score = float(np.sort(r[3])[::-1][: max(4, len(r[3]) // 2)].sum())
            if best is None or score > best[0]:
                best = (score, V, r)
        _, A, (crop, hm, uv, conf) = best
        how = "search view"
        pose0 = _fit_pose(obj, camera, uv, conf)
        box = None
        if pose0 is not None:
            box = _box_of(camera.project(obj.box_corners, pose0.R_m2c, pose0.t_m2c))
        if box is None:
            ok = conf >= MIN_CONF
            if ok.sum() >= 2:
                box = _box_of(np.where(ok[:, None], uv, np.nan))
                box = (box[0] - 0.25 * box[2], box[1] - 0.25 * box[3], 1.5 * box[2], 1.5 * box[3])
        if box is not None and box[2] > 1 and box[3] > 1:
            A = _roi_affine(box)
            crop, hm, uv, conf = _infer(model, image, A)
            how = "search, then re-crop around the found object"

    out = Path(cfg.out)
    try:
        out.mkdir(parents=True, exist_ok=True)
    except OSError as e:
        raise KptrackError(f"--out {out}: cannot create the folder ({e.strerror or e}). Choose a writable path.") from None
    paths = {n: out / n for n in FIGURES}
    figs: dict[str, np.ndarray] = {}

    if gt is not None:
        figs["gt_keypoints.png"] = draw_keypoints_crop(crop, A, gt.keypoints_uv, names, visibility=gt.visibility,
                                                       title="ground truth (hollow: hidden)")
    else:
        blank = draw_keypoints_crop(crop, A, np.full((len(names), 2), np.nan), names, title="ground truth: unknown")
        figs["gt_keypoints.png"] = blank
        log.info("no ground truth for %s (pass --dataset with the BOP root or COCO file it belongs to)", image_path)
    figs["heatmaps.png"] = draw_heatmap_grid(crop, hm, names, conf)
    errs = ""
    if gt is not None:
        e = np.linalg.norm(apply_affine(A, uv) - apply_affine(A, gt.keypoints_uv), axis=1)
        vis = (gt.visibility == 2) & np.isfinite(e)
        if vis.any():
            errs = f"\nmean error {e[vis].mean():.2f} px (256 px crop)"
    figs["pred_keypoints.png"] = draw_keypoints_crop(
        crop, A, uv, names, conf=conf, gt_uv=gt.keypoints_uv if gt is not None else None,
        title=f"predicted: {how}{errs}",
    )
    pose = _fit_pose(obj, camera, uv, conf)
    # Small images are shown 2x (camera and keypoints scaled with them) so the drawing is readable.
    f = 2 if max(w, h) < 480 else 1
    frame = cv2.resize(image, (w * f, h * f), interpolation=cv2.INTER_LINEAR) if f > 1 else image.copy()
    if pose is not None:
        cam_f = camera.scaled(f) if f > 1 else camera
        draw_overlay(frame, obj, cam_f, pose.R_m2c, pose.t_m2c, keypoints_uv=(uv + 0.5) * f - 0.5, confidences=np.clip(conf, 0, 1))
        lines = [f"pose: {pose.n_inliers} inlier keypoints, rms {pose.rms:.2f} px",
                 "t = [" + ", ".join(f"{v:.0f}" for v in pose.t_m2c) + "] mm"]
    else:
        lines = [f"pose: not found (fewer than 4 keypoints above confidence {MIN_CONF})"]
    figs["projected_cad.png"] = draw_hud(frame, lines, scale=float(np.clip(frame.shape[1] / 1100.0, 0.4, 0.7)))

    for name, img in figs.items():
        if not cv2.imwrite(str(paths[name]), img):
            raise KptrackError(f"--out {out}: could not write {name}. Check free space and permissions.")
    return VizResult(paths, A, uv, conf, pose, gt)


def run_viz_from_args(args) -> int:
    """``kptrack viz``: write the four figures and print their paths."""
    res = run_viz(VizConfig(image=args.image, out=args.out, model=args.model, object=args.object,
                            camera=args.camera, dataset=args.dataset))
    for p in res.paths.values():
        print(f"wrote {p}")
    return 0
