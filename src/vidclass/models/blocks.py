"""Pieces shared by several methods: the frame-model base class, mask helpers, 3D conv blocks.

Frame-based models (``single_frame``, ``late_fusion``, ``cnn_lstm``, ``two_stream``) derive from
:class:`FrameModel` and split their forward pass in two so a training loop can cache features
of a frozen backbone::

    feats = model.encode_frames(video, mask)          # (B, T, D), the expensive part
    logits = model.forward_features(feats, mask, flow=None)  # the trainable head

``model.forward(batch)`` is exactly ``forward_features(encode_frames(video, mask), mask, flow)``
(models that look at a few frames only encode those, with the same result). Features of a
frozen encoder (``model.encoder.frozen``) depend on the frame alone, so they can be computed
once per clip and reused every epoch.
"""

from __future__ import annotations

import copy
from collections.abc import Iterator, Sequence
from contextlib import contextmanager

import torch
from torch import nn

from vidclass.models.backbones import FrameEncoder, grid_pool


def real_lengths(mask: torch.Tensor) -> torch.Tensor:
    """Number of real frames per clip, ``(B, T) bool -> (B,) long`` (at least 1)."""
    return mask.long().sum(dim=1).clamp(min=1)


def masked_mean(x: torch.Tensor, mask: torch.Tensor, dim: int = 1) -> torch.Tensor:
    """Mean of ``x`` over ``dim`` counting only positions where ``mask`` is true.

    ``x`` is ``(B, T, ...)`` with ``dim=1`` and ``mask`` ``(B, T)``.
    """
    m = mask.to(x.dtype)
    while m.dim() < x.dim():
        m = m.unsqueeze(-1)
    return (x * m).sum(dim) / m.sum(dim).clamp(min=1.0)


def gather_frames(x: torch.Tensor, index: torch.Tensor, dim: int) -> torch.Tensor:
    """Pick per-clip time indices: ``x`` with time at ``dim``, ``index (B, K)`` → K steps."""
    shape = [1] * x.dim()
    shape[0], shape[dim] = index.shape
    idx = index.view(shape)
    expand = list(x.shape)
    expand[dim] = index.shape[1]
    return torch.gather(x, dim, idx.expand(expand))


def spaced_indices(mask: torch.Tensor, k: int) -> torch.Tensor:
    """``k`` evenly spaced real-frame indices per clip, first and last included: ``(B, k)``."""
    last = (real_lengths(mask) - 1).to(torch.float32)
    steps = torch.linspace(0.0, 1.0, k, device=mask.device)
    return torch.round(last[:, None] * steps[None, :]).long()


class ChannelsLastEncoder(nn.Module):
    """A copy of an encoder run in ``channels_last``: frames in, features out, as the wrapped
    one (EfficientNet-Lite0 on CPU: 31 vs 50 ms/frame at batch 16, one thread)."""

    def __init__(self, encoder: nn.Module) -> None:
        super().__init__()
        self.inner = copy.deepcopy(encoder).to(memory_format=torch.channels_last)
        self.out_dim = encoder.out_dim

    def forward(self, frames: torch.Tensor) -> torch.Tensor:
        """``(N, C, H, W) -> (N, D)``."""
        return self.inner(frames.contiguous(memory_format=torch.channels_last)).contiguous()


@contextmanager
def channels_last_encoder(model: nn.Module) -> Iterator[None]:
    """`model.encoder` swapped for a `ChannelsLastEncoder` while inference runs (as predict's
    torch encoder); a copy, so the model's own weights keep the contiguous layout that
    checkpoints save.
    Weights changed inside the block are not seen: for frozen or trained encoders only."""
    original = getattr(model, "encoder", None)
    if not isinstance(original, FrameEncoder):  # not a 2D frame encoder: nothing to swap
        yield
        return
    model.encoder = ChannelsLastEncoder(original).eval()
    try:
        yield
    finally:
        model.encoder = original


class FrameModel(nn.Module):
    """Base of the frame-based methods: an :class:`FrameEncoder` plus a head on ``(B, T, D)``.

    Subclasses implement :meth:`forward_features` and may override :meth:`frame_indices` to
    say which frames the head needs (``None``: all real frames).
    """

    needs_flow = False
    encoder: FrameEncoder
    config: dict

    @property
    def feature_dim(self) -> int:
        """``D`` of the frame features."""
        return self.encoder.out_dim

    def feature_transform(self) -> dict:
        """The options by which :meth:`encode_frames` changes the encoder's output; part of the
        key of cached features (a subclass that transforms them must say how here)."""
        return {}

    def pretrained_parameters(self) -> list[nn.Parameter]:
        """Parameters that came from ImageNet (fine-tuned with a lower learning rate)."""
        return list(self.encoder.parameters()) if self.config.get("pretrained") else []

    def frame_indices(self, mask: torch.Tensor) -> torch.Tensor | None:
        """Indices ``(B, K)`` of the frames the head reads, or ``None`` for all of them."""
        return None

    def encode_frames(self, video: torch.Tensor, mask: torch.Tensor | None = None) -> torch.Tensor:
        """``(B, C, T, H, W) -> (B, T, D)``; with a mask, only real frames go through the
        encoder (padding rows are zero), so padding neither costs time nor touches BatchNorm."""
        b, c, t, h, w = video.shape
        frames = video.permute(0, 2, 1, 3, 4).reshape(b * t, c, h, w)
        if mask is None:
            return self.encoder(frames).view(b, t, -1)
        flat = mask.reshape(-1)
        out = frames.new_zeros(b * t, self.encoder.out_dim)
        out[flat] = self.encoder(frames[flat])
        return out.view(b, t, -1)

    def forward_features(
        self, features: torch.Tensor, mask: torch.Tensor, flow: torch.Tensor | None = None
    ) -> torch.Tensor:
        """``features (B, T, D)``, ``mask (B, T)`` → logits ``(B, num_classes)``."""
        raise NotImplementedError

    def forward(self, batch: dict[str, torch.Tensor]) -> torch.Tensor:
        """``{"video": (B,C,T,H,W), "mask": (B,T)[, "flow"]}`` → logits ``(B, num_classes)``."""
        video, mask = batch["video"], batch["mask"]
        index = self.frame_indices(mask)
        if index is None:
            features = self.encode_frames(video, mask)
        else:
            # Encode only the frames the head reads, scattered back to their time positions.
            b, t = mask.shape
            chosen = gather_frames(video, index, dim=2)
            encoded = self.encode_frames(chosen)
            features = encoded.new_zeros(b, t, encoded.shape[-1])
            features.scatter_(1, index[:, :, None].expand_as(encoded), encoded)
        return self.forward_features(features, mask, batch.get("flow"))


# ------------------------------------------------------------------------------- 3D blocks


def conv3d_bn_relu(
    in_channels: int,
    out_channels: int,
    kernel: Sequence[int] = (3, 3, 3),
    stride: Sequence[int] = (1, 1, 1),
) -> nn.Sequential:
    """Conv3d (no bias, "same" padding) → BatchNorm3d → ReLU."""
    padding = tuple(k // 2 for k in kernel)
    return nn.Sequential(
        nn.Conv3d(in_channels, out_channels, tuple(kernel), tuple(stride), padding, bias=False),
        nn.BatchNorm3d(out_channels),
        nn.ReLU(inplace=True),
    )


class BasicBlock3d(nn.Module):
    """R3D basic block: two ``kt×3×3`` convs + shortcut; ``stride`` is ``(st, ss, ss)``."""

    def __init__(
        self,
        in_channels: int,
        out_channels: int,
        stride: Sequence[int] = (1, 1, 1),
        temporal_kernel: int = 3,
    ) -> None:
        super().__init__()
        kernel = (temporal_kernel, 3, 3)
        self.conv1 = conv3d_bn_relu(in_channels, out_channels, kernel, stride)
        pad = tuple(k // 2 for k in kernel)
        self.conv2 = nn.Conv3d(out_channels, out_channels, kernel, 1, pad, bias=False)
        self.bn2 = nn.BatchNorm3d(out_channels)
        self.shortcut: nn.Module = nn.Identity()
        if tuple(stride) != (1, 1, 1) or in_channels != out_channels:
            self.shortcut = nn.Sequential(
                nn.Conv3d(in_channels, out_channels, 1, tuple(stride), bias=False),
                nn.BatchNorm3d(out_channels),
            )
        self.relu = nn.ReLU(inplace=True)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """``(B, C_in, T, H, W) -> (B, C_out, T/st, H/ss, W/ss)``."""
        return self.relu(self.bn2(self.conv2(self.conv1(x))) + self.shortcut(x))


def pool_time_mask(mask: torch.Tensor, t_out: int) -> torch.Tensor:
    """Downsample a ``(B, T)`` frame mask to ``t_out`` steps: a step is real if any frame in it
    is (so strided 3D features of partly padded windows still count)."""
    if mask.shape[1] == t_out:
        return mask
    m = mask.to(torch.float32)[:, None, :]
    return nn.functional.adaptive_max_pool1d(m, t_out)[:, 0, :] > 0


def masked_global_pool3d(x: torch.Tensor, mask: torch.Tensor) -> torch.Tensor:
    """``(B, C, T', H, W)`` → ``(B, C)``: spatial mean, then mean over real time steps."""
    pooled = x.mean(dim=(3, 4)).transpose(1, 2)  # (B, T', C)
    return masked_mean(pooled, pool_time_mask(mask, x.shape[2]))


def masked_grid_pool3d(x: torch.Tensor, mask: torch.Tensor, grid: int) -> torch.Tensor:
    """``(B, C, T', H, W)`` → ``(B, C·grid²)``: mean over the real time steps, then a
    ``grid × grid`` spatial map (``grid=1``: the global mean)."""
    t_mask = pool_time_mask(mask, x.shape[2])
    pooled = masked_mean(x.transpose(1, 2), t_mask)  # (B, C, H, W)
    return grid_pool(pooled, grid)
