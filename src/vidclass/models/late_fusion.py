"""Late fusion (Karpathy et al. 2014): ``k`` towers with shared weights look at temporally
distant real frames (first and last by default); their features are concatenated in time
order and a learned fusion layer (FC) classifies.

The towers alone see no motion; the fusion layer compares the two ends of the clip, which is
enough for actions defined by a change of state (door open → closed). Cheap: ``k`` frames
per clip.

Feature caching: ``encode_frames(video, mask) -> (B, T, D)`` and
``forward_features(features, mask)``; the head gathers the ``k`` frames it needs.
"""

from __future__ import annotations

import torch
from torch import nn

from vidclass.models.backbones import build_backbone
from vidclass.models.blocks import FrameModel, gather_frames, spaced_indices


class LateFusion(FrameModel):
    """Shared 2D tower on ``towers`` evenly spaced real frames → concat ``(B, k·D)`` → MLP."""

    def __init__(
        self,
        num_classes: int,
        towers: int = 2,
        hidden: int = 256,
        backbone: str = "small",
        pretrained: bool = False,
        freeze_backbone: bool = False,
        dropout: float = 0.2,
    ) -> None:
        super().__init__()
        self.config = {
            "towers": towers,
            "hidden": hidden,
            "backbone": backbone,
            "pretrained": pretrained,
            "freeze_backbone": freeze_backbone,
            "dropout": dropout,
        }
        self.towers = towers
        self.encoder = build_backbone(backbone, pretrained, freeze_backbone)
        self.fusion = nn.Sequential(
            nn.Linear(towers * self.encoder.out_dim, hidden),
            nn.BatchNorm1d(hidden),
            nn.ReLU(inplace=True),
            nn.Dropout(dropout),
            nn.Linear(hidden, num_classes),
        )

    def frame_indices(self, mask: torch.Tensor) -> torch.Tensor:
        """``(B, k)``: first and last real frame for ``k = 2``, evenly spaced between for more."""
        return spaced_indices(mask, self.towers)

    def forward_features(
        self, features: torch.Tensor, mask: torch.Tensor, flow: torch.Tensor | None = None
    ) -> torch.Tensor:
        """``(B, T, D), (B, T)`` → logits ``(B, K)``."""
        chosen = gather_frames(features, self.frame_indices(mask), dim=1)  # (B, k, D)
        return self.fusion(chosen.flatten(1))


def build_late_fusion(
    num_classes: int,
    towers: int = 2,
    hidden: int = 256,
    backbone: str = "small",
    pretrained: bool = False,
    freeze_backbone: bool = False,
    dropout: float = 0.2,
) -> LateFusion:
    """Late fusion of ``towers`` distant frames (2 = first and last real frame)."""
    return LateFusion(num_classes, towers, hidden, backbone, pretrained, freeze_backbone, dropout)
