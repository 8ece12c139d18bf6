"""Proposing the symmetries of a mesh (``kptrack object init --detect-symmetry``).

Candidate rotations are tested against the geometry and, when the mesh has colours or a
texture, against its appearance:

* axes: the principal axes of the surface (eigenvectors of the area-weighted covariance of
  surface samples) and the model's x, y, z, all through the surface centroid (every symmetry
  axis passes through it);
* per axis, a continuous symmetry (turns by five unrelated angles all pass), else the largest
  N-fold one (N = 6, 5, 4, 3, 2: the turn by 360/N degrees passes).

A turn passes when the moved surface samples lie on the mesh (mean nearest-sample distance
below ``tol_frac`` x diameter, :func:`tracker.objects.symmetry.symmetry_residual`) and, with
colours, when each moved sample's colour matches the colour found there (mean absolute BGR
difference below ``colour_tol``). Every candidate comes back with its residuals, so the user can
judge; the accepted ones are what ``--detect-symmetry`` writes when the user accepts.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np

from tracker.objects.model import mesh_diameter
from tracker.objects.symmetry import SYMMETRY_TOL_FRAC, SurfaceIndex, rotation_about
from tracker.objects.texture import sample_texture

COLOUR_TOL = 20.0  # mean |BGR difference| (0..255) a symmetry may leave
_CONTINUOUS_TEST_ANGLES = (0.7, 1.6, 2.5, 3.6, 5.1)  # rad, no two related by a small N-fold turn
_ORDERS = (6, 5, 4, 3, 2)


@dataclass(frozen=True)
class SymmetryCandidate:
    """One tested symmetry. kind: 'continuous' or 'discrete'; order: N of an N-fold turn (0 for
    continuous); axis: (3,) unit, model frame; offset: (3,) mm, the centroid the axis passes
    through; geometry_mm: worst mean surface distance over the tested turns; colour: worst mean
    |BGR difference| (None without colours); accepted: both below their tolerances."""

    kind: str
    order: int
    axis: np.ndarray
    offset: np.ndarray
    geometry_mm: float
    colour: float | None
    accepted: bool

    def discrete_transforms(self) -> list[np.ndarray]:
        """The N-1 non-identity turns (4, 4) of a discrete candidate (BOP symmetries_discrete)."""
        return [rotation_about(self.axis, 2 * math.pi * k / self.order, self.offset) for k in range(1, self.order)]

    def continuous_entry(self) -> dict:
        """BOP symmetries_continuous entry of a continuous candidate."""
        return {"axis": self.axis.copy(), "offset": self.offset.copy()}

    def describe(self) -> str:
        what = "continuous" if self.kind == "continuous" else f"{self.order}-fold ({360 // self.order} deg)"
        col = "" if self.colour is None else f", colour residual {self.colour:.1f}"
        ax = ", ".join(f"{x:+.3f}" for x in self.axis)
        return f"{what} about ({ax}) through {np.round(self.offset, 1).tolist()} mm: geometry residual {self.geometry_mm:.2f} mm{col}"


def _surface_samples(vertices, faces, vertex_colors, uv, texture, count: int, seed: int = 0):
    """(points (P, 3) mm, colours (P, 3) float BGR or None, area weights are uniform)."""
    v = np.asarray(vertices, np.float64)
    f = np.asarray(faces)
    tri = v[f]
    area = 0.5 * np.linalg.norm(np.cross(tri[:, 1] - tri[:, 0], tri[:, 2] - tri[:, 0]), axis=1)
    rng = np.random.default_rng(seed)
    idx = rng.choice(len(tri), size=count, p=area / area.sum())
    r1, r2 = rng.random(count), rng.random(count)
    flip = r1 + r2 > 1
    r1[flip], r2[flip] = 1 - r1[flip], 1 - r2[flip]
    bary = np.stack([1 - r1 - r2, r1, r2], 1)
    pts = np.einsum("pk,pkd->pd", bary, tri[idx])
    if texture is not None and uv is not None:
        uvs = np.einsum("pk,pkd->pd", bary, np.asarray(uv, np.float64)[f[idx]])
        return pts, sample_texture(texture, uvs).astype(np.float64)
    if vertex_colors is not None:
        return pts, np.einsum("pk,pkd->pd", bary, np.asarray(vertex_colors, np.float64)[f[idx]])
    return pts, None


def _candidate_axes(pts: np.ndarray) -> list[np.ndarray]:
    """Principal axes of the samples (P, 3) and the model axes, deduplicated; a principal axis
    within 2 degrees of a model axis is snapped onto it (sampling noise tilts them a little)."""
    c = pts - pts.mean(0)
    _, vecs = np.linalg.eigh(c.T @ c / len(c))
    axes: list[np.ndarray] = []
    for a in list(vecs.T) + list(np.eye(3)):
        a = a / np.linalg.norm(a)
        near = np.abs(a) > math.cos(math.radians(2.0))
        if near.any():
            a = np.sign(a) * near
        if a[np.argmax(np.abs(a))] < 0:
            a = -a
        if all(abs(float(a @ b)) < 0.999 for b in axes):
            axes.append(a)
    return axes


def detect_symmetries(vertices: np.ndarray, faces: np.ndarray, vertex_colors: np.ndarray | None = None,
                      uv: np.ndarray | None = None, texture: np.ndarray | None = None, *,
                      tol_frac: float = SYMMETRY_TOL_FRAC, colour_tol: float = COLOUR_TOL,
                      samples: int = 20000) -> list[SymmetryCandidate]:
    """Test candidate symmetries of a mesh (see the module docstring); accepted ones first.

    vertices: (N, 3) mm; faces: (M, 3) int; vertex_colors: (N, 3) uint8 BGR or None; uv (N, 2) and
    texture (Ht, Wt, 3) uint8 BGR or None. Per axis one candidate: continuous if it passes, else
    the largest passing N-fold turn, else the 2-fold turn (rejected, with its residuals).
    """
    pts, cols = _surface_samples(vertices, faces, vertex_colors, uv, texture, samples)
    tol = tol_frac * mesh_diameter(np.asarray(vertices, np.float64))
    centre = pts.mean(0)
    lo, hi = np.min(vertices, axis=0), np.max(vertices, axis=0)
    if np.linalg.norm(centre - 0.5 * (lo + hi)) < tol:
        centre = 0.5 * (lo + hi)  # exact where the sample mean is only close: the box centre
    index = SurfaceIndex(pts)
    q = np.arange(0, len(pts), max(1, len(pts) // 1500))

    def test(T: np.ndarray) -> tuple[float, float | None]:
        moved = pts[q] @ T[:3, :3].T + T[:3, 3]
        d, j = index.query(moved)
        col = None if cols is None else float(np.abs(cols[q] - cols[j]).mean())
        return float(d.mean()), col

    def ok(g: float, c: float | None) -> bool:
        return g <= tol and (c is None or c <= colour_tol)

    out = []
    for a in _candidate_axes(pts):
        res = [test(rotation_about(a, ang, centre)) for ang in _CONTINUOUS_TEST_ANGLES]
        g, c = max(r[0] for r in res), None if cols is None else max(r[1] for r in res)
        if ok(g, c):
            out.append(SymmetryCandidate("continuous", 0, a, centre, g, c, True))
            continue
        best = None
        for n in _ORDERS:
            g, c = test(rotation_about(a, 2 * math.pi / n, centre))
            cand = SymmetryCandidate("discrete", n, a, centre, g, c, ok(g, c))
            if cand.accepted or n == 2:
                best = cand
            if cand.accepted:
                break
        out.append(best)
    return sorted(out, key=lambda s: (not s.accepted, s.geometry_mm))


def accepted_symmetries(cands: list[SymmetryCandidate]) -> tuple[list[np.ndarray], list[dict]]:
    """(symmetries_discrete, symmetries_continuous) of the accepted candidates, BOP form: one
    continuous axis at most (the best), and the discrete turns not already implied by it."""
    acc = [c for c in cands if c.accepted]
    cont = [c for c in acc if c.kind == "continuous"][:1]
    gens: list[np.ndarray] = []
    for c in acc:
        if c.kind != "discrete":
            continue
        if cont and abs(float(c.axis @ cont[0].axis)) > 0.999:
            continue  # a turn about the continuous axis is already in it
        if cont and c.order == 2 and any(abs(float(g[:3, :3].trace()) + 1.0) < 1e-6 for g in gens):
            continue  # with the continuous axis, one half turn across it implies all the others
        gens += c.discrete_transforms()
    return close_group(gens), [c.continuous_entry() for c in cont]


def close_group(gens: list[np.ndarray], limit: int = 120) -> list[np.ndarray]:
    """The non-identity elements of the group the transforms (4, 4) generate (products until
    nothing new, at most ``limit``), so that choosing among them sees every equivalent."""
    out: list[np.ndarray] = []

    def known(T):
        return np.allclose(T, np.eye(4), atol=1e-6) or any(np.allclose(T, U, atol=1e-6) for U in out)

    todo = [np.asarray(g, np.float64) for g in gens]
    while todo and len(out) < limit:
        T = todo.pop()
        if known(T):
            continue
        out.append(T)
        todo += [T @ U for U in out] + [U @ T for U in out]
    return out


def proposal_models_info(cands: list[SymmetryCandidate]) -> dict:
    """BOP models_info.json content (object "1") holding the accepted candidates' symmetries, for
    ``kptrack object init --symmetry FILE`` to accept them."""
    disc, cont = accepted_symmetries(cands)
    info: dict = {}
    if disc:
        info["symmetries_discrete"] = [np.round(T, 9).reshape(-1).tolist() for T in disc]
    if cont:
        info["symmetries_continuous"] = [{"axis": c["axis"].tolist(), "offset": c["offset"].tolist()} for c in cont]
    return {"1": info}
