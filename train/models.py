"""Heatmap networks, one registry of named presets with the same I/O.

Every preset maps a normalised crop ``(N, 3, 256, 256)`` float32 to keypoint heatmaps
``(N, K, 64, 64)`` float32 (stride 4). In training mode ``forward`` returns a list with one
heatmap tensor per supervised output (every stack of the hourglass: intermediate supervision);
in eval mode it returns the last one only, which is what the exported ONNX graph outputs.

Presets
-------
``hourglass``
    Newell, Yang and Deng, "Stacked Hourglass Networks for Human Pose Estimation" (ECCV 2016):
    a 7x7/2 stem with pre-activation bottleneck residual modules down to 64x64, then ``stacks``
    hourglasses of depth 4 (64 -> 4 cells and back, nearest upsampling, a residual skip at every
    scale), each with its own 1x1 heatmap head and the remap of heatmaps and features back into
    the next stack. Default 2 stacks of 256 features (the paper uses 8; 2 keeps CPU training
    possible).
``lite``
    A real-time net in the spirit of MobileNetV2 (Sandler et al., CVPR 2018) inverted
    residuals and a light U-Net (Ronneberger et al., MICCAI 2015) decoder: a stride-4 stem of two
    3x3/2 convolutions, inverted-residual stages at 64, 32, 16 and 8 cells, then bilinear upsampling with
    1x1-projected skips back to 64x64 and a 1x1 head. Conv + BN + ReLU only, so ONNX Runtime
    fuses every block; about 0.3 GFLOPs per 256x256 crop at width 1. ``context`` (default 0) adds
    that many global-context blocks after the 8-cell stage: a 7x7 depthwise convolution and a 1x1
    projection, residual, each widening every cell's view by 6 cells (192 px). Without them a
    heatmap cell near one corner of the crop does not see the opposite corner; two of them let it
    see the whole crop, the context that tells one corner of a plain box from another. They start as the identity (last BN scale zero), so a
    backbone pretrained without them still fits. Meant for plain or symmetric objects, whose
    corners differ only in where they sit on the whole object.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Callable

import torch
import torch.nn as nn
import torch.nn.functional as F

from tracker.errors import KptrackError


def _init_head(conv: nn.Conv2d) -> None:
    """Heatmap heads start near zero (std 1e-3, as in Xiao et al., "Simple Baselines for Human
    Pose Estimation", ECCV 2018): the first iterations then learn peaks instead of first
    shrinking a random (N, K, 64, 64) output towards the mostly-zero targets."""
    nn.init.normal_(conv.weight, std=1e-3)
    nn.init.zeros_(conv.bias)


# ------------------------------------------------------------------ hourglass
class Residual(nn.Module):
    """Pre-activation bottleneck residual module of Newell et al. (BN-ReLU-conv 1x1, 3x3, 1x1)."""

    def __init__(self, cin: int, cout: int):
        super().__init__()
        mid = cout // 2
        self.body = nn.Sequential(
            nn.BatchNorm2d(cin), nn.ReLU(inplace=True), nn.Conv2d(cin, mid, 1, bias=False),
            nn.BatchNorm2d(mid), nn.ReLU(inplace=True), nn.Conv2d(mid, mid, 3, padding=1, bias=False),
            nn.BatchNorm2d(mid), nn.ReLU(inplace=True), nn.Conv2d(mid, cout, 1),
        )
        self.skip = nn.Identity() if cin == cout else nn.Conv2d(cin, cout, 1)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.body(x) + self.skip(x)


class Hourglass(nn.Module):
    """One recursive hourglass of ``depth`` halvings with ``features`` channels throughout."""

    def __init__(self, depth: int, features: int):
        super().__init__()
        self.up1 = Residual(features, features)
        self.low1 = Residual(features, features)
        self.low2 = Hourglass(depth - 1, features) if depth > 1 else Residual(features, features)
        self.low3 = Residual(features, features)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        up1 = self.up1(x)
        low = self.low3(self.low2(self.low1(F.max_pool2d(x, 2))))
        return up1 + F.interpolate(low, scale_factor=2.0, mode="nearest")


class StackedHourglass(nn.Module):
    """Stacked hourglass with intermediate supervision. (N,3,256,256) -> [(N,K,64,64)] * stacks."""

    def __init__(self, num_keypoints: int, stacks: int = 2, features: int = 256, depth: int = 4):
        super().__init__()
        if stacks < 1:
            raise ValueError("stacks must be >= 1")
        f = features
        self.stem = nn.Sequential(
            nn.Conv2d(3, 64, 7, stride=2, padding=3, bias=False), nn.BatchNorm2d(64), nn.ReLU(inplace=True),
            Residual(64, 128), nn.MaxPool2d(2), Residual(128, 128), Residual(128, f),
        )
        self.hgs = nn.ModuleList([Hourglass(depth, f) for _ in range(stacks)])
        self.feats = nn.ModuleList(
            [nn.Sequential(Residual(f, f), nn.Conv2d(f, f, 1, bias=False), nn.BatchNorm2d(f), nn.ReLU(inplace=True)) for _ in range(stacks)]
        )
        self.heads = nn.ModuleList([nn.Conv2d(f, num_keypoints, 1) for _ in range(stacks)])
        self.merge_feats = nn.ModuleList([nn.Conv2d(f, f, 1) for _ in range(stacks - 1)])
        self.merge_preds = nn.ModuleList([nn.Conv2d(num_keypoints, f, 1) for _ in range(stacks - 1)])
        for h in self.heads:
            _init_head(h)

    def forward(self, x: torch.Tensor):
        x = self.stem(x)
        outs = []
        for i, hg in enumerate(self.hgs):
            y = self.feats[i](hg(x))
            pred = self.heads[i](y)
            outs.append(pred)
            if i < len(self.hgs) - 1:
                x = x + self.merge_feats[i](y) + self.merge_preds[i](pred)
        return outs if self.training else outs[-1]


# ------------------------------------------------------------------ lite
def _cbr(cin: int, cout: int, k: int = 3, stride: int = 1, groups: int = 1, act: bool = True) -> nn.Sequential:
    layers: list[nn.Module] = [nn.Conv2d(cin, cout, k, stride=stride, padding=k // 2, groups=groups, bias=False), nn.BatchNorm2d(cout)]
    if act:
        layers.append(nn.ReLU(inplace=True))
    return nn.Sequential(*layers)


class InvertedResidual(nn.Module):
    """MobileNetV2 block: 1x1 expand, 3x3 depthwise (stride 1 or 2), 1x1 linear project."""

    def __init__(self, cin: int, cout: int, stride: int = 1, expand: int = 3):
        super().__init__()
        mid = cin * expand
        self.body = nn.Sequential(
            _cbr(cin, mid, 1), _cbr(mid, mid, 3, stride=stride, groups=mid), _cbr(mid, cout, 1, act=False)
        )
        self.use_skip = stride == 1 and cin == cout

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        y = self.body(x)
        return x + y if self.use_skip else y


class GlobalContext(nn.Module):
    """Residual 7x7 depthwise + 1x1 projection at the coarsest stage; starts as the identity."""

    def __init__(self, c: int, k: int = 7):
        super().__init__()
        self.body = nn.Sequential(_cbr(c, c, k, groups=c), _cbr(c, c, 1, act=False))
        nn.init.zeros_(self.body[1][1].weight)  # the projection's BN scale: y = 0 at the start

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return x + self.body(x)


def _ch(c: int, width: float) -> int:
    return max(8, int(round(c * width / 8.0)) * 8)


class LiteNet(nn.Module):
    """Stride-4 encoder with inverted residuals + light U-Net decoder. (N,3,256,256) -> [(N,K,64,64)]."""

    def __init__(self, num_keypoints: int, width: float = 1.0, expand: int = 3, context: int = 0):
        super().__init__()
        if context < 0:
            raise KptrackError(f"--context {context}: the number of global-context blocks must be >= 0.")
        c0, c1, c2, c3, c4 = (_ch(c, width) for c in (16, 32, 64, 96, 128))
        d = _ch(48, width)
        self.stem = nn.Sequential(_cbr(3, c0, 3, stride=2), _cbr(c0, c1, 3, stride=2))  # 64x64
        self.s64 = nn.Sequential(InvertedResidual(c1, c1, 1, expand))
        self.s32 = nn.Sequential(InvertedResidual(c1, c2, 2, expand), InvertedResidual(c2, c2, 1, expand))
        self.s16 = nn.Sequential(
            InvertedResidual(c2, c3, 2, expand), InvertedResidual(c3, c3, 1, expand), InvertedResidual(c3, c3, 1, expand)
        )
        self.s8 = nn.Sequential(InvertedResidual(c3, c4, 2, expand), InvertedResidual(c4, c4, 1, expand))
        self.context = nn.Sequential(*(GlobalContext(c4) for _ in range(context)))
        self.lat8 = _cbr(c4, d, 1)
        self.lat16 = _cbr(c3, d, 1)
        self.lat32 = _cbr(c2, d, 1)
        self.lat64 = _cbr(c1, d, 1)
        self.ref16 = _cbr(d, d, 3, groups=d)
        self.ref32 = _cbr(d, d, 3, groups=d)
        self.ref64 = nn.Sequential(_cbr(d, d, 3, groups=d), _cbr(d, d, 1))
        self.head = nn.Conv2d(d, num_keypoints, 1)
        _init_head(self.head)

    @staticmethod
    def _up(x: torch.Tensor) -> torch.Tensor:
        return F.interpolate(x, scale_factor=2.0, mode="bilinear", align_corners=False)

    def forward(self, x: torch.Tensor):
        f64 = self.s64(self.stem(x))
        f32 = self.s32(f64)
        f16 = self.s16(f32)
        f8 = self.context(self.s8(f16))
        y = self.lat8(f8)
        y = self.ref16(self._up(y) + self.lat16(f16))
        y = self.ref32(self._up(y) + self.lat32(f32))
        y = self.ref64(self._up(y) + self.lat64(f64))
        out = self.head(y)
        return [out] if self.training else out


# ------------------------------------------------------------------ registry
@dataclass(frozen=True)
class Preset:
    name: str
    build: Callable[..., nn.Module]
    defaults: dict
    description: str


PRESETS: dict[str, Preset] = {
    "lite": Preset("lite", LiteNet, {"width": 1.0, "expand": 3, "context": 0}, "real-time inverted-residual U-Net, ~0.3 GFLOPs"),
    "hourglass": Preset(
        "hourglass", StackedHourglass, {"stacks": 2, "features": 256, "depth": 4}, "Newell et al. stacked hourglass"
    ),
}


def model_kwargs(preset: str, **overrides) -> dict:
    """The preset's constructor keyword arguments with non-None ``overrides`` applied (saved in checkpoints)."""
    p = get_preset(preset)
    kw = dict(p.defaults)
    for k, v in overrides.items():
        if v is None:
            continue
        if k not in kw:
            raise KptrackError(f"--{k}: the {preset!r} preset has no such option; it takes {', '.join(sorted(kw))}.")
        kw[k] = v
    return kw


def get_preset(name: str) -> Preset:
    if name not in PRESETS:
        raise KptrackError(f"--preset {name!r}: unknown network preset. Choose one of: {', '.join(PRESETS)}.")
    return PRESETS[name]


def build_model(preset: str, num_keypoints: int, **kwargs) -> nn.Module:
    """Build a preset's network for ``num_keypoints`` heatmaps; ``kwargs`` override the preset defaults."""
    if num_keypoints < 1:
        raise KptrackError(f"a network needs at least one keypoint, got {num_keypoints}.")
    return get_preset(preset).build(num_keypoints, **model_kwargs(preset, **kwargs))


def count_flops(model: nn.Module, input_size: int = 256) -> float:
    """Multiply-adds x 2 of the convolutions for one (1, 3, S, S) input (a close lower bound of total FLOPs)."""
    total = 0

    def hook(m, inp, out):
        nonlocal total
        k = m.kernel_size[0] * m.kernel_size[1] * (m.in_channels // m.groups)
        total += 2 * out.numel() * k

    hs = [m.register_forward_hook(hook) for m in model.modules() if isinstance(m, nn.Conv2d)]
    was = model.training
    model.eval()
    with torch.no_grad():
        model(torch.zeros(1, 3, input_size, input_size))
    model.train(was)
    for h in hs:
        h.remove()
    return float(total)
