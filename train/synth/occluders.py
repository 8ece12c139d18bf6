"""Occluders: random blob, bar and hand sprites, pasting them into an image, and how much of the
object a paste would cover.

Cut-and-paste occlusion after Dwibedi et al., "Cut, Paste and Learn: Surprisingly Easy Synthesis
for Instance Detection" (ICCV 2017). A sprite is (mask (h, w) bool, colour (h, w, 3) uint8 BGR)
and is placed by its centre in image pixels. :func:`add_occluders` places a training image's
occluders; test sequences script theirs (:mod:`train.synth.sequences`).

:func:`end_occluder` hides one end of the object instead: the part of its silhouette beyond a
cut across its longest image direction (the silhouette's principal axis), 15-50 % of its length
from the end, under a bar (across the axis, or at any angle through the end), a hand or a blob,
one in four in the object's own colour so that the occluder's edge does not show where the
object stops. A hand holding one end of a bottle or a tool, or a bar in front of it, hides
every keypoint of that end at once; where the silhouette stops is then the occluder's edge, not
the object's end, and the network has to place that end's keypoints from the rest of the object.
Randomly placed occluders hide a whole end rarely (5.5 % of the bottle's training images hide its
neck), so ``--end-occlusion F`` asks for it in a fraction F of the images.
"""

from __future__ import annotations

import math

import cv2
import numpy as np

from tracker.formats.bop_scene import mask_bbox
from train.synth.backgrounds import GRID
from train.synth.config import SynthConfig

_SKIN_RGB = ((255, 219, 172), (241, 194, 125), (224, 172, 105), (198, 134, 66), (141, 85, 36), (92, 51, 23))


def _shade_sprite(rng, mask: np.ndarray, base_bgr: np.ndarray, textured: bool) -> np.ndarray:
    h, w = mask.shape
    xs, ys = GRID(h, w)
    a = rng.uniform(0, 2 * math.pi)
    shade = 0.7 + 0.45 * (xs * math.cos(a) + ys * math.sin(a) + 1.0) * 0.5
    col = base_bgr[None, None, :] * shade[:, :, None]
    if textured:
        g = int(rng.integers(3, 9))
        n = cv2.resize(rng.random((g, g), dtype=np.float32), (w, h), interpolation=cv2.INTER_CUBIC)
        col = col * (0.75 + 0.5 * n[:, :, None])
    return np.clip(col, 0, 255).astype(np.uint8)


def occluder_sprite(rng: np.random.Generator, size_px: float, kind: str, min_radius_px: float | None = None) -> tuple[np.ndarray, np.ndarray]:
    """A random occluder about ``size_px`` across.

    kind: 'blob' (smooth random star-shaped polygon; with ``min_radius_px`` every point of its
    outline is at least that far from the centre), 'bar' (a rotated stick) or 'hand' (palm,
    four fingers and a thumb, skin-coloured or a glove). Returns (mask (h, w) bool, colour
    (h, w, 3) uint8 BGR); the shape's centre is the sprite's centre.
    """
    size_px = max(float(size_px), 4.0)
    if kind == "blob":
        nh = 4
        amps = rng.uniform(0, 1, nh)
        amps *= rng.uniform(0.1, 0.25) / max(amps.sum(), 1e-9)  # sum |a| <= 0.25
        r0 = size_px / 2.0
        if min_radius_px is not None:
            r0 = max(r0, min_radius_px / (1.0 - amps.sum()))
        S = int(math.ceil(2 * r0 * (1 + amps.sum()))) + 5
        th = np.linspace(0, 2 * math.pi, 72, endpoint=False)
        r = r0 * (1 + sum(a * np.sin((k + 2) * th + rng.uniform(0, 2 * math.pi)) for k, a in enumerate(amps)))
        c = (S - 1) / 2.0
        pts = np.stack([c + r * np.cos(th), c + r * np.sin(th)], 1)
        m = np.zeros((S, S), np.uint8)
        cv2.fillPoly(m, [np.round(pts).astype(np.int32)], 1)
        base = rng.uniform(20, 235, 3)
        return m.astype(bool), _shade_sprite(rng, m, base, textured=rng.random() < 0.6)
    S = int(math.ceil(size_px * 1.2)) + 5
    c = (S - 1) / 2.0
    m = np.zeros((S, S), np.uint8)
    ang = rng.uniform(0, 2 * math.pi)
    rot = np.array([[math.cos(ang), -math.sin(ang)], [math.sin(ang), math.cos(ang)]])

    def P(x, y):  # sprite-local (units of size_px, centred) -> pixel
        q = rot @ np.array([x, y]) * size_px + c
        return int(round(q[0])), int(round(q[1]))

    if kind == "bar":
        half_w = rng.uniform(0.05, 0.15)
        corners = [P(-0.55, -half_w), P(0.55, -half_w), P(0.55, half_w), P(-0.55, half_w)]
        cv2.fillPoly(m, [np.array(corners, np.int32)], 1)
        base = rng.uniform(20, 235, 3)
        return m.astype(bool), _shade_sprite(rng, m, base, textured=rng.random() < 0.5)
    # hand: palm ellipse at the bottom, fingers up, thumb to one side (mirrored at random)
    side = 1.0 if rng.random() < 0.5 else -1.0
    pc = P(0.0, 0.12)
    cv2.ellipse(m, pc, (max(1, int(0.2 * size_px)), max(1, int(0.24 * size_px))), math.degrees(ang), 0, 360, 1, -1)
    fw = max(1, int(size_px * rng.uniform(0.07, 0.1)))
    for j, fx in enumerate((-0.14, -0.05, 0.04, 0.13)):
        length = rng.uniform(0.22, 0.34) * (0.85 if j in (0, 3) else 1.0)
        spread = (fx * 0.6) + rng.uniform(-0.05, 0.05)
        a, b = P(fx * side, -0.05), P((fx + spread) * side, -0.05 - length)
        cv2.line(m, a, b, 1, fw)
        cv2.circle(m, b, max(1, fw // 2), 1, -1)
    a, b = P(0.16 * side, 0.18), P(0.40 * side, -0.02)
    cv2.line(m, a, b, 1, int(fw * 1.1) + 1)
    cv2.circle(m, b, max(1, fw // 2), 1, -1)
    if rng.random() < 0.75:
        rgb = np.array(_SKIN_RGB[int(rng.integers(len(_SKIN_RGB)))], np.float64) * rng.uniform(0.85, 1.1)
        base = rgb[::-1]
    else:
        base = rng.uniform(20, 235, 3)  # a glove
    return m.astype(bool), _shade_sprite(rng, m, base, textured=False)


def _paste_window(shape: tuple[int, int], h: int, w: int, y0: int, x0: int):
    """Slices (image, sprite) for a (h, w) sprite whose top-left is (y0, x0), clipped to shape;
    None when they do not overlap."""
    H, W = shape
    ya, xa = max(y0, 0), max(x0, 0)
    yb, xb = min(y0 + h, H), min(x0 + w, W)
    if ya >= yb or xa >= xb:
        return None
    return (slice(ya, yb), slice(xa, xb)), (slice(ya - y0, yb - y0), slice(xa - x0, xb - x0))


def paste(image: np.ndarray, occ: np.ndarray, sprite: tuple[np.ndarray, np.ndarray], cx: float, cy: float) -> None:
    """Paste a sprite (mask, colour) centred at (cx, cy) into image (H, W, 3) and occ (H, W) bool."""
    m, col = sprite
    h, w = m.shape
    win = _paste_window(occ.shape, h, w, int(round(cy - (h - 1) / 2)), int(round(cx - (w - 1) / 2)))
    if win is None:
        return
    (iy, ix), (sy, sx) = win
    mm = m[sy, sx]
    np.copyto(image[iy, ix], col[sy, sx], where=mm[:, :, None])
    occ[iy, ix] |= mm


def overlap(occ_shape, mask: np.ndarray, sprite_mask: np.ndarray, cx: float, cy: float, already: np.ndarray) -> int:
    """Object pixels (of mask (H, W) bool) newly covered by a sprite centred at (cx, cy), not
    counting those ``already`` (H, W) bool covered."""
    h, w = sprite_mask.shape
    win = _paste_window(occ_shape, h, w, int(round(cy - (h - 1) / 2)), int(round(cx - (w - 1) / 2)))
    if win is None:
        return 0
    (iy, ix), (sy, sx) = win
    return int(np.count_nonzero(sprite_mask[sy, sx] & mask[iy, ix] & ~already[iy, ix]))


#: end_occluder: the cut lies this fraction of the silhouette's length from the chosen end
END_CUT = (0.15, 0.5)
#: end_occluder: a placement is kept when it hides at least this much of the end beyond the cut
END_MIN_COVER = 0.8
#: end_occluder: ... and at most this much of the whole silhouette (frames are scored when at least half visible)
END_MAX_COVER = 0.5
#: end_occluder: the share of its occluders drawn in the object's own colour
END_OWN_COLOUR = 0.25
#: axis_occluder: the bar reaches from past the chosen end to this fraction of the silhouette's length from it
AXIS_CUT = (0.4, 0.75)
#: axis_occluder: the bar's width, a fraction of the silhouette's
AXIS_WIDTH = (0.35, 0.8)
#: axis_occluder: the strip along the principal axis it must hide, half-width a fraction of the silhouette's width
AXIS_STRIP = 0.15


def _polygon_sprite(rng, pts: np.ndarray) -> tuple[tuple[np.ndarray, np.ndarray], float, float]:
    """A flat or textured sprite filling the polygon pts (N, 2) image pixels: (sprite, cx, cy)."""
    lo = np.floor(pts.min(0)).astype(int) - 1
    hi = np.ceil(pts.max(0)).astype(int) + 2
    w, h = hi - lo
    m = np.zeros((h, w), np.uint8)
    cv2.fillPoly(m, [np.round(pts - lo).astype(np.int32)], 1)
    col = _shade_sprite(rng, m, rng.uniform(20, 235, 3), textured=rng.random() < 0.5)
    return (m.astype(bool), col), lo[0] + (w - 1) / 2.0, lo[1] + (h - 1) / 2.0


def _object_colour(rng, image: np.ndarray, mask: np.ndarray) -> np.ndarray:
    """A BGR colour (3,) float near the object's own: the median of its pixels in image, scaled
    by 0.8-1.2 (an occluder the object's colour hides where the silhouette stops)."""
    return np.clip(np.median(image[mask], axis=0) * rng.uniform(0.8, 1.2), 0, 255)


def _end_bar(rng, c, d, n, side, cut, end, width, length, p_end) -> np.ndarray:
    """The corners (4, 2) of a bar over the end: across the axis (turned up to 20 deg) from the cut
    to past the end, or, half of the time, at any angle through the end's pixels p_end (N, 2)."""
    if rng.random() < 0.5:
        a = rng.uniform(-0.35, 0.35)
        u = side * (d * math.cos(a) + n * math.sin(a))
        v = np.array([-u[1], u[0]])
        beyond = end + rng.uniform(0.05, 0.5) * length
        half = 0.5 * width * rng.uniform(1.3, 2.5)
        off = rng.uniform(-0.2, 0.2) * width
        return np.array([c + u * a_ + v * (b_ + off) for a_, b_ in ((cut, -half), (beyond, -half), (beyond, half), (cut, half))])
    a = rng.uniform(0, 2 * math.pi)
    u, v = np.array([math.cos(a), math.sin(a)]), np.array([-math.sin(a), math.cos(a)])
    e = p_end.mean(0)
    t = (p_end - e) @ v
    mid = 0.5 * (t.max() + t.min())
    half = 0.5 * (t.max() - t.min() + 1.0) * rng.uniform(1.0, 1.4)
    lo, hi = -rng.uniform(0.3, 1.0) * length, rng.uniform(0.3, 1.0) * length
    return np.array([e + u * a_ + v * (mid + b_) for a_, b_ in ((lo, -half), (hi, -half), (hi, half), (lo, half))])


def _principal(mask: np.ndarray):
    """The silhouette mask (H, W) bool along its principal axis: (ys, xs, centre c (2,), the longest
    direction d (2,), across it n (2,), each pixel's coordinate along d and along n, length, width)."""
    ys, xs = np.nonzero(mask)
    p = np.stack([xs, ys], 1).astype(np.float64)
    c = p.mean(0)
    _, evecs = np.linalg.eigh(np.cov((p - c).T))
    d, n = evecs[:, 1], evecs[:, 0]
    s, r = (p - c) @ d, (p - c) @ n
    return ys, xs, c, d, n, s, r, float(s.max() - s.min()), float(r.max() - r.min()) + 1.0


def _paste_kept(rng, image, mask, occ, sprite, cx, cy) -> None:
    """Paste a kept end or axis occluder; a share ``END_OWN_COLOUR`` of them in the object's own colour."""
    if rng.random() < END_OWN_COLOUR:
        sprite = (sprite[0], _shade_sprite(rng, sprite[0], _object_colour(rng, image, mask), textured=rng.random() < 0.5))
    paste(image, occ, sprite, cx, cy)


def axis_occluder(rng: np.random.Generator, image: np.ndarray, mask: np.ndarray, occ: np.ndarray) -> bool:
    """Paste one bar lying along the object over one end into image (H, W, 3) and occ (H, W) bool.

    Narrower than the silhouette (``AXIS_WIDTH`` of its width) and turned up to 20 deg off its
    principal axis, the bar reaches from past a random end to ``AXIS_CUT`` of the length from it, so
    it hides the keypoints on the axis there (a bottle's cap, neck and centre) while the sides stay
    partly in view. Up to 12 tries, until one hides ``END_MIN_COVER`` of the axis strip (within
    ``AXIS_STRIP`` of the width from the axis) beyond the cut and at most ``END_MAX_COVER`` of the
    whole; a share ``END_OWN_COLOUR`` takes the object's own colour.
    Returns whether one was pasted (False for a silhouette of under 50 pixels or no placement)."""
    if np.count_nonzero(mask) < 50:
        return False
    ys, xs, c, d, n, s, r, length, width = _principal(mask)
    for _try in range(12):
        side = 1.0 if rng.random() < 0.5 else -1.0
        end = float((side * s).max())
        cut = end - rng.uniform(*AXIS_CUT) * length
        strip = (side * s > cut) & (np.abs(r) < AXIS_STRIP * width)
        if not strip.any():
            continue
        a = rng.uniform(-0.35, 0.35)
        u = side * (d * math.cos(a) + n * math.sin(a))
        v = np.array([-u[1], u[0]])
        beyond = end + rng.uniform(0.05, 0.5) * length
        half = 0.5 * width * rng.uniform(*AXIS_WIDTH)
        off = rng.uniform(-0.25, 0.25) * width
        corners = np.array([c + u * a_ + v * (b_ + off) for a_, b_ in ((cut, -half), (beyond, -half), (beyond, half), (cut, half))])
        sprite, cx, cy = _polygon_sprite(rng, corners)
        strip_mask = np.zeros_like(mask)
        strip_mask[ys[strip], xs[strip]] = True
        if (overlap(occ.shape, strip_mask, sprite[0], cx, cy, occ) >= END_MIN_COVER * strip.sum()
                and overlap(occ.shape, mask, sprite[0], cx, cy, occ) <= END_MAX_COVER * xs.size):
            _paste_kept(rng, image, mask, occ, sprite, cx, cy)
            return True
    return False


def end_occluder(rng: np.random.Generator, image: np.ndarray, mask: np.ndarray, occ: np.ndarray) -> bool:
    """Paste one occluder over an end of the object into image (H, W, 3) and occ (H, W) bool.

    The silhouette mask (H, W) bool is cut across its principal axis at ``END_CUT`` of its length
    from a random end; a bar (across the axis, or at any angle through the end), a hand or a blob
    is drawn (up to 12 tries) until one hides ``END_MIN_COVER`` of the part beyond the cut and at
    most ``END_MAX_COVER`` of the whole; a share ``END_OWN_COLOUR`` of them takes the object's
    own colour.
    Returns whether one was pasted (False for a silhouette of under 50 pixels or no placement)."""
    if np.count_nonzero(mask) < 50:
        return False
    ys, xs, c, d, n, s, _, length, width = _principal(mask)
    p = np.stack([xs, ys], 1).astype(np.float64)
    n_obj = xs.size
    for _try in range(12):
        side = 1.0 if rng.random() < 0.5 else -1.0
        end = float((side * s).max())  # the chosen end, along side * d
        cut = end - rng.uniform(*END_CUT) * length
        in_end = side * s > cut
        if not in_end.any():
            continue
        kind = ("bar", "hand", "blob")[int(rng.integers(3))]
        if kind == "bar":
            sprite, cx, cy = _polygon_sprite(rng, _end_bar(rng, c, d, n, side, cut, end, width, length, p[in_end]))
        else:  # a hand or blob about as big as the end, its centre a little past the middle of the end
            depth = end - cut
            size = max(width, depth) * rng.uniform(1.3, 2.0)
            sprite = occluder_sprite(rng, size, kind)
            centre = cut + 0.45 * size if kind == "blob" else cut + 0.3 * size
            cx, cy = c + side * d * centre + n * rng.uniform(-0.15, 0.15) * width
        beyond_mask = np.zeros_like(mask)
        beyond_mask[ys[in_end], xs[in_end]] = True
        covered = overlap(occ.shape, mask, sprite[0], cx, cy, occ)
        end_covered = overlap(occ.shape, beyond_mask, sprite[0], cx, cy, occ)
        if end_covered >= END_MIN_COVER * in_end.sum() and covered <= END_MAX_COVER * n_obj:
            _paste_kept(rng, image, mask, occ, sprite, cx, cy)
            return True
    return False


def add_occluders(rng: np.random.Generator, cfg: SynthConfig, image: np.ndarray, mask: np.ndarray) -> np.ndarray:
    """Paste occluders into image (H, W, 3): in a fraction cfg.axis_occlusion of the images a bar
    along the object over one end (:func:`axis_occluder`), in a fraction cfg.end_occlusion one over
    an end (:func:`end_occluder`), otherwise 1-2 near the object covering at most
    cfg.max_occlusion of its mask (H, W) bool. Returns the occluded pixels (H, W) bool."""
    occ = np.zeros(mask.shape, bool)
    share = cfg.end_occlusion + cfg.axis_occlusion
    if share > 0.0:
        u = rng.random()
        if u < cfg.axis_occlusion and axis_occluder(rng, image, mask, occ):
            return occ
        if cfg.axis_occlusion <= u < share and end_occluder(rng, image, mask, occ):
            return occ
    n_obj = int(np.count_nonzero(mask))
    if n_obj == 0 or rng.random() >= cfg.occluder_prob:
        return occ
    x, y, w, h = mask_bbox(mask)
    cx, cy = x + (w - 1) / 2.0, y + (h - 1) / 2.0
    size_obj = float(max(w, h))
    budget = int(cfg.max_occlusion * n_obj)
    covered = 0
    for _ in range(1 if rng.random() < 0.7 else 2):
        kind = ("blob", "hand", "bar")[int(rng.integers(3))]
        sprite = occluder_sprite(rng, size_obj * rng.uniform(0.3, 0.9), kind)
        s = max(sprite[0].shape)
        a = rng.uniform(0, 2 * math.pi)
        d = rng.uniform(0.3, 1.0) * (size_obj + s) / 2.0
        for _try in range(10):
            px, py = cx + d * math.cos(a), cy + d * math.sin(a)
            new = overlap(occ.shape, mask, sprite[0], px, py, occ)
            if covered + new <= budget:
                paste(image, occ, sprite, px, py)
                covered += new
                break
            d += 0.12 * size_obj
    return occ
