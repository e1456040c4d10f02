"""Early fusion (Karpathy et al. 2014): the frames of a short window are stacked along the
channel axis, so the first convolution sees ``window`` frames at once and can respond to local
pixel motion directly.

For clips longer than the window the same network runs on consecutive windows (stride
``stride``, non-overlapping by default) and the window features are averaged over windows made
of real frames only (the first window always counts, even if the clip is shorter); a linear
classifier follows. This covers the whole clip at the cost of ``T / stride`` 2D passes.

``backbone="efficientnet_lite0"`` uses ImageNet EfficientNet-Lite0 as the 2D network; its first
convolution over the ``window·3`` folded channels starts from the pretrained RGB kernel
repeated per frame and divided by ``window`` (cross-modality initialisation), so a window of
identical frames starts from the pretrained features. ``freeze_backbone`` trains that first
convolution, the only layer that sees time, and the classifier; the rest keeps its weights and
BatchNorm statistics.
"""

from __future__ import annotations

import torch
from torch import nn

from vidclass.models.backbones import SmallCNN, build_backbone, check_video_backbone
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
        backbone: str = "small",
        pretrained: bool = False,
        freeze_backbone: bool = False,
    ) -> None:
        super().__init__()
        check_video_backbone(backbone, pretrained, freeze_backbone)
        stride = window if stride is None else stride
        self.config = {
            "window": window,
            "stride": stride,
            "in_channels": in_channels,
            "dropout": dropout,
            "backbone": backbone,
            "pretrained": pretrained,
            "freeze_backbone": freeze_backbone,
        }
        self.window = window
        self.stride = stride
        self.freeze = freeze_backbone
        self.encoder: nn.Module
        if backbone == "small":
            self.encoder = SmallCNN(in_channels=in_channels * window)
        else:
            self.encoder = build_backbone(
                backbone, pretrained, in_channels=in_channels * window, stem="fold"
            )
            for name, p in self.encoder.named_parameters():
                if freeze_backbone and not name.startswith("net._conv_stem."):
                    p.requires_grad_(False)
        self.classifier = nn.Sequential(
            nn.Dropout(dropout), nn.Linear(self.encoder.out_dim, num_classes)
        )

    def pretrained_parameters(self) -> list[nn.Parameter]:
        """Parameters that came from ImageNet (trained with a lower learning rate); the
        folded first convolution is new to the network, so it is not one of them."""
        if not self.config["pretrained"]:
            return []
        return [p for n, p in self.encoder.named_parameters() if "_conv_stem" not in n]

    def train(self, mode: bool = True) -> EarlyFusion:
        super().train(mode)
        if self.freeze:
            for m in self.encoder.modules():
                if isinstance(m, nn.BatchNorm2d):
                    m.eval()  # frozen BatchNorm keeps the ImageNet statistics
        return self

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
    backbone: str = "small",
    pretrained: bool = False,
    freeze_backbone: bool = False,
) -> EarlyFusion:
    """Early fusion over ``window`` frames folded into channels, averaged over windows;
    ``backbone="efficientnet_lite0"`` starts from ImageNet (see the module docstring)."""
    return EarlyFusion(
        num_classes, window, stride, in_channels, dropout, backbone, pretrained, freeze_backbone
    )
