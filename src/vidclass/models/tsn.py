"""TSN (Wang et al. 2016, *Temporal Segment Networks*): segment consensus over frame features.

A 2D CNN encodes one snippet per segment of the video; the segment features are averaged
(the "average consensus") and one dropout + linear layer classifies the mean, as mmaction2's
``TSNHead`` does (consensus before ``fc_cls``). ``prepare`` spreads a clip's frames evenly over
the whole video, so each frame is the snippet of its segment: the consensus is the mean over
the real frames (padding frames never count).

Blind to order by construction (the mean of a set): reversing or shuffling the real frames
changes nothing, like ``single_frame``. With ``motion=True`` the consensus also carries the mean
magnitude of the change between consecutive frame features, ``mean_t |f_{t+1} - f_t|``: a
feature-space cousin of TSN's RGB-difference modality that tells a wave from a still raised arm
(shuffling the frames changes it, reversing them does not). It differs from ``single_frame`` in *what* it
averages: features (equivalently, logits) rather than per-frame probabilities, so frames that
disagree pull one decision together instead of voting. With a frozen ImageNet backbone only
the linear layer trains: the cheapest head there is, and on small sets of real people the
strongest frozen-feature baseline (docs/benchmarks.md, "Real people").

``grid=3`` keeps Lite0's last map as 3×3 cells (see :class:`EfficientNetLite0`) rather than its
mean, so the head knows where in the person-centred square each feature fired (arms up vs.
legs apart). On Weizmann held out by actor grid 3 with motion was the best frozen-feature head
(docs/benchmarks.md, "Real people").

Feature caching: ``encode_frames(video, mask) -> (B, T, D)`` and
``forward_features(features, mask)`` (see :mod:`vidclass.models.blocks`).
"""

from __future__ import annotations

import torch
from torch import nn

from vidclass.models.backbones import build_backbone
from vidclass.models.blocks import FrameModel, masked_mean


class TSN(FrameModel):
    """Frame features ``(B, T, D)`` → mean over real frames ``(B, D)`` (with ``motion``, and the
    mean ``|Δ|`` between consecutive real frames: ``(B, 2D)``) → dropout → FC ``(B, K)``."""

    def __init__(
        self,
        num_classes: int,
        backbone: str = "small",
        pretrained: bool = False,
        freeze_backbone: bool = False,
        dropout: float = 0.5,
        grid: int = 1,
        motion: bool = False,
    ) -> None:
        super().__init__()
        self.config = {
            "backbone": backbone,
            "pretrained": pretrained,
            "freeze_backbone": freeze_backbone,
            "dropout": dropout,
            "grid": grid,
            "motion": motion,
        }
        self.motion = motion
        self.encoder = build_backbone(backbone, pretrained, freeze_backbone, grid=grid)
        self.classifier = nn.Sequential(
            nn.Dropout(dropout), nn.Linear(self.encoder.out_dim * (2 if motion else 1), num_classes)
        )

    def forward_features(
        self, features: torch.Tensor, mask: torch.Tensor, flow: torch.Tensor | None = None
    ) -> torch.Tensor:
        """``(B, T, D), (B, T)`` → logits ``(B, K)`` of the mean real-frame feature."""
        consensus = masked_mean(features, mask)
        if self.motion:
            change = (features[:, 1:] - features[:, :-1]).abs()  # (B, T-1, D)
            pairs = mask[:, 1:] & mask[:, :-1]  # both frames real
            consensus = torch.cat([consensus, masked_mean(change, pairs)], dim=1)
        return self.classifier(consensus)


def build_tsn(
    num_classes: int,
    backbone: str = "small",
    pretrained: bool = False,
    freeze_backbone: bool = False,
    dropout: float = 0.5,
    grid: int = 1,
    motion: bool = False,
) -> TSN:
    """TSN average consensus over the real frames (``motion``: and their mean feature change);
    ``dropout`` before the classifier; ``grid`` cells of the backbone's last map."""
    return TSN(num_classes, backbone, pretrained, freeze_backbone, dropout, grid, motion)
