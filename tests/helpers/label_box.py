"""A labelled-box scene for the annotate and eval-on-labels tests: a 258 x 189 x 75 mm box with
its 8 corners as keypoints, a 640 x 480 camera, known poses, and the corners they project to."""

from __future__ import annotations

from pathlib import Path

import cv2
import numpy as np

from tracker.camera import Camera
from tracker.geometry import look_at
from tracker.objects import ObjectModel, write_object_dir
from tracker.objects.primitives import box_mesh

SIZE = (258.0, 189.0, 75.0)
W, H = 640, 480
NAMES = tuple(f"corner_{i}" for i in range(8))


def box_object() -> ObjectModel:
    m = box_mesh(SIZE)
    half = np.asarray(SIZE) / 2
    corners = np.array([[sx, sy, sz] for sx in (-1, 1) for sy in (-1, 1) for sz in (-1, 1)], float) * half
    return ObjectModel.from_mesh("box", m.vertices, m.faces, NAMES, corners, vertex_colors=m.vertex_colors)


def write_box(d: Path) -> Path:
    return write_object_dir(box_object(), d)


def camera(dist=None) -> Camera:
    return Camera.from_intrinsics(600.0, 600.0, 319.5, 239.5, W, H, dist)


def pose(i: int) -> tuple[np.ndarray, np.ndarray]:
    """A model-to-camera pose of frame i: the box about 800 mm away, seen from a changing side."""
    a = 0.3 * i
    eye = np.array([300 * np.cos(a), 250 * np.sin(a), 700.0])
    return look_at(eye, np.zeros(3), np.array([0.0, -1.0, 0.0]))


def corners_uv(obj: ObjectModel, cam: Camera, i: int) -> np.ndarray:
    R, t = pose(i)
    return cam.project(np.asarray(obj.keypoints), R, t)


def write_frames(folder: Path, n: int) -> Path:
    """n plain 640 x 480 frames, frame i with its number drawn (any content does)."""
    folder.mkdir(parents=True, exist_ok=True)
    for i in range(n):
        img = np.full((H, W, 3), 90, np.uint8)
        cv2.putText(img, str(i), (20, 60), cv2.FONT_HERSHEY_SIMPLEX, 2, (255, 255, 255), 3)
        cv2.imwrite(str(folder / f"{i:04d}.png"), img)
    return folder
