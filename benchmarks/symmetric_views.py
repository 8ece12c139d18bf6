"""Views along a continuous symmetry axis: how stable the canonical labels are, and how well a
model does there (#12).

An object with a continuous symmetry (a bottle, a can) has keypoints off its axis (rim points)
whose labels follow the canonical rule of :func:`tracker.objects.symmetry.canonical_pose`. Any
such rule that turns with the image must leave the rim's angle undefined somewhere (a direction
field on a sphere has a zero), and kptrack's leaves it at one view: the declared axis pointing at
the camera. Near that view a small turn of the object moves the rim labels far, so the network
sees nearly alike crops labelled differently.

* :func:`label_motion`: for views at a tilt ``beta`` of the declared axis from the line of sight
  (0 deg: pointing away from the camera; 180 deg: at it), the pixels the
  canonical off-axis keypoints move for a random small turn (median and 90th percentile).
* :func:`pck_by_view`: a model's PCK@5px on a labelled BOP split, in bins of that tilt.

    python -m benchmarks.symmetric_views --object bottle
    python -m benchmarks.symmetric_views --object bottle --model models/bottle/model.onnx --data data/bottle/test_synth

Angles in degrees, the camera a 600 px focal length at 600 mm (label_motion), pixels in the
image.
"""

from __future__ import annotations

import argparse
import math

import numpy as np

from tracker.errors import KptrackError
from tracker.geometry import project, so3_exp
from tracker.objects import load_object
from tracker.objects.symmetry import canonical_pose, continuous_group, ray_frame, rotation_about
from tracker.pipeline.infer import OnnxHeatmapModel
from train.dataset import CropDataset
from train.records import load_records
from train.score import score_crops

TILT_BINS = (0, 20, 40, 60, 90, 120, 140, 160, 180)
_K = np.array([[600.0, 0.0, 320.0], [0.0, 600.0, 240.0], [0.0, 0.0, 1.0]])


def view_tilt_deg(R_m2c: np.ndarray, t_m2c: np.ndarray, axis: np.ndarray) -> float:
    """Angle between the model axis (3,) as seen in the camera and the ray towards t_m2c (3,) mm."""
    a = np.asarray(R_m2c, np.float64) @ np.asarray(axis, np.float64)
    d = np.asarray(t_m2c, np.float64) / np.linalg.norm(t_m2c)
    return math.degrees(math.acos(float(np.clip(a @ d, -1.0, 1.0))))


def _pose_at_tilt(axis: np.ndarray, beta_deg: float, phi: float, spin: float) -> np.ndarray:
    """A rotation putting the model axis at tilt beta from the optical axis, towards image angle phi."""
    b = math.radians(beta_deg)
    target = np.array([math.sin(b) * math.cos(phi), math.sin(b) * math.sin(phi), math.cos(b)])
    return ray_frame(target) @ ray_frame(axis).T @ rotation_about(axis, spin)[:3, :3]


def label_motion(obj, beta_deg: float, n: int = 200, turn_deg: float = 1.0, seed: int = 0) -> tuple[float, float]:
    """(median, 90th percentile) px: how far the canonical off-axis keypoints move for a random
    ``turn_deg`` turn of the object at view tilt ``beta_deg``, over n random views (image
    direction of the axis and spin about it) at 600 mm."""
    group = continuous_group(obj, "--object", "pick an object with one")
    xyz = np.asarray(obj.keypoints, np.float64)
    off = np.linalg.norm(np.cross(xyz - group.offset, group.axis), axis=1) > 1e-6
    rng = np.random.default_rng(seed)
    t = np.array([0.0, 0.0, 600.0])
    moves = []
    for _ in range(n):
        R = _pose_at_tilt(group.axis, beta_deg, rng.uniform(0, 2 * math.pi), rng.uniform(0, 2 * math.pi))
        turn = so3_exp(rng.normal(size=3) / math.sqrt(3) * math.radians(turn_deg))
        R1, t1 = canonical_pose(R, t, group)
        R2, t2 = canonical_pose(turn @ R, t, group)
        moves.append(float(np.abs(project(xyz[off], R1, t1, _K) - project(xyz[off], R2, t2, _K)).max()))
    return float(np.median(moves)), float(np.percentile(moves, 90))


def pck_by_view(model_path: str, obj, data: str, bins=TILT_BINS, threads: int = 1) -> list[dict]:
    """A model's PCK@5px and visible-keypoint confidence on the labelled images of ``data`` (a
    BOP split with poses), per bin of view tilt: [{'lo', 'hi', 'n_images', 'pck5', 'conf'}]."""
    group = continuous_group(obj, "--object", "pick an object with one")
    model = OnnxHeatmapModel(model_path, device="cpu", threads=threads)
    records = [r for r in load_records(data, obj) if r.pose is not None]
    if not records:
        raise KptrackError(f"--data {data}: no images with a pose; give a BOP split made by `kptrack synth`.")
    tilt = np.array([view_tilt_deg(r.pose[0], r.pose[1], group.axis) for r in records])
    ds = CropDataset(records, augment=None, input_size=model.meta.input_size, heatmap_size=model.meta.heatmap_size)
    rows = []
    for lo, hi in zip(bins[:-1], bins[1:]):
        idx = np.flatnonzero((tilt >= lo) & ((tilt < hi) | (hi == bins[-1])))
        if len(idx) == 0:
            continue
        s = score_crops(model, ds, indices=idx)
        rows.append({"lo": lo, "hi": hi, "n_images": len(idx), "pck5": s["pck5"], "conf": s["conf_visible"]})
    return rows


def main(argv=None) -> None:
    p = argparse.ArgumentParser(prog="python -m benchmarks.symmetric_views", description=__doc__.split("\n\n")[0])
    p.add_argument("--object", required=True, help="an object with a continuous symmetry ('bottle' or an object directory)")
    p.add_argument("--model", help="an exported ONNX model of it, to score per view tilt (with --data)")
    p.add_argument("--data", help="a labelled BOP split of it (e.g. data/bottle/test_synth)")
    args = p.parse_args(argv)
    obj = load_object(args.object)
    print("tilt deg  canonical rim labels' move for a 1 deg turn: median / 90th percentile px")
    for beta in (2, 10, 45, 90, 135, 160, 170, 175, 178):
        med, p90 = label_motion(obj, beta)
        print(f"{beta:8.0f}  {med:6.1f} / {p90:6.1f}")
    if args.model:
        if not args.data:
            raise SystemExit("--model needs --data, a labelled BOP split of the object.")
        print("tilt deg   images  PCK@5px  confidence")
        for r in pck_by_view(args.model, obj, args.data):
            print(f"{r['lo']:3d}-{r['hi']:3d}  {r['n_images']:7d}  {100 * r['pck5']:6.1f} %  {r['conf']:.2f}")


if __name__ == "__main__":
    try:
        main()
    except KptrackError as e:
        raise SystemExit(f"error: {e}") from None
