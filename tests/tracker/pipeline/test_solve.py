"""tracker/pipeline/solve_lm.py, solve_lm_ref.py, solve_ransac.py: robust LM on SE(3) (numba vs numpy twin, exact recovery, outliers, warm vs
cold start, degenerate inputs, covariance) and the SQPnP-RANSAC cold start."""

from __future__ import annotations

import math

import numpy as np
import pytest

from tracker.errors import KptrackError
from tracker.geometry import project, project_jacobian, random_rotation, rotation_error_deg, so3_exp
from tracker.pipeline.pose_result import LOSSES, PoseResult
from tracker.pipeline.solve_lm import _evaluate, solve_lm
from tracker.pipeline.solve_lm_ref import solve_lm_ref
from tracker.pipeline.solve_ransac import peak_hypothesis, solve_pnp_ransac, solve_pose, weighted_triples

KCAM = np.array([[600.0, 0.0, 319.5], [0.0, 610.0, 239.5], [0.0, 0.0, 1.0]])


def scene(rng, n=8, angle_deg=None, noise_px=0.0, depth=450.0):
    """n model keypoints (mm), a true pose with the object in view, their projections (px)."""
    X = rng.uniform(-60.0, 60.0, (n, 3))
    if angle_deg is None:
        R = random_rotation(rng)
    else:
        axis = rng.normal(size=3)
        R = so3_exp(axis / np.linalg.norm(axis) * math.radians(angle_deg))
    t = np.array([rng.uniform(-40, 40), rng.uniform(-30, 30), depth])
    uv = project(X, R, t, KCAM) + rng.normal(0.0, noise_px, (n, 2)) if noise_px else project(X, R, t, KCAM)
    return X, R, t, uv


def perturb(rng, R, t, deg, mm):
    axis = rng.normal(size=3)
    dR = so3_exp(axis / np.linalg.norm(axis) * math.radians(deg))
    d = rng.normal(size=3)
    return dR @ R, t + d / np.linalg.norm(d) * mm


def t_err(a, b):
    return float(np.linalg.norm(np.asarray(a) - np.asarray(b)))


@pytest.mark.parametrize("loss", ["l2", "huber", "cauchy"])
def test_exact_recovery_from_a_perturbed_start(loss):
    rng = np.random.default_rng(1)
    for _ in range(5):
        X, R, t, uv = scene(rng)
        R0, t0 = perturb(rng, R, t, 8.0, 20.0)
        res = solve_lm(X, uv, np.ones(len(X)), KCAM, R0, t0, loss=loss)
        assert isinstance(res, PoseResult) and res.converged
        assert rotation_error_deg(res.R_m2c, R) < 1e-6
        assert t_err(res.t_m2c, t) < 1e-6
        assert res.rms < 1e-6 and res.n_inliers == len(X) and res.inlier_mask.all()
        assert abs(np.linalg.det(res.R_m2c) - 1.0) < 1e-12
        np.testing.assert_allclose(res.R_m2c.T @ res.R_m2c, np.eye(3), atol=1e-12)


@pytest.mark.parametrize("loss", ["l2", "huber", "cauchy"])
def test_numba_core_matches_numpy_reference(loss):
    rng = np.random.default_rng(2)
    for trial in range(6):
        X, R, t, uv = scene(rng, n=int(rng.integers(5, 17)), noise_px=1.0)
        w = rng.uniform(0.2, 1.0, len(X))
        if trial % 2:
            uv[0] += 60.0  # a gross outlier
            w[1] = 0.0  # an ignored point
        R0, t0 = perturb(rng, R, t, 5.0, 15.0)
        a = solve_lm(X, uv, w, KCAM, R0, t0, loss=loss)
        b = solve_lm_ref(X, uv, w, KCAM, R0, t0, loss=loss)
        assert a.iterations == b.iterations and a.converged == b.converged
        np.testing.assert_allclose(a.R_m2c, b.R_m2c, atol=1e-9, rtol=0)
        np.testing.assert_allclose(a.t_m2c, b.t_m2c, atol=1e-7, rtol=0)
        np.testing.assert_array_equal(a.inlier_mask, b.inlier_mask)
        assert a.n_inliers == b.n_inliers and a.rms == pytest.approx(b.rms, rel=1e-7)
        np.testing.assert_allclose(a.cov, b.cov, rtol=1e-6, atol=1e-14)


def test_normal_equations_use_the_geometry_modules_left_jacobian():
    # H = J^T W J and g = J^T W r from the numba kernel vs tracker.geometry.project_jacobian (l2 loss)
    rng = np.random.default_rng(3)
    X, R, t, uv = scene(rng, n=7, noise_px=2.0)
    w = rng.uniform(0.5, 1.0, 7)
    H, g, e, J2 = np.empty((6, 6)), np.empty(6), np.empty(7), np.empty((2, 6))
    cost, nf, wsse = _evaluate(X, uv, w, np.ones(7, bool), KCAM, R, t, LOSSES["l2"], 3.0, True, H, g, e, J2)
    J = project_jacobian(X, R, t, KCAM)
    r = project(X, R, t, KCAM) - uv
    np.testing.assert_allclose(H, np.einsum("n,nia,nib->ab", w, J, J), rtol=1e-10)
    np.testing.assert_allclose(g, np.einsum("n,nia,ni->a", w, J, r), rtol=1e-10, atol=1e-9)
    assert nf == 7 and cost == pytest.approx(0.5 * np.sum(w * np.sum(r * r, 1)), rel=1e-12)
    np.testing.assert_allclose(e, np.linalg.norm(r, axis=1), rtol=1e-12)


def test_gross_outliers_robust_losses_recover_l2_does_not():
    # 2 of 8 keypoints moved 40-80 px per axis, 0.5 px noise on the rest, warm start 3 deg / 10 mm off
    rng = np.random.default_rng(4)
    errs = {k: [] for k in LOSSES}
    for _ in range(8):
        X, R, t, uv = scene(rng, n=8, noise_px=0.5)
        bad = rng.choice(8, 2, replace=False)
        uv[bad] += rng.uniform(40.0, 80.0, (2, 2)) * rng.choice([-1, 1], (2, 2))
        R0, t0 = perturb(rng, R, t, 3.0, 10.0)
        for loss in LOSSES:
            res = solve_lm(X, uv, np.ones(8), KCAM, R0, t0, loss=loss, scale_px=2.0)
            errs[loss].append((rotation_error_deg(res.R_m2c, R), t_err(res.t_m2c, t)))
            if loss == "cauchy":
                assert not res.inlier_mask[bad].any() and res.n_inliers == 6
    rot = {k: np.array(v)[:, 0] for k, v in errs.items()}
    tra = {k: np.array(v)[:, 1] for k, v in errs.items()}
    # Cauchy (redescending) rejects them every time
    assert rot["cauchy"].max() < 1.0 and tra["cauchy"].max() < 5.0
    # Huber (bounded influence, still convex) recovers in most trials; with 25 % gross outliers
    # on 8 points it can settle in a wrong basin, which is why the tracker can choose cauchy
    assert np.median(rot["huber"]) < 1.0 and np.median(tra["huber"]) < 10.0
    assert np.mean(rot["huber"] < 1.0) >= 0.6
    # plain least squares is pulled off every time
    assert rot["l2"].min() > 1.0
    assert np.median(rot["l2"]) > 5 * np.median(rot["huber"]) and np.median(rot["l2"]) > 5 * np.median(rot["cauchy"])


def test_warm_start_needs_fewer_iterations_than_cold_start():
    # cold start = what a tracker has without history: identity rotation, the object's centre
    # placed on the ray through the keypoints' 2D centroid at the right depth
    rng = np.random.default_rng(5)
    for _ in range(5):
        X, R, t, uv = scene(rng, angle_deg=45.0, noise_px=0.3)
        c = uv.mean(0)
        t_cold = np.linalg.solve(KCAM, [c[0], c[1], 1.0]) * t[2]
        cold = solve_lm(X, uv, np.ones(8), KCAM, np.eye(3), t_cold - X.mean(0))
        # warm = last frame's pose, ~30 fps motion: 1 degree and 3 mm
        Rw, tw = perturb(rng, R, t, 1.0, 3.0)
        warm = solve_lm(X, uv, np.ones(8), KCAM, Rw, tw)
        assert warm.converged and cold.converged
        assert rotation_error_deg(warm.R_m2c, cold.R_m2c) < 1e-4
        assert warm.iterations < cold.iterations, (warm.iterations, cold.iterations)


def test_nan_uv_and_zero_weights_are_ignored():
    rng = np.random.default_rng(6)
    X, R, t, uv = scene(rng, n=10)
    uv_bad, w = uv.copy(), np.ones(10)
    uv_bad[2] = np.nan
    uv_bad[5] = (1e6, -1e6)
    w[5] = 0.0
    uv_bad[7, 0] = np.inf
    w[8] = np.nan
    R0, t0 = perturb(rng, R, t, 5.0, 10.0)
    for fn in (solve_lm, solve_lm_ref):
        res = fn(X, uv_bad, w, KCAM, R0, t0)
        assert rotation_error_deg(res.R_m2c, R) < 1e-6 and t_err(res.t_m2c, t) < 1e-6
        assert res.n_inliers == 6 and not res.inlier_mask[[2, 5, 7, 8]].any()
        assert np.isfinite(res.cov).all()


def test_points_behind_the_camera_are_skipped():
    rng = np.random.default_rng(7)
    X, R, t, uv = scene(rng, n=8)
    # a ninth point that sits 200 mm behind the camera at the true pose
    Xb = np.vstack([X, R.T @ (np.array([0.0, 0.0, -200.0]) - t)])
    uvb = np.vstack([uv, [[320.0, 240.0]]])
    R0, t0 = perturb(rng, R, t, 3.0, 5.0)
    for fn in (solve_lm, solve_lm_ref):
        res = fn(Xb, uvb, np.ones(9), KCAM, R0, t0)
        assert rotation_error_deg(res.R_m2c, R) < 1e-6 and not res.inlier_mask[-1]
        assert res.n_inliers == 8 and np.isfinite(res.rms)


def test_fewer_than_three_usable_points_return_the_start_pose():
    rng = np.random.default_rng(8)
    X, R, t, uv = scene(rng, n=5)
    w = np.array([1.0, 1.0, 0.0, 0.0, 0.0])
    R0, t0 = perturb(rng, R, t, 2.0, 2.0)
    res = solve_lm(X, uv, w, KCAM, R0, t0)
    assert not res.converged and res.iterations == 0
    np.testing.assert_array_equal(res.R_m2c, R0)
    assert np.isinf(np.diag(res.cov)).all()
    res = solve_lm(X[:0], uv[:0], w[:0], KCAM, R0, t0)  # no points at all
    assert res.n_inliers == 0 and math.isinf(res.rms)


def test_covariance_is_symmetric_positive_definite_and_tracks_the_noise():
    rng = np.random.default_rng(9)
    X, R, t, uv_clean = scene(rng, n=12)
    sds = []
    for noise in (0.5, 2.0):
        uv = uv_clean + rng.normal(0, noise, uv_clean.shape)
        res = solve_lm(X, uv, np.ones(12), KCAM, R, t)
        cov = res.cov
        assert cov.shape == (6, 6)
        np.testing.assert_array_equal(cov, cov.T)
        assert np.linalg.eigvalsh(cov).min() > 0
        sds.append(np.sqrt(np.diag(cov)))
    assert np.all(sds[1] > sds[0])
    # a perfect fit still reports the floor, not zero
    res = solve_lm(X, uv_clean, np.ones(12), KCAM, R, t, min_sigma_px=0.1)
    assert np.linalg.eigvalsh(res.cov).min() > 0


def test_covariance_matches_the_spread_of_solutions():
    # Monte Carlo: the predicted translation-z sd is within 30% of the empirical one
    rng = np.random.default_rng(10)
    X, R, t, uv_clean = scene(rng, n=12)
    sols, covs = [], []
    for _ in range(200):
        res = solve_lm(X, uv_clean + rng.normal(0, 1.0, uv_clean.shape), np.ones(12), KCAM, R, t, loss="l2")
        sols.append(res.t_m2c[2])
        covs.append(res.cov[5, 5])
    assert 0.7 < np.std(sols) / math.sqrt(np.mean(covs)) < 1.3


def test_ransac_cold_start_with_outliers_and_low_confidence():
    rng = np.random.default_rng(11)
    for _ in range(3):
        X, R, t, uv = scene(rng, n=12, noise_px=0.5)
        uv[:3] += rng.uniform(50, 100, (3, 2))
        w = np.ones(12)
        w[3] = 0.1  # below min_conf: not used
        uv[3] = (1e5, 1e5)
        res = solve_pnp_ransac(X, uv, w, KCAM)
        assert res is not None
        assert rotation_error_deg(res.R_m2c, R) < 1.0 and t_err(res.t_m2c, t) < 10.0
        assert not res.inlier_mask[:4].any() and res.n_inliers >= 7


def test_ransac_degenerate_inputs_return_none():
    rng = np.random.default_rng(12)
    X, R, t, uv = scene(rng, n=8)
    w = np.zeros(8)
    w[:3] = 1.0
    assert solve_pnp_ransac(X, uv, w, KCAM) is None  # 3 confident points
    uv_nan = uv.copy()
    uv_nan[3:] = np.nan
    assert solve_pnp_ransac(X, uv_nan, np.ones(8), KCAM) is None
    assert solve_pnp_ransac(X[:0], uv[:0], w[:0], KCAM) is None
    # all points identical: OpenCV cannot solve; must not raise
    res = solve_pnp_ransac(np.zeros((6, 3)), np.full((6, 2), 100.0), np.ones(6), KCAM)
    assert res is None or isinstance(res, PoseResult)


def test_peak_hypothesis_finds_the_pose_when_most_peaks_name_the_wrong_keypoint_first():
    """Five of eight peaks carry their true keypoint only as their second candidate, behind a
    stronger wrong one: the strongest labels fit no pose, the hypotheses scored by one-to-one
    label support find it."""
    rng = np.random.default_rng(21)
    for _ in range(3):
        X, R, t, uv = scene(rng, n=8, noise_px=0.3)
        pi, ki, w = [], [], []
        for p in range(8):
            wrong = int(rng.choice([k for k in range(8) if k != p]))
            first, second = (wrong, p) if p < 5 else (p, wrong)
            pi += [p, p]
            ki += [first, second]
            w += [0.9, 0.6]
        ki = np.array(ki)
        R_h, t_h = peak_hypothesis(X, uv, (np.array(pi), ki, np.array(w)), KCAM, gate_px=4.0, iters=300)
        assert rotation_error_deg(R_h, R) < 2.0 and t_err(t_h, t) < 10.0
        res = solve_pnp_ransac(X[ki[::2]], uv, np.full(8, 0.9), KCAM)  # the strongest labels alone
        assert res is None or rotation_error_deg(res.R_m2c, R) > 5.0 or res.n_inliers < 5


def test_peak_hypothesis_needs_three_distinct_peaks_and_enough_matches():
    rng = np.random.default_rng(22)
    X, R, t, uv = scene(rng, n=8)
    two_peaks = (np.array([0, 0, 1]), np.array([0, 1, 1]), np.ones(3))
    assert peak_hypothesis(X, uv, two_peaks, KCAM, gate_px=4.0) is None
    right = (np.arange(8), np.arange(8), np.ones(8))
    R_h, t_h = peak_hypothesis(X, uv, right, KCAM, gate_px=4.0)
    assert rotation_error_deg(R_h, R) < 0.5
    # nothing explains more keypoints than there are: asking for 9 matches gives none
    assert peak_hypothesis(X, uv, right, KCAM, gate_px=4.0, min_matched=9) is None


def _peak_hypothesis_one_draw_at_a_time(X, uv, pairs, K, gate_px, iters, min_matched=4, seed=0):
    """The straightforward loop: draw, solve, project and score each triple in turn."""
    import cv2

    pi, ki, w = (np.asarray(a) for a in pairs)
    V = np.zeros((len(uv), len(X)))
    V[pi, ki] = w
    rng = np.random.default_rng(seed)
    best, best_key = None, 0.0
    for _ in range(iters):
        s = rng.choice(len(pi), 3, replace=False, p=w / w.sum())
        if len(set(pi[s])) < 3 or len(set(ki[s])) < 3:
            continue
        _, rvecs, tvecs = cv2.solveP3P(X[ki[s]], uv[pi[s]], K, None, flags=cv2.SOLVEPNP_P3P)
        for rv, tv in zip(rvecs, tvecs):
            R, t = cv2.Rodrigues(rv)[0], tv.ravel()
            cam = X @ R.T + t
            if np.any(cam[:, 2] <= 1e-3):
                continue
            proj = cam[:, :2] / cam[:, 2:] * np.diag(K)[:2] + K[:2, 2]
            close = np.linalg.norm(uv[:, None] - proj[None], axis=2) <= gate_px
            if min(close.any(0).sum(), close.any(1).sum()) < min_matched:
                continue
            cand, used_p, used_k, support = np.where(close, V, 0.0), set(), set(), 0.0
            for flat in np.argsort(-cand, axis=None, kind="stable"):
                a, b = divmod(int(flat), len(X))
                if cand[a, b] > 0 and a not in used_p and b not in used_k:
                    used_p.add(a)
                    used_k.add(b)
                    support += cand[a, b]
            if support > best_key + 1e-9:
                best, best_key = (R, t), support
    return best


def test_peak_hypothesis_picks_what_the_one_draw_at_a_time_loop_picks():
    """Solving each distinct triple once and skipping poses that cannot win must not change the
    answer: the same pose as the plain loop over the same draws, on noisy multi-labelled peaks."""
    rng = np.random.default_rng(23)
    for trial in range(6):
        X, R, t, uv = scene(rng, n=8, noise_px=1.0)
        pi = np.repeat(np.arange(8), 3)
        ki = np.concatenate([rng.permutation(8)[:3] if rng.random() < 0.5 else [p, *rng.permutation(8)[:2]] for p in range(8)])
        _, keep = np.unique(pi * 8 + ki, return_index=True)  # one entry per (peak, keypoint)
        pairs = (pi[keep], ki[keep], rng.uniform(0.2, 1.0, len(keep)))
        got = peak_hypothesis(X, uv, pairs, KCAM, gate_px=6.0, iters=200, seed=trial)
        want = _peak_hypothesis_one_draw_at_a_time(X, uv, pairs, KCAM, 6.0, 200, seed=trial)
        assert (got is None) == (want is None)
        if got is not None:
            assert rotation_error_deg(got[0], want[0]) < 1e-6 and t_err(got[1], want[1]) < 1e-6


def test_weighted_triples_are_the_draws_of_numpy_choice():
    """The vectorised draws are the same as drawing one triple at a time (numpy's algorithm:
    three by the weights, repeats redrawn without the indices found), on skewed weights where
    repeats are common and the spare random numbers run out."""
    for trial in range(40):
        r = np.random.default_rng(trial)
        n = int(r.integers(3, 20))
        w = r.uniform(0.01, 1.0, n) ** 4
        p = w / w.sum()
        a, b = np.random.default_rng(trial + 99), np.random.default_rng(trial + 99)
        want = np.array([a.choice(n, 3, replace=False, p=p) for _ in range(300)])
        got = weighted_triples(b, p, 300)
        assert np.array_equal(got, want), trial
        assert np.all(np.sort(got, axis=1)[:, 1:] != np.sort(got, axis=1)[:, :-1])


def test_solve_pose_dispatches_warm_and_cold():
    rng = np.random.default_rng(13)
    X, R, t, uv = scene(rng, n=9)
    cold = solve_pose(X, uv, np.ones(9), KCAM)
    R0, t0 = perturb(rng, R, t, 2.0, 4.0)
    warm = solve_pose(X, uv, np.ones(9), KCAM, R0, t0, loss="cauchy")
    for res in (cold, warm):
        assert rotation_error_deg(res.R_m2c, R) < 1e-6 and t_err(res.t_m2c, t) < 1e-5
    with pytest.raises(KptrackError, match="t0"):
        solve_pose(X, uv, np.ones(9), KCAM, R0)


def test_bad_arguments_raise_kptrack_errors():
    rng = np.random.default_rng(14)
    X, R, t, uv = scene(rng, n=6)
    w = np.ones(6)
    with pytest.raises(KptrackError, match="uv"):
        solve_lm(X, uv[:5], w, KCAM, R, t)
    with pytest.raises(KptrackError, match="loss"):
        solve_lm(X, uv, w, KCAM, R, t, loss="tukey")
    with pytest.raises(KptrackError, match="R0"):
        solve_lm(X, uv, w, KCAM, 2.0 * R, t)
    with pytest.raises(KptrackError, match="R0"):
        solve_lm_ref(X, uv, w, KCAM, -R, t)
    with pytest.raises(KptrackError, match="xyz_model"):
        solve_lm(X[:, :2], uv, w, KCAM, R, t)
    # a (3, 1) tvec and float32 / list inputs are accepted
    res = solve_lm(X.astype(np.float32), uv.tolist(), w, KCAM, R, t.reshape(3, 1))
    assert t_err(res.t_m2c, t) < 1e-3
