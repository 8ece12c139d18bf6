"""Software z-buffer rendering of an :class:`~tracker.objects.ObjectModel` and drawing on frames.

Modules: :mod:`~tracker.render.kernels` (the numba projection, rasterisation and shading
kernels), :mod:`~tracker.render.reference` (their numpy twins, for the tests),
:mod:`~tracker.render.mesh_prep` (normals, culling signs, crease edges),
:mod:`~tracker.render.renderer` (:class:`Renderer`, :class:`RenderOutput`),
:mod:`~tracker.render.visibility` (:func:`keypoint_visibility`) and
:mod:`~tracker.render.draw` (overlays, axes, keypoints and the HUD on BGR frames).
"""

from tracker.render.draw import draw_axes, draw_hud, draw_keypoints, draw_overlay
from tracker.render.mesh_prep import corner_normals, cull_signs
from tracker.render.reference import rasterize_ref, shade_ref
from tracker.render.renderer import RenderOutput, Renderer
from tracker.render.visibility import keypoint_visibility

__all__ = [
    "RenderOutput",
    "Renderer",
    "corner_normals",
    "cull_signs",
    "draw_axes",
    "draw_hud",
    "draw_keypoints",
    "draw_overlay",
    "keypoint_visibility",
    "rasterize_ref",
    "shade_ref",
]
