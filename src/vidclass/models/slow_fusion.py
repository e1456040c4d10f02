"""Slow fusion (Karpathy et al. 2014; as a 3D CNN, Tran et al. 2015 C3D / 2018 R3D): 3D
convolutions throughout, each stage striding over time as well as space, so temporal context
grows gradually from a few frames at the first layer to the whole clip at the top.

A small R3D-like net (~0.9 M parameters): stem ``3×3×3`` (spatial stride 2) and three residual
stages with stride 2 in time and space, then a spatial mean and a mean over the real time
steps (mask-aware), and a linear classifier. The best default when motion defines the class.
"""

from __future__ import annotations

from collections.abc import Sequence

import torch
from torch import nn

from vidclass.models.blocks import BasicBlock3d, conv3d_bn_relu, masked_global_pool3d


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
    """``video (B, 3, T, H, W)`` → :class:`Trunk3D` → masked global pool ``(B, D)`` → FC."""

    needs_flow = False

    def __init__(
        self, num_classes: int, widths: Sequence[int] = (16, 32, 64, 128), dropout: float = 0.2
    ) -> None:
        super().__init__()
        self.config = {"widths": list(widths), "dropout": dropout}
        self.trunk = Trunk3D(widths)
        self.classifier = nn.Sequential(nn.Dropout(dropout), nn.Linear(widths[-1], num_classes))

    def forward(self, batch: dict[str, torch.Tensor]) -> torch.Tensor:
        """``{"video": (B,C,T,H,W), "mask": (B,T)}`` → logits ``(B, num_classes)``."""
        feats = masked_global_pool3d(self.trunk(batch["video"]), batch["mask"])
        return self.classifier(feats)


def build_slow_fusion(
    num_classes: int, widths: Sequence[int] = (16, 32, 64, 128), dropout: float = 0.2
) -> SlowFusion:
    """Small R3D-like 3D CNN; ``widths`` = stem width then one residual stage per entry."""
    return SlowFusion(num_classes, widths, dropout)
