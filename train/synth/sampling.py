"""Random scene parameters: unit vectors, rotations, training cameras and poses, lights.

Rotations are uniform over SO(3) (Shoemake, "Uniform random rotations", Graphics Gems III,
1992, through :func:`tracker.geometry.random_rotation`) or uniform within a geodesic ball of
``rot_range_deg`` around the canonical view. A training camera has a random horizontal field of
view; its pose puts the object's bounding sphere over a random ``fill`` of the image. Poses are
model-to-camera (``x_cam = R_m2c @ x_model + t_m2c``), translations in mm.
"""

from __future__ import annotations

import math

import numpy as np

from tracker.camera import Camera
from tracker.geometry import look_at, random_rotation, so3_exp
from tracker.objects import ObjectModel
from tracker.objects.symmetry import continuous_group, ray_frame, rotation_about
from train.synth.config import SynthConfig

#: ``--axis-views`` draws the view direction within this angle of the symmetry axis, either end.
AXIS_VIEW_CONE_DEG = 30.0


def random_unit(rng: np.random.Generator) -> np.ndarray:
    """A direction (3,) float64, uniform on the unit sphere."""
    v = rng.standard_normal(3)
    return v / max(np.linalg.norm(v), 1e-12)


def canonical_rotation() -> np.ndarray:
    """The canonical view's R_m2c (3, 3): camera on the model's -y axis looking at the origin,
    model +z up in the image."""
    R, _ = look_at(np.array([0.0, -1000.0, 0.0]), np.zeros(3), up=(0.0, 0.0, 1.0))
    return R


def sample_rotation(rng: np.random.Generator, rot_range_deg: float = 180.0, R_canon: np.ndarray | None = None) -> np.ndarray:
    """A random R_m2c (3, 3): uniform over SO(3) when rot_range_deg >= 180, else uniform over the
    geodesic ball of that radius around R_canon (angle drawn with the Haar density
    (1 - cos a) by rejection, axis uniform, applied in the camera frame)."""
    if rot_range_deg >= 180.0:
        return random_rotation(rng)
    R0 = canonical_rotation() if R_canon is None else R_canon
    amax = math.radians(rot_range_deg)
    cmax = 1.0 - math.cos(amax)
    while True:
        a = amax * rng.random()
        if rng.random() * cmax <= 1.0 - math.cos(a):
            break
    return so3_exp(random_unit(rng) * a) @ R0


def sample_axis_view(rng: np.random.Generator, axis: np.ndarray, cone_deg: float = AXIS_VIEW_CONE_DEG) -> np.ndarray:
    """A random R_m2c (3, 3) that shows the object along its axis (3,), model frame: the axis
    within ``cone_deg`` of the optical axis, pointing away or towards the camera with equal chance,
    uniform over that spherical cap, with a uniform roll about the optical axis and spin about the
    object's axis."""
    cos_max = math.cos(math.radians(cone_deg))
    c = rng.uniform(cos_max, 1.0)
    phi = rng.uniform(0.0, 2.0 * math.pi)
    s = math.sqrt(max(0.0, 1.0 - c * c))
    d = np.array([s * math.cos(phi), s * math.sin(phi), c]) * (1.0 if rng.random() < 0.5 else -1.0)
    spin = rotation_about(np.asarray(axis, np.float64), rng.uniform(0.0, 2.0 * math.pi))[:3, :3]
    R = ray_frame(d) @ ray_frame(axis).T @ spin  # the axis to z, then z to d
    return rotation_about(np.array([0.0, 0.0, 1.0]), rng.uniform(0.0, 2.0 * math.pi))[:3, :3] @ R


def symmetry_axis(obj: ObjectModel) -> np.ndarray:
    """(3,) the object's continuous symmetry axis, model frame, for ``--axis-views``; refused without one."""
    return continuous_group(obj, "--axis-views", "leave --axis-views out").axis


def sample_camera(rng: np.random.Generator, cfg: SynthConfig) -> Camera:
    """A training image's pinhole camera: cfg.image_size, square pixels, principal point at the
    image centre, horizontal field of view uniform in cfg.fov_range_deg."""
    W, H = cfg.image_size
    fov = math.radians(rng.uniform(*cfg.fov_range_deg))
    f = W / (2.0 * math.tan(fov / 2.0))
    return Camera.from_intrinsics(f, f, (W - 1) / 2.0, (H - 1) / 2.0, W, H)


def sample_pose(rng: np.random.Generator, cfg: SynthConfig, obj: ObjectModel, cam: Camera) -> tuple[np.ndarray, np.ndarray]:
    """A training image's (R_m2c (3, 3), t_m2c (3,) mm).

    Rotation (one seen along the symmetry axis for a fraction ``cfg.axis_views``), then a depth
    from the diameter and focal length so the bounding sphere spans ``fill`` of the smaller image
    side, then the centre at a random pixel keeping the sphere (nearly) inside the image."""
    W, H = cam.width, cam.height
    if cfg.axis_views > 0.0 and rng.random() < cfg.axis_views:
        R = sample_axis_view(rng, symmetry_axis(obj))
    else:
        R = sample_rotation(rng, cfg.rot_range_deg)
    fill = rng.uniform(*cfg.fill_range)
    side = min(W, H)
    z = cam.fx * obj.diameter / (fill * side)
    r_px = 0.5 * fill * side
    # allow the sphere to stick out by up to 15 % of its radius (a little truncation is realistic)
    mu = min(max(r_px * 0.85, 0.0), (W - 1) / 2.0)
    mv = min(max(r_px * 0.85, 0.0), (H - 1) / 2.0)
    u = rng.uniform(mu, W - 1 - mu)
    v = rng.uniform(mv, H - 1 - mv)
    ray = np.linalg.solve(cam.K, np.array([u, v, 1.0]))
    centre = obj.bbox_min + 0.5 * obj.bbox_size
    t = z * ray - R @ centre
    return R, t


def random_light(rng: np.random.Generator) -> tuple[np.ndarray, float, float]:
    """(direction towards the light (3,) in the camera frame, ambient, specular). The light is
    always on the camera's side of the object."""
    d = random_unit(rng)
    d[2] = -abs(d[2]) - 0.3
    return d / np.linalg.norm(d), float(rng.uniform(0.15, 0.6)), float(rng.uniform(0.0, 0.6))
