"""Backgrounds: procedural ones (gradients, value noise, stripes and checks, random shapes), a
folder of user images, or frames sampled from a video of the user's scene.

Random textures behind the object are the domain randomisation of Tobin et al., "Domain
Randomization for Transferring Deep Neural Networks from Simulation to the Real World"
(IROS 2017); :class:`BackgroundImages` cuts random crops of the user's images instead. The best
backgrounds are frames of the user's own scene without the object (the desk, the room, the
lighting the tracker will see): ``--backgrounds VIDEO`` samples up to ``MAX_VIDEO_FRAMES``
frames spread evenly over such a video (:func:`video_frames`), kept JPEG-encoded in memory so
they travel to the pool's workers cheaply. Every generator draws from the ``rng`` it is given, so an
image's background is a pure function of its seed stream. Images are (h, w, 3) uint8 BGR.
"""

from __future__ import annotations

import logging
import math
from dataclasses import dataclass
from pathlib import Path

import cv2
import numpy as np

from tracker.errors import KptrackError
from tracker.formats.bop_scene import IMAGE_EXTS

log = logging.getLogger(__name__)

MAX_VIDEO_FRAMES = 100  # frames sampled from a background video, evenly spread over it
_VIDEO_JPEG_QUALITY = 95


class PixelGrid:
    """Per-size cached pixel coordinate grids (float32, normalised to [0, 1])."""

    def __init__(self) -> None:
        self._g: dict[tuple[int, int], tuple[np.ndarray, np.ndarray]] = {}

    def __call__(self, h: int, w: int) -> tuple[np.ndarray, np.ndarray]:
        """(xs, ys), each (h, w) float32: x / (w - 1) and y / (h - 1)."""
        g = self._g.get((h, w))
        if g is None:
            ys, xs = np.mgrid[0:h, 0:w].astype(np.float32)
            g = (xs / max(w - 1, 1), ys / max(h - 1, 1))
            self._g[(h, w)] = g
        return g


GRID = PixelGrid()


def _palette(rng: np.random.Generator) -> np.ndarray:
    """A random colour ramp: 2-3 random colours spread over 256 entries. Returns (1, 256, 3) uint8 BGR."""
    n = int(rng.integers(2, 4))
    stops = np.concatenate([[0.0], np.sort(rng.uniform(0.2, 0.8, n - 2)), [1.0]]) * 255.0
    cols = rng.uniform(0, 255, (n, 3))
    x = np.arange(256, dtype=np.float64)
    lut = np.stack([np.interp(x, stops, cols[:, c]) for c in range(3)], 1)
    return lut.astype(np.uint8).reshape(1, 256, 3)


def _colorize(field_: np.ndarray, rng: np.random.Generator) -> np.ndarray:
    """(h, w) float32 scalar field -> (h, w, 3) uint8 through a random palette (min..max stretched).
    One LUT pass instead of float colour arithmetic per pixel."""
    f8 = cv2.normalize(field_, None, 0, 255, cv2.NORM_MINMAX, cv2.CV_8U)
    return cv2.LUT(cv2.merge([f8, f8, f8]), _palette(rng))


def _bg_gradient(rng, h, w):
    xs, ys = GRID(h, w)
    if rng.random() < 0.7:
        a = rng.uniform(0, 2 * math.pi)
        t = xs * np.float32(math.cos(a)) + ys * np.float32(math.sin(a))
    else:  # radial
        cx, cy = rng.random(2).astype(np.float32)
        t = cv2.magnitude(xs - cx, ys - cy)
    return _colorize(t, rng)


def _value_noise(rng, h, w) -> np.ndarray:
    """Multi-octave value noise (h, w) float32: each octave doubles the grid and halves (x0.55)
    the amplitude; accumulated on the coarse grids, so only one full-size resize."""
    g = int(rng.integers(2, 6))
    acc = rng.random((g, g), dtype=np.float32)
    amp = 1.0
    for _ in range(int(rng.integers(2, 5))):
        g *= 2
        amp *= 0.55
        acc = cv2.resize(acc, (g, g), interpolation=cv2.INTER_LINEAR) + np.float32(amp) * rng.random((g, g), dtype=np.float32)
    return cv2.resize(acc, (w, h), interpolation=cv2.INTER_CUBIC)


def _bg_value_noise(rng, h, w):
    return _colorize(_value_noise(rng, h, w), rng)


def _bg_stripes(rng, h, w):
    xs, ys = GRID(h, w)
    a = rng.uniform(0, math.pi)
    freq = rng.uniform(3, 30) * math.pi
    t = np.sin((xs * math.cos(a) + ys * math.sin(a) * (h / max(w, 1))) * freq)
    if rng.random() < 0.5:  # checker
        b = a + math.pi / 2
        t = t * np.sin((xs * math.cos(b) + ys * math.sin(b)) * freq * rng.uniform(0.5, 2))
    if rng.random() < 0.6:
        t = np.sign(t)
    return _colorize(t.astype(np.float32), rng)


def _draw_shapes(rng, img: np.ndarray, n: int) -> None:
    h, w = img.shape[:2]
    s = max(h, w)
    for _ in range(n):
        col = tuple(float(x) for x in rng.uniform(0, 255, 3))
        kind = rng.integers(0, 5)
        th = -1 if rng.random() < 0.6 else int(rng.integers(1, max(2, s // 40)))
        c = (int(rng.integers(-s // 8, w + s // 8)), int(rng.integers(-s // 8, h + s // 8)))
        r = int(rng.integers(max(2, s // 60), max(3, s // 4)))
        if kind == 0:
            cv2.circle(img, c, r, col, th, cv2.LINE_AA)
        elif kind == 1:
            cv2.rectangle(img, c, (c[0] + int(rng.integers(-r, r)), c[1] + int(rng.integers(-r, r))), col, th)
        elif kind == 2:
            cv2.ellipse(img, c, (r, max(1, int(r * rng.uniform(0.2, 1)))), float(rng.uniform(0, 180)), 0, 360, col, th, cv2.LINE_AA)
        elif kind == 3:
            e = (int(rng.integers(0, w)), int(rng.integers(0, h)))
            cv2.line(img, c, e, col, max(1, th), cv2.LINE_AA)
        else:
            k = int(rng.integers(3, 7))
            pts = np.array(c) + rng.integers(-r, r + 1, size=(k, 2))
            cv2.fillPoly(img, [pts.astype(np.int32)], col, cv2.LINE_AA)


def procedural_background(rng: np.random.Generator, h: int, w: int, cluttered: bool = False) -> np.ndarray:
    """A random procedural background: gradient, value noise, stripes/checks, or one of them
    under random shapes (always the latter when ``cluttered``). Returns (h, w, 3) uint8 BGR."""
    kind = int(rng.integers(3, 5)) if cluttered else int(rng.integers(0, 5))
    if kind == 0:
        img = _bg_gradient(rng, h, w)
    elif kind == 1:
        img = _bg_value_noise(rng, h, w)
    elif kind == 2:
        img = _bg_stripes(rng, h, w)
    else:
        img = (_bg_value_noise if kind == 3 else _bg_gradient)(rng, h, w)
    if kind >= 3:
        _draw_shapes(rng, img, int(rng.integers(5, 40)))
    return img


@dataclass(frozen=True)
class VideoFrame:
    """One frame of a background video: its file, frame index and the frame as JPEG bytes."""

    source: Path
    index: int
    jpeg: bytes = b""

    def __repr__(self) -> str:
        return f"{self.source}#{self.index}"


def video_frames(path: str | Path, max_frames: int = MAX_VIDEO_FRAMES) -> list[VideoFrame]:
    """Up to ``max_frames`` frames spread evenly over the video at ``path``, JPEG-encoded.

    The video is decoded once, in order (seeking is slow and inexact in many codecs); when its
    header gives no frame count, every frame is kept at a stride that doubles whenever the
    list outgrows ``2 * max_frames``. KptrackError when OpenCV cannot open it or it has no frames.
    """
    path = Path(path)
    cap = cv2.VideoCapture(str(path))
    if not cap.isOpened():
        raise KptrackError(f"--backgrounds: {path} is not a video OpenCV can read. Pass a folder of images or an MP4/AVI file.")
    declared = int(cap.get(cv2.CAP_PROP_FRAME_COUNT) or 0)
    wanted = set(np.linspace(0, declared - 1, min(max_frames, declared)).round().astype(int).tolist()) if declared > 0 else None
    kept: list[VideoFrame] = []
    stride, i = 1, 0
    try:
        while cap.grab():
            if (i in wanted) if wanted is not None else (i % stride == 0):
                ok, frame = cap.retrieve()
                if ok and frame is not None and frame.size:
                    ok, buf = cv2.imencode(".jpg", frame, [cv2.IMWRITE_JPEG_QUALITY, _VIDEO_JPEG_QUALITY])
                    kept.append(VideoFrame(path, i, buf.tobytes()))
                if wanted is None and len(kept) > 2 * max_frames:
                    stride *= 2
                    kept = [f for f in kept if f.index % stride == 0]
            i += 1
    finally:
        cap.release()
    if not kept:
        raise KptrackError(f"--backgrounds: {path} has no readable frames. Pass another video or a folder of images.")
    if wanted is None and len(kept) > max_frames:
        kept = [kept[j] for j in np.linspace(0, len(kept) - 1, max_frames).round().astype(int)]
    log.info("--backgrounds: %d frames sampled from %s (%d frames)", len(kept), path, i)
    return kept


def list_background_images(source: str | Path) -> list[Path | VideoFrame]:
    """The user's backgrounds for ``--backgrounds``: the image files under a folder (recursive,
    sorted), one image file, or frames sampled from a video file (:func:`video_frames`).
    KptrackError when there are none or the path does not exist."""
    source = Path(source)
    if source.is_file():
        return [source] if source.suffix.lower() in IMAGE_EXTS else list(video_frames(source))
    if not source.is_dir():
        raise KptrackError(f"--backgrounds: {source} does not exist. Pass a folder of images or a video of your scene.")
    files: list[Path | VideoFrame] = sorted(p for p in source.rglob("*") if p.suffix.lower() in IMAGE_EXTS and p.is_file())
    if not files:
        raise KptrackError(f"--backgrounds: {source} holds no images ({', '.join(IMAGE_EXTS)}). Add images or leave it out.")
    return files


class BackgroundImages:
    """Random crops of a list of background images or video frames (a procedural background
    when the list is empty), with a small per-process cache of the decoded images."""

    def __init__(self, files: list[Path | VideoFrame]) -> None:
        self.files = files
        self.cache: dict[int, np.ndarray] = {}

    def __call__(self, rng: np.random.Generator, h: int, w: int) -> np.ndarray:
        """A (h, w, 3) uint8 BGR background: a random crop of a random image (40-100 % of the
        largest crop of the image's aspect), resized, mirrored half the time."""
        if not self.files:
            return procedural_background(rng, h, w)
        k = int(rng.integers(len(self.files)))
        path = self.files[k]
        img = self.cache.get(k)
        if img is None:
            if isinstance(path, VideoFrame):
                img = cv2.imdecode(np.frombuffer(path.jpeg, np.uint8), cv2.IMREAD_COLOR)
            else:
                img = cv2.imread(str(path), cv2.IMREAD_COLOR)
            if img is None:
                log.warning("%s: unreadable background image; using a procedural one", path)
                img = np.zeros((0, 0, 3), np.uint8)
            else:
                s = 2.0 * max(h, w) / min(img.shape[:2])
                if s < 1.0:  # keep the cache small
                    img = cv2.resize(img, None, fx=s, fy=s, interpolation=cv2.INTER_AREA)
            if len(self.cache) < 256:
                self.cache[k] = img
        if img.size == 0:
            return procedural_background(rng, h, w)
        ih, iw = img.shape[:2]
        aspect = w / h
        ch = rng.uniform(0.4, 1.0) * min(ih, iw / aspect)
        cw = ch * aspect
        y0 = rng.uniform(0, ih - ch)
        x0 = rng.uniform(0, iw - cw)
        crop = img[int(y0):int(y0 + ch) + 1, int(x0):int(x0 + cw) + 1]
        out = cv2.resize(crop, (w, h), interpolation=cv2.INTER_AREA if ch > h else cv2.INTER_LINEAR)
        return out[:, ::-1].copy() if rng.random() < 0.5 else out
