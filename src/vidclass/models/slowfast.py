"""SlowFast (Feichtenhofer et al. 2019): a slow pathway sees every ``alpha``-th frame with many
channels (appearance), a fast pathway sees every frame with ``1/beta_inv`` of the channels
(motion), and time-strided lateral convolutions feed fast → slow after the stem and after each
stage but the last.

Scaled down for CPU: slow widths ``(24, 48, 96, 128)``, ``alpha = 4``, ``beta_inv = 8`` (fast
widths ``(3, 6, 12, 16)``), residual stages with spatial stride 2. As in the paper, the slow
pathway uses temporal kernels of 1 in early stages (3 in the last) and the fast pathway
temporal kernels everywhere (5 in the stem). Laterals are ``5×1×1`` convs with temporal stride
``alpha`` doubling the fast channels, concatenated to the slow features. The two pathways are
pooled (mask-aware over time) and concatenated before the classifier.
"""

from __future__ import annotations

from collections.abc import Sequence

import torch
from torch import nn

from vidclass.models.blocks import BasicBlock3d, conv3d_bn_relu, masked_grid_pool3d


class Lateral(nn.Module):
    """Fast → slow: ``(B, Cf, T, H, W) -> (B, 2·Cf, ceil(T/alpha), H, W)``."""

    def __init__(self, fast_channels: int, alpha: int) -> None:
        super().__init__()
        self.conv = nn.Conv3d(
            fast_channels, 2 * fast_channels, (5, 1, 1), (alpha, 1, 1), (2, 0, 0), bias=False
        )
        self.bn = nn.BatchNorm3d(2 * fast_channels)
        self.relu = nn.ReLU(inplace=True)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.relu(self.bn(self.conv(x)))


class SlowFast(nn.Module):
    """``video (B, 3, T, H, W)`` → slow ``(B, 3, T/α, H, W)`` + fast ``(B, 3, T, H, W)`` → FC."""

    needs_flow = False

    def __init__(
        self,
        num_classes: int,
        slow_widths: Sequence[int] = (24, 48, 96, 128),
        alpha: int = 4,
        beta_inv: int = 8,
        dropout: float = 0.2,
        grid: int = 2,
    ) -> None:
        super().__init__()
        self.config = {
            "slow_widths": list(slow_widths),
            "alpha": alpha,
            "beta_inv": beta_inv,
            "dropout": dropout,
            "grid": grid,
        }
        self.grid = grid
        self.alpha = alpha
        fast_widths = [max(1, w // beta_inv) for w in slow_widths]
        n = len(slow_widths) - 1
        self.slow_stem = conv3d_bn_relu(3, slow_widths[0], (1, 3, 3), (1, 2, 2))
        self.fast_stem = conv3d_bn_relu(3, fast_widths[0], (5, 3, 3), (1, 2, 2))
        slow_kernels = [1] * (n - 1) + [3]
        self.slow_stages = nn.ModuleList()
        self.fast_stages = nn.ModuleList()
        self.laterals = nn.ModuleList()
        for i in range(n):
            self.laterals.append(Lateral(fast_widths[i], alpha))
            self.slow_stages.append(
                BasicBlock3d(
                    slow_widths[i] + 2 * fast_widths[i],
                    slow_widths[i + 1],
                    stride=(1, 2, 2),
                    temporal_kernel=slow_kernels[i],
                )
            )
            self.fast_stages.append(
                BasicBlock3d(fast_widths[i], fast_widths[i + 1], stride=(1, 2, 2))
            )
        self.classifier = nn.Sequential(
            nn.Dropout(dropout),
            nn.Linear((slow_widths[-1] + fast_widths[-1]) * grid * grid, num_classes),
        )

    def forward(self, batch: dict[str, torch.Tensor]) -> torch.Tensor:
        """``{"video": (B,C,T,H,W), "mask": (B,T)}`` → logits ``(B, num_classes)``."""
        video, mask = batch["video"], batch["mask"]
        slow = self.slow_stem(video[:, :, :: self.alpha])
        fast = self.fast_stem(video)
        for lateral, slow_stage, fast_stage in zip(
            self.laterals, self.slow_stages, self.fast_stages, strict=True
        ):
            slow = slow_stage(torch.cat([slow, lateral(fast)], dim=1))
            fast = fast_stage(fast)
        pooled = torch.cat(
            [
                masked_grid_pool3d(slow, mask[:, :: self.alpha], self.grid),
                masked_grid_pool3d(fast, mask, self.grid),
            ],
            dim=1,
        )
        return self.classifier(pooled)


def build_slowfast(
    num_classes: int,
    slow_widths: Sequence[int] = (24, 48, 96, 128),
    alpha: int = 4,
    beta_inv: int = 8,
    dropout: float = 0.2,
    grid: int = 2,
) -> SlowFast:
    """SlowFast with ``alpha`` (frame-rate ratio), ``beta_inv`` (channel ratio) and a
    ``grid × grid`` spatial map per pathway before the classifier (1 = global mean; the grid
    keeps where motion happens, as for slow_fusion)."""
    return SlowFast(num_classes, slow_widths, alpha, beta_inv, dropout, grid)
