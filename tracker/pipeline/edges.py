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

:meth:`EdgeScorer.edge_points` gives the same model edge pixels with their 3D points and normals,
for the pose refinement on edges (:mod:`tracker.pipeline.edge_refine`), which does move a pose and
takes distortion into account.
"""

from __future__ import annotations

import cv2
import numpy as np

from tracker.render.kernels import edge_pixels_kernel
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
        self.normals = np.ascontiguousarray(self.renderer.face_normals, np.float64)
        self.size = int(input_size)
        self.cos_crease = float(np.cos(np.radians(crease_deg)))
        self.kernel = np.ones((2 * tolerance_px + 1, 2 * tolerance_px + 1), np.uint8)
        self.min_contrast = float(min_contrast)

    def image(self, crop: np.ndarray) -> np.ndarray:
        """The crop's edge strength, 0..1 (S, S) float32: its gradient magnitude, spread over the
        tolerance and capped at the strong-edge level. crop: (S, S, 3) uint8 BGR."""
        _, _, mag = self.gradients(crop)
        return np.minimum(cv2.dilate(mag, self.kernel) / self.strong_level(mag), 1.0)

    @staticmethod
    def gradients(crop: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        """(gx, gy, magnitude), each (S, S) float32 in grey levels a pixel, of a crop (S, S, 3) uint8 BGR."""
        gray = cv2.cvtColor(crop, cv2.COLOR_BGR2GRAY).astype(np.float32)
        gx = cv2.Sobel(gray, cv2.CV_32F, 1, 0, ksize=3) * 0.25
        gy = cv2.Sobel(gray, cv2.CV_32F, 0, 1, ksize=3) * 0.25
        return gx, gy, cv2.magnitude(gx, gy)

    def strong_level(self, mag: np.ndarray) -> float:
        """The crop's strong-edge level from its gradient magnitude ``mag`` (S, S): half the 95th
        percentile over every fourth pixel, at least ``min_contrast``."""
        sample = mag[::2, ::2].ravel()  # the 95th percentile of every fourth pixel: close enough, 7x cheaper
        k = int(0.95 * (sample.size - 1))
        return max(self.min_contrast, 0.5 * float(np.partition(sample, k)[k]))

    def model_edges(self, K_crop: np.ndarray, R: np.ndarray, t: np.ndarray) -> np.ndarray:
        """(S, S) bool: the object's silhouette and visible creases in the crop at pose (R, t);
        K_crop: (3, 3) the camera's intrinsics composed with the crop's affine."""
        s = self.size
        edges = np.zeros((s, s), bool)
        ras = self.renderer.raster(K_crop, s, s, np.asarray(R, np.float64), np.asarray(t, np.float64), False, pad=1)
        if ras is None:
            return edges
        e = self._edge_pixels(ras.fid)
        h, w = e.shape
        edges[ras.y0:ras.y0 + h, ras.x0:ras.x0 + w] = e[: s - ras.y0, : s - ras.x0]
        return edges

    def edge_points(self, K_crop: np.ndarray, R: np.ndarray, t: np.ndarray, max_points: int):
        """The model's edge pixels on the object at (R, t), at most ``max_points`` spread along
        them: (crop px (N, 2) float64, their camera-frame points (N, 3) mm from the z-buffer, unit
        normals of the edges in the crop (N, 2), and (N, 2) crop px from each pixel's centre to the
        outline it marks: outward on the silhouette, 0 on creases), or None when none
        lands in the crop. The normal is the direction across which the rendered mask and face
        normals change most."""
        s = self.size
        R, t = np.asarray(R, np.float64), np.asarray(t, np.float64)
        ras = self.renderer.raster(K_crop, s, s, R, t, False, pad=2)
        if ras is None:
            return None
        fid = ras.fid
        inside = fid >= 0
        e = self._edge_pixels(fid) & inside
        e[:, ras.x0 + np.arange(fid.shape[1]) >= s] = False
        e[ras.y0 + np.arange(fid.shape[0]) >= s, :] = False
        ys, xs = np.nonzero(e)
        if len(ys) == 0:
            return None
        if len(ys) > max_points:
            pick = np.linspace(0, len(ys) - 1, max_points).round().astype(int)
            ys, xs = ys[pick], xs[pick]
        # normals: the structure tensor of the mask and the camera-facing face normals, from the
        # Sobel differences of the 3 x 3 neighbourhood of each point (only there: cheaper than whole images)
        nb = np.pad(fid, 1, constant_values=-1)[ys[:, None, None] + np.arange(3)[None, :, None],
                                                  xs[:, None, None] + np.arange(3)[None, None, :]]
        ins = nb >= 0
        nrm = self.renderer.face_normals[np.maximum(nb, 0)] @ R.T
        nrm *= -np.sign(nrm[..., 2:3] + 1e-12)
        chans = np.concatenate([ins[..., None], nrm * ins[..., None]], axis=3)  # (N, 3, 3, 4)
        gx = np.einsum("nijc,ij->nc", chans, _SOBEL_X)
        gy = np.einsum("nijc,ij->nc", chans, _SOBEL_X.T)
        jxx, jxy, jyy = (gx * gx).sum(1), (gx * gy).sum(1), (gy * gy).sum(1)
        theta = 0.5 * np.arctan2(2.0 * jxy, jxx - jyy)
        n = np.stack([np.cos(theta), np.sin(theta)], axis=1)
        # A silhouette pixel (one with a 4-neighbour outside) has its centre inside the outline by
        # a distance spread evenly over 0 .. max(|n_x|, |n_y|) px (n the outline's unit normal): the
        # neighbour across in x lies |n_x| further out, the one across in y |n_y|. Half that, outward.
        inward = np.stack([gx[:, 0], gy[:, 0]], axis=1)
        sil = ~(ins[:, 0, 1] & ins[:, 2, 1] & ins[:, 1, 0] & ins[:, 1, 2])
        norm = np.linalg.norm(inward, axis=1)
        unit = inward / np.maximum(norm, 1e-12)[:, None]
        half = 0.5 * np.abs(unit).max(axis=1)
        bias = np.where((sil & (norm > 0))[:, None], -half[:, None] * unit, 0.0)
        px = np.stack([xs + ras.x0, ys + ras.y0], axis=1).astype(np.float64)
        z = ras.zbuf[ys, xs]
        Kinv = np.linalg.inv(np.asarray(K_crop, np.float64))
        Xc = (np.concatenate([px, np.ones((len(px), 1))], axis=1) @ Kinv.T) * z[:, None]
        return px, Xc, n, bias

    def _edge_pixels(self, fid: np.ndarray) -> np.ndarray:
        """(h, w) bool, a raster's face ids -> its silhouette and crease pixels, both sides
        (:func:`tracker.render.kernels.edge_pixels_kernel`)."""
        out = np.empty(fid.shape, bool)
        edge_pixels_kernel(fid, self.normals, self.cos_crease, out)
        return out

    def score(self, strength: np.ndarray, K_crop: np.ndarray, R: np.ndarray, t: np.ndarray) -> float:
        """Mean edge strength (:meth:`image`) under the model's edges at (R, t); 0 when none are in the crop."""
        edges = self.model_edges(K_crop, R, t)
        return float(strength[edges].mean()) if edges.any() else 0.0


_SOBEL_X = np.array([[-1.0, 0.0, 1.0], [-2.0, 0.0, 2.0], [-1.0, 0.0, 1.0]])


def crop_intrinsics(K: np.ndarray, A: np.ndarray) -> np.ndarray:
    """(3, 3) intrinsics of the crop with affine A (2, 3) frame px -> crop px: [A; 0 0 1] @ K."""
    return np.vstack([np.asarray(A, np.float64), [0.0, 0.0, 1.0]]) @ np.asarray(K, np.float64)

