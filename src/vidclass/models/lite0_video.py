"""EfficientNet-Lite0 made temporal: the ImageNet-initialised trunk of the 3D methods.

``slow_fusion``, ``slowfast`` and ``multires`` with ``backbone="efficientnet_lite0"`` run the
pretrained 2D network on every frame and add time in the (2+1)D way (Tran et al. 2018): after
each block (from the stride-8 stage on) a depthwise temporal convolution over three neighbouring frames, residual and
initialised to zero, so that at initialisation the trunk computes exactly the pretrained 2D
features of every frame. Slow fusion's gradual merging of time is a masked mean of
neighbouring time steps after some blocks (stride 2 in time), which also makes the later,
wider blocks cheaper.

Why (2+1)D and not I3D inflation (each ``k×k`` kernel repeated over time and divided by
``kt``): both cost about the same here (a Lite0 depthwise layer at stride 8, 240 channels,
16×14×14, batch 8, one thread: depthwise ``3×3×3`` Conv3d 86–126 ms, depthwise 2D conv plus
the temporal taps 117–129 ms), but zero-initialised residual taps give the exact 2D starting
point whatever the padding (inflation only away from the clip's ends, where zero padding
drops a third of the kernel), and they leave the early, expensive blocks purely 2D: frozen,
those need no backward pass. I3D's accuracy was not measured.

``freeze=True`` keeps every pretrained weight and BatchNorm statistic as it is; only the
temporal taps (and what the method puts on top) learn.
"""

from __future__ import annotations

from collections.abc import Iterator, Sequence

import torch
from torch import nn

from vidclass.models.backbones import EfficientNetLite0

# Blocks of Lite0 after which each stage ends (spatial stride 4, 8, 16, 16, 32, 32 after them).
STAGE_ENDS = (2, 4, 7, 10, 14, 15)
# Slow fusion: halve time after the stride-4, -8 and -16 stages (16 frames → 2 steps).
SLOW_FUSION_POOLS = (2, 4, 7)
# Temporal taps follow blocks 3.. (stride 8 and coarser). The stride-2 and -4 blocks, where most
# of the compute is, stay per frame: frozen, they then need no backward pass at all
# (training the frozen variant cost 3.5x its forward pass with taps after every block).
FIRST_TEMPORAL_BLOCK = 3


def fold_time(video: torch.Tensor) -> torch.Tensor:
    """``(B, C, T, H, W) -> (B·T, C, H, W)``, frames of a clip consecutive."""
    b, c, t, h, w = video.shape
    return video.transpose(1, 2).reshape(b * t, c, h, w)


def unfold_time(x: torch.Tensor, t: int) -> torch.Tensor:
    """``(B·T, C, H, W) -> (B, C, T, H, W)``."""
    bt, c, h, w = x.shape
    return x.view(bt // t, t, c, h, w).transpose(1, 2)


class TemporalConv(nn.Module):
    """``x + conv_t(x)``: a depthwise ``3×1×1`` convolution over time, zero at first (the
    identity). Works on ``(B·T, C, H, W)``; padding frames (``mask`` false) read as zeros to
    their neighbours, as the clip's ends do."""

    def __init__(self, channels: int) -> None:
        super().__init__()
        self.conv = nn.Conv3d(
            channels, channels, (3, 1, 1), padding=(1, 0, 0), groups=channels, bias=False
        )
        nn.init.zeros_(self.conv.weight)

    def forward(self, x: torch.Tensor, mask: torch.Tensor) -> torch.Tensor:
        """``x (B·T, C, H, W)``, ``mask (B, T)`` → same shape."""
        t = mask.shape[1]
        v = x * mask.reshape(-1).to(x.dtype)[:, None, None, None]
        y = self.conv(unfold_time(v, t))
        return x + fold_time(y)


def pool_time(x: torch.Tensor, mask: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    """Masked mean of time steps 2t and 2t+1: ``(B·T, C, H, W), (B, T)`` →
    ``(B·⌈T/2⌉, C, H, W), (B, ⌈T/2⌉)``; a step is real if either frame was."""
    b, t = mask.shape
    v = x.view(b, t, *x.shape[1:])
    m = mask
    if t % 2:
        v = torch.cat([v, v.new_zeros(b, 1, *x.shape[1:])], dim=1)
        m = torch.cat([m, m.new_zeros(b, 1)], dim=1)
    half = v.shape[1] // 2
    v = v.view(b, half, 2, *x.shape[1:])
    w = m.view(b, half, 2).to(x.dtype)
    total = (v * w[..., None, None, None]).sum(dim=2)
    count = w.sum(dim=2).clamp(min=1.0)[..., None, None, None]
    return (total / count).reshape(b * half, *x.shape[1:]), m.view(b, half, 2).any(dim=2)


class Lite0Video(nn.Module):
    """``video (B, 3, T, H, W)`` ImageNet-normalized, ``mask (B, T)`` → feature maps
    ``(B, 1280, T', H/32, W/32)`` and their mask ``(B, T')``; ``T' = T / 2^len(pool_after)``.

    ``add`` in :meth:`forward` maps a block index to a tensor ``(B, C, T', h, w)`` added to that
    block's output (SlowFast's lateral connections).
    """

    out_dim = EfficientNetLite0.out_dim

    def __init__(
        self, pretrained: bool = True, freeze: bool = False, pool_after: Sequence[int] = ()
    ) -> None:
        super().__init__()
        self.net = EfficientNetLite0(pretrained=pretrained)
        del self.net._fc  # the ImageNet classifier is not part of the trunk
        self.pool_after = tuple(pool_after)
        self.freeze = freeze
        self.temporal = nn.ModuleList(
            TemporalConv(block._bn2.num_features) if i >= FIRST_TEMPORAL_BLOCK else nn.Identity()
            for i, block in enumerate(self.net._blocks)
        )
        if freeze:
            for p in self.net.parameters():
                p.requires_grad_(False)

    def block_channels(self, index: int) -> int:
        """Output channels of block ``index``."""
        return self.net._blocks[index]._bn2.num_features

    def pretrained_parameters(self) -> Iterator[nn.Parameter]:
        """The 2D network's parameters (what came from ImageNet)."""
        return self.net.parameters()

    def train(self, mode: bool = True) -> Lite0Video:
        super().train(mode)
        if self.freeze:
            self.net.eval()  # frozen BatchNorm keeps the ImageNet statistics
        return self

    def forward(
        self,
        video: torch.Tensor,
        mask: torch.Tensor,
        add: dict[int, torch.Tensor] | None = None,
    ) -> tuple[torch.Tensor, torch.Tensor]:
        net = self.net
        t = video.shape[2]
        x = fold_time(video) * net.in_scale + net.in_shift
        x = net.act(net._bn0(net._conv_stem(x)))
        for i, (block, temporal) in enumerate(zip(net._blocks, self.temporal, strict=True)):
            x = block(x)
            if isinstance(temporal, TemporalConv):
                x = temporal(x, mask)
            if add is not None and i in add:
                x = x + fold_time(add[i])
            if i in self.pool_after:
                x, mask = pool_time(x, mask)
                t = mask.shape[1]
        x = net.act(net._bn1(net._conv_head(x)))
        return unfold_time(x, t), mask
