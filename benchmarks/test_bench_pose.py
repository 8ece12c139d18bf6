"""Stage benchmark: pose from K = 9 / 16 keypoints (2D-3D), the warm-started per-frame solve.

Timed: :func:`tracker.pipeline.solve_lm.solve_lm` (numba robust LM, Huber) warm-started from the previous
frame's pose perturbed like 30 fps motion of a hand-held object (2 deg, 5 mm per frame), 0.5 px
keypoint noise. Baselines in the same run, same data: OpenCV ``solvePnP`` with ``ITERATIVE``
(its LM, from the same warm start via ``useExtrinsicGuess``; and cold), ``EPNP``, ``SQPNP``, and
``solvePnPRansac`` (SQPnP). ``extra_info``: ``us``, ``target_us`` (20), ``<baseline>_us``,
``ratio_vs_<baseline>`` = ours / baseline (< 1 is faster), and the rotation error (deg) of each
method on the timed problem. Quick mode: ``KPTRACK_BENCH_QUICK=1``.
"""

from __future__ import annotations

import math

import cv2
import numpy as np
import pytest

from benchmarks.benchutil import QUICK, median_s, record_vs
from tracker.geometry import project, rotation_error_deg, so3_exp
from tracker.pipeline.solve_lm import solve_lm

ROUNDS = 30 if QUICK else 200
TARGET_US = 20.0
KCAM = np.array([[554.3, 0.0, 319.5], [0.0, 554.3, 239.5], [0.0, 0.0, 1.0]])


def _problem(k: int, seed: int = 0):
    rng = np.random.default_rng(seed)
    X = rng.uniform(-60, 60, (k, 3))
    R = so3_exp(rng.normal(size=3))
    t = np.array([20.0, -15.0, 500.0])
    uv = project(X, R, t, KCAM) + rng.normal(0, 0.5, (k, 2))
    a = rng.normal(size=3)
    R0 = so3_exp(a / np.linalg.norm(a) * math.radians(2.0)) @ R  # last frame's pose
    d = rng.normal(size=3)
    t0 = t + d / np.linalg.norm(d) * 5.0
    return X, np.ascontiguousarray(uv), R, t, R0, t0


@pytest.mark.benchmark(group="pose")
@pytest.mark.parametrize("k", [9, 16])
def test_bench_pose_warm_lm(benchmark, k):
    X, uv, R, t, R0, t0 = _problem(k)
    w = np.ones(k)
    rvec0 = cv2.Rodrigues(R0)[0]
    tvec0 = t0.reshape(3, 1).copy()

    def iterative_warm():
        return cv2.solvePnP(X, uv, KCAM, None, rvec0.copy(), tvec0.copy(), useExtrinsicGuess=True, flags=cv2.SOLVEPNP_ITERATIVE)

    baselines = {
        "cv2_iterative_warm": iterative_warm,
        "cv2_iterative": lambda: cv2.solvePnP(X, uv, KCAM, None, flags=cv2.SOLVEPNP_ITERATIVE),
        "cv2_epnp": lambda: cv2.solvePnP(X, uv, KCAM, None, flags=cv2.SOLVEPNP_EPNP),
        "cv2_sqpnp": lambda: cv2.solvePnP(X, uv, KCAM, None, flags=cv2.SOLVEPNP_SQPNP),
        "cv2_ransac_sqpnp": lambda: cv2.solvePnPRansac(X, uv, KCAM, None, iterationsCount=100, reprojectionError=5.0,
                                                       flags=cv2.SOLVEPNP_SQPNP),
    }
    solve_lm(X, uv, w, KCAM, R0, t0)  # compile / load the cache outside the timing
    base_s = {name: median_s(fn, ROUNDS // 4 if "ransac" in name else ROUNDS, warmup=True) for name, fn in baselines.items()}
    res = benchmark(solve_lm, X, uv, w, KCAM, R0, t0)
    assert res.converged and rotation_error_deg(res.R_m2c, R) < 1.0
    rot_errs = {f"rot_err_deg_{name}": rotation_error_deg(cv2.Rodrigues(fn()[1])[0], R) for name, fn in baselines.items()}
    record_vs(benchmark, base_s, k=k, target_us=TARGET_US, iterations=res.iterations,
              rot_err_deg_lm=rotation_error_deg(res.R_m2c, R), **rot_errs)
