"""Multiresolution CNN (Karpathy et al. 2014): two streams of the same network, a context
stream on the whole frame downsampled to half resolution and a fovea stream on the centre crop
(half the height and width) at full resolution. Each sees a quarter of the pixels, so together
they cost about half of one full-resolution stream while keeping full detail where the subject
usually is (camera bias to the centre). Pooled features are concatenated before the classifier.

The streams here are the slow-fusion 3D trunk (:class:`~vidclass.models.slow_fusion.Trunk3D`),
so the model is order-aware. ``full_resolution=True`` builds the reference it is measured
against: one stream of the same trunk on the full frame (``benchmarks/bench_models.py``).
"""

from __future__ import annotations

from collections.abc import Sequence

import torch
from torch import nn

from vidclass.models.blocks import masked_global_pool3d
from vidclass.models.slow_fusion import Trunk3D


def centre_crop(video: torch.Tensor) -> torch.Tensor:
    """``(B, C, T, H, W) -> (B, C, T, H/2, W/2)``, the middle of each frame."""
    h, w = video.shape[-2:]
    top, left = h // 4, w // 4
    return video[..., top : top + h // 2, left : left + w // 2]


def half_resolution(video: torch.Tensor) -> torch.Tensor:
    """``(B, C, T, H, W) -> (B, C, T, H/2, W/2)``, the mean of each 2×2 block (anti-aliased).

    Written as four strided views rather than ``avg_pool3d``: same result, half the time on
    CPU, which matters because this op is a noticeable share of the whole multires pass."""
    h, w = video.shape[-2:]
    x = video[..., : h - h % 2, : w - w % 2]
    return (x[..., ::2, ::2] + x[..., 1::2, 1::2] + x[..., ::2, 1::2] + x[..., 1::2, ::2]) * 0.25


class MultiRes(nn.Module):
    """Context (half-res full frame) + fovea (full-res centre crop) 3D streams → concat → FC."""

    needs_flow = False

    def __init__(
        self,
        num_classes: int,
        widths: Sequence[int] = (16, 32, 64, 128),
        full_resolution: bool = False,
        dropout: float = 0.2,
    ) -> None:
        super().__init__()
        self.config = {
            "widths": list(widths),
            "full_resolution": full_resolution,
            "dropout": dropout,
        }
        self.full_resolution = full_resolution
        self.context = Trunk3D(widths)
        self.fovea: nn.Module | None = None if full_resolution else Trunk3D(widths)
        streams = 1 if full_resolution else 2
        self.classifier = nn.Sequential(
            nn.Dropout(dropout), nn.Linear(streams * widths[-1], num_classes)
        )

    def forward(self, batch: dict[str, torch.Tensor]) -> torch.Tensor:
        """``{"video": (B,C,T,H,W), "mask": (B,T)}`` → logits ``(B, num_classes)``."""
        video, mask = batch["video"], batch["mask"]
        if self.fovea is None:
            return self.classifier(masked_global_pool3d(self.context(video), mask))
        context = masked_global_pool3d(self.context(half_resolution(video)), mask)
        fovea = masked_global_pool3d(self.fovea(centre_crop(video)), mask)
        return self.classifier(torch.cat([context, fovea], dim=1))


def build_multires(
    num_classes: int,
    widths: Sequence[int] = (16, 32, 64, 128),
    full_resolution: bool = False,
    dropout: float = 0.2,
) -> MultiRes:
    """Multiresolution context + fovea streams (``full_resolution=True``: the single-stream
    full-frame reference)."""
    return MultiRes(num_classes, widths, full_resolution, dropout)
