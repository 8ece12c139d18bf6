"""The cold start: SQPnP (Terzakis & Lourakis, ECCV 2020; OpenCV ``SOLVEPNP_SQPNP``) inside
OpenCV's RANSAC on the confident keypoints, refined by the robust LM of
:mod:`tracker.pipeline.solve_lm`; and :func:`solve_pose`, which picks warm or cold."""

from __future__ import annotations

import cv2
import numpy as np

from tracker.errors import KptrackError
from tracker.geometry import project_cam
from tracker.pipeline.pose_result import PoseResult, _as_f64
from tracker.pipeline.solve_lm import solve_lm


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


def peak_hypothesis(
    xyz_model: np.ndarray,
    peaks_uv: np.ndarray,
    pairs: tuple[np.ndarray, np.ndarray, np.ndarray],
    K: np.ndarray,
    gate_px: float,
    *,
    iters: int = 100,
    min_matched: int = 4,
    seed: int = 0,
) -> tuple[np.ndarray, np.ndarray] | None:
    """A cold-start pose from heatmap peaks that carry several candidate keypoints each.

    xyz_model: (K, 3) mm; peaks_uv: (P, 2) ideal pixels; pairs: (peak index (C,), keypoint index
    (C,), value (C,)), the candidates (:func:`tracker.pipeline.associate.peak_labels`); K: (3, 3).
    RANSAC over correspondences: ``iters`` times, three pairs with distinct peaks and distinct
    keypoints are drawn (more likely the stronger their value) and P3P (OpenCV, Kneip et al. 2011)
    gives up to four poses. Each pose in front of the camera is scored by its label support: the
    values of the candidate pairs whose peak lies within ``gate_px`` of their keypoint's
    projection, summed over a one-to-one choice of them (greedy, strongest first). So a pose must put the keypoints on
    peaks whose channels name them, not just on peaks: on a plain box many poses put 5 of 6 corners
    on peaks, and the channels tell them apart (a network may not know which corner of a face it
    sees but knows the face). Unlike RANSAC on the pairs themselves, a peak's wrong candidates
    cost nothing once one is right. Returns the best (R (3, 3), t (3,)) with at least
    ``min_matched`` keypoints on peaks, else None; ``seed`` makes it repeatable.
    """
    X = np.asarray(xyz_model, np.float64)
    uv = np.asarray(peaks_uv, np.float64)
    pi, ki, w = (np.asarray(a) for a in pairs)
    Kc = _as_f64(K, "K", (3, 3))
    ok = np.isfinite(w) & (w > 0)
    pi, ki, w = pi[ok], ki[ok], w[ok].astype(np.float64)
    if len(np.unique(pi)) < 3 or len(np.unique(ki)) < 3:
        return None
    V = np.zeros((len(uv), len(X)))
    V[pi, ki] = w  # (P, K): each peak's candidate keypoints and their values
    rng = np.random.default_rng(seed)
    prob = w / w.sum()
    draws = weighted_triples(rng, prob, int(iters))
    draws = draws[_distinct(pi[draws]) & _distinct(ki[draws])]
    # a triple drawn again gives the same poses and scores: solve each once, in the order first drawn
    _, first = np.unique(np.sort(draws, axis=1), axis=0, return_index=True)
    poses = []
    for s in draws[np.sort(first)]:
        try:
            _, rvecs, tvecs = cv2.solveP3P(X[ki[s]], uv[pi[s]], Kc, None, flags=cv2.SOLVEPNP_P3P)
        except cv2.error:
            continue
        poses += [(cv2.Rodrigues(rv)[0], np.asarray(tv, np.float64).ravel()) for rv, tv in zip(rvecs, tvecs)]
    if not poses:
        return None
    cam = np.stack([X @ R.T + t for R, t in poses])  # (H, K, 3)
    front = np.all(np.isfinite(cam), axis=(1, 2)) & np.all(cam[..., 2] > 1e-3, axis=1)
    d = uv[None, :, None] - project_cam(cam.reshape(-1, 3), Kc).reshape(len(poses), 1, len(X), 2)
    close = np.einsum("hpkc,hpkc->hpk", d, d) <= gate_px * gate_px  # (H, P, K): peak near keypoint's projection
    n_matched = np.minimum(np.count_nonzero(close.any(1), axis=1), np.count_nonzero(close.any(2), axis=1))
    cand = np.where(close, V[None], 0.0)
    # no greedy choice can sum more than every keypoint's best candidate: skip what cannot win
    bound = cand.max(axis=1).sum(axis=1)
    best, best_key = None, 0.0
    for h in np.flatnonzero(front & (n_matched >= min_matched)):
        if bound[h] + 1e-9 <= best_key:
            continue
        support = _one_to_one_support(cand[h])
        if support > best_key:
            best, best_key = poses[h], support
    return best


def weighted_triples(rng: np.random.Generator, p: np.ndarray, n: int) -> np.ndarray:
    """``n`` draws of three distinct indices by the weights ``p`` (sum 1, at least three > 0), (n, 3).

    Each draw takes three uniform numbers through the weights' CDF, keeps the distinct indices in
    the order drawn, and draws the missing ones again from the weights without those found. It is
    the algorithm of numpy's ``Generator.choice(len(p), 3, replace=False, p=p)``, and consumes the
    generator's stream the same way, so ``n`` calls of that give the same triples; here every
    number of the stream is looked up once, and only draws with a repeat take more work."""
    cdf0 = np.cumsum(p)
    cdf0 /= cdf0[-1]
    buf, idx, pos = np.empty(0), [], 0  # the stream's numbers, each one's index under cdf0, the next unread

    def take(k: int) -> int:
        """Where the next k numbers start (drawing on from the same stream when the buffer runs out)."""
        nonlocal buf, idx, pos
        if pos + k > len(buf):
            more = rng.random(3 * n + 64)
            buf, idx, pos = np.concatenate([buf[pos:], more]), idx[pos:] + np.searchsorted(cdf0, more, side="right").tolist(), 0
        pos += k
        return pos - k

    out = np.empty((n, 3), np.intp)
    for i in range(n):
        at = take(3)
        a, b, c = idx[at:at + 3]
        if a != b and a != c and b != c:
            out[i] = a, b, c
            continue
        found = list(dict.fromkeys((a, b, c)))  # a repeat: keep the distinct ones, redraw the rest without them
        q = np.array(p, np.float64)
        while len(found) < 3:
            q[found] = 0.0
            cdf = np.cumsum(q)
            cdf /= cdf[-1]
            k = 3 - len(found)
            at = take(k)
            found += _first_occurrences(cdf.searchsorted(buf[at:at + k], side="right"))
        out[i] = found
    return out


def _first_occurrences(a: np.ndarray) -> list[int]:
    """The distinct entries of ``a`` in the order they first occur."""
    _, at = np.unique(a, return_index=True)
    return [int(v) for v in a[np.sort(at)]]


def _distinct(a: np.ndarray) -> np.ndarray:
    """Rows of an (N, 3) array whose three entries differ."""
    return (a[:, 0] != a[:, 1]) & (a[:, 0] != a[:, 2]) & (a[:, 1] != a[:, 2])


def _one_to_one_support(V: np.ndarray) -> float:
    """Sum of a greedy one-to-one choice of the positive entries of V (P, K), largest first."""
    p_idx, k_idx = np.nonzero(V > 0)
    if len(p_idx) == 0:
        return 0.0
    vals = V[p_idx, k_idx]
    used_p, used_k, total = set(), set(), 0.0
    for i in np.argsort(-vals, kind="stable"):
        a, b = int(p_idx[i]), int(k_idx[i])
        if a not in used_p and b not in used_k:
            used_p.add(a)
            used_k.add(b)
            total += float(vals[i])
    return total
