"""Test doubles shared by the tracker tests: tiny ONNX heatmap models and an oracle backend.

Nothing here is used by the library. Models are built with torch.onnx.export (tests may import
torch; tracker/ may not) and carry kptrack ModelMeta metadata like an exported model.
"""

from __future__ import annotations

import math
import warnings
from pathlib import Path

import cv2
import numpy as np

from tracker.geometry.crop import HEATMAP_SIZE, INPUT_SIZE, frame_to_heatmap
from tracker.formats.modelmeta import ModelMeta


def _export(net, path: Path, meta: ModelMeta, input_size: int = INPUT_SIZE, output_names=("heatmaps",)) -> Path:
    import onnx
    import torch

    net.eval()
    path = Path(path)
    with torch.no_grad(), warnings.catch_warnings():
        warnings.simplefilter("ignore", DeprecationWarning)  # the TorchScript exporter: fast, fine for tiny nets
        torch.onnx.export(
            net, torch.zeros(1, 3, input_size, input_size), str(path), input_names=["input"], output_names=list(output_names),
            dynamic_axes={"input": {0: "n"}, **{o: {0: "n"} for o in output_names}}, opset_version=17, dynamo=False,
        )
    m = onnx.load(str(path))
    for k, v in meta.to_dict().items():
        e = m.metadata_props.add()
        e.key, e.value = k, v
    onnx.save(m, str(path))
    return path


def make_conv_model(path, names=("a", "b", "c", "d"), *, seed=0, two_outputs=False, meta_overrides=None, out_channels=None):
    """A small random conv net 256 -> 64 heatmaps, exported to ONNX. Returns (path, torch net, meta)."""
    import torch

    torch.manual_seed(seed)
    k = out_channels or len(names)

    class Net(torch.nn.Module):
        def __init__(self):
            super().__init__()
            self.c1 = torch.nn.Conv2d(3, 8, 3, stride=2, padding=1)
            self.c2 = torch.nn.Conv2d(8, k, 3, stride=2, padding=1)

        def forward(self, x):
            h = torch.relu(self.c1(x))
            out = self.c2(h)
            if two_outputs:
                return out * 0.5, out  # an "intermediate" head first; the last output is the heatmaps
            return out

    meta = ModelMeta(keypoint_names=tuple(names), **(meta_overrides or {}))
    net = Net()
    outs = ("aux", "heatmaps") if two_outputs else ("heatmaps",)
    _export(net, path, meta, output_names=outs)
    return Path(path), net, meta


def make_color_dot_model(path, colors_bgr, names, *, tau=60.0, sigma_cells=1.2):
    """An ONNX 'network' that finds keypoints drawn as coloured dots.

    Heatmap k = Gaussian blur of relu(1 - ||pixel - colour_k||^2 / tau^2), dilated by a 5x5 max
    filter (so thin dots survive) and resampled to the heatmap grid with align_corners=True, which
    is exactly the UDP crop->heatmap mapping of tracker.geometry.crop (a strided pool would be biased). With
    metadata mean 0 / std 1 / BGR the network sees raw BGR values. On frames where each keypoint
    is a dot of its own colour, it behaves like a perfect detector, so the whole tracker (ONNX
    Runtime included) can be tested end to end without a trained model.
    """
    import torch

    colors = torch.tensor(np.asarray(colors_bgr, np.float32))  # (K, 3) BGR
    r = int(math.ceil(3 * sigma_cells))
    ax = torch.arange(-r, r + 1, dtype=torch.float32)
    g = torch.exp(-(ax[:, None] ** 2 + ax[None, :] ** 2) / (2 * sigma_cells ** 2))
    k = len(names)

    class Net(torch.nn.Module):
        def __init__(self):
            super().__init__()
            self.register_buffer("colors", colors.view(1, k, 3, 1, 1))
            self.register_buffer("blur", g.view(1, 1, 2 * r + 1, 2 * r + 1).repeat(k, 1, 1, 1))

        def forward(self, x):  # x: (N, 3, S, S) raw BGR 0..255
            d2 = ((x.unsqueeze(1) - self.colors) ** 2).sum(2)  # (N, K, S, S)
            m = torch.relu(1.0 - d2 / (tau * tau))
            m = torch.nn.functional.max_pool2d(m, 5, stride=1, padding=2)
            m = torch.nn.functional.interpolate(m, size=(HEATMAP_SIZE, HEATMAP_SIZE), mode="bilinear", align_corners=True)
            return torch.nn.functional.conv2d(m, self.blur, padding=r, groups=k)

    meta = ModelMeta(keypoint_names=tuple(names), mean=(0.0, 0.0, 0.0), std=(1.0, 1.0, 1.0), channel_order="BGR")
    _export(Net(), path, meta)
    return Path(path)


# Well separated BGR colours (pairwise distance >= 127) for up to 12 keypoints.
DOT_COLORS = [
    (0, 0, 255), (0, 255, 0), (255, 0, 0), (0, 255, 255), (255, 0, 255), (255, 255, 0),
    (255, 255, 255), (0, 128, 255), (255, 128, 0), (128, 0, 255), (0, 255, 128), (128, 255, 0),
]


def draw_dots(image, uv, colors=DOT_COLORS, radius=6, visible=None):
    """Draw keypoints uv (K, 2) as filled dots of their colours (subpixel, antialiased)."""
    shift = 4
    for k, (u, v) in enumerate(np.asarray(uv)):
        if visible is not None and not visible[k]:
            continue
        if not (np.isfinite(u) and np.isfinite(v)):
            continue
        c = (int(round(u * (1 << shift))), int(round(v * (1 << shift))))
        cv2.circle(image, c, radius << shift, tuple(int(x) for x in colors[k]), -1, cv2.LINE_AA, shift)
    return image


class OracleHeatmaps:
    """Test-double heatmap backend: Gaussian heatmaps at the TRUE keypoints.

    keypoints_uv_of(frame_index) -> (K, 2) frame pixels of the true keypoints, or None when the
    object is hidden (all heatmaps empty). The keypoints are mapped through the crop affine the
    tracker passes, exactly as the decoder maps them back, so the tracker's whole geometry is
    exercised. Same call signature as tracker.pipeline.infer.OnnxHeatmapModel.
    """

    def __init__(self, names, keypoints_uv_of, *, sigma=1.5, peak=1.0, nan_frames=()):
        self.meta = ModelMeta(keypoint_names=tuple(names))
        self.provider = "oracle"
        self.path = Path("oracle")
        self._uv_of = keypoints_uv_of
        self.sigma, self.peak = sigma, peak
        self.nan_frames = set(nan_frames)
        self.calls: list[tuple[int, np.ndarray]] = []
        g = np.arange(HEATMAP_SIZE, dtype=np.float64)
        self._gx, self._gy = np.meshgrid(g, g)

    def __call__(self, crops, affines=None, frame_index=None):
        n = len(crops)
        k = self.meta.num_keypoints
        out = np.zeros((n, k, HEATMAP_SIZE, HEATMAP_SIZE), np.float32)
        for i in range(n):
            self.calls.append((frame_index, np.array(affines[i])))
            if frame_index in self.nan_frames:
                out[i] = np.nan
                continue
            uv = self._uv_of(frame_index)
            if uv is None:
                continue
            h = frame_to_heatmap(uv, affines[i])
            for j in range(k):
                x, y = h[j]
                if not (-3 <= x <= HEATMAP_SIZE + 2 and -3 <= y <= HEATMAP_SIZE + 2):
                    continue
                out[i, j] = self.peak * np.exp(-((self._gx - x) ** 2 + (self._gy - y) ** 2) / (2 * self.sigma ** 2))
        return out

    def warmup(self, n=1):
        pass


def dot_gt_pose(i):
    """A smooth trajectory for dot sequences: turning and drifting ~600 mm in front of the camera."""
    from tracker.geometry import so3_exp

    R = so3_exp(np.array([0.4 + 0.01 * i, 0.6 + 0.015 * i, 0.1]))
    t = np.array([30.0 * np.sin(i / 15), 20.0 * np.cos(i / 20), 600.0 + 40.0 * np.sin(i / 25)])
    return R, t


def dot_frames(obj, cam, n, pose_of=dot_gt_pose, hidden=lambda i: False, radius=4):
    """Frames (H, W, 3) uint8 showing the object's keypoints as coloured dots on a dark background."""
    rng = np.random.default_rng(0)
    for i in range(n):
        img = np.full((cam.height, cam.width, 3), 30, np.uint8)
        img += rng.integers(0, 8, img.shape, dtype=np.uint8)
        if not hidden(i):
            R, t = pose_of(i)
            draw_dots(img, cam.project(obj.keypoints, R, t), radius=radius)
        yield img


def write_dot_video(path, obj, cam, n, fps=30.0, **kw):
    """An MJPEG .avi of dot_frames (lossy but mild at quality 95)."""
    w = cv2.VideoWriter(str(path), cv2.CAP_OPENCV_MJPEG, cv2.VideoWriter_fourcc(*"MJPG"), fps, (cam.width, cam.height))
    w.set(cv2.VIDEOWRITER_PROP_QUALITY, 95)
    for img in dot_frames(obj, cam, n, **kw):
        w.write(img)
    w.release()
    return Path(path)


def count_video_frames(path) -> int:
    """Frames cv2.VideoCapture can read from ``path`` (0 if it does not open)."""
    cap = cv2.VideoCapture(str(path))
    n = 0
    while cap.read()[0]:
        n += 1
    cap.release()
    return n
