"""The numpy reference twin of :func:`tracker.pipeline.solve_lm.solve_lm`: the same robust LM,
step by step in plain numpy, slow and easy to read. A test holds the two equal."""

from __future__ import annotations

import math

import numpy as np

from tracker.errors import KptrackError
from tracker.pipeline.pose_result import INLIER_FACTOR, Z_MIN_MM, PoseResult, _check_inputs
from tracker.pipeline.solve_lm import _LAMBDA0, _LAMBDA_MAX, _LAMBDA_MIN, _ORTHO_TOL


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
