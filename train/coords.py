"""Model-coordinate maps: a dense auxiliary target for keypoint training (``--coord-weight``).

A heatmap names a keypoint at one spot of the crop; every other cell of the object gets no word
on which part of the object it shows. On a textured box the network then learns where corners
are long before it learns which corner is which: on the recipe's 12000-iteration box run, a
quarter of the visible keypoints sat more than 12 px off, three in four of them on another
corner, mostly the one across the box's shortest edge (benchmarks/RESULTS.md). Dense
correspondences are how pose networks such as Pix2Pose, DPOD and GDR-Net learn the object's
geometry: every object pixel is told where on the model it lies.

For each training crop whose record has a pose (a BOP record: synthetic data or the user's
ground truth), the object's depth is rendered (:meth:`tracker.render.Renderer.render_depth`, at
half the frame's resolution), back-projected into model coordinates, and warped with the crop's
affine onto the heatmap grid. The target has four channels per cell: the object's coverage
(0..1) and its model x, y, z scaled by the object's bounding box to [-1, 1]. A 1x1 head
(:class:`CoordHead`) reads the decoder's features at half the heatmap's resolution (lite: the
32x32 stage; hourglass: the last stack's features), through a forward hook, so the network, its
checkpoint and its ONNX export are unchanged; :func:`coord_loss` scores it against the target
pooled to its grid. Which corner is which is decided at the coarse stages; read at the 64x64
features that draw the peaks, the same head cost the box 5 points of PCK@2px
(benchmarks/RESULTS.md). The head exists only during training.

On by default (:func:`resolve_weight`) for objects without symmetries. For an object with
symmetries the image does not define a pixel's model coordinates, but it does define them under
the equivalent pose that is canonical for the crop (:meth:`tracker.objects.symmetry_keypoints.SymmetricLabels.labels_and_pose`),
the one its keypoint labels come from; the target is rendered from that pose, so two crops that
look alike get the same coordinates. Such objects train without the head unless given a weight.
"""

from __future__ import annotations

from types import SimpleNamespace

import cv2
import numpy as np
import torch
import torch.nn as nn
import torch.nn.functional as F

from tracker.errors import KptrackError
from tracker.geometry.crop import HEATMAP_SIZE, INPUT_SIZE, crop_to_heatmap_scale
from tracker.render import Renderer
from train.models import LiteNet, StackedHourglass

CHANNELS = ("mask", "x", "y", "z")
RENDER_SCALE = 0.5  # depth rendered at half the frame's resolution: still finer than the heatmap grid


#: ``--coord-weight`` when not given, for an object without symmetries (RESULTS: "Model coordinates").
AUTO_WEIGHT = 20.0


def resolve_weight(given: float | None, symmetric: bool, resume: dict | None = None, min_loss: bool = False) -> float:
    """The coordinate loss's weight for a run: ``given``; or, when None, :data:`AUTO_WEIGHT` for an
    object without symmetries and 0 for one with them or when resuming a run that trained without
    the head. A symmetric object's coordinates are those of the equivalent canonical for each
    crop, like its keypoints; with ``min_loss`` (``--symmetric-loss min``: the network picks the
    equivalent per crop) they are not defined, and a positive ``given`` is refused."""
    if given is None:
        return 0.0 if symmetric or (resume is not None and "coord_head" not in resume) else AUTO_WEIGHT
    if given > 0 and symmetric and min_loss:
        raise KptrackError(f"--coord-weight {given} with --symmetric-loss min: the loss lets the network pick a symmetric "
                           "equivalent per crop, so a pixel's model coordinates are not defined. Train with "
                           "--symmetric-loss canonical, or with --coord-weight 0.")
    return float(given)


def box_frame(obj) -> tuple[np.ndarray, np.ndarray]:
    """(centre (3,), half extent (3,), at least 1e-6) of an object's bounding box, mm: model
    coordinates are scaled to [-1, 1] by them."""
    lo, size = np.asarray(obj.bbox_min, np.float64), np.asarray(obj.bbox_size, np.float64)
    return lo + 0.5 * size, np.maximum(0.5 * size, 1e-6)


class CoordTargets:
    """Renders a record's coordinate target for one crop; one renderer per process, built lazily
    (DataLoader workers build their own)."""

    def __init__(self, obj, heatmap_size: int = HEATMAP_SIZE, input_size: int = INPUT_SIZE):
        self.obj = obj
        self.heatmap_size = int(heatmap_size)
        self.input_size = int(input_size)
        self.centre, self.half = box_frame(obj)
        self._renderer = None

    def __getstate__(self) -> dict:
        return dict(self.__dict__, _renderer=None)

    def _render_depth(self, K: np.ndarray, w: int, h: int, R: np.ndarray, t: np.ndarray) -> np.ndarray:
        if self._renderer is None:
            self._renderer = Renderer(self.obj)
        depth, _ = self._renderer.render_depth(SimpleNamespace(K=K, width=w, height=h), R, t)
        return depth

    def __call__(self, pose: tuple[np.ndarray, np.ndarray, np.ndarray], image_hw: tuple[int, int], A: np.ndarray) -> np.ndarray:
        """(4, Hm, Hm) float32 target of the crop ``A`` (2x3, frame px -> crop px) of a frame of size
        ``image_hw`` showing the object at ``pose`` = (R_m2c, t_m2c mm, K)."""
        R, t, K = (np.asarray(p, np.float64) for p in pose)
        s = RENDER_SCALE
        # pixel centres: u_small = s * u + (s - 1) / 2
        S = np.array([[s, 0.0, 0.5 * (s - 1.0)], [0.0, s, 0.5 * (s - 1.0)], [0.0, 0.0, 1.0]])
        h, w = (max(1, int(round(d * s))) for d in image_hw)
        Ks = S @ K
        stack = model_coordinates(self._render_depth(Ks, w, h, R, t.reshape(3)), Ks, R, t, self.centre, self.half)
        # frame px -> heatmap cells, through the small frame: cells = c * (A @ [S^-1 u_small])
        c = crop_to_heatmap_scale(self.input_size, self.heatmap_size)
        A3 = np.vstack([np.asarray(A, np.float64), [0.0, 0.0, 1.0]])
        M = (c * (A3 @ np.linalg.inv(S)))[:2]
        g = self.heatmap_size
        warped = cv2.warpAffine(stack, M, (g, g), flags=cv2.INTER_LINEAR, borderMode=cv2.BORDER_CONSTANT, borderValue=0)
        return masked_mean_channels(np.moveaxis(warped, -1, 0))


def model_coordinates(depth: np.ndarray, K: np.ndarray, R: np.ndarray, t: np.ndarray, centre: np.ndarray,
                      half: np.ndarray) -> np.ndarray:
    """(H, W, 4) float32 [coverage, x, y, z] of a depth map (H, W) mm (0 = background) rendered with
    intrinsics K at pose (R, t): each object pixel back-projected into the model frame, scaled to
    [-1, 1] by the box ``centre`` +- ``half``; zero off the object."""
    out = np.zeros((*depth.shape, 4), np.float32)
    v, u = np.nonzero(depth > 0)
    if len(u):
        z = depth[v, u].astype(np.float64)
        ray = np.linalg.solve(np.asarray(K, np.float64), np.stack([u, v, np.ones_like(u)]).astype(np.float64))  # (3, n)
        p_model = (np.asarray(R, np.float64).T @ (ray * (z / ray[2]) - np.asarray(t, np.float64).reshape(3, 1))).T
        out[v, u, 0] = 1.0
        out[v, u, 1:] = (p_model - centre) / half  # times the coverage: resampling averages, then divides
    return out


def masked_mean_channels(t: np.ndarray) -> np.ndarray:
    """(4, H, W): channels 1-3 hold coverage-weighted sums after a resampling; divide them by the
    coverage (channel 0) so they are coordinates again (0 off the object)."""
    out = np.array(t, dtype=np.float32, copy=True)
    m = out[0]
    ok = m > 1e-3
    out[1:] = np.where(ok, out[1:] / np.where(ok, m, 1.0), 0.0)
    out[0] = np.clip(m, 0.0, 1.0)
    return out


def half_resolution(t: torch.Tensor) -> torch.Tensor:
    """(N, 4, H, W) targets -> (N, 4, H/2, W/2): the coverage averaged, the coordinates averaged
    over the object's part of each 2x2 block (the low-resolution phase, ``--low-res``)."""
    m = t[:, :1]
    pm = F.avg_pool2d(m, 2)
    pxyz = F.avg_pool2d(t[:, 1:] * m, 2)
    xyz = torch.where(pm > 1e-3, pxyz / pm.clamp_min(1e-3), torch.zeros_like(pxyz))
    return torch.cat([pm, xyz], dim=1)


def coord_loss(pred: torch.Tensor, target: torch.Tensor, has: torch.Tensor) -> torch.Tensor:
    """Auxiliary loss of predictions ``pred`` (N, 4, h, w) against targets ``target`` (N, 4, H, W),
    H = h * 2^k (pooled to the prediction's grid by :func:`half_resolution`), over the crops whose
    record has a pose (``has`` (N,) bool): the squared error of the coverage averaged over the
    cells, plus the squared error of x, y, z summed over the axes and averaged over the object's
    cells (coverage > 0.5). Zero when no crop has a target."""
    while target.shape[-1] > pred.shape[-1] and target.shape[-1] % 2 == 0 and target.shape[-2] % 2 == 0:
        target = half_resolution(target)
    if pred.shape[-2:] != target.shape[-2:]:
        raise ValueError(f"coordinate maps: prediction {tuple(pred.shape)} against target {tuple(target.shape)}")
    keep = has.to(pred.device)
    if not bool(keep.any()):
        return pred.sum() * 0.0
    p, t = pred[keep], target[keep]
    mask_term = ((p[:, 0] - t[:, 0]) ** 2).mean()
    on = (t[:, 0] > 0.5).float()
    xyz_term = (((p[:, 1:] - t[:, 1:]) ** 2).sum(dim=1) * on).sum() / on.sum().clamp_min(1.0)
    return mask_term + xyz_term


def feature_tap(model: nn.Module) -> tuple[nn.Module, int]:
    """(the module whose output the coordinate head reads, its channels): the lite network's
    32x32 decoder stage, or the hourglass's last stack's features."""
    if isinstance(model, LiteNet):
        return model.ref32, model.head.in_channels
    if isinstance(model, StackedHourglass):
        return model.feats[-1], model.heads[-1].in_channels
    raise KptrackError(f"--coord-weight: no coordinate head is defined for the network {type(model).__name__}. "
                       "Train without --coord-weight.")


class CoordHead(nn.Module):
    """A 1x1 convolution from the tapped features (:func:`feature_tap`) to the four coordinate
    channels. Training only: not part of the network or its export."""

    def __init__(self, model: nn.Module):
        super().__init__()
        _, channels = feature_tap(model)
        self.conv = nn.Conv2d(channels, len(CHANNELS), 1)
        nn.init.normal_(self.conv.weight, std=1e-3)
        nn.init.zeros_(self.conv.bias)

    def forward(self, features: torch.Tensor) -> torch.Tensor:
        return self.conv(features)


class WithCoords(nn.Module):
    """The network and its coordinate head as one module (one DistributedDataParallel wrapper,
    one parameter list): ``forward(x)`` returns (the network's training outputs, the coordinate
    maps read from the tapped features)."""

    def __init__(self, model: nn.Module, coord_head: CoordHead):
        super().__init__()
        self.model = model
        self.coord_head = coord_head
        self._features: torch.Tensor | None = None
        feature_tap(model)[0].register_forward_hook(self._keep)

    def _keep(self, _module, _inputs, output) -> None:
        self._features = output

    def forward(self, x: torch.Tensor):
        outs = self.model(x)
        feats, self._features = self._features, None
        return outs, self.coord_head(feats)
