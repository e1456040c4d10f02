"""Slow fusion (Karpathy et al. 2014; as a 3D CNN, Tran et al. 2015 C3D / 2018 R3D): 3D
convolutions throughout, each stage striding over time as well as space, so temporal context
grows gradually from a few frames at the first layer to the whole clip at the top.

A small R3D-like net (~0.9 M parameters): stem ``3×3×3`` (spatial stride 2) and three residual
stages with stride 2 in time and space, then a mean over the real time steps (mask-aware), an
average pool to a coarse ``grid × grid`` spatial map and a linear classifier. The grid keeps
*where* motion happens: with a global spatial mean, clockwise and anticlockwise rotation look
alike once the receptive field no longer spans pivot and tip (measured: rotate_cw/ccw recall
0.5–0.6 with ``grid=1``). The best default when motion defines the class.

``backbone="efficientnet_lite0"`` swaps the trunk for ImageNet-initialised EfficientNet-Lite0
made temporal (:mod:`vidclass.models.lite0_video`): zero-initialised temporal taps after every
block and time halved after the stride-4, -8 and -16 stages, so on a clip of identical frames
it starts from the pretrained 2D features. ``freeze_backbone`` trains the taps and the head only.
"""

from __future__ import annotations

from collections.abc import Sequence

import torch
from torch import nn

from vidclass.models.backbones import check_video_backbone
from vidclass.models.blocks import BasicBlock3d, conv3d_bn_relu, masked_grid_pool3d
from vidclass.models.lite0_video import SLOW_FUSION_POOLS, Lite0Video


class Trunk3D(nn.Module):
    """3D CNN trunk: ``(B, 3, T, H, W) -> (B, widths[-1], T/8, H/16, W/16)``."""

    def __init__(self, widths: Sequence[int] = (16, 32, 64, 128), in_channels: int = 3) -> None:
        super().__init__()
        self.out_dim = widths[-1]
        self.stem = conv3d_bn_relu(in_channels, widths[0], (3, 3, 3), (1, 2, 2))
        self.stages = nn.Sequential(
            *[
                BasicBlock3d(c_in, c_out, stride=(2, 2, 2))
                for c_in, c_out in zip(widths[:-1], widths[1:], strict=True)
            ]
        )

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.stages(self.stem(x))


class SlowFusion(nn.Module):
    """``video (B, 3, T, H, W)`` → :class:`Trunk3D` (or :class:`Lite0Video`) → masked mean
    over time, ``grid × grid`` spatial pool ``(B, D·grid²)`` → FC."""

    needs_flow = False

    def __init__(
        self,
        num_classes: int,
        widths: Sequence[int] = (16, 32, 64, 128),
        dropout: float = 0.2,
        grid: int = 2,
        backbone: str = "small",
        pretrained: bool = False,
        freeze_backbone: bool = False,
    ) -> None:
        super().__init__()
        check_video_backbone(backbone, pretrained, freeze_backbone)
        self.config = {
            "widths": list(widths),
            "dropout": dropout,
            "grid": grid,
            "backbone": backbone,
            "pretrained": pretrained,
            "freeze_backbone": freeze_backbone,
        }
        self.trunk: nn.Module
        if backbone == "small":
            self.trunk = Trunk3D(widths)
        else:
            self.trunk = Lite0Video(pretrained, freeze_backbone, pool_after=SLOW_FUSION_POOLS)
        self.grid = grid
        self.classifier = nn.Sequential(
            nn.Dropout(dropout), nn.Linear(self.trunk.out_dim * grid * grid, num_classes)
        )

    def pretrained_parameters(self) -> list[nn.Parameter]:
        """Parameters that came from ImageNet (trained with a lower learning rate)."""
        if isinstance(self.trunk, Lite0Video) and self.config["pretrained"]:
            return list(self.trunk.pretrained_parameters())
        return []

    def features(self, batch: dict[str, torch.Tensor]) -> torch.Tensor:
        """The pooled clip features ``(B, D·grid²)`` the classifier reads."""
        video, mask = batch["video"], batch["mask"]
        if isinstance(self.trunk, Lite0Video):
            x, mask = self.trunk(video, mask)
        else:
            x = self.trunk(video)  # (B, D, T', H', W')
        return masked_grid_pool3d(x, mask, self.grid)

    def forward(self, batch: dict[str, torch.Tensor]) -> torch.Tensor:
        """``{"video": (B,C,T,H,W), "mask": (B,T)}`` → logits ``(B, num_classes)``."""
        return self.classifier(self.features(batch))


def build_slow_fusion(
    num_classes: int,
    widths: Sequence[int] = (16, 32, 64, 128),
    dropout: float = 0.2,
    grid: int = 2,
    backbone: str = "small",
    pretrained: bool = False,
    freeze_backbone: bool = False,
) -> SlowFusion:
    """Small R3D-like 3D CNN (``widths`` = stem width then one residual stage per entry), or
    with ``backbone="efficientnet_lite0"`` the ImageNet net made temporal; ``grid`` = side of
    the spatial map kept before the classifier (1 = global mean)."""
    return SlowFusion(num_classes, widths, dropout, grid, backbone, pretrained, freeze_backbone)
