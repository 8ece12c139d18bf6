"""Keypoints on a continuous symmetry's circles, fitted with their angle about the axis free.

A keypoint off a continuous symmetry axis (a bottle's rim point) has no place of its own on the
object: every point of its circle about the axis looks the same. Training labels it at an angle
the view makes canonical (:func:`tracker.objects.symmetry.canonical_pose`), and that angle is the
network's weakest output. It smears along the rim where the rule turns fast, and seen along the
axis, where the rule is undefined, the heatmap becomes a ring (DOPE's bowl). The rim itself is
found: in the end-on stretch of one of the bottle's sequences (seed 17) the decoded rim points
lay within 0.2-4 px of their circles while 10-60 px from their canonical places
(``benchmarks/RESULTS.md``, "Rim keypoints fitted on their circles").

:class:`Rings` re-places each such keypoint's model point on its circle where, at a given pose,
it projects nearest to what the network found. :class:`RingSolver` alternates that with a
solver's fit (block coordinate descent on the same cost), so the fit measures each rim point's
distance to the projected circle, not to one point of it. Points on the axis keep their place.
The tracker uses it for its warm fits when ``TrackerConfig.ring_fit`` is on (off by default: a
rim point then constrains one direction instead of two, and where the canonical labels hold the
fit is noisier in the image); cold starts keep the plain RANSAC fit, since the circles' looser
cost also fits clutter far away. Three rounds cost about 1.5 ms against 0.013 ms for one plain
LM on the tests' cylinder (numpy placement).
"""

from __future__ import annotations

import numpy as np

from tracker.geometry import project
from tracker.objects.symmetry import SymmetryGroup
from tracker.pipeline.peak_fits import fits_better


class Rings:
    """The circles about a continuous symmetry axis that a set of model points lie on.

    group: a :class:`~tracker.objects.symmetry.SymmetryGroup` with an axis. steps: angles sampled
    per circle before the parabolic refinement of the nearest. min_radius_mm: points nearer the
    axis than this are taken as on it (kept in place).
    """

    def __init__(self, group: SymmetryGroup, steps: int = 180, min_radius_mm: float = 1e-3):
        if group.axis is None:
            raise ValueError("Rings needs a continuous symmetry axis")
        self.axis = np.asarray(group.axis, np.float64) / np.linalg.norm(group.axis)
        self.origin = np.zeros(3) if group.offset is None else np.asarray(group.offset, np.float64)
        # an orthonormal pair across the axis
        helper = np.eye(3)[int(np.argmin(np.abs(self.axis)))]
        self.e1 = np.cross(self.axis, helper)
        self.e1 /= np.linalg.norm(self.e1)
        self.e2 = np.cross(self.axis, self.e1)
        self.theta = np.linspace(0.0, 2.0 * np.pi, steps, endpoint=False)
        self.cos, self.sin = np.cos(self.theta), np.sin(self.theta)
        self.min_radius = float(min_radius_mm)

    def split(self, xyz: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        """(centres (N, 3) mm: each point's foot on the axis, radii (N,) mm, on_ring (N,) bool)."""
        rel = np.asarray(xyz, np.float64) - self.origin
        h = rel @ self.axis
        centres = self.origin + h[:, None] * self.axis
        radii = np.linalg.norm(rel - h[:, None] * self.axis, axis=1)
        return centres, radii, radii > self.min_radius

    def place(self, xyz: np.ndarray, uv: np.ndarray, R: np.ndarray, t: np.ndarray, K: np.ndarray) -> np.ndarray:
        """(N, 3) mm: xyz with each point off the axis moved along its circle to where, at the pose
        (R (3, 3), t (3,) mm) and camera K, it projects nearest to uv (N, 2) ideal px. Points on
        the axis, and those with a non-finite uv, keep their place."""
        xyz = np.array(xyz, np.float64)
        uv = np.asarray(uv, np.float64)
        centres, radii, ring = self.split(xyz)
        ring &= np.all(np.isfinite(uv), axis=1)
        if not ring.any():
            return xyz
        c, r, target = centres[ring], radii[ring], uv[ring]
        m, n = len(c), len(self.theta)
        # (m, n, 3) samples of each circle, projected
        circle = self.cos[None, :, None] * self.e1 + self.sin[None, :, None] * self.e2  # (1, n, 3)
        pts = c[:, None, :] + r[:, None, None] * circle
        q = project(pts.reshape(-1, 3), R, t, K).reshape(m, n, 2)
        d2 = np.sum((q - target[:, None, :]) ** 2, axis=2)
        d2 = np.where(np.isfinite(d2), d2, np.inf)  # a sample behind the camera projects to no pixel
        j = np.argmin(d2, axis=1)
        rows = np.arange(m)
        a, b, cc = d2[rows, (j - 1) % n], d2[rows, j], d2[rows, (j + 1) % n]
        ok = np.isfinite(a) & np.isfinite(b) & np.isfinite(cc)
        a, b, cc = np.where(ok, a, 0.0), np.where(ok, b, 0.0), np.where(ok, cc, 0.0)
        den = a - 2.0 * b + cc
        ok &= den > 1e-12
        sub = np.where(ok, 0.5 * (a - cc) / np.where(ok, den, 1.0), 0.0)
        ang = self.theta[j] + np.clip(sub, -0.5, 0.5) * (self.theta[1] - self.theta[0])
        xyz[ring] = c + r[:, None] * (np.cos(ang)[:, None] * self.e1 + np.sin(ang)[:, None] * self.e2)
        return xyz


class RingSolver:
    """A warm solver ``(xyz, uv, w, K, R0, t0, scale_px) -> PoseResult`` whose points off the
    symmetry axis are re-placed on their circles (:meth:`Rings.place`) before each of ``rounds``
    fits (inner: the solver it wraps).

    The circles' cost has poses that hold it in a wrong basin: a pose some centimetres too far,
    its rim points slid along their circles, is a local minimum the alternation does not leave.
    So the rounds run from two starts, the inner solver's plain fit of the canonical points and
    the start pose itself, and the fit that explains more keypoints (then the lower RMS) wins:
    the plain fit's basin where the canonical points hold, the start's where the rim labels
    smear (views along the axis)."""

    def __init__(self, inner, rings: Rings, rounds: int = 3):
        self.inner, self.rings, self.rounds = inner, rings, int(rounds)

    def __call__(self, xyz, uv, w, K, R0, t0, scale_px: float):
        plain = self.inner(xyz, uv, w, K, R0, t0, scale_px)
        best = None
        for R, t in ((plain.R_m2c, plain.t_m2c), (R0, t0)):
            res = self._rounds(xyz, uv, w, K, np.asarray(R, np.float64), np.asarray(t, np.float64), scale_px)
            if res is not None and (best is None or fits_better(res, best)):
                best = res
        return best if best is not None else plain

    def _rounds(self, xyz, uv, w, K, R, t, scale_px: float):
        """The last of ``rounds`` fits from (R, t), or None once a pose is not finite and in front."""
        res = None
        for _ in range(self.rounds):
            if not _in_front(R, t):
                return None
            res = self.inner(self.rings.place(xyz, uv, R, t, K), uv, w, K, R, t, scale_px)
            R, t = np.asarray(res.R_m2c, np.float64), np.asarray(res.t_m2c, np.float64)
        return res if _in_front(R, t) else None


def _in_front(R: np.ndarray, t: np.ndarray) -> bool:
    """Whether a pose is finite and puts the object's origin in front of the camera."""
    return bool(np.all(np.isfinite(R)) and np.all(np.isfinite(t)) and t[2] > 0)
