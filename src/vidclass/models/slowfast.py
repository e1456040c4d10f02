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

``backbone="efficientnet_lite0"``: the slow pathway is ImageNet EfficientNet-Lite0 made temporal
(:mod:`vidclass.models.lite0_video`) on every ``alpha``-th frame; the thin fast pathway
(``fast_widths``) learns from scratch at the spatial strides of the slow stages it feeds; each
lateral is a ``5×1×1`` conv with temporal stride ``alpha`` *added* to the slow features (the
pretrained blocks keep their channel counts) and starts at zero, so at initialisation the slow
pathway computes exactly the pretrained network. ``freeze_backbone`` freezes the slow
pathway's 2D weights; its temporal taps, the fast pathway, the laterals and the head train.
"""

from __future__ import annotations

from collections.abc import Sequence

import torch
from torch import nn

from vidclass.errors import UserError
from vidclass.models.backbones import check_video_backbone
from vidclass.models.blocks import BasicBlock3d, conv3d_bn_relu, masked_grid_pool3d
from vidclass.models.lite0_video import STAGE_ENDS, Lite0Video

# Lite0 blocks whose outputs receive a lateral (end of the stride-4, -8, -16, -32 stages).
LITE0_LATERALS = (STAGE_ENDS[0], STAGE_ENDS[1], STAGE_ENDS[3], STAGE_ENDS[5])


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


class ZeroLateral(nn.Module):
    """Fast → slow, added: ``(B, Cf, T, h, w) -> (B, Cs, ceil(T/alpha), h, w)``, zero at first."""

    def __init__(self, fast_channels: int, slow_channels: int, alpha: int) -> None:
        super().__init__()
        self.conv = nn.Conv3d(
            fast_channels, slow_channels, (5, 1, 1), (alpha, 1, 1), (2, 0, 0), bias=False
        )
        nn.init.zeros_(self.conv.weight)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.conv(x)


class PretrainedSlowFast(nn.Module):
    """Slow: :class:`Lite0Video` on ``(B, 3, T/α, H, W)``; fast: from-scratch 3D stem + four
    residual stages (spatial stride 2 each) on ``(B, 3, T, H, W)``; zero laterals → FC."""

    needs_flow = False

    def __init__(
        self,
        num_classes: int,
        alpha: int,
        fast_widths: Sequence[int],
        dropout: float,
        grid: int,
        pretrained: bool,
        freeze_backbone: bool,
    ) -> None:
        super().__init__()
        if len(fast_widths) != len(LITE0_LATERALS) + 1:
            raise UserError(
                f"fast_widths needs {len(LITE0_LATERALS) + 1} entries (stem and one per "
                f"lateral), got {list(fast_widths)}"
            )
        self.alpha, self.grid, self.pretrained = alpha, grid, pretrained
        self.slow = Lite0Video(pretrained, freeze_backbone)
        self.fast_stem = conv3d_bn_relu(3, fast_widths[0], (5, 3, 3), (1, 2, 2))
        self.fast_stages = nn.ModuleList(
            BasicBlock3d(c_in, c_out, stride=(1, 2, 2))
            for c_in, c_out in zip(fast_widths[:-1], fast_widths[1:], strict=True)
        )
        self.laterals = nn.ModuleList(
            ZeroLateral(c, self.slow.block_channels(i), alpha)
            for c, i in zip(fast_widths[1:], LITE0_LATERALS, strict=True)
        )
        self.classifier = nn.Sequential(
            nn.Dropout(dropout),
            nn.Linear((self.slow.out_dim + fast_widths[-1]) * grid * grid, num_classes),
        )

    def pretrained_parameters(self) -> list[nn.Parameter]:
        """Parameters that came from ImageNet (trained with a lower learning rate)."""
        return list(self.slow.pretrained_parameters()) if self.pretrained else []

    def forward(self, batch: dict[str, torch.Tensor]) -> torch.Tensor:
        """``{"video": (B,C,T,H,W), "mask": (B,T)}`` → logits ``(B, num_classes)``."""
        video, mask = batch["video"], batch["mask"]
        fast = self.fast_stem(video)
        add = {}
        for index, stage, lateral in zip(
            LITE0_LATERALS, self.fast_stages, self.laterals, strict=True
        ):
            fast = stage(fast)
            add[index] = lateral(fast)
        slow, slow_mask = self.slow(video[:, :, :: self.alpha], mask[:, :: self.alpha], add)
        pooled = torch.cat(
            [
                masked_grid_pool3d(slow, slow_mask, self.grid),
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
    backbone: str = "small",
    pretrained: bool = False,
    freeze_backbone: bool = False,
    fast_widths: Sequence[int] = (8, 16, 32, 48, 64),
) -> nn.Module:
    """SlowFast with ``alpha`` (frame-rate ratio), ``beta_inv`` (channel ratio) and a
    ``grid × grid`` spatial map per pathway before the classifier (1 = global mean; the grid
    keeps where motion happens, as for slow_fusion). With ``backbone="efficientnet_lite0"``
    the slow pathway is the ImageNet network and ``fast_widths`` (stem, then one stage per
    lateral) replace ``slow_widths``/``beta_inv``."""
    check_video_backbone(backbone, pretrained, freeze_backbone)
    config = {
        "slow_widths": list(slow_widths),
        "alpha": alpha,
        "beta_inv": beta_inv,
        "dropout": dropout,
        "grid": grid,
        "backbone": backbone,
        "pretrained": pretrained,
        "freeze_backbone": freeze_backbone,
        "fast_widths": list(fast_widths),
    }
    model: nn.Module
    if backbone == "small":
        model = SlowFast(num_classes, slow_widths, alpha, beta_inv, dropout, grid)
    else:
        model = PretrainedSlowFast(
            num_classes, alpha, fast_widths, dropout, grid, pretrained, freeze_backbone
        )
    model.config = config
    return model
