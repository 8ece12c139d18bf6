"""What the user sees on each frame: the tracker's result drawn over it.

:class:`FrameDrawer` annotates one frame from one :class:`~tracker.pipeline.state.FrameResult`:
with a pose, the projected CAD model (shaded, :func:`tracker.render.draw_overlay`) with the
keypoints coloured by confidence; without one, the decoded keypoints as red circles; and a HUD
(fps, provider, preset, state, score, inliers, RMS and per-stage milliseconds). The frame loop
calls it once per frame; every drawing primitive lives in :mod:`tracker.render.draw`.
"""

from __future__ import annotations

import math

import numpy as np

from tracker.camera import Camera
from tracker.pipeline.state import FrameResult
from tracker.render import Renderer
from tracker.render.draw import draw_hud, draw_keypoint_marks, draw_overlay

HUD_STAGES = ("crop", "infer", "decode", "solve", "render")


def hud_lines(result: FrameResult, fps: float, provider: str, preset: str, k: int, render_ms: float = 0.0) -> list[str]:
    """The HUD's lines for one frame (``render_ms``: the previous frame's drawing time); with a
    pose, a fourth gives its standard deviations (rotation deg, translation mm; 'axis free' when
    the angle about a continuous symmetry axis is not observable)."""
    t = dict(result.timings, render=render_ms)
    rms = f"{result.rms:.1f}px" if math.isfinite(result.rms) else "-"
    lines = [
        f"{fps:5.1f} fps  {provider.replace('ExecutionProvider', '')}  preset {preset}",
        f"{result.status} ({result.mode})  score {result.score:.2f}  inliers {result.n_inliers}/{k}  rms {rms}",
        "ms: " + " ".join(f"{s} {t.get(s, 0.0):.1f}" for s in HUD_STAGES) + f"  total {t.get('total', 0.0):.1f}",
    ]
    sd = getattr(result, "pose_std", None)
    if sd:
        lines.append(f"std: rot {sd['rot_deg_total']:.2f} deg  trans {sd['trans_mm_total']:.1f} mm"
                     + ("  (axis angle free)" if sd.get("free_angle") else ""))
    return lines


class FrameDrawer:
    """Draws results over frames of one camera (see the module docstring).

    obj: ObjectModel; camera: the frames' Camera; provider, preset: HUD labels. The renderer is
    built and warmed up (numba load) on a blank frame here, so the first real frame is not slow.
    """

    def __init__(self, obj, camera: Camera, *, provider: str = "", preset: str = "", overlay_mode: str = "shaded"):
        self.obj, self.camera, self.overlay_mode = obj, camera, overlay_mode
        self.provider, self.preset = provider, preset
        self.k = len(obj.keypoint_names)
        self.hud_scale = 0.5 * min(1.0, camera.width / 640.0)  # the HUD fits small frames too
        self.renderer = Renderer(obj)
        z = 3.0 * max(float(obj.diameter), 1.0) * camera.fx / max(camera.width, 1)
        draw_overlay(np.zeros((camera.height, camera.width, 3), np.uint8), obj, camera, np.eye(3), np.array([0.0, 0.0, z]),
                     renderer=self.renderer)

    def __call__(self, image: np.ndarray, r: FrameResult, fps: float, render_ms: float = 0.0) -> np.ndarray:
        """An annotated copy of ``image`` (H, W, 3) uint8 BGR for result ``r``."""
        img = image.copy()
        if r.has_pose:
            draw_overlay(img, self.obj, self.camera, r.R_m2c, r.t_m2c, renderer=self.renderer, mode=self.overlay_mode,
                         keypoints_uv=r.uv, confidences=np.clip(r.conf, 0, 1))
        else:
            draw_keypoint_marks(img, r.uv, r.conf)
        draw_hud(img, hud_lines(r, fps, self.provider, self.preset, self.k, render_ms), scale=self.hud_scale)
        return img
