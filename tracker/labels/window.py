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
        """The locked magnifier, or one following the mouse; its inset sits at the top of the side panel."""
        if self.locked is not None:
            return self.locked
        h, w = self._image().shape[:2]
        x = min(max(self.mouse[0], 0), w - 1)
        y = min(max(self.mouse[1], 0), h - 1)
        return Magnifier((float(x), float(y)), self.zoom, self.radius, (w, 0))

    def on_mouse(self, event: int, x: int, y: int, flags: int = 0, param=None) -> None:
        """cv2 mouse callback: moves over the frame update the magnifier; a left click on the frame,
        or inside the locked magnifier's inset, places the next keypoint."""
        h, w = self._image().shape[:2]
        on_frame = 0 <= x < w and 0 <= y < h
        if event == cv2.EVENT_MOUSEMOVE and on_frame:
            self.mouse = (int(x), int(y))
        elif event == cv2.EVENT_LBUTTONDOWN:
            mag = self.locked
            if mag is not None and mag.contains(x, y):
                fx, fy = mag.to_frame(x, y)
                self.locked = None
            elif on_frame:
                fx, fy = float(x), float(y)
            else:
                return
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
        """The window picture: the frame with its labels and fit (and, once a pose is fitted, a
        cyan ring where the next keypoint projects), and a side panel with the magnifier inset,
        the cursor's state and the keys."""
        s = self.session
        fit = self.fit(s.frame)
        frame = self.draw(self._image(), fit, s.frame)
        h, w = frame.shape[:2]
        if fit.ok and s.keypoint_name is not None and fit.projected is not None:
            x, y = fit.projected[s.kp]
            if np.isfinite(x) and np.isfinite(y) and abs(x) < 1e5 and abs(y) < 1e5:
                cv2.circle(frame, (int(round(x)), int(round(y))), 9, (255, 255, 0), 1, cv2.LINE_AA)
        mag = self.magnifier()
        inset = mag.render(self._image())
        lab = s.current
        lines = [f"frame {s.frame} ({s.pos + 1}/{len(s.frames)})", f"{lab.count} labels",
                 f"next: {s.keypoint_name} ({s.kp + 1}/{len(s.names)})" if s.keypoint_name else "frame done",
                 "magnifier: locked, click in it" if self.locked else "magnifier: follows the mouse", "", *KEY_HELP]
        canvas = np.zeros((max(h, mag.size + 18 * len(lines) + 12), w + mag.size, 3), np.uint8)
        canvas[:h, :w] = frame
        canvas[:mag.size, w:w + mag.size] = inset
        cv2.rectangle(canvas, (w, 0), (w + mag.size - 1, mag.size - 1), (0, 0, 255) if self.locked else (255, 255, 255), 1)
        for i, line in enumerate(lines):
            cv2.putText(canvas, line, (w + 6, mag.size + 18 * (i + 1)), cv2.FONT_HERSHEY_SIMPLEX, 0.42, (255, 255, 255), 1,
                        cv2.LINE_AA)
        return canvas

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
