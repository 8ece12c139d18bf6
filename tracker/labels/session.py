"""The labelling state machine of ``kptrack annotate``'s window, with no window in it.

:class:`LabelSession` holds the labels of every chosen frame and a cursor (frame, keypoint):
a click places the cursor's keypoint and moves on, ``skip`` marks it not visible, ``undo``
takes back the last click or skip, next/previous move between frames. After the last keypoint
of a frame the cursor goes to the next frame. Every action that changes a label returns True,
so the window shell (:mod:`tracker.labels.window`) saves after it. :class:`Magnifier` maps a
click inside the zoomed inset back to sub-pixel frame coordinates.

Labels are COCO-style: ``uv (K, 2)`` float64 frame pixels (pixel centres at integers, NaN when
not placed) and ``v (K,)`` int8, 2 placed, 0 not (skipped, or not reached yet). A frame counts
as *visited* (it gets a COCO annotation) once one of its keypoints was placed or skipped.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Sequence

import numpy as np

# key -> action of the window; letters, so they work with cv2.waitKey on every platform
KEYS = {
    ord("n"): "next", ord("d"): "next", ord(" "): "next",
    ord("p"): "prev", ord("a"): "prev",
    ord("s"): "skip", ord("x"): "skip",
    ord("u"): "undo", 8: "undo", 127: "undo", 26: "undo",  # backspace, delete, ctrl-z
    ord("m"): "magnifier", ord("z"): "magnifier",
    ord("q"): "quit", 27: "quit",  # Esc
}
KEY_HELP = ("click   place the keypoint", "s       skip (not visible)", "u       undo", "n / p   next / previous frame",
            "m       lock the magnifier", "q, Esc  save and quit")


@dataclass
class FrameLabels:
    """One frame's labels: uv (K, 2) float64 pixels (NaN if not placed), v (K,) int8 (2 placed, 0 not)."""

    uv: np.ndarray
    v: np.ndarray
    visited: bool = False

    @classmethod
    def empty(cls, k: int) -> "FrameLabels":
        return cls(np.full((k, 2), np.nan), np.zeros(k, np.int8))

    @property
    def count(self) -> int:
        """Placed keypoints."""
        return int(np.count_nonzero(self.v > 0))


@dataclass
class LabelSession:
    """Labels of ``frames`` (sorted frame indices) for keypoints ``names``, and the cursor.

    labels: {frame: FrameLabels}; pos: index into ``frames``; kp: keypoint index (``len(names)``
    = past the last). ``history`` holds (frame, kp, previous uv (2,), previous v) per change, for undo.
    """

    frames: list[int]
    names: tuple[str, ...]
    labels: dict[int, FrameLabels] = field(default_factory=dict)
    pos: int = 0
    kp: int = 0
    history: list[tuple[int, int, np.ndarray, int, bool]] = field(default_factory=list)
    finished: bool = False

    def __post_init__(self) -> None:
        self.frames = sorted(set(int(f) for f in self.frames))
        self.names = tuple(self.names)
        if not self.frames or not self.names:
            raise ValueError("LabelSession: needs at least one frame and one keypoint name")
        for f in self.frames:
            self.labels.setdefault(f, FrameLabels.empty(len(self.names)))
        self.resume()

    # ------------------------------------------------------------------ queries
    @property
    def frame(self) -> int:
        """The frame index under the cursor."""
        return self.frames[self.pos]

    @property
    def current(self) -> FrameLabels:
        return self.labels[self.frame]

    @property
    def keypoint_name(self) -> str | None:
        """Name of the keypoint to place next, None past the last one."""
        return self.names[self.kp] if self.kp < len(self.names) else None

    def _resume_kp(self, f: int) -> int:
        """Where labelling of frame f continues: after its last placed keypoint (0 if none)."""
        placed = np.flatnonzero(self.labels[f].v > 0)
        return int(placed[-1]) + 1 if placed.size else 0

    def resume(self) -> None:
        """Put the cursor where work stopped: the first frame not visited or with keypoints left
        after its last placed one (a frame whose last keypoints were skipped comes up again, as
        skips are not stored apart from keypoints never reached); all done: past the last frame's end."""
        for i, f in enumerate(self.frames):
            if not self.labels[f].visited or self._resume_kp(f) < len(self.names):
                self.pos, self.kp = i, self._resume_kp(f)
                return
        self.pos, self.kp = len(self.frames) - 1, len(self.names)

    # ------------------------------------------------------------------ actions
    def _set(self, uv: tuple[float, float] | None) -> None:
        lab = self.current
        self.history.append((self.frame, self.kp, lab.uv[self.kp].copy(), int(lab.v[self.kp]), lab.visited))
        if uv is None:
            lab.uv[self.kp] = np.nan
            lab.v[self.kp] = 0
        else:
            lab.uv[self.kp] = uv
            lab.v[self.kp] = 2
        lab.visited = True
        self.kp += 1
        if self.kp >= len(self.names) and self.pos + 1 < len(self.frames):
            self.pos, self.kp = self.pos + 1, self._resume_kp(self.frames[self.pos + 1])

    def click(self, x: float, y: float) -> bool:
        """Place the cursor's keypoint at frame pixel (x, y). False past the last keypoint of the last frame."""
        if self.keypoint_name is None:
            return False
        self._set((float(x), float(y)))
        return True

    def skip(self) -> bool:
        """Mark the cursor's keypoint not visible (v = 0) and move on."""
        if self.keypoint_name is None:
            return False
        self._set(None)
        return True

    def undo(self) -> bool:
        """Take back the last click or skip; the cursor returns to that keypoint."""
        if not self.history:
            return False
        f, k, uv, v, visited = self.history.pop()
        lab = self.labels[f]
        lab.uv[k], lab.v[k], lab.visited = uv, v, visited
        self.pos, self.kp = self.frames.index(f), k
        return True

    def next_frame(self) -> bool:
        """Move to the next frame (where its labelling stopped). Changes no label: returns False."""
        if self.pos + 1 < len(self.frames):
            self.pos += 1
            self.kp = self._resume_kp(self.frame)
        return False

    def prev_frame(self) -> bool:
        """Move to the previous frame (where its labelling stopped). Changes no label: returns False."""
        if self.pos > 0:
            self.pos -= 1
            self.kp = self._resume_kp(self.frame)
        return False

    def handle_key(self, key: int) -> tuple[str | None, bool]:
        """Apply a key (cv2.waitKey code): returns (action name or None, whether a label changed).
        'quit' and 'magnifier' are left to the shell."""
        action = KEYS.get(key & 0xFF if key >= 0 else key)
        if action == "next":
            return action, self.next_frame()
        if action == "prev":
            return action, self.prev_frame()
        if action == "skip":
            return action, self.skip()
        if action == "undo":
            return action, self.undo()
        if action == "quit":
            self.finished = True
        return action, False

    def visited(self) -> dict[int, FrameLabels]:
        """The frames that get a COCO annotation, {frame: FrameLabels}, in frame order."""
        return {f: self.labels[f] for f in self.frames if self.labels[f].visited}


@dataclass(frozen=True)
class Magnifier:
    """A zoomed inset of the frame around ``center`` (x, y pixels, inside the frame), ``zoom`` times, ``radius``
    frame pixels each way, drawn with its top-left corner at ``origin`` (x, y) of the window.

    The inset shows frame pixels ``center - radius .. center + radius`` (pixel centres at
    integers), each as a ``zoom x zoom`` block, so inset pixel ``q`` shows frame point
    ``center_int - radius - 0.5 + (q + 0.5) / zoom``: a click there gives sub-pixel precision.
    """

    center: tuple[float, float]
    zoom: int = 8
    radius: int = 12
    origin: tuple[int, int] = (0, 0)

    @property
    def size(self) -> int:
        """Inset side in window pixels."""
        return (2 * self.radius + 1) * self.zoom

    def contains(self, x: float, y: float) -> bool:
        """Whether window pixel (x, y) falls inside the inset."""
        ox, oy = self.origin
        return ox <= x < ox + self.size and oy <= y < oy + self.size

    def to_frame(self, x: float, y: float) -> tuple[float, float]:
        """Window pixel (x, y) inside the inset -> frame pixel (float)."""
        cx, cy = (int(round(c)) for c in self.center)
        ox, oy = self.origin
        return (cx - self.radius - 0.5 + (x - ox + 0.5) / self.zoom, cy - self.radius - 0.5 + (y - oy + 0.5) / self.zoom)

    def render(self, image: np.ndarray) -> np.ndarray:
        """The inset, (size, size, 3) uint8: frame pixels around ``center`` (edge-padded), each a
        ``zoom x zoom`` block, with a cross on the centre pixel."""
        cx, cy = (int(round(c)) for c in self.center)
        r = self.radius
        pad = np.pad(image, ((r, r), (r, r), (0, 0)), mode="edge")
        h, w = image.shape[:2]
        cx, cy = min(max(cx, 0), w - 1), min(max(cy, 0), h - 1)
        patch = pad[cy:cy + 2 * r + 1, cx:cx + 2 * r + 1]
        big = np.repeat(np.repeat(patch, self.zoom, 0), self.zoom, 1).copy()
        mid = r * self.zoom + self.zoom // 2
        big[mid, :: 2] = (0, 255, 255)
        big[:: 2, mid] = (0, 255, 255)
        return big


def labels_from_points(frames: Sequence[int], names: Sequence[str], points) -> dict[int, FrameLabels]:
    """{frame: FrameLabels} from LabelPoint rows (:mod:`tracker.labels.points`); every frame named
    in ``frames`` or in a row is present, a frame with a row is visited."""
    index = {n: i for i, n in enumerate(names)}
    out = {int(f): FrameLabels.empty(len(names)) for f in frames}
    for p in points:
        lab = out.setdefault(int(p.frame), FrameLabels.empty(len(names)))
        k = index[p.name]
        lab.uv[k] = (p.x, p.y)
        lab.v[k] = 2
        lab.visited = True
    return out
