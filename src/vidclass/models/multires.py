"""Multiresolution CNN (Karpathy et al. 2014): two streams of the same network, a context
stream on the whole frame downsampled to half resolution and a fovea stream on the centre crop
(half the height and width) at full resolution. Each sees a quarter of the pixels, so together
they cost about half of one full-resolution stream while keeping full detail where the subject
usually is (camera bias to the centre). Pooled features are concatenated before the classifier.

The streams here are the slow-fusion 3D trunk (:class:`~vidclass.models.slow_fusion.Trunk3D`),
so the model is order-aware. ``full_resolution=True`` builds the reference it is measured
against: one stream of the same trunk on the full frame (``benchmarks/bench_models.py``).

``backbone="efficientnet_lite0"``: both streams are ImageNet EfficientNet-Lite0 made temporal
(:mod:`vidclass.models.lite0_video`, as slow_fusion), each its own copy: they start equal and
fine-tuning lets each adapt to its scale, as in the paper, where the two streams do not share
weights either (frozen, they differ only in their temporal taps).
"""

from __future__ import annotations

from collections.abc import Sequence

import torch
from torch import nn

from vidclass.models.backbones import check_video_backbone
from vidclass.models.blocks import masked_global_pool3d
from vidclass.models.lite0_video import SLOW_FUSION_POOLS, Lite0Video
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
        backbone: str = "small",
        pretrained: bool = False,
        freeze_backbone: bool = False,
    ) -> None:
        super().__init__()
        check_video_backbone(backbone, pretrained, freeze_backbone)
        self.config = {
            "widths": list(widths),
            "full_resolution": full_resolution,
            "dropout": dropout,
            "backbone": backbone,
            "pretrained": pretrained,
            "freeze_backbone": freeze_backbone,
        }
        self.full_resolution = full_resolution
        self.pretrained = pretrained

        def stream() -> nn.Module:
            if backbone == "small":
                return Trunk3D(widths)
            return Lite0Video(pretrained, freeze_backbone, pool_after=SLOW_FUSION_POOLS)

        self.context = stream()
        self.fovea: nn.Module | None = None if full_resolution else stream()
        streams = 1 if full_resolution else 2
        self.classifier = nn.Sequential(
            nn.Dropout(dropout), nn.Linear(streams * self.context.out_dim, num_classes)
        )

    def pretrained_parameters(self) -> list[nn.Parameter]:
        """Parameters that came from ImageNet (trained with a lower learning rate)."""
        if not self.pretrained:
            return []
        streams = [s for s in (self.context, self.fovea) if isinstance(s, Lite0Video)]
        return [p for s in streams for p in s.pretrained_parameters()]

    def _pool(self, stream: nn.Module, video: torch.Tensor, mask: torch.Tensor) -> torch.Tensor:
        if isinstance(stream, Lite0Video):
            x, mask = stream(video, mask)
        else:
            x = stream(video)
        return masked_global_pool3d(x, mask)

    def forward(self, batch: dict[str, torch.Tensor]) -> torch.Tensor:
        """``{"video": (B,C,T,H,W), "mask": (B,T)}`` → logits ``(B, num_classes)``."""
        video, mask = batch["video"], batch["mask"]
        if self.fovea is None:
            return self.classifier(self._pool(self.context, video, mask))
        context = self._pool(self.context, half_resolution(video), mask)
        fovea = self._pool(self.fovea, centre_crop(video), mask)
        return self.classifier(torch.cat([context, fovea], dim=1))


def build_multires(
    num_classes: int,
    widths: Sequence[int] = (16, 32, 64, 128),
    full_resolution: bool = False,
    dropout: float = 0.2,
    backbone: str = "small",
    pretrained: bool = False,
    freeze_backbone: bool = False,
) -> MultiRes:
    """Multiresolution context + fovea streams (``full_resolution=True``: the single-stream
    full-frame reference); ``backbone="efficientnet_lite0"`` starts both from ImageNet."""
    return MultiRes(
        num_classes, widths, full_resolution, dropout, backbone, pretrained, freeze_backbone
    )
