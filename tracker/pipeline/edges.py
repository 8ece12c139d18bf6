"""Edge evidence of a pose: how well the object's rendered outline and creases lie on the crop's
intensity edges. It breaks ties the keypoints cannot.

A plain box's network names corners from the faces' proportions, and two fits can explain the
same number of peaks: one right, one a confusable turn off (:mod:`tracker.objects.confusable`),
whose faces lie where the image has none. Their outlines differ, so the image decides. In the
same spirit RAPiD (Harris and Stennett 1990) and later edge-based trackers score a pose by the
image gradient along its projected model edges. Here it only ranks fits the keypoints already
accept; it never makes a pose. On a bottle, whose occluded end the network still places with
confidence, the rival is the fit of only the keypoints found where the motion prediction puts
them; its outline lies on the bottle where the fit pulled by the occluder's guesses does not.

:class:`EdgeScorer` renders the object in the crop at a pose (the z-buffer pass of
:class:`tracker.render.renderer.Renderer`, about the crop's 256 x 256 pixels). The model's edge
pixels are those where the object's mask ends (its silhouette) and those between two visible
faces whose normals differ by more than ``crease_deg``. The score is the mean over those pixels
of the crop's gradient magnitude, taken as the maximum within ``tolerance_px`` and capped at
the crop's own strong-edge level (half the 95th percentile of its gradient over every fourth
pixel, at least ``min_contrast`` grey levels a pixel). It lies in 0..1: 1 when every model edge
lies on a strong image edge. In a frame with one rival fit the check costs about half an ONNX
inference of the plain box's network (``benchmarks/test_bench_edges.py``).

Lens distortion is ignored here: the crop is of the image as seen, the render is ideal. At the
crop's scale the shift is a pixel or two, within the tolerance.
"""

from __future__ import annotations

import cv2
import numpy as np

from tracker.render.renderer import Renderer


class EdgeScorer:
    """Edge score of poses of ``obj`` in one crop at a time (see the module docstring).

    obj: an ObjectModel (vertices, faces). input_size: the crop's side in pixels. crease_deg: the
    angle between two faces' normals that makes their shared edge a crease. tolerance_px: how far
    from a model edge an image edge still counts. min_contrast: the least gradient (grey levels per
    pixel) taken as a strong edge, so a flat crop does not make noise count.
    """

    def __init__(self, obj, input_size: int, crease_deg: float = 30.0, tolerance_px: int = 2, min_contrast: float = 8.0):
        self.renderer = Renderer(obj, smooth=False, cull=False)
        self.size = int(input_size)
        self.cos_crease = float(np.cos(np.radians(crease_deg)))
        self.kernel = np.ones((2 * tolerance_px + 1, 2 * tolerance_px + 1), np.uint8)
        self.min_contrast = float(min_contrast)

    def image(self, crop: np.ndarray) -> np.ndarray:
        """The crop's edge strength, 0..1 (S, S) float32: its gradient magnitude, spread over the
        tolerance and capped at the strong-edge level. crop: (S, S, 3) uint8 BGR."""
        gray = cv2.cvtColor(crop, cv2.COLOR_BGR2GRAY).astype(np.float32)
        gx = cv2.Sobel(gray, cv2.CV_32F, 1, 0, ksize=3) * 0.25
        gy = cv2.Sobel(gray, cv2.CV_32F, 0, 1, ksize=3) * 0.25
        mag = cv2.magnitude(gx, gy)
        sample = mag[::2, ::2].ravel()  # the 95th percentile of every fourth pixel: close enough, 7x cheaper
        k = int(0.95 * (sample.size - 1))
        strong = max(self.min_contrast, 0.5 * float(np.partition(sample, k)[k]))
        return np.minimum(cv2.dilate(mag, self.kernel) / strong, 1.0)

    def model_edges(self, K_crop: np.ndarray, R: np.ndarray, t: np.ndarray) -> np.ndarray:
        """(S, S) bool: the object's silhouette and visible creases in the crop at pose (R, t);
        K_crop: (3, 3) the camera's intrinsics composed with the crop's affine."""
        s = self.size
        edges = np.zeros((s, s), bool)
        ras = self.renderer.raster(K_crop, s, s, np.asarray(R, np.float64), np.asarray(t, np.float64), False, pad=1)
        if ras is None:
            return edges
        fid = ras.fid
        n = self.renderer.face_normals
        inside = fid >= 0
        e = np.zeros(fid.shape, bool)
        for a, b in ((np.s_[1:, :], np.s_[:-1, :]), (np.s_[:, 1:], np.s_[:, :-1])):
            # a neighbour across the silhouette, or on a face turned by more than the crease angle
            # (sign-agnostic: meshes from the wild are not consistently wound); normals are compared
            # only where two faces meet, a few pixels along each triangle edge
            hit = inside[a] != inside[b]
            fa, fb = fid[a], fid[b]
            meet = inside[a] & inside[b] & (fa != fb)
            ia, ib = fa[meet], fb[meet]
            hit[meet] = np.abs(np.einsum("ij,ij->i", n[ia], n[ib])) < self.cos_crease
            e[a] |= hit
            e[b] |= hit
        h, w = fid.shape
        edges[ras.y0:ras.y0 + h, ras.x0:ras.x0 + w] = e[: s - ras.y0, : s - ras.x0]
        return edges

    def score(self, strength: np.ndarray, K_crop: np.ndarray, R: np.ndarray, t: np.ndarray) -> float:
        """Mean edge strength (:meth:`image`) under the model's edges at (R, t); 0 when none are in the crop."""
        edges = self.model_edges(K_crop, R, t)
        return float(strength[edges].mean()) if edges.any() else 0.0


def crop_intrinsics(K: np.ndarray, A: np.ndarray) -> np.ndarray:
    """(3, 3) intrinsics of the crop with affine A (2, 3) frame px -> crop px: [A; 0 0 1] @ K."""
    return np.vstack([np.asarray(A, np.float64), [0.0, 0.0, 1.0]]) @ np.asarray(K, np.float64)

