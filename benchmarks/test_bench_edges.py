"""Stage benchmarks: the keypoint pass's edge check (``edge_verify``) on the plain box, and the edge
refinement (``edge_refine``, :func:`test_bench_edge_refine`) on the drill.

In a frame whose fits disagree, the pass scores the crop's edges once and each rival pose under
them (:mod:`tracker.pipeline.edges`). Timed: that check with one rival, the true pose against a
quarter turn of it, on a 256 x 256 crop of the plain box (``models/plainbox/object``, 12 triangles)
rendered over a smooth random background. Baseline in the same run: one ONNX Runtime inference
of the shipped plain-box network on the same crop (1 thread, CPU), the stage every frame pays.
``extra_info``: ``us``, ``onnx_infer_1thread_us`` and ``ratio_vs_onnx_infer_1thread`` (< 1: the
check costs less than an inference). Quick mode: ``KPTRACK_BENCH_QUICK=1``.
"""

from __future__ import annotations

from pathlib import Path

import cv2
import numpy as np
import pytest

from benchmarks.benchutil import QUICK, median_s, record_vs
from tracker.camera import Camera
from tracker.geometry import so3_exp
from tracker.objects import load_object
from tracker.pipeline.config import TrackerConfig
from tracker.pipeline.edge_refine import EdgeRefineConfig, EdgeRefiner
from tracker.pipeline.edges import EdgeScorer, crop_intrinsics
from tracker.pipeline.search import box_crop
from tracker.render.renderer import Renderer

pytest.importorskip("onnxruntime")
from tracker.pipeline.infer import OnnxHeatmapModel  # noqa: E402

ROUNDS = 10 if QUICK else 100
REPO = Path(__file__).resolve().parents[1]
PLAINBOX = REPO / "models" / "plainbox"


def _crop_of(obj, cam, R, t, cfg):
    """(A, crop): the tracking crop's affine around ``obj`` at (R, t) and the 256 x 256 crop of it
    rendered over a smooth random background (16 px blocks, seed 0)."""
    rng = np.random.default_rng(0)
    bg = np.clip(90 + 25 * rng.standard_normal((cam.height // 16, cam.width // 16, 3)), 0, 255).astype(np.uint8)
    frame = Renderer(obj).render(cam, R, t, background=np.ascontiguousarray(np.kron(bg, np.ones((16, 16, 1), np.uint8)))).color
    A = box_crop(cam, np.array(obj.box_corners, float), R, t, cfg.roi_margin, cfg.min_roi_px)
    return A, cv2.warpAffine(frame, A, (256, 256), flags=cv2.INTER_LINEAR)


@pytest.mark.benchmark(group="edges")
def test_bench_edge_check(benchmark):
    obj = load_object(str(PLAINBOX / "object"))
    cam = Camera.from_fov(60.0, 640, 480)
    R, t = so3_exp(np.array([0.5, -0.4, 0.3])), np.array([20.0, -10.0, 420.0])
    cfg = TrackerConfig.preset("fast")
    A, crop = _crop_of(obj, cam, R, t, cfg)
    scorer, K = EdgeScorer(obj, 256), crop_intrinsics(cam.K, A)
    turned = R @ so3_exp(np.array([np.pi / 2, 0.0, 0.0]))

    def check():
        strength = scorer.image(crop)
        return scorer.score(strength, K, R, t), scorer.score(strength, K, turned, t)

    model = OnnxHeatmapModel(PLAINBOX / "model.onnx", device="cpu", threads=1)
    base = {"onnx_infer_1thread": median_s(lambda: model(crop[None], A[None], 0), ROUNDS, warmup=True)}
    right, wrong = benchmark(check)
    assert right > wrong + cfg.edge_margin
    record_vs(benchmark, base, crop_px=256, triangles=len(obj.faces), score_true=right, score_turned=wrong)


@pytest.mark.benchmark(group="edges")
def test_bench_edge_refine(benchmark):
    """The edge refinement (``edge_refine``) of a drill fit 3 % too far, with its keypoints as the
    prior, on a 256 x 256 crop of the drill rendered over a smooth random background; baseline: one
    ONNX Runtime inference of the shipped drill network on the same crop (1 thread, CPU). Every
    accepted frame pays the refinement when it is on."""
    obj = load_object("default")
    cam = Camera.from_fov(60.0, 640, 480)
    R, t = so3_exp(np.array([0.5, -0.4, 0.3])), np.array([20.0, -10.0, 2.5 * obj.diameter])
    cfg = TrackerConfig.preset("fast", edge_refine=True)
    A, crop = _crop_of(obj, cam, R, t, cfg)
    refiner = EdgeRefiner(EdgeScorer(obj, 256), cam.K, cam.undistort_points, EdgeRefineConfig(edge_weight=cfg.edge_refine_weight))
    uv = cam.project(obj.keypoints, R, t)
    t0 = t * 1.03

    def refine():
        return refiner(crop, A, R, t0, obj.keypoints, uv, np.ones(len(uv)), 3.0)

    model = OnnxHeatmapModel(REPO / "models" / "default" / "model.onnx", device="cpu", threads=1)
    base = {"onnx_infer_1thread": median_s(lambda: model(crop[None], A[None], 0), ROUNDS, warmup=True)}
    out = benchmark(refine)
    assert out is not None and np.linalg.norm(out[1] - t) < 0.5 * np.linalg.norm(t0 - t)
    record_vs(benchmark, base, crop_px=256, triangles=len(obj.faces), edge_points=out[2])
