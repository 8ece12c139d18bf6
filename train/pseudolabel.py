"""``kptrack pseudolabel``: the user's own footage, tracked, becomes training labels where the pose can be trusted.

Self-training on confident tracked frames follows Deng et al., "Self-supervised 6D Object Pose
Estimation for Robot Manipulation" (ICRA 2020) and Lu et al., "SLAM-Supported Self-Training for
6D Object Pose Estimation" (arXiv 2203.04424): keep only frames whose pose several independent
checks agree on, and never let the evaluation frames in.

Per video: the tracker (:func:`tracker.pipeline.session.run_tracking`, unsmoothed poses) runs
over every frame; then each frame passes or fails these checks, in order, and the first one it
fails is its ``reason`` (thresholds in :class:`PseudoLabelChecks`, recorded in the output):

1. ``no_pose``: the tracker accepted no pose; ``excluded``: a held-out frame (or within
   ``exclude_margin`` frames of one: near-duplicates of an evaluation frame must not train);
2. ``rms``: inlier reprojection RMS above ``max_rms_px``; ``inliers``: fewer than
   ``min_inlier_frac`` of the keypoints are inliers; ``score``: tracker score below ``min_score``;
3. ``smoothness``: the pose must agree with its neighbours: for each pair of frames passing 1-2,
   one on each side and at most ``window`` frames away, their poses are interpolated (slerp,
   linear t) to this frame's time; the smallest mean keypoint distance between that projection
   and this frame's (frame px) must be at most ``max_motion_px`` (the smallest, so one bad
   neighbour does not sink the frames around it). A frame without neighbours on both sides fails;
4. ``visible_found``: a depth-tested render at the pose (:mod:`tracker.render.visibility`) says
   which keypoints are in view; at least ``min_visible_found`` of them must have been found by
   the network (confidence >= ``min_conf`` and within ``found_px`` of the projection). An
   occluder the render cannot know about usually makes the network miss the keypoints under it,
   and this rejects the frame; a keypoint the network still finds under a hand (it can, from the
   object's shape) keeps v=2, so a kept frame's visibility can be wrong there;
5. ``edges`` (optional, ``min_edge_score``): the fraction of the rendered silhouette's outline
   within ``edge_tol_px`` of an image edge (Canny).

A frame's ``confidence`` (0..1) is ``score * exp(-(rms / max_rms_px)^2 / 2) * exp(-(motion /
max_motion_px)^2 / 2)``. With ``previous`` (the last round's output, :mod:`train.adapt`), a frame
the last round labelled stays labelled when it passes again, or when this round's pose agrees
with the old label within ``agree_px``; a frame where both rounds have a pose that disagree is
dropped even if it passes (one of the two models is wrong there).

Output (written into a temporary folder and renamed at the end, so a failure leaves nothing)::

    OUT/pseudolabel.json             thresholds, model, videos, counts per reason, frames kept
    OUT/models/keypoints.json        the object's keypoints (training checks them)
    OUT/train_pseudo/00000S/         one BOP scene per video (S = its position in --video)
        rgb/NNNNNN.jpg               the kept frames, NNNNNN = frame index in the video
        scene_gt.json scene_camera.json scene_gt_info.json
        keypoints_coco.json          keypoints projected from the pose, v from the depth test
        pseudo_labels.json           {im_id: confidence, rms, inliers, motion, visible_found, edges}

Keypoints are projected with the camera's pinhole K (BOP stores no distortion); a calibration
with distortion is warned about.
"""

from __future__ import annotations

import json
import logging
import math
import shutil
import tempfile
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Sequence

import cv2
import numpy as np

from tracker.camera import Camera
from tracker.camera.resolve import is_live, resolve_camera
from tracker.errors import KptrackError
from tracker.eval.metrics import keypoint_error
from tracker.formats.bop_scene import (
    BopGt,
    gt_info_from_masks,
    load_scene_gt,
    read_scene_camera,
    read_scene_gt,
    write_scene_camera,
    write_scene_gt,
    write_scene_gt_info,
)
from tracker.formats.coco import CocoAnnotation, CocoImage, write_coco
from tracker.geometry import project, rotation_slerp
from tracker.objects import ObjectModel, load_object
from tracker.objects.object_dir import keypoints_dict
from tracker.paths import resolve_model
from tracker.pipeline.config import TrackerConfig
from tracker.pipeline.infer import OnnxHeatmapModel, check_model_matches_object
from tracker.pipeline.session import run_tracking
from tracker.pipeline.source import list_images, open_source
from tracker.pipeline.state import FrameResult
from tracker.render import Renderer
from tracker.render.visibility import keypoint_visibility
from train.heldout import check_exclude, parse_exclude

log = logging.getLogger(__name__)

SPLIT = "train_pseudo"
REASONS = ("excluded", "no_pose", "rms", "inliers", "score", "smoothness", "visible_found", "edges", "disagree")


@dataclass(frozen=True)
class PseudoLabelChecks:
    """The thresholds a frame must pass (see the module docstring); all pixels are frame pixels.

    max_rms_px, min_inlier_frac (of K), min_score (tracker score 0..1); window (frames each side),
    max_motion_px (mean keypoint px from the neighbours' interpolation); min_visible_found
    (fraction of render-visible keypoints found), min_conf, found_px; min_edge_score (None: no
    edge check), edge_tol_px; exclude_margin (frames around each held-out frame also left out);
    agree_px (mean keypoint px between this round's pose and the last round's label).
    """

    max_rms_px: float = 3.5
    min_inlier_frac: float = 0.8
    min_score: float = 0.4
    window: int = 3
    max_motion_px: float = 4.0
    min_visible_found: float = 0.8
    min_conf: float = 0.3
    found_px: float = 5.0
    min_edge_score: float | None = None
    edge_tol_px: float = 3.0
    exclude_margin: int = 3
    agree_px: float = 3.0


@dataclass(frozen=True)
class PseudoLabelConfig:
    """Options of ``kptrack pseudolabel``.

    videos: video files or image folders. out: output folder (must not exist). model: ONNX model
    (None: the shipped one). object: 'default' or an object directory. camera: calibration YAML or
    'fov:DEG' for every video (None: camera.yaml beside each). exclude: held-out frames, one spec
    for every video or one per video (:func:`parse_exclude`). checks: the thresholds. previous: the
    last round's output folder (train.adapt). preset, device, threads: the tracker's (default preset
    ``accurate``: labels are made offline, so from poses refined on image edges, which measured
    about 3x more precise than the fast preset's; benchmarks/RESULTS.md).
    max_frames: per video. jpeg_quality: of the written frames.
    """

    videos: tuple[str, ...]
    out: str
    model: str | None = None
    object: str = "default"
    camera: str | None = None
    exclude: tuple[str, ...] = ()
    checks: PseudoLabelChecks = field(default_factory=PseudoLabelChecks)
    previous: str | None = None
    preset: str = "accurate"
    device: str = "auto"
    threads: int | None = None
    max_frames: int | None = None
    jpeg_quality: int = 95
    truth: tuple[str, ...] = ()


@dataclass(frozen=True)
class FrameVerdict:
    """One frame's outcome. reason: '' when kept, else the first check it failed (REASONS).
    R_m2c (3, 3), t_m2c (3,) mm: the pose labelled (None without one). measures: the checks' values."""

    index: int
    reason: str
    confidence: float = 0.0
    R_m2c: np.ndarray | None = None
    t_m2c: np.ndarray | None = None
    measures: dict = field(default_factory=dict)

    @property
    def kept(self) -> bool:
        return self.reason == ""


@dataclass
class PseudoLabelReport:
    """What a run did: the output folder, and per video its frame count, kept frames and counts per reason."""

    out: Path
    videos: list[dict]

    @property
    def kept(self) -> int:
        return sum(v["kept"] for v in self.videos)


# ---------------------------------------------------------------------------- the checks
def _interpolate(a: FrameResult, b: FrameResult, index: int) -> tuple[np.ndarray, np.ndarray]:
    s = (index - a.index) / max(1, b.index - a.index)
    return rotation_slerp(a.R_m2c, b.R_m2c, s), (1 - s) * a.t_m2c + s * b.t_m2c


def judge_poses(results: Sequence[FrameResult], obj: ObjectModel, K: np.ndarray, checks: PseudoLabelChecks,
                excluded: set[int]) -> dict[int, FrameVerdict]:
    """Checks 1-3 (no image needed) for every frame: {index: verdict}; survivors have reason ''.

    results: the tracker's FrameResults in frame order (unsmoothed poses); K: (3, 3) pinhole."""
    k = len(obj.keypoints)
    out: dict[int, FrameVerdict] = {}
    single: list[FrameResult] = []
    for r in results:
        m = {"rms": r.rms, "inliers": r.n_inliers, "score": r.score}
        reason = ("excluded" if r.index in excluded else "no_pose" if not r.has_pose
                  else "rms" if not r.rms <= checks.max_rms_px
                  else "inliers" if r.n_inliers < checks.min_inlier_frac * k
                  else "score" if r.score < checks.min_score else "")
        out[r.index] = FrameVerdict(r.index, reason, 0.0, r.R_m2c, r.t_m2c, m)
        if not reason:
            single.append(r)
    for j, r in enumerate(single):
        left = [q for q in single[max(0, j - checks.window):j] if r.index - q.index <= checks.window]
        right = [q for q in single[j + 1:j + 1 + checks.window] if q.index - r.index <= checks.window]
        m = dict(out[r.index].measures)
        m["motion"] = min((keypoint_error(r.R_m2c, r.t_m2c, *_interpolate(a, b, r.index), obj.keypoints, K)
                           for a in left for b in right), default=math.inf)
        reason = "" if m["motion"] <= checks.max_motion_px else "smoothness"
        conf = r.score * math.exp(-0.5 * (r.rms / checks.max_rms_px) ** 2) * math.exp(-0.5 * (m["motion"] / checks.max_motion_px) ** 2)
        out[r.index] = FrameVerdict(r.index, reason, float(np.clip(conf, 0, 1)), r.R_m2c, r.t_m2c, m)
    return out


def edge_score(image: np.ndarray, mask: np.ndarray, tol_px: float) -> float:
    """Fraction of the outline of ``mask`` (H, W) bool within ``tol_px`` of a Canny edge of
    ``image`` (H, W, 3) uint8 BGR; NaN for an empty mask."""
    m = mask.astype(np.uint8)
    outline = m & ~cv2.erode(m, np.ones((3, 3), np.uint8)).astype(bool)
    if not outline.any():
        return float("nan")
    edges = cv2.Canny(cv2.cvtColor(image, cv2.COLOR_BGR2GRAY), 50, 150)
    dist = cv2.distanceTransform((edges == 0).astype(np.uint8), cv2.DIST_L2, 3)
    return float(np.mean(dist[outline.astype(bool)] <= tol_px))


def label_keypoints(obj: ObjectModel, camera: Camera, renderer: Renderer, R_m2c: np.ndarray,
                    t_m2c: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """The labels of a pose: (uv (K, 2) frame px through the pinhole K, COCO v (K,) int8 from the
    depth-tested render, the rendered silhouette mask (H, W) bool)."""
    depth, mask = renderer.render_depth(camera, R_m2c, t_m2c)
    vis = keypoint_visibility(obj.keypoints, camera, R_m2c, t_m2c, depth)
    return project(obj.keypoints, R_m2c, t_m2c, camera.K), vis, mask


def judge_render(v: FrameVerdict, r: FrameResult, obj: ObjectModel, camera: Camera, renderer: Renderer,
                 image: np.ndarray, checks: PseudoLabelChecks) -> FrameVerdict:
    """Checks 4-5 of a frame that passed 1-3 (its verdict ``v``, its tracker result ``r``, its image)."""
    uv, vis, mask = label_keypoints(obj, camera, renderer, v.R_m2c, v.t_m2c)
    found = (np.asarray(r.conf) >= checks.min_conf) & (np.linalg.norm(np.asarray(r.uv) - uv, axis=1) <= checks.found_px)
    seen = vis == 2
    m = dict(v.measures, visible_found=float(found[seen].mean()) if seen.any() else 0.0)
    reason = v.reason
    if not reason and m["visible_found"] < checks.min_visible_found:
        reason = "visible_found"
    if not reason and checks.min_edge_score is not None:
        m["edges"] = edge_score(image, mask, checks.edge_tol_px)
        if not m["edges"] >= checks.min_edge_score:
            reason = "edges"
    return FrameVerdict(v.index, reason, v.confidence, v.R_m2c, v.t_m2c, m)


def apply_previous(verdicts: dict[int, FrameVerdict], previous: dict[int, tuple[np.ndarray, np.ndarray]],
                   obj: ObjectModel, K: np.ndarray, agree_px: float) -> dict[int, FrameVerdict]:
    """The confirmation-bias guard against the last round's labels ``previous`` {index: (R, t)}.

    A frame the last round labelled is kept where this round's pose agrees with the label within
    ``agree_px`` (even if it failed this round's checks 3-5, it keeps the old pose), and dropped
    ('disagree') where both have poses that disagree. Held-out frames stay out."""
    out = dict(verdicts)
    for i, (R_old, t_old) in previous.items():
        v = out.get(i)
        if v is None or v.reason in ("excluded",) or v.R_m2c is None:
            continue
        d = keypoint_error(v.R_m2c, v.t_m2c, R_old, t_old, obj.keypoints, K)
        m = dict(v.measures, agree=d)
        if d > agree_px:
            out[i] = FrameVerdict(i, "disagree", 0.0, v.R_m2c, v.t_m2c, m)
        elif v.reason not in ("", "no_pose"):
            out[i] = FrameVerdict(i, "", max(v.confidence, 0.5 * v.measures.get("score", 0.0)), R_old, t_old, m)
    return out


def read_previous(folder: str | Path, scene: int) -> dict[int, tuple[np.ndarray, np.ndarray]]:
    """{frame index: (R, t)} of the last round's labels of video ``scene`` (empty when it had none)."""
    p = Path(folder) / SPLIT / f"{scene:06d}" / "scene_gt.json"
    return {i: (g[0].R_m2c, g[0].t_m2c) for i, g in read_scene_gt(p).items() if g} if p.is_file() else {}


# ---------------------------------------------------------------------------- one video
def _declared_frames(video: str) -> int | None:
    """Frames a video file declares (cv2), or the images of a folder; None when unknown."""
    p = Path(video)
    if p.is_dir():
        return len(list_images(p))
    cap = cv2.VideoCapture(str(p))
    n = int(cap.get(cv2.CAP_PROP_FRAME_COUNT)) if cap.isOpened() else 0
    cap.release()
    return n if n > 0 else None


def track_video(video: str, model, obj: ObjectModel, camera_spec: str | None, config: TrackerConfig,
           max_frames: int | None) -> tuple[list[FrameResult], Camera]:
    """Every frame's tracker result (in frame order) and the video's camera."""
    source = open_source(video)
    try:
        camera = resolve_camera(camera_spec, video, source.width, source.height)
    except BaseException:
        source.close()
        raise
    results: list[FrameResult] = []
    stats = run_tracking(source, model, obj, camera, config, max_frames=max_frames, on_result=results.append)
    if stats.interrupted:
        raise KeyboardInterrupt
    return results, camera


def _second_pass(video: str, results: list[FrameResult], verdicts: dict[int, FrameVerdict], wanted: set[int],
                 obj: ObjectModel, camera: Camera, renderer: Renderer, checks: PseudoLabelChecks, rgb: Path,
                 quality: int) -> dict[int, FrameVerdict]:
    """Read the video again: frames in ``wanted`` are written to ``rgb/``; those that passed 1-3 get checks 4-5."""
    by_index = {r.index: r for r in results}
    out = dict(verdicts)
    last = max(wanted)
    source = open_source(video)
    try:
        for frame in source:
            i = frame.index
            if i in wanted:
                if not cv2.imwrite(str(rgb / f"{i:06d}.jpg"), frame.image, [cv2.IMWRITE_JPEG_QUALITY, int(quality)]):
                    raise KptrackError(f"{rgb}: cannot write frame {i}. Check the disk space and --out's folder.")
                if verdicts[i].kept:
                    out[i] = judge_render(verdicts[i], by_index[i], obj, camera, renderer, frame.image, checks)
            if i >= last:
                break
    finally:
        source.close()
    return out


def _write_scene(sd: Path, verdicts: dict[int, FrameVerdict], obj: ObjectModel, camera: Camera, renderer: Renderer) -> int:
    """The BOP scene and COCO keypoints of the kept frames (their images are in sd/rgb). Returns the count."""
    kept = sorted(i for i, v in verdicts.items() if v.kept)
    for f in (sd / "rgb").iterdir():
        if int(f.stem) not in verdicts or not verdicts[int(f.stem)].kept:
            f.unlink()
    gts, infos, images, anns, extra = {}, {}, [], [], {}
    for i in kept:
        v = verdicts[i]
        uv, vis, mask = label_keypoints(obj, camera, renderer, v.R_m2c, v.t_m2c)
        gts[i] = [BopGt(1, v.R_m2c, v.t_m2c)]
        info = gt_info_from_masks(mask, mask)
        infos[i] = [info]
        images.append(CocoImage(i, f"rgb/{i:06d}.jpg", camera.width, camera.height))
        anns.append(CocoAnnotation(i, uv, vis, tuple(float(x) for x in info.bbox_obj), float(info.px_count_all)))
        extra[str(i)] = {"confidence": round(v.confidence, 6), **{k: _num(x) for k, x in v.measures.items()}}
    write_scene_camera(sd / "scene_camera.json", {i: camera.K for i in kept})
    write_scene_gt(sd / "scene_gt.json", gts)
    write_scene_gt_info(sd / "scene_gt_info.json", infos)
    write_coco(sd / "keypoints_coco.json", images, anns, obj.keypoint_names, category_name=obj.name)
    (sd / "pseudo_labels.json").write_text(json.dumps(extra, indent=1) + "\n", encoding="utf-8")
    return len(kept)


def _num(x):
    x = float(x)
    return round(x, 6) if math.isfinite(x) else None


def label_precision(out: str | Path, scene: int, truth: str | Path, obj: ObjectModel, px: float = 5.0) -> dict:
    """How close video ``scene``'s labels in ``out`` are to the true poses of the BOP scene ``truth``
    (synthetic footage): {'kept', 'within' (fraction of kept frames whose mean keypoint error < px),
    'median_px', 'max_px', 'min_visib_fract' (of the kept frames, from the truth's scene_gt_info)}."""
    sd = Path(out) / SPLIT / f"{scene:06d}"
    gt, cams, labels = load_scene_gt(truth), read_scene_camera(sd / "scene_camera.json"), read_scene_gt(sd / "scene_gt.json")
    pos = {int(i): j for j, i in enumerate(gt.im_ids)}
    missing = sorted(set(labels) - set(pos))
    if missing:
        raise KptrackError(f"--truth {truth}: has no pose for labelled frame(s) {missing[:5]}. Pass the scene the video was rendered from.")
    e = np.array([keypoint_error(g[0].R_m2c, g[0].t_m2c, gt.R_m2c[pos[i]], gt.t_m2c[pos[i]], obj.keypoints, cams[i].K)
                  for i, g in sorted(labels.items())])
    vis = np.array([gt.visib_fract[pos[i]] for i in labels], np.float64)
    return {"kept": int(len(e)), "within": float(np.mean(e < px)) if len(e) else None, "px": px,
            "median_px": float(np.median(e)) if len(e) else None, "max_px": float(e.max()) if len(e) else None,
            "min_visib_fract": float(np.nanmin(vis)) if np.isfinite(vis).any() else None}


def _counts(verdicts: dict[int, FrameVerdict]) -> dict[str, int]:
    reasons = [v.reason for v in verdicts.values()]
    return {r: reasons.count(r) for r in REASONS if r in reasons}


def label_video(s: int, video: str, excluded: set[int], exclude_spec: str, model, obj: ObjectModel, renderer: Renderer,
                cfg: PseudoLabelConfig, tmp: Path) -> dict:
    """Track video ``s``, judge its frames and write its scene into ``tmp``. Returns its record for pseudolabel.json."""
    checks = cfg.checks
    declared = _declared_frames(video)
    if declared is not None:
        check_exclude(excluded, declared, video, exclude_spec)
    config = TrackerConfig.preset(cfg.preset, smoothing=False)  # labels from the measured poses, not the lagging smoothed ones
    results, camera = track_video(video, model, obj, cfg.camera, config, cfg.max_frames)
    if camera.has_distortion:
        log.warning("%s: the camera has lens distortion; BOP scenes store only K, so keypoints are projected without it", video)
    if cfg.max_frames is None:
        check_exclude(excluded, len(results), video, exclude_spec)
    margin = max(0, checks.exclude_margin)
    near = {j for f in excluded for j in range(f - margin, f + margin + 1)}
    verdicts = judge_poses(results, obj, camera.K, checks, near)
    previous = read_previous(cfg.previous, s) if cfg.previous else {}
    wanted = {i for i, v in verdicts.items() if v.kept or (i in previous and v.R_m2c is not None and v.reason != "excluded")}
    sd = tmp / SPLIT / f"{s:06d}"
    (sd / "rgb").mkdir(parents=True)
    if wanted:
        verdicts = _second_pass(video, results, verdicts, wanted, obj, camera, renderer, checks, sd / "rgb", cfg.jpeg_quality)
    if previous:
        verdicts = apply_previous(verdicts, previous, obj, camera.K, checks.agree_px)
    n = _write_scene(sd, verdicts, obj, camera, renderer)
    rec = {"video": video, "scene": s, "frames": len(results), "kept": n, "excluded_frames": sorted(excluded),
           "rejected": _counts(verdicts), "kept_frames": sorted(i for i, v in verdicts.items() if v.kept)}
    log.info("%s: %d of %d frames kept (%s)", video, n, len(results), ", ".join(f"{k} {c}" for k, c in rec["rejected"].items()))
    if n == 0:
        raise KptrackError(
            f"{video}: no frame passed the checks, so there is nothing to label ({len(results)} frames; rejected: "
            f"{', '.join(f'{k} {c}' for k, c in rec['rejected'].items()) or 'none'}). Thresholds: "
            f"{', '.join(f'{k}={v}' for k, v in asdict(checks).items())}. The model may not see the object on this footage yet "
            "(train longer, or texture the object), or loosen a threshold (e.g. --max-rms). Nothing was written."
        )
    return rec


# ---------------------------------------------------------------------------- the command's call
def _excludes(cfg: PseudoLabelConfig) -> list[tuple[set[int], str]]:
    n = len(cfg.videos)
    if len(cfg.exclude) not in (0, 1, n):
        raise KptrackError(f"--exclude given {len(cfg.exclude)} times for {n} videos: give it once (for every video) "
                           "or once per --video, in the same order.")
    specs = list(cfg.exclude) * n if len(cfg.exclude) == 1 else list(cfg.exclude) or [""] * n
    return [(parse_exclude(s) if s else set(), s) for s in specs]


def pseudolabel(cfg: PseudoLabelConfig) -> PseudoLabelReport:
    """Label the confident frames of ``cfg.videos`` (see the module docstring). All or nothing:
    the output folder appears only when every video gave at least one frame."""
    if not cfg.videos:
        raise KptrackError("--video: give at least one video file or image folder to label.")
    out = Path(cfg.out)
    if out.exists():
        raise KptrackError(f"--out {out}: exists. Pseudo-labels go to a new folder; choose another path or remove it.")
    for v in cfg.videos:
        if is_live(str(v)) or not Path(v).exists():
            raise KptrackError(f"--video {v}: not a video file or image folder. Pseudo-labels need recorded footage.")
    if cfg.previous and not (Path(cfg.previous) / "pseudolabel.json").is_file():
        raise KptrackError(f"--previous {cfg.previous}: not a pseudolabel output (no pseudolabel.json). Pass the last round's --out.")
    excludes = _excludes(cfg)
    if cfg.truth and len(cfg.truth) != len(cfg.videos):
        raise KptrackError(f"--truth given {len(cfg.truth)} times for {len(cfg.videos)} videos: give one BOP scene per --video.")
    model_path = resolve_model(cfg.model)
    model = OnnxHeatmapModel(model_path, device=cfg.device, threads=cfg.threads)
    obj = load_object(cfg.object)
    check_model_matches_object(model.meta, obj, str(model_path))
    renderer = Renderer(obj)
    out.parent.mkdir(parents=True, exist_ok=True)
    tmp = Path(tempfile.mkdtemp(prefix=f".{out.name}.", dir=out.parent))
    try:
        videos = [label_video(s, str(v), ex, spec, model, obj, renderer, cfg, tmp) for s, (v, (ex, spec)) in enumerate(zip(cfg.videos, excludes))]
        (tmp / "models").mkdir()
        (tmp / "models" / "keypoints.json").write_text(json.dumps(keypoints_dict(obj), indent=1) + "\n", encoding="utf-8")
        for s, truth in enumerate(cfg.truth):
            videos[s]["precision"] = label_precision(tmp, s, truth, obj)
        doc = {"config": asdict(cfg), "model": str(model_path), "object": obj.name, "split": SPLIT, "videos": videos,
               "kept": sum(v["kept"] for v in videos)}
        (tmp / "pseudolabel.json").write_text(json.dumps(doc, indent=1) + "\n", encoding="utf-8")
        tmp.rename(out)
    except BaseException:
        shutil.rmtree(tmp, ignore_errors=True)
        raise
    return PseudoLabelReport(out, videos)
