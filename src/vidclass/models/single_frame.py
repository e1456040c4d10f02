"""Single-frame baseline: a 2D CNN classifies each real frame; the clip gets the mean of the
frame probabilities.

It cannot see order, so it is the reference that tells how much a dataset is solvable from
appearance alone (Karpathy et al. 2014, "single frame"). ``forward`` returns the log of the mean
frame probabilities, so cross-entropy on it trains the averaged prediction directly and
``softmax(logits)`` is the mean probability.

Feature caching: ``encode_frames(video, mask) -> (B, T, D)`` and
``forward_features(features, mask)`` (see :mod:`vidclass.models.blocks`).
"""

from __future__ import annotations

import math

import torch
from torch import nn

from vidclass.models.backbones import build_backbone
from vidclass.models.blocks import FrameModel


class SingleFrame(FrameModel):
    """Per-frame classifier averaged over real frames.

    ``video (B, C, T, H, W)`` → frame logits ``(B, T, K)`` → logits ``log(mean_t softmax)``.
    """

    def __init__(
        self,
        num_classes: int,
        backbone: str = "small",
        pretrained: bool = False,
        freeze_backbone: bool = False,
        dropout: float = 0.2,
        grid: int = 1,
    ) -> None:
        super().__init__()
        self.config = {
            "backbone": backbone,
            "pretrained": pretrained,
            "freeze_backbone": freeze_backbone,
            "dropout": dropout,
            "grid": grid,
        }
        self.encoder = build_backbone(backbone, pretrained, freeze_backbone, grid=grid)
        self.classifier = nn.Sequential(
            nn.Dropout(dropout), nn.Linear(self.encoder.out_dim, num_classes)
        )

    def frame_logits_from_features(self, features: torch.Tensor) -> torch.Tensor:
        """``(B, T, D) -> (B, T, K)``."""
        return self.classifier(features)

    def frame_logits(self, batch: dict[str, torch.Tensor]) -> torch.Tensor:
        """Per-frame logits ``(B, T, K)``; rows of padding frames are meaningless."""
        return self.classifier(self.encode_frames(batch["video"], batch["mask"]))

    def frame_predictions(self, batch: dict[str, torch.Tensor]) -> torch.Tensor:
        """Per-frame predicted class ``(B, T)``, ``-1`` on padding frames."""
        labels = self.frame_logits(batch).argmax(-1)
        return labels.masked_fill(~batch["mask"], -1)

    def majority_label(self, batch: dict[str, torch.Tensor]) -> torch.Tensor:
        """The class assigned to the most real frames, ``(B,)`` (ties → lowest index)."""
        labels = self.frame_predictions(batch)
        k = self.classifier[-1].out_features
        votes = torch.zeros(labels.shape[0], k + 1, dtype=torch.long, device=labels.device)
        votes.scatter_add_(1, labels.clamp(min=-1) + 1, torch.ones_like(labels))
        return votes[:, 1:].argmax(-1)

    def forward_features(
        self, features: torch.Tensor, mask: torch.Tensor, flow: torch.Tensor | None = None
    ) -> torch.Tensor:
        """``(B, T, D), (B, T)`` → ``log(mean over real frames of softmax)`` ``(B, K)``."""
        logp = self.classifier(features).log_softmax(-1)  # (B, T, K)
        logp = logp.masked_fill(~mask[:, :, None], -math.inf)
        n = mask.sum(1, keepdim=True).clamp(min=1).to(logp.dtype)
        return torch.logsumexp(logp, dim=1) - n.log()


def build_single_frame(
    num_classes: int,
    backbone: str = "small",
    pretrained: bool = False,
    freeze_backbone: bool = False,
    dropout: float = 0.2,
    grid: int = 1,
) -> SingleFrame:
    """Single-frame CNN; ``backbone`` is ``"small"`` (from scratch) or ``"efficientnet_lite0"``."""
    return SingleFrame(num_classes, backbone, pretrained, freeze_backbone, dropout, grid)
