"""Pose refinement on image edges: the keypoint fit, moved so the object's rendered outline and
creases land on the crop's intensity edges as well.

Keypoints pin a pose to a handful of heatmap peaks, each a few pixels uncertain. On an object
whose keypoints constrain depth weakly (a bottle's lie near its axis and rims) the fit can sit
tens of millimetres off in depth and some degrees off in tilt while its keypoints still project
within a few pixels. Its outline does not: the silhouette's width and the rims' ellipses tell
depth and tilt. This is the classic model-based edge tracker's step (RAPiD, Harris and Stennett
1990; Drummond and Cipolla 2002), run after the keypoint pass with the keypoints kept as a prior.

The object is rendered once in the crop at the fit's pose
(:meth:`tracker.pipeline.edges.EdgeScorer.edge_points`: silhouette and crease pixels, their 3D
points from the z-buffer and their normals in the image). Each of ``iterations`` projects those
points at the current pose and searches along each normal, up to
``search_px`` crop pixels either way, for the nearest local maximum of the crop's gradient
across the normal that is strong (at least ``strong_frac`` of the crop's strong-edge level) and
runs along the model edge (the gradient within ``max_angle_deg`` of the normal). Then a few
Gauss-Newton steps on six parameters (a rotation about the object's origin and a translation,
camera frame) minimise, in ideal frame pixels,

* each found edge point's distance along its normal to the image edge, Cauchy-weighted at
  ``sigma_px`` (crop pixels), the points together weighing ``edge_weight`` times the keypoints;
* each inlier keypoint's reprojection error, weighted by its confidence, Huber at the pass's
  robust scale.

The refined pose replaces the fit only when enough edge points were found (``min_points``), it
moved less than ``max_turn_deg`` and ``max_shift`` of the depth (a refinement, not a new pose),
and the caller's accept test still passes. Occluders' outlines are edges too: the nearest-edge
rule, the robust weights and the keypoint prior keep them from pulling far, but a fit the
keypoints already let an occluder pull is not mended here.

Found edges are undistorted before the fit (the search itself runs in the crop as seen, from the
ideal projection: a lens's shift of a few pixels lies within ``search_px``). A refinement costs
about 0.8 of an ONNX inference of the drill's network on 2 CPU cores
(``benchmarks/test_bench_edges.py``), 2-2.5 ms a frame in the loop; the ``accurate`` preset runs it.
"""

from __future__ import annotations

import dataclasses

import cv2
import numpy as np
from numba import njit

from tracker.geometry import project, rotation_error_deg, so3_exp
from tracker.pipeline.edges import EdgeScorer, crop_intrinsics


@dataclasses.dataclass(frozen=True)
class EdgeRefineConfig:
    """Settings of :class:`EdgeRefiner` (see the module docstring)."""

    search_px: int = 6
    iterations: int = 2
    steps: int = 2
    edge_weight: float = 10.0
    sigma_px: float = 1.5
    strong_frac: float = 0.5
    max_angle_deg: float = 45.0
    max_points: int = 200
    min_points: int = 20
    max_turn_deg: float = 10.0
    max_shift: float = 0.1


class EdgeRefiner:
    """Refines a pose on the crop's edges (see the module docstring).

    edges: the :class:`~tracker.pipeline.edges.EdgeScorer` that renders the object's edges in a crop.
    K: (3, 3) the camera's intrinsics (ideal pixels). undistort: observed frame px (N, 2) -> ideal.
    """

    def __init__(self, edges: EdgeScorer, K: np.ndarray, undistort, config: EdgeRefineConfig | None = None):
        self.edges, self.K, self.undistort = edges, np.asarray(K, np.float64), undistort
        self.cfg = config or EdgeRefineConfig()
        r = self.cfg.search_px
        self.offsets = np.arange(-r, r + 1, dtype=np.float32)
        self.cos_max = float(np.cos(np.radians(self.cfg.max_angle_deg)))

    def __call__(self, crop: np.ndarray, A: np.ndarray, R: np.ndarray, t: np.ndarray, xyz: np.ndarray,
                 uv_ideal: np.ndarray, w: np.ndarray, kp_scale_px: float) -> tuple[np.ndarray, np.ndarray, int] | None:
        """(R, t, edge points used in the last iteration) refined from the pose (R, t), or None when the
        crop gave too few edge points or the result left the refinement's bounds.

        crop: (S, S, 3) uint8 BGR, cut from the frame with the affine A (2, 3) frame px -> crop px.
        xyz (N, 3) mm, uv_ideal (N, 2) ideal frame px and w (N,) confidences: the fit's inlier keypoints.
        kp_scale_px: the keypoints' Huber scale, frame px."""
        cfg = self.cfg
        R0, t0 = np.asarray(R, np.float64), np.asarray(t, np.float64)
        R, t = R0.copy(), t0.copy()
        A = np.asarray(A, np.float64)
        M = A[:, :2]
        Minv = np.linalg.inv(M)
        crop_px = float(np.sqrt(abs(np.linalg.det(Minv))))  # frame px per crop px
        gx, gy, mag = self.edges.gradients(crop)
        strong = self.edges.strong_level(mag)
        Kc = crop_intrinsics(self.K, A)
        # the model's edges are rendered once; later iterations project the same model points at
        # the updated pose (a smooth object's outline slides over its surface, but only to second
        # order in a refinement's few-pixel moves) and search again from there
        pts = self.edges.edge_points(Kc, R, t, cfg.max_points)
        if pts is None:
            return None
        p, Xc, n, bias = pts
        Xo_all = (Xc - t) @ R  # model-frame points: R^T (Xc - t)
        used = 0
        for it in range(cfg.iterations):
            if it:
                p = project(Xo_all, R, t, Kc)
            d, ok = self._search(gx, gy, strong, p + bias, n)
            used = int(np.count_nonzero(ok))
            if used < cfg.min_points:
                return None
            # the found image edge, moved back by the pixel's offset from its outline, in ideal
            # frame px (where the model point projects), and each normal in frame px
            q = p[ok] + d[ok, None] * n[ok]
            q_frame = self.undistort((q - A[:, 2]) @ Minv.T)
            n_frame = n[ok] @ M  # a line's normal maps by M^T
            n_frame /= np.linalg.norm(n_frame, axis=1, keepdims=True)
            R, t = self._steps(R, t, Xo_all[ok], q_frame, n_frame, xyz, uv_ideal, w, kp_scale_px, cfg.sigma_px * crop_px)
        if not (np.all(np.isfinite(R)) and np.all(np.isfinite(t)) and t[2] > 0):
            return None
        if rotation_error_deg(R0, R) > cfg.max_turn_deg or np.linalg.norm(t - t0) > cfg.max_shift * abs(t0[2]):
            return None
        return R, t, used

    def warmup(self) -> None:
        """Compile (or load from numba's cache) the kernels a refinement runs, on made-up data: the
        object rendered face-on in a crop, and the normal equations of its edge points."""
        s = self.edges.size
        radius = max(float(np.linalg.norm(self.edges.renderer.vertices, axis=1).max()), 1.0)
        Kc = np.array([[float(s), 0.0, s / 2.0], [0.0, float(s), s / 2.0], [0.0, 0.0, 1.0]])
        R, t = np.eye(3), np.array([0.0, 0.0, 3.0 * radius])
        pts = self.edges.edge_points(Kc, R, t, self.cfg.max_points)
        if pts is None:
            return
        p, Xc, n, _ = pts
        self._steps(R, t, (Xc - t) @ R, p, n, np.zeros((0, 3)), np.zeros((0, 2)), np.zeros(0), 1.0, 1.0)

    def _search(self, gx: np.ndarray, gy: np.ndarray, strong: float, p: np.ndarray, n: np.ndarray):
        """(signed offset along each normal to the nearest qualifying image edge, crop px (N,);
        found (N,) bool)."""
        off = self.offsets
        xs = (p[:, 0:1] + off[None] * n[:, 0:1]).astype(np.float32)
        ys = (p[:, 1:2] + off[None] * n[:, 1:2]).astype(np.float32)
        sx = cv2.remap(gx, xs, ys, cv2.INTER_LINEAR, borderMode=cv2.BORDER_CONSTANT, borderValue=0)
        sy = cv2.remap(gy, xs, ys, cv2.INTER_LINEAR, borderMode=cv2.BORDER_CONSTANT, borderValue=0)
        along = np.abs(sx * n[:, 0:1] + sy * n[:, 1:2])  # the gradient across the model edge
        mag = np.sqrt(sx * sx + sy * sy)
        good = (along >= self.cfg.strong_frac * strong) & (along >= self.cos_max * mag)
        peak = np.zeros_like(good)
        peak[:, 1:-1] = (along[:, 1:-1] >= along[:, :-2]) & (along[:, 1:-1] >= along[:, 2:])
        cand = good & peak
        found = cand.any(axis=1)
        # the nearest candidate to the model edge (offset 0), the stronger on a tie
        dist = np.where(cand, np.abs(off)[None] - 1e-3 * along / max(strong, 1e-6), np.inf)
        k = np.argmin(dist, axis=1)
        rows = np.arange(len(p))
        kk = np.clip(k, 1, len(off) - 2)
        a, b, c = along[rows, kk - 1], along[rows, kk], along[rows, kk + 1]
        den = a - 2.0 * b + c
        sub = np.where(np.abs(den) > 1e-9, 0.5 * (a - c) / np.where(np.abs(den) > 1e-9, den, 1.0), 0.0)
        return off[kk] + np.clip(sub, -0.5, 0.5), found

    def _steps(self, R, t, Xo, q, n, xyz, uv, w, kp_scale, edge_scale):
        """cfg.steps Gauss-Newton steps of the joint edge + keypoint cost from (R, t); returns (R, t)."""
        cfg = self.cfg
        wk = np.ascontiguousarray(w, np.float64)
        we = cfg.edge_weight * max(float(wk.sum()), 1.0) / len(Xo)  # without keypoints, as much as one
        Xo, q, n = np.ascontiguousarray(Xo), np.ascontiguousarray(q, np.float64), np.ascontiguousarray(n, np.float64)
        xyz, uv = np.ascontiguousarray(xyz, np.float64).reshape(-1, 3), np.ascontiguousarray(uv, np.float64).reshape(-1, 2)
        H, g = np.empty((6, 6)), np.empty(6)
        for _ in range(cfg.steps):
            normal_equations(self.K, R, t, Xo, n, q, we, edge_scale, xyz, uv, wk, kp_scale, H, g)
            H[np.diag_indices(6)] *= 1.0 + 1e-3
            try:
                delta = -np.linalg.solve(H + 1e-9 * np.eye(6), g)
            except np.linalg.LinAlgError:
                break
            R = so3_exp(delta[:3]) @ R
            t = t + delta[3:]
        return R, t


@njit(cache=True, nogil=True, error_model="numpy")
def _row(K, R, t, X, dx, dy, target, row):
    """One residual of the joint cost: the component along (dx, dy) of the ideal pixel of model
    point X (3,) at (R, t), minus ``target``; returned, with its derivative in the pose increment
    written to ``row`` (6,): (Xr x gr, gr), gr = (dx, dy) . d(uv)/d(Xc), Xr = R X, since
    d(Xc) = omega x Xr + upsilon (omega a rotation about the object's origin, camera frame)."""
    xr = R[0, 0] * X[0] + R[0, 1] * X[1] + R[0, 2] * X[2]
    yr = R[1, 0] * X[0] + R[1, 1] * X[1] + R[1, 2] * X[2]
    zr = R[2, 0] * X[0] + R[2, 1] * X[1] + R[2, 2] * X[2]
    xc, yc, zc = xr + t[0], yr + t[1], zr + t[2]
    fx, sk, fy = K[0, 0], K[0, 1], K[1, 1]
    u = (fx * xc + sk * yc) / zc + K[0, 2]
    v = fy * yc / zc + K[1, 2]
    g0 = dx * fx / zc
    g1 = (dx * sk + dy * fy) / zc
    g2 = -(dx * (fx * xc + sk * yc) + dy * fy * yc) / (zc * zc)
    row[0] = yr * g2 - zr * g1
    row[1] = zr * g0 - xr * g2
    row[2] = xr * g1 - yr * g0
    row[3] = g0
    row[4] = g1
    row[5] = g2
    return dx * u + dy * v - target


@njit(cache=True, nogil=True, error_model="numpy")
def _add(H, g, row, res, weight):
    for i in range(6):
        wi = weight * row[i]
        g[i] += wi * res
        for j in range(6):
            H[i, j] += wi * row[j]


@njit(cache=True, nogil=True, error_model="numpy")
def normal_equations(K, R, t, Xo, n, q, w_edge, edge_scale, xyz, uv, w_kp, kp_scale, H, g):
    """Fill H (6, 6) and g (6,) of the joint cost at (R, t) (see :class:`EdgeRefiner`): each edge
    point Xo[i] (model mm) along its normal n[i] to q[i] (ideal frame px), Cauchy at edge_scale
    with weight w_edge; each keypoint xyz[k] to uv[k], in x and y, Huber at kp_scale on its
    distance with weight w_kp[k]. The numpy twin is in tests/tracker/pipeline/test_edge_refine.py."""
    H[:, :] = 0.0
    g[:] = 0.0
    row, row_v = np.empty(6), np.empty(6)
    for i in range(Xo.shape[0]):
        r = _row(K, R, t, Xo[i], n[i, 0], n[i, 1], n[i, 0] * q[i, 0] + n[i, 1] * q[i, 1], row)
        _add(H, g, row, r, w_edge / (1.0 + (r / edge_scale) ** 2))
    for k in range(xyz.shape[0]):
        ru = _row(K, R, t, xyz[k], 1.0, 0.0, uv[k, 0], row)
        rv = _row(K, R, t, xyz[k], 0.0, 1.0, uv[k, 1], row_v)
        d = np.sqrt(ru * ru + rv * rv)
        a = w_kp[k] * (1.0 if d <= kp_scale else kp_scale / d)
        _add(H, g, row, ru, a)
        _add(H, g, row_v, rv, a)
