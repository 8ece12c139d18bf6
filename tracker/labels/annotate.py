"""``kptrack annotate``'s library: label named keypoints on real frames, then a pose per frame.

:func:`run_annotate` (one call per command run):

1. loads the object (keypoint names, 3D keypoints) and, with ``--points``, reads and checks the
   points file (:mod:`tracker.labels.points`): an unknown keypoint is an error before anything
   is written;
2. reads the chosen frames (``--frames``, ``--every``, the points file's frames) in one pass
   over the video or image folder (:mod:`tracker.labels.frames`): a frame beyond the end is an
   error before anything is written;
3. writes the new frames to ``<out>/rgb/`` and resumes from ``<out>/keypoints_coco.json`` when
   it exists (:mod:`tracker.labels.store`);
4. headless (``--points``): merges the points into the labels (a point replaces an earlier label
   of the same frame and keypoint) and saves; else opens the window
   (:mod:`tracker.labels.window`), saving after every change;
5. fits a pose on every frame with >= 4 labels and writes the BOP scene files, the report and
   a check picture per labelled frame (:mod:`tracker.labels.pose`). Frames with fewer labels
   stay as 2D labels, without a pose, and are reported.
"""

from __future__ import annotations

import logging
import os
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import cv2
import numpy as np

from tracker.camera.resolve import resolve_camera
from tracker.errors import KptrackError
from tracker.labels.frames import parse_frame_list, read_frames
from tracker.labels.points import read_points
from tracker.labels.pose import MIN_LABELS, draw_check, fit_all, fit_label_pose, write_label_scene
from tracker.labels.session import FrameLabels, LabelSession, labels_from_points
from tracker.labels.store import LABELS_FILE, image_name, load_labels, save_labels, write_frames
from tracker.labels.window import AnnotateWindow
from tracker.objects import load_object
from tracker.pipeline.sinks import display_available

log = logging.getLogger(__name__)

# a frame whose labels fit the CAD keypoints worse than this is reported with its worst keypoint
SUSPECT_RMS_PX = 5.0


@dataclass(frozen=True)
class AnnotateConfig:
    """Options of ``kptrack annotate``. source: video file or image folder; out: the labels folder
    (a BOP scene, see :mod:`tracker.labels.store`); object: object directory (or 'default');
    camera: OpenCV YAML (None: camera.yaml beside the source); every / frames: which frames;
    points: a points file for a headless import (None: the window); obj_id: BOP obj_id in scene_gt.json."""

    source: str
    out: str
    object: str
    camera: str | None = None
    every: int | None = None
    frames: str | None = None
    points: str | None = None
    obj_id: int = 1
    check_pictures: bool = True


@dataclass
class AnnotateReport:
    """What a run did: frames chosen / newly written, the labels file, the scene report
    (:func:`tracker.labels.pose.report_dict`) and the frames left without a pose."""

    out: Path
    labels_file: Path
    frames: list[int]
    written_images: int
    report: dict[str, Any]
    check_pictures: list[Path]

    @property
    def without_pose(self) -> list[dict[str, Any]]:
        return self.report["without_pose"]

    def summary(self) -> str:
        s = self.report["summary"]
        med = "n/a" if s["rms_px_median"] is None else f"{s['rms_px_median']:.2f} px"
        lines = [f"{len(self.frames)} frame(s), {s['visited']} labelled ({s['labels']} labels), {s['with_pose']} with a pose; "
                 f"reprojection RMS median {med}"]
        if self.without_pose:
            lines.append("without a pose (kept as 2D labels): " + ", ".join(f"frame {w['frame']} ({w['reason']})"
                                                                           for w in self.without_pose[:10])
                         + (" ..." if len(self.without_pose) > 10 else ""))
        return "\n".join(lines)


def _write_image(path: Path, img: np.ndarray) -> Path:
    tmp = path.with_name(path.stem + ".tmp" + path.suffix)
    if not cv2.imwrite(str(tmp), img):
        raise KptrackError(f"{path}: cannot write the check picture. Choose a writable --out.")
    os.replace(tmp, path)
    return path


def _merge_points(labels: dict[int, FrameLabels], new: dict[int, FrameLabels], source: str) -> None:
    """Points override earlier labels of the same frame and keypoint (logged); others stay."""
    replaced = 0
    for f, lab in new.items():
        old = labels.get(f)
        if old is None or not old.visited:
            labels[f] = lab
            continue
        if not lab.visited:
            continue
        hit = (lab.v > 0) & (old.v > 0) & np.any(lab.uv != old.uv, axis=1)
        replaced += int(np.count_nonzero(hit))
        old.uv[lab.v > 0] = lab.uv[lab.v > 0]
        old.v[lab.v > 0] = 2
    if replaced:
        log.warning("%s: %d label(s) replace different earlier ones of the same frame and keypoint", source, replaced)


def _frames_to_read(cfg: AnnotateConfig, point_frames: set[int]) -> list[int]:
    wanted = set(parse_frame_list(cfg.frames)) if cfg.frames else set()
    return sorted(wanted | point_frames)


def run_annotate(cfg: AnnotateConfig) -> AnnotateReport:
    """Label (or import labels for) the chosen frames and fit their poses; see the module docstring."""
    if not cfg.points and not display_available():
        raise KptrackError("kptrack annotate: no display here (DISPLAY is not set) for the labelling window. Label on a "
                           "machine with a screen, or import labels headless with --points FILE (CSV frame,name,x,y).")
    obj = load_object(cfg.object)
    names = tuple(obj.keypoint_names)
    xyz = np.asarray(obj.keypoints, np.float64)
    points = read_points(cfg.points, names) if cfg.points else []
    out = Path(cfg.out)
    labels_file = out / LABELS_FILE
    labels: dict[int, FrameLabels] = {}
    sizes: dict[int, tuple[int, int]] = {}
    if labels_file.is_file():
        labels, sizes = load_labels(labels_file, names)
        log.info("%s: resuming, %d frame(s) labelled before", labels_file, len(labels))
    wanted = _frames_to_read(cfg, {p.frame for p in points})
    images: dict[int, np.ndarray] = {}
    if wanted or cfg.every:
        images, _ = read_frames(cfg.source, wanted, cfg.every)
    elif not sizes:
        raise KptrackError("kptrack annotate: no frames chosen. Pass --every N, --frames LIST or --points FILE "
                           f"(or an --out folder with {LABELS_FILE} to resume).")
    sizes.update({f: (im.shape[1], im.shape[0]) for f, im in images.items()})
    w, h = next(iter(sizes.values()))
    cam_spec = cfg.camera
    if cam_spec is None and (out / "camera.yaml").is_file():
        cam_spec = str(out / "camera.yaml")  # a resumed folder keeps the calibration it was labelled with
    camera = resolve_camera(cam_spec, cfg.source, w, h)
    written = write_frames(out, images)
    if not (out / "camera.yaml").exists():
        camera.to_yaml(out / "camera.yaml")
    frames = sorted(sizes)
    for f in frames:
        labels.setdefault(f, FrameLabels.empty(len(names)))
    if points:
        _merge_points(labels, labels_from_points([], names, points), str(cfg.points))

    def load_image(f: int) -> np.ndarray:
        img = cv2.imread(str(out / image_name(f)), cv2.IMREAD_COLOR)
        if img is None:
            raise KptrackError(f"{out / image_name(f)}: the frame image is missing or unreadable. "
                               "Run annotate again with the source to re-extract it.")
        return img

    def save(session_or_labels) -> None:
        lab = session_or_labels.labels if isinstance(session_or_labels, LabelSession) else session_or_labels
        save_labels(labels_file, lab, names, sizes, category_name=obj.name)

    if cfg.points:
        save(labels)
    else:
        session = LabelSession(frames, names, labels)
        save(session)
        window = AnnotateWindow(
            session, load_image, lambda f: fit_label_pose(xyz, names, camera, labels[f].uv, labels[f].v),
            lambda img, fit, f: draw_check(img, obj, camera, fit, labels[f].uv, labels[f].v, f), save)
        window.run()
        save(session)
    fits = fit_all(xyz, names, camera, labels)
    report = write_label_scene(out, camera, fits, names, frames, cfg.obj_id)
    pictures = []
    if cfg.check_pictures:
        (out / "check").mkdir(exist_ok=True)
        for f, fit in fits.items():
            if labels[f].count:
                pic = draw_check(load_image(f), obj, camera, fit, labels[f].uv, labels[f].v, f)
                pictures.append(_write_image(out / "check" / f"{f:06d}.jpg", pic))
    bad = [(f, fit) for f, fit in fits.items() if fit.ok and fit.rms_px > SUSPECT_RMS_PX]
    if bad:
        log.warning("%s: the labels of %d frame(s) fit the CAD keypoints badly (RMS > %g px): %s. Check those keypoints "
                    "in %s (swapped or misplaced clicks are the usual cause).", labels_file, len(bad), SUSPECT_RMS_PX,
                    ", ".join(f"frame {f} {fit.rms_px:.1f} px, worst {fit.worst}" for f, fit in bad[:10]), out / "check")
    few = [f for f, fit in fits.items() if fit.n_labels < MIN_LABELS]
    if few:
        where = f"--points {cfg.points}" if cfg.points else str(labels_file)
        log.warning("%s: frame(s) %s have fewer than %d labels: kept as 2D labels, without a pose. Label at least %d "
                    "keypoints on them for a pose.", where, ", ".join(map(str, few[:20])), MIN_LABELS, MIN_LABELS)
    return AnnotateReport(out, labels_file, frames, written, report, pictures)
