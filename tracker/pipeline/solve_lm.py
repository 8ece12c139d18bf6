"""The warm start: a robust, confidence-weighted Levenberg-Marquardt on SE(3), in numba.

Its numpy twin is :mod:`tracker.pipeline.solve_lm_ref` (a test holds them equal); the cold start
(SQPnP in RANSAC) is :mod:`tracker.pipeline.solve_ransac`.

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

import numpy as np
from numba import njit

from tracker.errors import KptrackError
from tracker.pipeline.pose_result import INLIER_FACTOR, Z_MIN_MM, PoseResult, _check_inputs

_LAMBDA0 = 1e-6  # Marquardt-scaled; warm starts are near the optimum, failed steps raise it
_LAMBDA_MAX = 1e12
_LAMBDA_MIN = 1e-12
_ORTHO_TOL = 1e-4  # max |R0^T R0 - I| accepted for a warm start


# =========================================================================== numba core
@njit(cache=True, nogil=True)
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


@njit(cache=True, nogil=True)
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


@njit(cache=True, nogil=True)
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


@njit(cache=True, nogil=True)
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


@njit(cache=True, nogil=True)
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
