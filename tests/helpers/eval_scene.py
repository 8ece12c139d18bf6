"""A BOP scene and a results CSV with known perturbations, shared by the ``kptrack eval`` tests.

N frames of one object (obj_id 1) in scene 3; the GT holds still over STATIC and the object is
fully occluded over OCCL. The estimate's translation offset per frame is known (:func:`offsets`):
None (no estimate; frame 5 has a score-0 "lost" row), 0.2 d (wrong), +-0.3 mm alternating on the
static segment, or 0.05 d (right).
"""

from __future__ import annotations

from pathlib import Path

import numpy as np

from tracker.formats import (
    BopGt,
    BopGtInfo,
    BopResult,
    write_results_csv,
    write_scene_camera,
    write_scene_gt,
    write_scene_gt_info,
)
from tracker.geometry import so3_exp

K = np.array([[600.0, 0, 319.5], [0, 600.0, 239.5], [0, 0, 1]])
N = 60
STATIC = (10, 20)
OCCL = (30, 42)


def _phase(i: int) -> int:
    return i if i < STATIC[0] else (STATIC[0] if i < STATIC[1] else i - (STATIC[1] - STATIC[0] - 1))


def gt_poses():
    """GT R_m2c (N, 3, 3) and t_m2c (N, 3) mm: moving, still over STATIC, moving again."""
    R = np.array([so3_exp(np.array([0.0, 0.02 * _phase(i), 0.01 * _phase(i)])) for i in range(N)])
    t = np.array([[2.0 * _phase(i), -1.0 * _phase(i), 600.0] for i in range(N)])
    return R, t


def offsets(d: float):
    """Per-frame translation offset of the estimate (None = no estimate), and whether it should be correct."""
    offs: list[np.ndarray | None] = []
    for i in range(N):
        if OCCL[0] <= i < OCCL[1] or i == 5:
            offs.append(None)
        elif i in (42, 43):
            offs.append(np.array([0.0, 0.0, 0.2 * d]))
        elif STATIC[0] <= i < STATIC[1]:
            offs.append(np.array([0.3 if i % 2 == 0 else -0.3, 0.0, 0.0]))
        elif i % 5 == 0:
            offs.append(np.array([0.0, 0.0, 0.2 * d]))
        else:
            offs.append(np.ones(3) / np.sqrt(3) * 0.05 * d)
    return offs


def write_eval_scene(tmp_path: Path, diameter: float):
    """Write ``tmp_path/data/test_seq/000003`` (JSON only: eval needs no images), an empty training
    split beside it, and ``tmp_path/poses.csv``. Returns (tmp_path, csv_path, offsets)."""
    R, t = gt_poses()
    sd = tmp_path / "data" / "test_seq" / "000003"
    vis = np.ones(N)
    vis[OCCL[0]:OCCL[1]] = 0.0
    write_scene_gt(sd / "scene_gt.json", {i: [BopGt(1, R[i], t[i])] for i in range(N)})
    write_scene_camera(sd / "scene_camera.json", {i: K for i in range(N)})
    info = BopGtInfo((0, 0, 10, 10), (0, 0, 10, 10), 100, int(100 * vis[0]), 1.0)
    write_scene_gt_info(
        sd / "scene_gt_info.json",
        {i: [BopGtInfo(info.bbox_obj, info.bbox_visib, 100, int(100 * vis[i]), float(vis[i]))] for i in range(N)},
    )
    offs = offsets(diameter)
    rows = []
    for i, o in enumerate(offs):
        if o is None:
            if i == 5:  # a "lost" row: score 0 must count as no estimate
                rows.append(BopResult(3, i, 1, 0.0, R[i], t[i] + 1000.0, 0.01))
            continue
        rows.append(BopResult(3, i, 1, 0.9, R[i], t[i] + o, 0.01))
    rows.append(BopResult(3, 7, 2, 0.9, R[7], t[7] + 500.0, 0.01))  # another object: ignored
    csv_path = write_results_csv(tmp_path / "poses.csv", rows)
    # training split beside it, as `kptrack synth` leaves a dataset root: eval must pick the test split
    (tmp_path / "data" / "train_synth" / "000000" / "rgb").mkdir(parents=True)
    return tmp_path, csv_path, offs
