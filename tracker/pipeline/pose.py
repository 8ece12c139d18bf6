"""6-DoF pose from 2D-3D keypoint matches: a warm-started robust Levenberg-Marquardt on SE(3)
(numba, with a numpy reference twin) and a cold start by SQPnP inside RANSAC.

Methods:

* Levenberg-Marquardt: Levenberg (1944), Marquardt (1963), with Marquardt's diagonal scaling
  ``(H + lambda diag(H)) delta = -g``: far from the optimum it moves like scaled gradient
  descent, near it like Gauss-Newton, so a warm start from the last frame's pose converges in a
  few iterations.
* Robust M-estimation by iteratively reweighted least squares (Huber, "Robust Estimation of a
  Location Parameter", 1964; the Cauchy/Lorentzian loss): each keypoint's 2D residual norm ``e``
  gets the weight ``psi(e)/e`` (Huber: ``min(1, c/e)``; Cauchy: ``1/(1 + (e/c)^2)``, with
  ``c = scale_px``), times its detector confidence, and each LM step is a weighted Gauss-Newton
  step. Steps are accepted only if the robust cost itself decreases.
* Cold start: SQPnP, Terzakis & Lourakis, "A Consistently Fast and Globally Optimal Solution to
  the Perspective-n-Point Problem", ECCV 2020 (OpenCV ``SOLVEPNP_SQPNP``), as the minimal/
  non-minimal solver inside OpenCV's RANSAC; EPnP (Lepetit, Moreno-Noguer & Fua, IJCV 2009) is
  the classic alternative it is benchmarked against.

Conventions: poses are model-to-camera, ``x_cam = R_m2c @ x_model + t_m2c`` (mm); pixels have
integer centres; ``uv`` are ideal (undistorted) pixels; the camera matrix ``K`` is upper
triangular with ``K[2] = (0, 0, 1)`` (skew ``K[0, 1]`` is honoured). The pose increment is on the
LEFT, ``delta = (omega (3) rad, upsilon (3) mm)``: ``R <- exp(omega) R``, ``t <- exp(omega) t +
upsilon``, i.e. a small motion of the object expressed in the camera frame.

Points are ignored where ``uv`` or ``xyz_model`` is not finite or the weight is not > 0, and
at every pose where they lie at ``z <= Z_MIN_MM`` (behind the camera). A step that would move
another used point behind the camera is rejected, so the solver cannot lower its cost by
hiding points.

The covariance is ``sigma^2 (J^T W J)^-1`` at the solution (6x6, order omega then upsilon),
with ``W`` the final IRLS weights and ``sigma^2 = max(sum W e^2 / (2n - 6), min_sigma_px^2)``,
the a-posteriori variance of unit weight, floored so that a perfect fit does not claim zero
uncertainty.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np
from numba import njit

from tracker.errors import KptrackError

__all__ = ["PoseResult", "solve_lm", "solve_lm_ref", "solve_pnp_ransac", "solve_pose", "LOSSES"]

#: Loss name -> code used by the numba core.
LOSSES = {"l2": 0, "huber": 1, "cauchy": 2}
#: Points at or behind this depth (mm, camera frame) are ignored at that pose.
Z_MIN_MM = 1e-6
#: A keypoint is an inlier when its residual is below INLIER_FACTOR * scale_px.
INLIER_FACTOR = 3.0
_LAMBDA0 = 1e-6  # Marquardt-scaled; warm starts are near the optimum, failed steps raise it
_LAMBDA_MAX = 1e12
_LAMBDA_MIN = 1e-12
_ORTHO_TOL = 1e-4  # max |R0^T R0 - I| accepted for a warm start


@dataclass(frozen=True)
class PoseResult:
    """A solved pose and how well it fits.

    R_m2c: (3, 3) float64 rotation; t_m2c: (3,) float64 mm.
    rms: confidence-weighted RMS reprojection error of the inliers, px (inf if none).
    n_inliers: keypoints with residual < 3 * scale_px. inlier_mask: (K,) bool.
    cov: (6, 6) float64 covariance of the left increment (omega rad, upsilon mm); inf * I
      where the pose is not determined (fewer than 3 usable points).
    iterations: LM linearisations performed. converged: the step (or the achievable cost
      decrease) fell below tol before max_iter.
    """

    R_m2c: np.ndarray
    t_m2c: np.ndarray
    rms: float
    n_inliers: int
    inlier_mask: np.ndarray
    cov: np.ndarray
    iterations: int
    converged: bool

    @classmethod
    def _fast(cls, R_m2c, t_m2c, rms, n_inliers, inlier_mask, cov, iterations, converged) -> "PoseResult":
        # The frozen dataclass __init__ sets each field through object.__setattr__ (~1 us in
        # all); the per-frame solver fills the instance dict in one go instead.
        obj = object.__new__(cls)
        obj.__dict__.update(
            R_m2c=R_m2c, t_m2c=t_m2c, rms=float(rms), n_inliers=int(n_inliers), inlier_mask=inlier_mask,
            cov=cov, iterations=int(iterations), converged=bool(converged),
        )
        return obj


# =========================================================================== numba core
@njit(cache=True)
def _so3_exp(wx, wy, wz, out):
    """Rodrigues: out (3, 3) <- exp([w]x), with a Taylor series near 0."""
    th2 = wx * wx + wy * wy + wz * wz
    if th2 < 1e-10:
        a = 1.0 - th2 / 6.0
        b = 0.5 - th2 / 24.0
    else:
        th = math.sqrt(th2)
        a = math.sin(th) / th
        b = (1.0 - math.cos(th)) / th2
    c = 1.0 - b * th2  # cos(theta)
    out[0, 0] = c + b * wx * wx
    out[1, 1] = c + b * wy * wy
    out[2, 2] = c + b * wz * wz
    out[0, 1] = b * wx * wy - a * wz
    out[1, 0] = b * wx * wy + a * wz
    out[0, 2] = b * wx * wz + a * wy
    out[2, 0] = b * wx * wz - a * wy
    out[1, 2] = b * wy * wz - a * wx
    out[2, 1] = b * wy * wz + a * wx


@njit(cache=True)
def _cholesky6(A, L):
    """L <- lower Cholesky factor of the symmetric 6x6 A. Returns False if A is not positive definite."""
    for j in range(6):
        s = A[j, j]
        for k in range(j):
            s -= L[j, k] * L[j, k]
        if not s > 0.0:
            return False
        d = math.sqrt(s)
        L[j, j] = d
        for i in range(j + 1, 6):
            s = A[i, j]
            for k in range(j):
                s -= L[i, k] * L[j, k]
            L[i, j] = s / d
        for i in range(j):
            L[i, j] = 0.0
    return True


@njit(cache=True)
def _chol_solve6(L, b, x):
    """x <- A^-1 b given A's Cholesky factor L."""
    for i in range(6):
        s = b[i]
        for k in range(i):
            s -= L[i, k] * x[k]
        x[i] = s / L[i, i]
    for i in range(5, -1, -1):
        s = x[i]
        for k in range(i + 1, 6):
            s -= L[k, i] * x[k]
        x[i] = s / L[i, i]


@njit(cache=True)
def _evaluate(X, uv, w, use, Kc, R, t, loss, c, want_jac, H, g, e, J):
    """Robust cost at pose (R, t); with want_jac also H = J^T W J and g = J^T W r (IRLS).

    e (K,) <- residual norms (inf where not used or behind the camera).
    Returns (cost, n_front, weighted sum of squares sum W e^2).
    """
    fx = Kc[0, 0]
    sk = Kc[0, 1]
    cx = Kc[0, 2]
    fy = Kc[1, 1]
    cy = Kc[1, 2]
    if want_jac:
        for i in range(6):
            g[i] = 0.0
            for j in range(6):
                H[i, j] = 0.0
    cost = 0.0
    wsse = 0.0
    nf = 0
    for i in range(X.shape[0]):
        e[i] = np.inf
        if not use[i]:
            continue
        x0 = X[i, 0]
        x1 = X[i, 1]
        x2 = X[i, 2]
        xc = R[0, 0] * x0 + R[0, 1] * x1 + R[0, 2] * x2 + t[0]
        yc = R[1, 0] * x0 + R[1, 1] * x1 + R[1, 2] * x2 + t[1]
        zc = R[2, 0] * x0 + R[2, 1] * x1 + R[2, 2] * x2 + t[2]
        if not zc > Z_MIN_MM:
            continue
        nf += 1
        iz = 1.0 / zc
        xn = xc * iz
        yn = yc * iz
        ru = fx * xn + sk * yn + cx - uv[i, 0]
        rv = fy * yn + cy - uv[i, 1]
        e2 = ru * ru + rv * rv
        en = math.sqrt(e2)
        e[i] = en
        if loss == 1:
            if en <= c:
                rho = 0.5 * e2
                wr = 1.0
            else:
                rho = c * en - 0.5 * c * c
                wr = c / en
        elif loss == 2:
            q = e2 / (c * c)
            rho = 0.5 * c * c * math.log1p(q)
            wr = 1.0 / (1.0 + q)
        else:
            rho = 0.5 * e2
            wr = 1.0
        cost += w[i] * rho
        ww = w[i] * wr
        wsse += ww * e2
        if want_jac:
            # d(u,v)/d(xc,yc,zc) = P; d(xc,yc,zc)/d(omega, upsilon) = [-[Xc]x | I]
            p00 = fx * iz
            p01 = sk * iz
            p02 = -(fx * xn + sk * yn) * iz
            p11 = fy * iz
            p12 = -fy * yn * iz
            # -[Xc]x has columns (0, -zc, yc), (zc, 0, -xc), (-yc, xc, 0): omega x Xc
            J[0, 0] = p02 * yc - p01 * zc
            J[0, 1] = p00 * zc - p02 * xc
            J[0, 2] = p01 * xc - p00 * yc
            J[0, 3] = p00
            J[0, 4] = p01
            J[0, 5] = p02
            J[1, 0] = p12 * yc - p11 * zc
            J[1, 1] = -p12 * xc
            J[1, 2] = p11 * xc
            J[1, 3] = 0.0
            J[1, 4] = p11
            J[1, 5] = p12
            for a in range(6):
                ja0 = ww * J[0, a]
                ja1 = ww * J[1, a]
                g[a] += ja0 * ru + ja1 * rv
                for b in range(a, 6):
                    H[a, b] += ja0 * J[0, b] + ja1 * J[1, b]
    if want_jac:
        for a in range(6):
            for b in range(a):
                H[a, b] = H[b, a]
    return cost, nf, wsse


@njit(cache=True)
def _lm_core(X, uv, w, Kc, R0, t0, loss, c, max_iter, tol, min_sigma, R, t, inl, cov):
    """Robust LM from (R0, t0) into the outputs R (3, 3), t (3,), inl (K,) bool, cov (6, 6).

    Returns (rms, n_inliers, iterations, converged, status); status 0 ok, 1 R0 not a rotation.
    Outputs are passed in (not returned) because boxing new arrays costs ~0.5 us each.
    """
    n = X.shape[0]
    for i in range(3):
        t[i] = t0[i]
        for j in range(3):
            R[i, j] = R0[i, j]
    for i in range(n):
        inl[i] = False
    for i in range(6):
        for j in range(6):
            cov[i, j] = 0.0
        cov[i, i] = np.inf
    # the warm start must be a rotation
    ortho = 0.0
    for i in range(3):
        for j in range(3):
            s = R[0, i] * R[0, j] + R[1, i] * R[1, j] + R[2, i] * R[2, j]
            if i == j:
                s -= 1.0
            ortho = max(ortho, abs(s))
    det = (R[0, 0] * (R[1, 1] * R[2, 2] - R[1, 2] * R[2, 1]) - R[0, 1] * (R[1, 0] * R[2, 2] - R[1, 2] * R[2, 0])
           + R[0, 2] * (R[1, 0] * R[2, 1] - R[1, 1] * R[2, 0]))
    if not (ortho <= _ORTHO_TOL and det > 0.0):
        return np.inf, 0, 0, False, 1

    use = np.zeros(n, dtype=np.bool_)
    for i in range(n):
        use[i] = (w[i] > 0.0 and math.isfinite(w[i]) and math.isfinite(uv[i, 0]) and math.isfinite(uv[i, 1])
                  and math.isfinite(X[i, 0]) and math.isfinite(X[i, 1]) and math.isfinite(X[i, 2]))
    # one scratch allocation, carved into views
    buf = np.empty(5 * 36 + 4 * 6 + 2 * 9 + 3 + 2 * n)
    H = buf[0:36].reshape((6, 6))
    Hc = buf[36:72].reshape((6, 6))
    A = buf[72:108].reshape((6, 6))
    L = buf[108:144].reshape((6, 6))
    J = buf[144:156].reshape((2, 6))
    g = buf[180:186]
    gc = buf[186:192]
    d = buf[192:198]
    nb = buf[198:204]
    Rc = buf[204:213].reshape((3, 3))
    dR = buf[213:222].reshape((3, 3))
    tc = buf[222:225]
    e = buf[225 : 225 + n]
    ec = buf[225 + n : 225 + 2 * n]

    cost, nf, wsse = _evaluate(X, uv, w, use, Kc, R, t, loss, c, True, H, g, e, J)
    it = 0
    converged = False
    lam = _LAMBDA0
    if nf >= 3:
        while it < max_iter:
            it += 1
            accepted = False
            while lam <= _LAMBDA_MAX:
                dmax = 0.0
                for a in range(6):
                    dmax = max(dmax, H[a, a])
                for a in range(6):
                    for b in range(6):
                        A[a, b] = H[a, b]
                    A[a, a] += lam * max(H[a, a], 1e-9 * dmax + 1e-300)
                    nb[a] = -g[a]
                if not _cholesky6(A, L):
                    lam *= 10.0
                    continue
                _chol_solve6(L, nb, d)
                _so3_exp(d[0], d[1], d[2], dR)
                for a in range(3):
                    tc[a] = dR[a, 0] * t[0] + dR[a, 1] * t[1] + dR[a, 2] * t[2] + d[3 + a]
                    for b in range(3):
                        Rc[a, b] = dR[a, 0] * R[0, b] + dR[a, 1] * R[1, b] + dR[a, 2] * R[2, b]
                cost_c, nf_c, wsse_c = _evaluate(X, uv, w, use, Kc, Rc, tc, loss, c, True, Hc, gc, ec, J)
                if nf_c > nf or (nf_c == nf and cost_c < cost):
                    accepted = True
                    break
                lam *= 10.0
            if not accepted:
                # no damped step lowers the cost: a minimum to rounding
                converged = True
                break
            for a in range(3):
                t[a] = tc[a]
                for b in range(3):
                    R[a, b] = Rc[a, b]
            for a in range(6):
                g[a] = gc[a]
                for b in range(6):
                    H[a, b] = Hc[a, b]
            for i in range(n):
                e[i] = ec[i]
            cost = cost_c
            nf = nf_c
            wsse = wsse_c
            lam = max(lam * 0.1, _LAMBDA_MIN)
            rot_step = math.sqrt(d[0] * d[0] + d[1] * d[1] + d[2] * d[2])
            tr_step = math.sqrt(d[3] * d[3] + d[4] * d[4] + d[5] * d[5])
            tnorm = math.sqrt(t[0] * t[0] + t[1] * t[1] + t[2] * t[2])
            if rot_step < tol and tr_step < tol * max(tnorm, 1.0):
                converged = True
                break
        # one Newton step toward orthonormality; removes the rounding drift of repeated products
        for a in range(3):
            for b in range(3):
                s = 0.0
                for k in range(3):
                    s += R[k, a] * R[k, b]
                A[a, b] = -s
            A[a, a] += 3.0
        for a in range(3):
            for b in range(3):
                Rc[a, b] = 0.5 * (R[a, 0] * A[0, b] + R[a, 1] * A[1, b] + R[a, 2] * A[2, b])
        for a in range(3):
            for b in range(3):
                R[a, b] = Rc[a, b]
        if nf >= 3 and _cholesky6(H, L):
            sigma2 = max(wsse / max(2 * nf - 6, 1), min_sigma * min_sigma)
            for a in range(6):
                for b in range(6):
                    nb[b] = 1.0 if a == b else 0.0
                _chol_solve6(L, nb, d)
                for b in range(6):
                    cov[b, a] = sigma2 * d[b]
            for a in range(6):  # exact symmetry
                for b in range(a):
                    s = 0.5 * (cov[a, b] + cov[b, a])
                    cov[a, b] = s
                    cov[b, a] = s
    sw = 0.0
    swe = 0.0
    n_inl = 0
    thr = INLIER_FACTOR * c
    for i in range(n):
        if e[i] < thr:
            inl[i] = True
            n_inl += 1
            sw += w[i]
            swe += w[i] * e[i] * e[i]
    rms = math.sqrt(swe / sw) if sw > 0.0 else np.inf
    return rms, n_inl, it, converged, 0


# =========================================================================== python API
_F64 = np.dtype(np.float64)


def _as_f64(a, name: str, shape: tuple) -> np.ndarray:
    """``a`` as a C-contiguous float64 array of ``shape`` (no copy when it already is one)."""
    if type(a) is not np.ndarray or a.dtype is not _F64 or not a.flags.c_contiguous:
        try:
            a = np.ascontiguousarray(a, dtype=np.float64)
        except (TypeError, ValueError) as err:
            raise KptrackError(f"{name}: cannot read as a float array ({err}). Pass a float array of shape {shape}.") from None
    if a.shape != shape:
        if len(shape) == 1 and a.size == shape[0]:
            a = a.reshape(shape)  # e.g. a (3, 1) tvec from OpenCV
        else:
            raise KptrackError(f"{name}: expected shape {shape}, got {a.shape}. Pass a float array of that shape.")
    return a


def _check_inputs(xyz_model, uv, weights, K, R0, t0, loss, scale_px):
    X = xyz_model
    if type(X) is not np.ndarray or X.ndim != 2:
        X = _as_f64(X, "xyz_model", np.shape(X) if np.ndim(X) == 2 else (-1, 3))
    n = X.shape[0]
    if X.shape[1] != 3:
        raise KptrackError(f"xyz_model: expected (K, 3) model points in mm, got shape {X.shape}. Pass one row per keypoint.")
    X = _as_f64(X, "xyz_model", (n, 3))
    uv = _as_f64(uv, "uv", (n, 2))
    w = _as_f64(weights, "weights", (n,))
    Kc = _as_f64(K, "K", (3, 3))
    R0 = _as_f64(R0, "R0", (3, 3))
    t0 = _as_f64(t0, "t0", (3,))
    code = LOSSES.get(loss)
    if code is None:
        raise KptrackError(f"loss: unknown loss {loss!r}. Use one of {sorted(LOSSES)}.")
    if not scale_px > 0:
        raise KptrackError(f"scale_px: must be > 0 pixels, got {scale_px}.")
    return X, uv, w, Kc, R0, t0, code


def solve_lm(
    xyz_model: np.ndarray,
    uv: np.ndarray,
    weights: np.ndarray,
    K: np.ndarray,
    R0: np.ndarray,
    t0: np.ndarray,
    *,
    loss: str = "huber",
    scale_px: float = 3.0,
    max_iter: int = 20,
    tol: float = 1e-6,
    min_sigma_px: float = 0.1,
) -> PoseResult:
    """Confidence-weighted robust LM pose refinement on SE(3), warm-started from (R0, t0) (numba).

    xyz_model: (K, 3) float64 keypoints in the model frame, mm. uv: (K, 2) float64 ideal pixels
    (NaN rows are ignored). weights: (K,) float64 confidences (<= 0 ignored). K: (3, 3) camera
    matrix. R0: (3, 3) rotation, t0: (3,) mm, the start pose (model-to-camera).
    loss: 'huber' | 'cauchy' | 'l2'; scale_px: the robust loss's scale c, px (also sets the
    inlier threshold 3c). max_iter: LM linearisations. tol: converged when the step is below
    tol rad in rotation and tol * max(|t|, 1 mm) in translation. min_sigma_px: floor of the
    residual scale used in ``cov``.
    Returns a :class:`PoseResult`. With fewer than 3 usable points in front of the camera the
    start pose is returned unchanged with ``converged = False`` and ``cov = inf * I``.
    """
    X, uvc, w, Kc, R0c, t0c, code = _check_inputs(xyz_model, uv, weights, K, R0, t0, loss, scale_px)
    R = np.empty((3, 3))
    t = np.empty(3)
    inl = np.empty(X.shape[0], dtype=np.bool_)
    cov = np.empty((6, 6))
    rms, n_inl, it, conv, status = _lm_core(
        X, uvc, w, Kc, R0c, t0c, code, float(scale_px), int(max_iter), float(tol), float(min_sigma_px), R, t, inl, cov
    )
    if status == 1:
        raise KptrackError("R0: the start rotation is not orthonormal with det +1. Pass a rotation matrix (e.g. from cv2.Rodrigues).")
    return PoseResult._fast(R, t, rms, n_inl, inl, cov, it, conv)


# --------------------------------------------------------------------------- numpy twin
def _so3_exp_np(wv: np.ndarray) -> np.ndarray:
    th2 = float(wv @ wv)
    if th2 < 1e-10:
        a, b = 1.0 - th2 / 6.0, 0.5 - th2 / 24.0
    else:
        th = math.sqrt(th2)
        a, b = math.sin(th) / th, (1.0 - math.cos(th)) / th2
    Wx = np.array([[0.0, -wv[2], wv[1]], [wv[2], 0.0, -wv[0]], [-wv[1], wv[0], 0.0]])
    return (1.0 - b * th2) * np.eye(3) + a * Wx + b * np.outer(wv, wv)


def _evaluate_np(X, uv, w, use, Kc, R, t, code, c):
    """Vectorised twin of _evaluate: (cost, n_front, wsse, H, g, e)."""
    Xc = X @ R.T + t
    front = use & (Xc[:, 2] > Z_MIN_MM)
    e = np.full(X.shape[0], np.inf)
    Xf = Xc[front]
    z = Xf[:, 2]
    xn, yn = Xf[:, 0] / z, Xf[:, 1] / z
    fx, sk, cx, fy, cy = Kc[0, 0], Kc[0, 1], Kc[0, 2], Kc[1, 1], Kc[1, 2]
    r = np.stack([fx * xn + sk * yn + cx - uv[front, 0], fy * yn + cy - uv[front, 1]], axis=1)
    e2 = np.sum(r * r, axis=1)
    en = np.sqrt(e2)
    e[front] = en
    if code == 1:
        small = en <= c
        rho = np.where(small, 0.5 * e2, c * en - 0.5 * c * c)
        wr = np.where(small, 1.0, c / np.maximum(en, 1e-300))
    elif code == 2:
        q = e2 / (c * c)
        rho, wr = 0.5 * c * c * np.log1p(q), 1.0 / (1.0 + q)
    else:
        rho, wr = 0.5 * e2, np.ones_like(e2)
    wf = w[front]
    ww = wf * wr
    # J = P @ [-[Xc]x | I], P = d(u, v)/d(Xc)
    P = np.zeros((len(z), 2, 3))
    P[:, 0, 0], P[:, 0, 1], P[:, 0, 2] = fx / z, sk / z, -(fx * xn + sk * yn) / z
    P[:, 1, 1], P[:, 1, 2] = fy / z, -fy * yn / z
    mXx = np.zeros((len(z), 3, 3))  # -[Xc]x
    mXx[:, 0, 1], mXx[:, 0, 2] = Xf[:, 2], -Xf[:, 1]
    mXx[:, 1, 0], mXx[:, 1, 2] = -Xf[:, 2], Xf[:, 0]
    mXx[:, 2, 0], mXx[:, 2, 1] = Xf[:, 1], -Xf[:, 0]
    J = np.concatenate([P @ mXx, P], axis=2)  # (n, 2, 6)
    H = np.einsum("n,nia,nib->ab", ww, J, J)
    g = np.einsum("n,nia,ni->a", ww, J, r)
    return float(np.sum(wf * rho)), int(front.sum()), float(np.sum(ww * e2)), H, g, e


def solve_lm_ref(
    xyz_model, uv, weights, K, R0, t0, *, loss="huber", scale_px=3.0, max_iter=20, tol=1e-6, min_sigma_px=0.1
) -> PoseResult:
    """Plain numpy twin of :func:`solve_lm` (same algorithm and decisions). Same contract."""
    X, uvc, w, Kc, R, t, code = _check_inputs(xyz_model, uv, weights, K, R0, t0, loss, scale_px)
    R, t, c = R.copy(), t.copy(), float(scale_px)
    n = X.shape[0]
    if not (np.abs(R.T @ R - np.eye(3)).max() <= _ORTHO_TOL and np.linalg.det(R) > 0):
        raise KptrackError("R0: the start rotation is not orthonormal with det +1. Pass a rotation matrix (e.g. from cv2.Rodrigues).")
    with np.errstate(invalid="ignore"):
        use = (w > 0) & np.isfinite(w) & np.isfinite(uvc).all(1) & np.isfinite(X).all(1)
    cost, nf, wsse, H, g, e = _evaluate_np(X, uvc, w, use, Kc, R, t, code, c)
    it, converged, lam = 0, False, _LAMBDA0
    cov = np.diag(np.full(6, np.inf))
    if nf >= 3:
        while it < max_iter:
            it += 1
            cand = None
            while lam <= _LAMBDA_MAX:
                dg = np.diag(H)
                A = H + np.diag(lam * np.maximum(dg, 1e-9 * dg.max() + 1e-300))
                try:
                    L = np.linalg.cholesky(A)
                except np.linalg.LinAlgError:
                    lam *= 10.0
                    continue
                d = np.linalg.solve(L.T, np.linalg.solve(L, -g))
                dR = _so3_exp_np(d[:3])
                Rc, tc = dR @ R, dR @ t + d[3:]
                cand = _evaluate_np(X, uvc, w, use, Kc, Rc, tc, code, c)
                if cand[1] > nf or (cand[1] == nf and cand[0] < cost):
                    break
                cand = None
                lam *= 10.0
            if cand is None:
                converged = True
                break
            R, t = Rc, tc
            cost, nf, wsse, H, g, e = cand
            lam = max(lam * 0.1, _LAMBDA_MIN)
            if np.linalg.norm(d[:3]) < tol and np.linalg.norm(d[3:]) < tol * max(np.linalg.norm(t), 1.0):
                converged = True
                break
        R = 0.5 * R @ (3.0 * np.eye(3) - R.T @ R)
        try:
            np.linalg.cholesky(H)
            sigma2 = max(wsse / max(2 * nf - 6, 1), min_sigma_px**2)
            cov = sigma2 * np.linalg.inv(H)
            cov = 0.5 * (cov + cov.T)
        except np.linalg.LinAlgError:
            pass
    inl = e < INLIER_FACTOR * c
    sw = float(w[inl].sum())
    rms = math.sqrt(float(np.sum(w[inl] * e[inl] ** 2)) / sw) if sw > 0 else math.inf
    return PoseResult(R, t, rms, int(inl.sum()), inl, cov, it, converged)


# --------------------------------------------------------------------------- cold start
def solve_pnp_ransac(
    xyz_model: np.ndarray,
    uv: np.ndarray,
    weights: np.ndarray,
    K: np.ndarray,
    *,
    min_conf: float = 0.3,
    reproj_px: float = 5.0,
    iters: int = 100,
    seed: int = 0,
    loss: str = "huber",
    scale_px: float = 3.0,
) -> PoseResult | None:
    """Cold-start pose: SQPnP inside OpenCV's RANSAC on the confident keypoints, then robust LM.

    xyz_model: (K, 3) mm; uv: (K, 2) ideal pixels; weights: (K,) confidences; K: (3, 3).
    Keypoints with a finite uv and weight >= min_conf enter RANSAC (reprojection threshold
    reproj_px, iters iterations; ``seed`` seeds OpenCV's global RNG, so the result is repeatable).
    The LM refine then uses the RANSAC inliers with their confidences (the others get weight 0).
    Returns None with fewer than 4 such keypoints or when OpenCV finds no pose.
    """
    import cv2

    X = np.asarray(xyz_model, dtype=np.float64)
    uvc = np.asarray(uv, dtype=np.float64)
    w = np.asarray(weights, dtype=np.float64)
    if X.ndim != 2 or X.shape[1] != 3 or uvc.shape != (X.shape[0], 2) or w.shape != (X.shape[0],):
        raise KptrackError(
            f"xyz_model/uv/weights: expected (K, 3), (K, 2), (K,), got {X.shape}, {uvc.shape}, {w.shape}. Pass one row per keypoint."
        )
    Kc = _as_f64(K, "K", (3, 3))
    with np.errstate(invalid="ignore"):
        sel = np.isfinite(X).all(1) & np.isfinite(uvc).all(1) & np.isfinite(w) & (w >= min_conf)
    idx = np.flatnonzero(sel)
    if idx.size < 4:
        return None
    cv2.setRNGSeed(int(seed))
    try:
        ok, rvec, tvec, inliers = cv2.solvePnPRansac(
            X[idx], uvc[idx], Kc, None, iterationsCount=int(iters), reprojectionError=float(reproj_px),
            confidence=0.999, flags=cv2.SOLVEPNP_SQPNP,
        )
    except cv2.error:
        return None
    if not ok or inliers is None or len(inliers) < 4 or not np.all(np.isfinite(tvec)):
        return None
    R0, _ = cv2.Rodrigues(rvec)
    w_lm = np.zeros_like(w)
    keep = idx[np.asarray(inliers).ravel()]
    w_lm[keep] = w[keep]
    return solve_lm(X, uvc, w_lm, Kc, R0, tvec.ravel(), loss=loss, scale_px=scale_px)


def solve_pose(
    xyz_model: np.ndarray,
    uv: np.ndarray,
    weights: np.ndarray,
    K: np.ndarray,
    R0: np.ndarray | None = None,
    t0: np.ndarray | None = None,
    **kwargs,
) -> PoseResult | None:
    """Warm start (:func:`solve_lm` from R0, t0) when R0 is given, else cold start
    (:func:`solve_pnp_ransac`). kwargs go to the chosen solver. Shapes as in :func:`solve_lm`."""
    if R0 is not None:
        if t0 is None:
            raise KptrackError("t0: a warm start needs both R0 and t0. Pass the previous pose's translation too.")
        return solve_lm(xyz_model, uv, weights, K, R0, t0, **kwargs)
    return solve_pnp_ransac(xyz_model, uv, weights, K, **kwargs)
