"""Early fusion (Karpathy et al. 2014): the frames of a short window are stacked along the
channel axis, so the first convolution sees ``window`` frames at once and can respond to local
pixel motion directly.

For clips longer than the window the same network runs on consecutive windows (stride
``stride``, non-overlapping by default) and the window features are averaged over windows made
of real frames only (the first window always counts, even if the clip is shorter); a linear
classifier follows. This covers the whole clip at the cost of ``T / stride`` 2D passes.
"""

from __future__ import annotations

import torch
from torch import nn

from vidclass.models.backbones import SmallCNN
from vidclass.models.blocks import masked_mean


class EarlyFusion(nn.Module):
    """``video (B, C, T, H, W)`` → windows ``(B·W, C·window, H, W)`` → SmallCNN → masked mean
    over windows ``(B, D)`` → FC."""

    needs_flow = False

    def __init__(
        self,
        num_classes: int,
        window: int = 4,
        stride: int | None = None,
        in_channels: int = 3,
        dropout: float = 0.2,
    ) -> None:
        super().__init__()
        stride = window if stride is None else stride
        self.config = {
            "window": window,
            "stride": stride,
            "in_channels": in_channels,
            "dropout": dropout,
        }
        self.window = window
        self.stride = stride
        self.encoder = SmallCNN(in_channels=in_channels * window)
        self.classifier = nn.Sequential(
            nn.Dropout(dropout), nn.Linear(self.encoder.out_dim, num_classes)
        )

    def windows(self, video: torch.Tensor, mask: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """``(B, C, T, H, W)`` → ``(B, n_win, C·window, H, W)`` and window mask ``(B, n_win)``.

        Clips shorter than one window, or not ending on a window boundary, are zero-padded."""
        b, c, t, h, w = video.shape
        n_win = max(1, -(-(t - self.window) // self.stride) + 1)
        need = (n_win - 1) * self.stride + self.window
        if need > t:
            video = nn.functional.pad(video, (0, 0, 0, 0, 0, need - t))
            mask = nn.functional.pad(mask, (0, need - t), value=False)
        clips = video.unfold(2, self.window, self.stride)  # (B, C, n_win, H, W, window)
        clips = clips.permute(0, 2, 5, 1, 3, 4).reshape(b, n_win, self.window * c, h, w)
        win_mask = mask.unfold(1, self.window, self.stride).all(-1)  # (B, n_win)
        win_mask[:, 0] = True
        return clips, win_mask

    def forward(self, batch: dict[str, torch.Tensor]) -> torch.Tensor:
        """``{"video": (B,C,T,H,W), "mask": (B,T)}`` → logits ``(B, num_classes)``."""
        clips, win_mask = self.windows(batch["video"], batch["mask"])
        b, n = win_mask.shape
        flat = win_mask.reshape(-1)
        feats = clips.new_zeros(b * n, self.encoder.out_dim)
        feats[flat] = self.encoder(clips.flatten(0, 1)[flat])
        return self.classifier(masked_mean(feats.view(b, n, -1), win_mask))


def build_early_fusion(
    num_classes: int,
    window: int = 4,
    stride: int | None = None,
    in_channels: int = 3,
    dropout: float = 0.2,
) -> EarlyFusion:
    """Early fusion over ``window`` frames folded into channels, averaged over windows."""
    return EarlyFusion(num_classes, window, stride, in_channels, dropout)
