"""The OpenCV window of ``kptrack annotate``: a thin shell over :class:`tracker.labels.session.LabelSession`.

The window shows the frame under the session's cursor with its labels, the CAD's edges once
the frame has 4 labels (so a swapped click shows at once), a HUD with the frame, the name of
the keypoint to place next and the keys, and a magnifier (:class:`Magnifier`) around the mouse.
``m`` locks the magnifier where the mouse is; a click inside the locked inset places the
keypoint with sub-pixel precision (and unlocks it). Every change is saved at once through
``on_change``. :meth:`AnnotateWindow.step` handles one round of events, so tests drive the
shell with injected ``imshow``/``waitkey`` and :meth:`AnnotateWindow.on_mouse` calls.
"""

from __future__ import annotations

from typing import Callable

import cv2
import numpy as np

from tracker.errors import KptrackError
from tracker.labels.pose import LabelFit
from tracker.labels.session import KEY_HELP, LabelSession, Magnifier
from tracker.pipeline.sinks import display_available
from tracker.render.draw import draw_hud


class AnnotateWindow:
    """The window around a session.

    load_image(frame) -> (H, W, 3) uint8 BGR; fit(frame) -> LabelFit of the frame's labels;
    draw(image, fit, frame) -> the picture of a frame with its labels (see
    :func:`tracker.labels.pose.draw_check`); on_change(session) saves (called after every change).
    """

    def __init__(self, session: LabelSession, load_image: Callable[[int], np.ndarray], fit: Callable[[int], LabelFit],
                 draw: Callable[[np.ndarray, LabelFit, int], np.ndarray], on_change: Callable[[LabelSession], None], *,
                 title: str = "kptrack annotate", imshow: Callable | None = None, waitkey: Callable | None = None,
                 zoom: int = 8, radius: int = 12):
        if imshow is None and not display_available():
            raise KptrackError("kptrack annotate: no display here (DISPLAY is not set). Label on a machine with a screen, "
                               "or import labels headless with --points FILE (CSV frame,name,x,y).")
        self.session, self.load_image, self.fit, self.draw, self.on_change = session, load_image, fit, draw, on_change
        self.title = title
        self._imshow = imshow or cv2.imshow
        self._waitkey = waitkey or cv2.waitKey
        self.zoom, self.radius = zoom, radius
        self.mouse: tuple[int, int] = (0, 0)
        self.locked: Magnifier | None = None
        self._cache: tuple[int, np.ndarray] | None = None

    # ------------------------------------------------------------------ events
    def _image(self) -> np.ndarray:
        f = self.session.frame
        if self._cache is None or self._cache[0] != f:
            self._cache = (f, self.load_image(f))
        return self._cache[1]

    def magnifier(self) -> Magnifier:
        """The locked magnifier, or one following the mouse, in the corner away from its centre."""
        if self.locked is not None:
            return self.locked
        h, w = self._image().shape[:2]
        x = min(max(self.mouse[0], 0), w - 1)
        y = min(max(self.mouse[1], 0), h - 1)
        size = (2 * self.radius + 1) * self.zoom
        origin = (0 if x > w / 2 else max(0, w - size), max(0, h - size))
        return Magnifier((float(x), float(y)), self.zoom, self.radius, origin)

    def on_mouse(self, event: int, x: int, y: int, flags: int = 0, param=None) -> None:
        """cv2 mouse callback: moves update the magnifier; a left click places the next keypoint."""
        if event == cv2.EVENT_MOUSEMOVE:
            self.mouse = (int(x), int(y))
        elif event == cv2.EVENT_LBUTTONDOWN:
            mag = self.locked
            if mag is not None and mag.contains(x, y):
                fx, fy = mag.to_frame(x, y)
                self.locked = None
            else:
                fx, fy = float(x), float(y)
            if self.session.click(fx, fy):
                self.on_change(self.session)

    def on_key(self, key: int) -> None:
        """Apply a key: the session's actions, plus the magnifier lock."""
        action, changed = self.session.handle_key(key)
        if action == "magnifier":
            self.locked = None if self.locked is not None else self.magnifier()
        if changed:
            self.on_change(self.session)

    # ------------------------------------------------------------------ drawing
    def render(self) -> np.ndarray:
        """The window picture: the frame with labels and fit, the HUD, and the magnifier inset."""
        s = self.session
        img = self.draw(self._image(), self.fit(s.frame), s.frame)
        name = s.keypoint_name
        nxt = f"next: {name} ({s.kp + 1}/{len(s.names)})" if name else "frame done"
        lab = s.current
        h = img.shape[0]
        draw_hud(img, [f"frame {s.frame} ({s.pos + 1}/{len(s.frames)}), {lab.count} labels | {nxt}"
                       + (" | magnifier locked" if self.locked else ""), KEY_HELP],
                 origin=(0, max(0, h - 48)), scale=0.42)
        mag = self.magnifier()
        inset = mag.render(self._image())
        ox, oy = mag.origin
        hh, ww = min(inset.shape[0], img.shape[0] - oy), min(inset.shape[1], img.shape[1] - ox)
        img[oy:oy + hh, ox:ox + ww] = inset[:hh, :ww]
        cv2.rectangle(img, (ox, oy), (ox + ww - 1, oy + hh - 1), (0, 0, 255) if self.locked else (255, 255, 255), 1)
        return img

    def step(self, wait_ms: int = 30) -> bool:
        """Show the picture and handle one key; False once the session is finished (q / Esc)."""
        self._imshow(self.title, self.render())
        key = self._waitkey(wait_ms)
        if key is not None and key >= 0:
            self.on_key(int(key))
        return not self.session.finished

    def run(self) -> None:
        """The loop: open the window, step until q / Esc or the window is closed."""
        cv2.namedWindow(self.title, cv2.WINDOW_AUTOSIZE)
        cv2.setMouseCallback(self.title, self.on_mouse)
        try:
            while self.step():
                if cv2.getWindowProperty(self.title, cv2.WND_PROP_VISIBLE) < 1:
                    break
        finally:
            try:
                cv2.destroyWindow(self.title)
            except cv2.error:
                pass
