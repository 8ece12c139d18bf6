"""Object symmetries: declaring and checking them, the discrete set, and choosing one pose among
the symmetric equivalents (canonical for training labels, nearest for tracking).

A symmetry is a rigid model-frame transform ``S`` (4x4, translation mm) that maps the object onto
itself, geometry and appearance, so the poses ``(R, t)`` and ``(R S_R, t + R S_t)`` give the same
image. Storage is BOP's (Hodaň et al., "BOP: Benchmark for 6D Object Pose Estimation", ECCV 2018):
``symmetries_discrete`` (row-major 4x4, identity excluded) and ``symmetries_continuous``
(``{"axis": (3,), "offset": (3,) mm}``: every rotation about the axis through ``offset``).

* :func:`parse_symmetry` reads a ``--symmetry`` preset (``none``, ``box``, ``cylinder:AXIS``,
  ``discrete:AXIS:N``) or a BOP models_info.json; :func:`check_symmetries` refuses a transform
  that does not map the mesh onto itself, naming it and its residual (:func:`symmetry_residual`).
* :func:`symmetry_group` and :func:`symmetry_transforms`: the group, and its discrete set with the
  continuous part discretised (as bop_toolkit's ``misc.get_symmetry_transformations``).
* :func:`nearest_equivalent`: the equivalent whose rotation is closest to a reference rotation
  (max ``trace(R_ref^T R S_R)``); closed form about a continuous axis (Rodrigues' formula turns
  the trace into ``A cos(theta) + B sin(theta) + C``). The tracker uses the previous pose as the
  reference, so a discrete-symmetric pose never jumps between equivalents and a continuous one
  does not spin about its axis.
* :func:`canonical_pose` (training labels): the reference is the camera ray's frame, so the chosen
  equivalent depends only on how the object looks in its crop and two images that look alike get
  identical labels. This is the DOPE rule (Tremblay et al., "Deep Object Pose Estimation for
  Semantic Robotic Grasping of Household Objects", CoRL 2018: the equivalent that best aligns the
  object's axes with the camera's; about a continuous axis, with the axis' own frame, so the one
  view where the rim's angle is undefined is the declared axis pointing at the camera); Pitteri
  et al. ("On Object Symmetries and 6D Pose Estimation from Images", 3DV 2019) show why some such
  rule is needed.

Keypoints under symmetries (training labels, how a group reorders them, keypoints on an axis) are in
:mod:`tracker.objects.symmetry_keypoints`.

Frames and units: model frame, mm; ``R_m2c`` (3, 3), ``t_m2c`` (3,) mm, ``x_cam = R x + t``.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from tracker.errors import KptrackError
from tracker.formats.models_info import read_models_info
from tracker.geometry import hat
from tracker.objects.keypoints import sample_surface

#: A declared symmetry is refused when the mesh moved by it lies further than this fraction of
#: the diameter (mean nearest-neighbour distance of surface samples) from the unmoved mesh.
SYMMETRY_TOL_FRAC = 0.01
#: Rotation test of models_info.json matrices: |R^T R - I| and |det R - 1| below this.
ROTATION_TOL = 1e-3
AXES = {"x": (1.0, 0.0, 0.0), "y": (0.0, 1.0, 0.0), "z": (0.0, 0.0, 1.0),
        "-x": (-1.0, 0.0, 0.0), "-y": (0.0, -1.0, 0.0), "-z": (0.0, 0.0, -1.0)}
PRESETS_HELP = ("none | box | cylinder:AXIS | discrete:AXIS:N | a BOP models_info.json (AXIS: x, y, z, -x, -y, -z or "
                "ax,ay,az; a cylinder's axis pointing to the end cameras rarely face)")


def rotation_about(axis: np.ndarray, angle: float, offset: np.ndarray | None = None) -> np.ndarray:
    """(4, 4) float64: rotation by ``angle`` rad about the unit ``axis`` (3,) through ``offset`` (3,) mm."""
    a = np.asarray(axis, np.float64)
    c, s = math.cos(angle), math.sin(angle)
    R = c * np.eye(3) + s * hat(a) + (1.0 - c) * np.outer(a, a)
    o = np.zeros(3) if offset is None else np.asarray(offset, np.float64)
    T = np.eye(4)
    T[:3, :3], T[:3, 3] = R, o - R @ o
    return T


def _parse_axis(text: str, flag: str) -> np.ndarray:
    """'z', '-z' or '0,0,1' -> unit (3,) float64; a zero-length axis is refused."""
    t = text.strip().lower()
    if t in AXES:
        return np.array(AXES[t])
    try:
        a = np.array([float(x) for x in t.split(",")], np.float64)
    except ValueError:
        a = np.zeros(0)
    if a.shape != (3,) or not np.all(np.isfinite(a)):
        raise KptrackError(f"{flag}: axis {text!r} is not x, y, z, -x, -y, -z or three numbers ax,ay,az. Use e.g. cylinder:z.")
    n = float(np.linalg.norm(a))
    if n < 1e-9:
        raise KptrackError(f"{flag}: the symmetry axis {text!r} has zero length. Give a direction, e.g. 0,0,1.")
    return a / n


def parse_symmetry(spec: str, vertices: np.ndarray, flag: str = "--symmetry") -> tuple[list[np.ndarray], list[dict]]:
    """(symmetries_discrete [(4, 4)], symmetries_continuous [{'axis', 'offset'}]) of a preset.

    spec: ``none``; ``box`` (the three 180-degree turns about x, y, z); ``cylinder:AXIS``
    (continuous); ``discrete:AXIS:N`` (the N-1 turns by multiples of 360/N degrees); or the path
    of a BOP models_info.json (object "1", else the first) or of a folder holding one. Preset axes pass through the centre of
    the bounding box of ``vertices`` (N, 3) mm. Raises KptrackError naming the bad part.
    """
    s = str(spec).strip()
    v = np.asarray(vertices, np.float64)
    centre = 0.5 * (v.min(0) + v.max(0)) if len(v) else np.zeros(3)
    kind, _, rest = s.partition(":")
    kind = kind.lower()
    if kind == "none" and not rest:
        return [], []
    if kind == "box" and not rest:
        return [rotation_about(np.array(AXES[a]), math.pi, centre) for a in "xyz"], []
    if kind == "cylinder" and rest:
        return [], [{"axis": _parse_axis(rest, flag), "offset": centre}]
    if kind == "discrete" and rest:
        ax, _, n_text = rest.rpartition(":")
        try:
            n = int(n_text)
        except ValueError:
            n = 0
        if n < 2 or not ax:
            raise KptrackError(f"{flag} {spec}: give discrete:AXIS:N with N >= 2, e.g. discrete:z:4.")
        a = _parse_axis(ax, flag)
        return [rotation_about(a, 2 * math.pi * k / n, centre) for k in range(1, n)], []
    p = Path(s)
    if p.is_dir() and (p / "models_info.json").is_file():  # an object directory or BOP models/ folder
        p = p / "models_info.json"
    if p.suffix.lower() == ".json":
        return read_models_info_symmetries(p)
    raise KptrackError(f"{flag} {spec}: unknown symmetry. Use {PRESETS_HELP}.")


def read_models_info_symmetries(path: str | Path) -> tuple[list[np.ndarray], list[dict]]:
    """The symmetries of a BOP models_info.json (object "1", else the first one), validated:
    each discrete entry 16 numbers forming a rotation (det +1) with a translation, each continuous
    entry a non-zero axis. Raises KptrackError naming the file and the entry."""
    p = Path(path)
    info = read_models_info(p, f"Pass an existing BOP models_info.json or a preset ({PRESETS_HELP}).")
    disc = []
    for i, T in enumerate(info.get("symmetries_discrete", [])):
        try:
            T = np.asarray(T, np.float64).reshape(4, 4)
        except (TypeError, ValueError):
            raise KptrackError(f"{p}: symmetries_discrete[{i}] is not 16 numbers (a row-major 4x4).") from None
        check_rigid(T, f"{p}: symmetries_discrete[{i}]")
        disc.append(T)
    cont = []
    for i, c in enumerate(info.get("symmetries_continuous", [])):
        try:
            axis = np.asarray(c["axis"], np.float64).reshape(3)
            offset = np.asarray(c.get("offset", (0, 0, 0)), np.float64).reshape(3)
        except (TypeError, ValueError, KeyError):
            raise KptrackError(f"{p}: symmetries_continuous[{i}] needs 'axis' (3 numbers) and 'offset' (3 numbers, mm).") from None
        n = float(np.linalg.norm(axis))
        if not n > 1e-9:
            raise KptrackError(f"{p}: symmetries_continuous[{i}] has a zero-length axis. Give a direction, e.g. [0, 0, 1].")
        cont.append({"axis": axis / n, "offset": offset})
    return disc, cont


def check_rigid(T: np.ndarray, where: str) -> None:
    """Raise KptrackError unless T (4, 4) is a proper rigid transform (rotation, det +1)."""
    R = T[:3, :3]
    ok = np.all(np.isfinite(T)) and np.allclose(T[3], (0, 0, 0, 1), atol=ROTATION_TOL)
    err = float(np.abs(R.T @ R - np.eye(3)).max()) if ok else math.inf
    det = float(np.linalg.det(R)) if ok else math.nan
    if not (err < ROTATION_TOL and abs(det - 1.0) < ROTATION_TOL):
        raise KptrackError(f"{where}: not a rotation (|R^T R - I| = {err:.3g}, det = {det:.3g}) with last row 0 0 0 1. "
                           "Symmetries must be proper rotations (a mirror is not a symmetry of a rigid object).")


# ----------------------------------------------------------------------------- checking
class SurfaceIndex:
    """Nearest-neighbour queries against points (P, D) (surface samples, optionally with colour
    columns): scipy's cKDTree when scipy is installed, else chunked brute force."""

    def __init__(self, points: np.ndarray):
        self.points = np.asarray(points, np.float64)
        try:
            from scipy.spatial import cKDTree  # scipy is optional (the dev extra); brute force otherwise

            self._tree = cKDTree(self.points)
        except ImportError:
            self._tree = None
            self._sq = (self.points**2).sum(1)

    def query(self, q: np.ndarray, chunk: int = 2048) -> tuple[np.ndarray, np.ndarray]:
        """(distances (Q,), indices (Q,)) of the nearest point to each row of q (Q, D)."""
        q = np.asarray(q, np.float64)
        if self._tree is not None:
            d, i = self._tree.query(q, k=1)
            return np.asarray(d, np.float64), np.asarray(i, np.int64)
        dist, idx = np.empty(len(q)), np.empty(len(q), np.int64)
        for s in range(0, len(q), chunk):
            c = q[s:s + chunk]
            d2 = (c**2).sum(1)[:, None] - 2.0 * c @ self.points.T + self._sq[None]
            idx[s:s + chunk] = d2.argmin(1)
            dist[s:s + chunk] = np.sqrt(np.maximum(d2[np.arange(len(c)), idx[s:s + chunk]], 0.0))
        return dist, idx


def symmetry_residual(index: SurfaceIndex, T: np.ndarray, n_query: int = 1500) -> float:
    """Mean distance, mm, from the indexed surface samples (P, 3) moved by T (4, 4) to the
    nearest unmoved sample (0 for a true symmetry, up to the sample spacing)."""
    q = index.points[:: max(1, len(index.points) // n_query), :3]
    moved = q @ T[:3, :3].T + T[:3, 3]
    return float(index.query(moved)[0].mean())


def check_symmetries(vertices: np.ndarray, faces: np.ndarray, discrete, continuous, diameter: float,
                     tol_frac: float = SYMMETRY_TOL_FRAC, where: str = "--symmetry") -> None:
    """Refuse (KptrackError) a symmetry under which the mesh (N, 3) mm / (M, 3) does not map onto
    itself: mean surface distance above ``tol_frac`` x ``diameter``; continuous ones are tested
    at 5 angles. Only the geometry is tested (see :mod:`tracker.objects.symmetry_detect` for colours)."""
    if len(continuous) > 1:
        raise KptrackError(f"{where}: {len(continuous)} continuous symmetries; kptrack handles one axis. Keep one.")
    index = SurfaceIndex(sample_surface(vertices, faces, 20000, seed=0))
    tol = tol_frac * float(diameter)
    tests = [(f"symmetries_discrete[{i}] {np.round(np.asarray(T)[:3].reshape(-1), 3).tolist()}", np.asarray(T, np.float64))
             for i, T in enumerate(discrete)]
    for i, c in enumerate(continuous):
        for ang in (0.7, 1.6, 2.5, 3.6, 5.1):
            tests.append((f"symmetries_continuous[{i}] (axis {np.round(c['axis'], 3).tolist()}, {math.degrees(ang):.0f} deg)",
                          rotation_about(np.asarray(c["axis"]) / np.linalg.norm(c["axis"]), ang, c.get("offset"))))
    for name, T in tests:
        r = symmetry_residual(index, T)
        if r > tol:
            raise KptrackError(f"{where}: {name} does not map the mesh onto itself (residual {r:.2f} mm > {tol:.2f} mm "
                               f"= {tol_frac:g} x diameter). Check the axis and centre, or declare fewer symmetries.")


# ----------------------------------------------------------------------------- the group
@dataclass(frozen=True)
class SymmetryGroup:
    """discrete: (M, 4, 4) float64, identity first; axis: (3,) unit model-frame axis of the
    continuous symmetry or None; offset: (3,) mm, a point on it."""

    discrete: np.ndarray
    axis: np.ndarray | None = None
    offset: np.ndarray | None = None

    @property
    def is_trivial(self) -> bool:
        return self.axis is None and len(self.discrete) == 1


def symmetry_group(obj) -> SymmetryGroup:
    """The symmetry group of an ObjectModel (``symmetries_discrete`` / ``symmetries_continuous``)."""
    disc = [np.eye(4)] + [np.asarray(T, np.float64).reshape(4, 4) for T in obj.symmetries_discrete]
    cont = list(obj.symmetries_continuous)
    if not cont:
        return SymmetryGroup(np.stack(disc))
    a = np.asarray(cont[0]["axis"], np.float64)
    return SymmetryGroup(np.stack(disc), a / np.linalg.norm(a), np.asarray(cont[0].get("offset", np.zeros(3)), np.float64))


def continuous_group(obj, flag: str, instead: str) -> SymmetryGroup:
    """:func:`symmetry_group` of an object that must have a continuous symmetry; otherwise a
    KptrackError naming ``flag`` and the alternative ``instead`` (e.g. 'leave --axis-views out')."""
    group = symmetry_group(obj)
    if group.axis is None:
        raise KptrackError(f"{flag}: the object {obj.name} has no continuous symmetry axis. Declare one "
                           f"(kptrack object init --symmetry cylinder:AXIS) or {instead}.")
    return group


def symmetry_transforms(obj, continuous_steps: int = 36) -> np.ndarray:
    """(M, 4, 4) float64: identity, the discrete symmetries and, for a continuous one, every
    combination with ``continuous_steps`` rotations about its axis (continuous after discrete,
    as bop_toolkit's ``get_symmetry_transformations``)."""
    g = obj if isinstance(obj, SymmetryGroup) else symmetry_group(obj)
    if g.axis is None:
        return g.discrete.copy()
    conts = [rotation_about(g.axis, 2 * math.pi * k / continuous_steps, g.offset) for k in range(continuous_steps)]
    return np.stack([C @ D for D in g.discrete for C in conts])


def bop_continuous_steps(max_sym_disc_step: float = 0.01) -> int:
    """bop_toolkit's step count for a continuous symmetry: the farthest vertex moves at most
    ``max_sym_disc_step`` x diameter between steps (ceil(pi / step))."""
    return int(math.ceil(math.pi / max_sym_disc_step))


def apply_transform(R: np.ndarray, t: np.ndarray, S: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """The pose (R S_R, t + R S_t) (same image as (R, t) when S is a symmetry)."""
    return R @ S[:3, :3], t + R @ S[:3, 3]


def nearest_transform(R_m2c: np.ndarray, group: SymmetryGroup, R_ref: np.ndarray) -> np.ndarray:
    """(4, 4): the symmetry S maximising trace(R_ref^T R_m2c S_R), i.e. R S_R nearest R_ref."""
    M = np.asarray(R_ref, np.float64).T @ np.asarray(R_m2c, np.float64)
    if group.axis is None:
        scores = np.einsum("ij,mji->m", M, group.discrete[:, :3, :3])
        return group.discrete[int(np.argmax(scores))]
    a, best, best_S = group.axis, -np.inf, None
    ha, aa = hat(a), np.outer(a, a)
    for D in group.discrete:
        N = D[:3, :3] @ M  # trace(M C D) = trace(D M C)
        A = np.trace(N) - float(a @ N @ a)
        B = float(np.sum(N.T * ha))  # trace(N [a]x)
        theta = math.atan2(B, A)
        score = math.hypot(A, B) + float(np.sum(N * aa))
        if score > best:
            best, best_S = score, rotation_about(a, theta, group.offset) @ D
    return best_S


def nearest_equivalent(R_m2c: np.ndarray, t_m2c: np.ndarray, group: SymmetryGroup, R_ref: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """The symmetric equivalent (R (3, 3), t (3,) mm) of a pose whose rotation is nearest R_ref (3, 3)."""
    R, t = np.asarray(R_m2c, np.float64), np.asarray(t_m2c, np.float64)
    if group.is_trivial:
        return R, t
    return apply_transform(R, t, nearest_transform(R, group, R_ref))


def ray_frame(t_m2c: np.ndarray) -> np.ndarray:
    """(3, 3): the smallest rotation taking the optical axis (0, 0, 1) to the ray towards t (3,) mm
    (or to any direction t: its transpose takes a model axis to z; a half turn about x for -z)."""
    d = np.asarray(t_m2c, np.float64) / max(float(np.linalg.norm(t_m2c)), 1e-12)
    axis = np.cross((0.0, 0.0, 1.0), d)
    s, c = float(np.linalg.norm(axis)), float(d[2])
    if s < 1e-12:
        return np.eye(3) if c > 0 else np.diag([1.0, -1.0, -1.0])
    return rotation_about(axis / s, math.atan2(s, c))[:3, :3]


def canonical_transform(R_m2c: np.ndarray, t_m2c: np.ndarray, group: SymmetryGroup, roll: float = 0.0) -> np.ndarray:
    """(4, 4): the symmetry that makes the pose canonical for its view (see :func:`canonical_pose`).

    roll: rad, an in-plane rotation of the image about the object's ray (a training crop's
    rotation, ``atan2(A[1, 0], A[0, 0])`` of its affine): the view is then that of a camera rolled
    by it about the ray, so the reference turns with it (``R_ray Rz(-roll)``).

    A continuous axis ``a``: the reference is ``R_ray Q`` with ``Q a = z`` (``Q = ray_frame(a)^T``),
    so that the rule's one undefined view, where ``trace(ref^T R Rot(a, theta))`` does not depend
    on theta, is the axis pointing at the camera, whatever the model frame (benchmarks/RESULTS.md,
    "Views along the symmetry axis"). Any rule that turns with the image has such a view: declare
    the axis pointing to the end that cameras rarely face. For an axis along model z, Q = I."""
    ref = ray_frame(t_m2c)
    if roll:
        ref = ref @ rotation_about(np.array([0.0, 0.0, 1.0]), -roll)[:3, :3]
    if group.axis is not None:
        ref = ref @ ray_frame(group.axis).T
    return nearest_transform(R_m2c, group, ref)


def canonical_pose(R_m2c: np.ndarray, t_m2c: np.ndarray, group: SymmetryGroup) -> tuple[np.ndarray, np.ndarray]:
    """The one symmetric equivalent (R (3, 3), t (3,) mm) that is canonical for this view: its
    object axes best aligned with the camera ray's frame (DOPE's rule, relative to the ray so the
    choice depends only on what the crop shows). Equivalent poses give the same result."""
    R, t = np.asarray(R_m2c, np.float64), np.asarray(t_m2c, np.float64)
    if group.is_trivial:
        return R, t
    return apply_transform(R, t, canonical_transform(R, t, group))
