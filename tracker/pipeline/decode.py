"""Subpixel keypoints from heatmaps: DARK decoding (numba) with a numpy reference twin.

Method: Zhang, Zhu, Dai, Ye, Zhu, "Distribution-Aware Coordinate Representation for Human Pose
Estimation" (DARK), CVPR 2020. Around the argmax of each heatmap, the (optionally blurred)
heatmap is taken to be a Gaussian, so its logarithm is a quadratic; one Newton/Taylor step on
the log, ``offset = -H^-1 g`` with the gradient ``g`` and Hessian ``H`` from central
differences at the argmax, gives the mode to subpixel precision. A sampled Gaussian's log is
exactly quadratic, so on clean targets the step is exact up to the blur's distortion.

DARK's "distribution modulation" blurs the heatmap with a Gaussian first (to smooth a network's
multi-peak output) and rescales it to its old maximum; the rescale only adds a constant to the
log, which no derivative sees, so it is skipped here. Only the 3x3 blurred values around the
peak enter the step, so the blur is evaluated on that small window alone, not over the whole
map. Where that window would reach past the map's edge the step uses the raw map instead:
every border rule (reflect, replicate, normalised) biased the step by 0.2-0.45 cell on clean
Gaussians there, while the raw log is exact.

Where the step is not trustworthy (peak on the map border, Hessian of the log not negative
definite, or a step longer than one cell) the classic quarter-cell shift toward the higher
neighbour is used per axis (Newell et al., stacked hourglass, and the SimpleBaselines decoder).

Coordinates: ``xy[k] = (x, y)`` in heatmap cells, x = column, y = row, cell centres at integers
(the UDP convention of :mod:`tracker.geometry.crop`). The confidence is the raw peak value (before any
blur). A heatmap that holds a non-finite value, or whose maximum is <= 0, gives ``conf = 0``
and ``xy = NaN``; the pose solver ignores such keypoints.

The argmax scan over K x H x W values is the main cost. The numba kernel scans the float32
values as their int32 bit patterns: for positive floats the bit patterns order like the values
(and every negative float is a negative int), so an integer max finds the float max whenever it
is > 0, and ``bits & 0x7fffffff >= 0x7f800000`` flags inf/NaN. Integer max reductions
vectorise (AVX2) without fast-math, which a float argmax with NaN semantics would need.
"""

from __future__ import annotations

import functools
import math

import numpy as np
from numba import njit

from tracker.geometry.crop import HEATMAP_SIZE, INPUT_SIZE, heatmap_to_frame
from tracker.errors import KptrackError

__all__ = [
    "decode_dark",
    "decode_dark_ref",
    "decode_argmax",
    "decode_to_frame",
    "blur_kernel",
]

#: Values are clamped to this before the log, so zero/negative cells do not give -inf.
LOG_EPS = 1e-10
#: Longest Taylor step (cells, per axis) that is accepted; longer ones mean the peak is not
#: locally Gaussian and the quarter-cell fallback is used.
MAX_STEP = 1.0

_ABS_MASK = np.int32(0x7FFFFFFF)
_EXP_ALL_ONES = np.int32(0x7F800000)  # any |bits| >= this is inf or NaN
_CHUNK = 256  # argmax scan: max per chunk (vectorised), then search only the best chunk


@functools.lru_cache(maxsize=8)
def blur_kernel(ksize: int) -> np.ndarray:
    """1-D Gaussian blur kernel of odd size ``ksize`` (sigma by OpenCV's rule
    ``0.3 * ((ksize - 1) / 2 - 1) + 0.8``), normalised to sum 1. ``ksize = 0`` or 1 -> [1.0].

    Returns (ksize,) float64, read-only.
    """
    if ksize <= 1:
        g = np.ones(1, dtype=np.float64)
    else:
        sigma = 0.3 * ((ksize - 1) * 0.5 - 1.0) + 0.8
        r = ksize // 2
        x = np.arange(-r, r + 1, dtype=np.float64)
        g = np.exp(-(x * x) / (2.0 * sigma * sigma))
        g /= g.sum()
    g.setflags(write=False)
    return g


def _check_heatmaps(heatmaps, blur_ksize: int) -> np.ndarray:
    """Validate and return a C-contiguous float32 (K, H, W) array (no copy when already one)."""
    h = heatmaps
    if not (type(h) is np.ndarray and h.dtype == np.float32 and h.flags.c_contiguous):
        try:
            h = np.ascontiguousarray(h, dtype=np.float32)
        except (TypeError, ValueError) as e:
            raise KptrackError(f"heatmaps: cannot read as a float32 array ({e}). Pass a (K, H, W) float32 array.") from None
    if h.ndim != 3 or h.shape[1] < 1 or h.shape[2] < 1:
        raise KptrackError(f"heatmaps: expected a (K, H, W) float32 array, got shape {h.shape}. Pass one heatmap per keypoint.")
    if not (blur_ksize == 0 or (blur_ksize >= 1 and blur_ksize % 2 == 1)):
        raise KptrackError(f"blur_ksize: must be 0 (no blur) or an odd size >= 1, got {blur_ksize}. Use 3 or 5.")
    return h


# --------------------------------------------------------------------------- numba kernels
@njit(cache=True, nogil=True)
def _argmax_bits(bits, n):
    """Argmax of one flattened heatmap given as int32 bit patterns (n,).

    Returns (index, ok): ok False when the map holds inf/NaN or its maximum is <= 0.
    Ties resolve to the first index, as np.argmax.
    """
    best = np.int32(-2147483648)
    best_c = 0
    worst = np.int32(0)
    for c0 in range(0, n, _CHUNK):
        c1 = min(c0 + _CHUNK, n)
        m = np.int32(-2147483648)
        a = np.int32(0)
        blk = bits[c0:c1]
        for i in range(blk.shape[0]):
            # max() on int32 (not if/assign, and the & cast back to int32) and a 0-based index
            # (no negative-index wraparound) keep this a pair of vectorised integer reductions
            b = blk[i]
            m = max(m, b)
            a = max(a, np.int32(b & _ABS_MASK))
        if m > best:
            best = m
            best_c = c0
        worst = max(worst, a)
    if worst >= _EXP_ALL_ONES or best <= 0:
        return -1, False
    c1 = min(best_c + _CHUNK, n)
    for i in range(best_c, c1):
        if bits[i] == best:
            return i, True
    return -1, False  # unreachable


@njit(cache=True, nogil=True)
def _dark_kernel(heatmaps, g, log_eps, max_step):
    K, H, W = heatmaps.shape
    n = H * W
    flat = heatmaps.reshape((K, n))
    bits = flat.view(np.int32)
    xy = np.empty((K, 2), dtype=np.float64)
    conf = np.zeros(K, dtype=np.float64)
    r = g.shape[0] // 2
    rows = 3 + 2 * r
    tmp = np.empty((rows, 3), dtype=np.float64)  # rows blurred horizontally at the 3 columns
    lg = np.empty((3, 3), dtype=np.float64)  # log of the blurred 3x3 window
    for k in range(K):
        idx, ok = _argmax_bits(bits[k], n)
        if not ok:
            xy[k, 0] = np.nan
            xy[k, 1] = np.nan
            continue
        py = idx // W
        px = idx - py * W
        conf[k] = flat[k, idx]
        hm = heatmaps[k]
        ox = 0.0
        oy = 0.0
        taylor = px >= 1 and px <= W - 2 and py >= 1 and py <= H - 2
        if taylor:
            if r > 0 and px - 1 - r >= 0 and px + 1 + r <= W - 1 and py - 1 - r >= 0 and py + 1 + r <= H - 1:
                # separable blur, only on the 3x3 window around the peak
                for a in range(rows):
                    for c in range(3):
                        s = 0.0
                        for j in range(2 * r + 1):
                            s += g[j] * hm[py - 1 - r + a, px - 1 + c - r + j]
                        tmp[a, c] = s
                for a in range(3):
                    for c in range(3):
                        s = 0.0
                        for i in range(2 * r + 1):
                            s += g[i] * tmp[a + i, c]
                        lg[a, c] = math.log(max(s, log_eps))
            else:
                # the blur window would leave the map: any border rule biases the step by up to
                # ~0.4 cell there, while the raw map's log is exact for a Gaussian peak
                for a in range(3):
                    for c in range(3):
                        lg[a, c] = math.log(max(np.float64(hm[py - 1 + a, px - 1 + c]), log_eps))
            dx = 0.5 * (lg[1, 2] - lg[1, 0])
            dy = 0.5 * (lg[2, 1] - lg[0, 1])
            dxx = lg[1, 2] - 2.0 * lg[1, 1] + lg[1, 0]
            dyy = lg[2, 1] - 2.0 * lg[1, 1] + lg[0, 1]
            dxy = 0.25 * (lg[2, 2] - lg[2, 0] - lg[0, 2] + lg[0, 0])
            det = dxx * dyy - dxy * dxy
            if dxx < 0.0 and det > 0.0:
                # offset = -H^-1 g, H = [[dxx, dxy], [dxy, dyy]]
                ox = -(dyy * dx - dxy * dy) / det
                oy = -(dxx * dy - dxy * dx) / det
                if not (abs(ox) <= max_step and abs(oy) <= max_step):
                    taylor = False
            else:
                taylor = False
        if not taylor:
            ox = 0.0
            oy = 0.0
            if px >= 1 and px <= W - 2:
                d = hm[py, px + 1] - hm[py, px - 1]
                if d > 0:
                    ox = 0.25
                elif d < 0:
                    ox = -0.25
            if py >= 1 and py <= H - 2:
                d = hm[py + 1, px] - hm[py - 1, px]
                if d > 0:
                    oy = 0.25
                elif d < 0:
                    oy = -0.25
        xy[k, 0] = px + ox
        xy[k, 1] = py + oy
    return xy, conf


# --------------------------------------------------------------------------- public API
def decode_dark(heatmaps: np.ndarray, blur_ksize: int = 3) -> tuple[np.ndarray, np.ndarray]:
    """DARK subpixel decoding of K heatmaps (numba).

    heatmaps: (K, H, W) float32 (other dtypes are converted). blur_ksize: odd Gaussian blur size
    for DARK's distribution modulation, 0 (or 1) disables it.
    Returns ``xy: (K, 2) float64`` heatmap cells (x = column, y = row; NaN for an invalid map)
    and ``conf: (K,) float64`` raw peak values (0 for an invalid map: non-finite or max <= 0).
    """
    h = _check_heatmaps(heatmaps, blur_ksize)
    return _dark_kernel(h, blur_kernel(blur_ksize), LOG_EPS, MAX_STEP)


def decode_dark_ref(heatmaps: np.ndarray, blur_ksize: int = 3) -> tuple[np.ndarray, np.ndarray]:
    """Plain numpy twin of :func:`decode_dark` (same maths; blurs the whole map). Same contract."""
    h = _check_heatmaps(heatmaps, blur_ksize)
    K, H, W = h.shape
    g = blur_kernel(blur_ksize)
    r = g.shape[0] // 2
    xy = np.full((K, 2), np.nan)
    conf = np.zeros(K)
    for k in range(K):
        hm = h[k]
        if not np.isfinite(hm).all():
            continue
        idx = int(np.argmax(hm))
        py, px = divmod(idx, W)
        peak = float(hm[py, px])
        if not peak > 0:
            continue
        conf[k] = peak
        off = None
        if 1 <= px <= W - 2 and 1 <= py <= H - 2:
            hd = hm.astype(np.float64)
            if r > 0 and r + 1 <= px <= W - 2 - r and r + 1 <= py <= H - 2 - r:
                # blur the whole map (valid part; no border rule is needed for an interior window)
                hd = sum(g[j] * hd[:, j : W - 2 * r + j] for j in range(2 * r + 1))  # horizontal
                hd = sum(g[i] * hd[i : H - 2 * r + i, :] for i in range(2 * r + 1))  # vertical
                hd = np.pad(hd, r)  # back to map indexing; the pad is never read
            lg = np.log(np.maximum(hd[py - 1 : py + 2, px - 1 : px + 2], LOG_EPS))
            grad = np.array([0.5 * (lg[1, 2] - lg[1, 0]), 0.5 * (lg[2, 1] - lg[0, 1])])
            dxy = 0.25 * (lg[2, 2] - lg[2, 0] - lg[0, 2] + lg[0, 0])
            hess = np.array([[lg[1, 2] - 2 * lg[1, 1] + lg[1, 0], dxy], [dxy, lg[2, 1] - 2 * lg[1, 1] + lg[0, 1]]])
            if hess[0, 0] < 0 and np.linalg.det(hess) > 0:
                step = -np.linalg.solve(hess, grad)
                if np.all(np.abs(step) <= MAX_STEP):
                    off = step
        if off is None:
            off = np.zeros(2)
            if 1 <= px <= W - 2:
                off[0] = 0.25 * np.sign(float(hm[py, px + 1]) - float(hm[py, px - 1]))
            if 1 <= py <= H - 2:
                off[1] = 0.25 * np.sign(float(hm[py + 1, px]) - float(hm[py - 1, px]))
        xy[k] = (px + off[0], py + off[1])
    return xy, conf


def decode_argmax(heatmaps: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Plain argmax decoding (numpy), the integer-cell baseline. Same contract as :func:`decode_dark`."""
    h = _check_heatmaps(heatmaps, 0)
    K, H, W = h.shape
    flat = h.reshape(K, H * W)
    idx = np.argmax(flat, axis=1)
    conf = flat[np.arange(K), idx].astype(np.float64)
    ok = np.isfinite(flat).all(axis=1) & (conf > 0)
    xy = np.stack([idx % W, idx // W], axis=1).astype(np.float64)
    xy[~ok] = np.nan
    conf[~ok] = 0.0
    return xy, conf


def decode_to_frame(
    heatmaps: np.ndarray,
    A: np.ndarray,
    input_size: int = INPUT_SIZE,
    heatmap_size: int = HEATMAP_SIZE,
    blur_ksize: int = 3,
) -> tuple[np.ndarray, np.ndarray]:
    """DARK-decode heatmaps of a crop and map the keypoints back to frame pixels.

    heatmaps: (K, Hm, Hm) float32 from the crop made by ``A: (2, 3) float64`` (frame px -> crop px,
    see :mod:`tracker.geometry.crop`). Returns ``uv: (K, 2) float64`` frame pixels (NaN for invalid maps)
    and ``conf: (K,) float64``.
    """
    xy, conf = decode_dark(heatmaps, blur_ksize)
    return heatmap_to_frame(xy, A, input_size, heatmap_size), conf
