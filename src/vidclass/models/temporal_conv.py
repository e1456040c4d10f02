"""Temporal convolution head: 1D convolutions over time on per-frame features, then a pool.

A 2D CNN encodes every real frame; ``layers`` 1D convolutions (kernel ``kernel`` over time,
``hidden`` channels, ReLU) read the sequence of features, so each output step sees
``1 + layers·(kernel − 1)`` neighbouring frames (5 with the defaults), and the steps are
max-pooled (or averaged) over the real frames and classified. It is the cheap temporal head
that the field puts on 2D features: a learnt version of TSM's temporal shift (Lin et al.
2019, a fixed ±1-frame channel shift, is a kernel-3 convolution with fixed taps), and the 1D
"temporal conv" of Bai et al. 2018's TCN comparison. Order-sensitive: the kernels are not
symmetric in time, so reversing the frames changes the output (tested); max pooling keeps
the strongest local motion pattern wherever it happens in the clip.

Padding is exact: padding steps are zeroed before every convolution, which is what the
convolution's own zero padding gives at the end of a shorter clip, so appending padding
frames changes nothing (tested).

Feature caching: ``encode_frames(video, mask) -> (B, T, D)`` and
``forward_features(features, mask)`` (see :mod:`vidclass.models.blocks`).
"""

from __future__ import annotations

import torch
from torch import nn

from vidclass.errors import UserError
from vidclass.models.backbones import build_backbone
from vidclass.models.blocks import FrameModel, masked_mean

POOLS = ("max", "avg")


class TemporalConv(FrameModel):
    """Frame features ``(B, T, D)`` → dropout → ``layers`` × [Conv1d over T → ReLU]
    ``(B, hidden, T)`` → max (or mean) over real steps ``(B, hidden)`` → dropout → FC."""

    def __init__(
        self,
        num_classes: int,
        layers: int = 2,
        hidden: int = 256,
        kernel: int = 3,
        pool: str = "max",
        backbone: str = "small",
        pretrained: bool = False,
        freeze_backbone: bool = False,
        dropout: float = 0.5,
        grid: int = 1,
    ) -> None:
        super().__init__()
        if layers < 1 or hidden < 1:
            raise UserError(
                f"temporal_conv: layers and hidden must be >= 1, got {layers}, {hidden}"
            )
        if kernel < 1 or kernel % 2 == 0:
            raise UserError(f"temporal_conv: kernel must be odd (same length out), got {kernel}")
        if pool not in POOLS:
            raise UserError(f"temporal_conv: unknown pool {pool!r}; valid: {', '.join(POOLS)}")
        self.config = {
            "layers": layers,
            "hidden": hidden,
            "kernel": kernel,
            "pool": pool,
            "backbone": backbone,
            "pretrained": pretrained,
            "freeze_backbone": freeze_backbone,
            "dropout": dropout,
            "grid": grid,
        }
        self.pool = pool
        self.encoder = build_backbone(backbone, pretrained, freeze_backbone, grid=grid)
        self.dropout = nn.Dropout(dropout)
        widths = [self.encoder.out_dim] + [hidden] * layers
        self.convs = nn.ModuleList(
            nn.Conv1d(c_in, c_out, kernel, padding=kernel // 2)
            for c_in, c_out in zip(widths[:-1], widths[1:], strict=True)
        )
        self.classifier = nn.Sequential(nn.Dropout(dropout), nn.Linear(hidden, num_classes))

    def forward_features(
        self, features: torch.Tensor, mask: torch.Tensor, flow: torch.Tensor | None = None
    ) -> torch.Tensor:
        """``(B, T, D), (B, T)`` → logits ``(B, K)``."""
        real = mask[:, None, :].to(features.dtype)  # (B, 1, T)
        x = self.dropout(features).transpose(1, 2)  # (B, D, T)
        for conv in self.convs:
            x = torch.relu(conv(x * real))
        x = x * real  # padding steps out of the pool (ReLU outputs are >= 0)
        if self.pool == "max":
            pooled = x.amax(dim=2)
        else:
            pooled = masked_mean(x.transpose(1, 2), mask)
        return self.classifier(pooled)


def build_temporal_conv(
    num_classes: int,
    layers: int = 2,
    hidden: int = 256,
    kernel: int = 3,
    pool: str = "max",
    backbone: str = "small",
    pretrained: bool = False,
    freeze_backbone: bool = False,
    dropout: float = 0.5,
    grid: int = 1,
) -> TemporalConv:
    """``layers`` temporal convolutions (``kernel`` frames) over frame features, max-pooled."""
    return TemporalConv(
        num_classes,
        layers,
        hidden,
        kernel,
        pool,
        backbone,
        pretrained,
        freeze_backbone,
        dropout,
        grid,
    )
