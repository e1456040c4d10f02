"""A skeleton method: actions from the main person's pose keypoints over time.

The input is not the pixels but the 33 keypoints MediaPipe's pretrained pose model finds in
each frame (``batch["keypoints"]``, float32 ``(B, T, 33, 3)``: x and y as shares of the frame,
visibility; all zeros where nobody was found; see :mod:`vidclass.data.keypoints`, which
`prepare --pose` and `Classifier` run). ``model.needs_keypoints`` tells the data pipeline to
provide them; ``batch["video"]`` is not read.

Inside the model (so training, prediction and the ONNX graph normalise alike), each clip's
skeletons are centred on the hips and scaled by the torso (mid-shoulder to mid-hip, averaged
over the clip's frames with a person), which leaves the pose and its motion, not where the
person stands or how large they appear. Per joint and frame the net sees its normalised
position, visibility and velocity, and the hips' own displacement (a jump, a run).

The network is a small ST-GCN (Yan et al. 2018, the anchor of MMAction2's skeleton family):
``blocks`` of a spatial graph convolution over BlazePose's bones (the normalised adjacency
with self-loops, one weight per block) followed by a temporal convolution along time per
joint (kernel ``kernel``), batch norm, ReLU and a residual; then the mean over joints and real
frames → dropout → FC. The temporal kernels make it sensitive to the order of frames.
"""

from __future__ import annotations

import torch
from torch import nn

from vidclass.data.pose import BONES, NUM_KEYPOINTS
from vidclass.models.blocks import masked_mean

HIPS, SHOULDERS = (23, 24), (11, 12)
IN_CHANNELS = 7  # x, y, visibility, dx, dy (per joint), hip dx, dy (per frame)


def adjacency(num_joints: int = NUM_KEYPOINTS, bones=BONES) -> torch.Tensor:
    """``(V, V)`` symmetric normalised adjacency with self-loops, D^-1/2 (A + I) D^-1/2."""
    a = torch.eye(num_joints)
    for i, j in bones:
        a[i, j] = a[j, i] = 1.0
    d = a.sum(1).rsqrt()
    return d[:, None] * a * d[None, :]


def normalise_keypoints(keypoints: torch.Tensor, mask: torch.Tensor) -> tuple[torch.Tensor, ...]:
    """``(B, T, V, 3), (B, T)`` → (features ``(B, C=7, T, V)``, frames with a person ``(B, T)``).

    Centred on each frame's hips, scaled by the clip's mean torso length; zero where no
    person was found or the frame is padding."""
    xy, vis = keypoints[..., :2], keypoints[..., 2]
    seen = mask & (vis.amax(-1) > 0)  # (B, T)
    w = seen.unsqueeze(-1).to(xy.dtype)  # (B, T, 1)
    hips = xy[:, :, list(HIPS)].mean(2)  # (B, T, 2)
    torso = (xy[:, :, list(SHOULDERS)].mean(2) - hips).norm(dim=-1, keepdim=True)  # (B, T, 1)
    scale = ((torso * w).sum(1, keepdim=True) / w.sum(1, keepdim=True).clamp(min=1.0)).clamp(
        min=1e-3
    )  # (B, 1, 1)
    pos = (xy - hips.unsqueeze(2)) / scale.unsqueeze(2)  # (B, T, V, 2)
    hip_path = hips / scale  # (B, T, 2)
    both = (seen[:, 1:] & seen[:, :-1]).unsqueeze(-1).to(xy.dtype)  # (B, T-1, 1)
    vel = torch.cat([torch.zeros_like(pos[:, :1]), (pos[:, 1:] - pos[:, :-1]) * both[..., None]], 1)
    hip_vel = torch.cat(
        [torch.zeros_like(hip_path[:, :1]), (hip_path[:, 1:] - hip_path[:, :-1]) * both], 1
    )  # (B, T, 2)
    v = xy.shape[2]
    x = torch.cat(
        [pos, vis.unsqueeze(-1), vel, hip_vel.unsqueeze(2).expand(-1, -1, v, -1)], dim=-1
    )  # (B, T, V, 7)
    x = x * w.unsqueeze(-1)
    return x.permute(0, 3, 1, 2).contiguous(), seen


class STGCNBlock(nn.Module):
    """``(B, C_in, T, V)`` → ``(B, C_out, T, V)``: graph conv over joints, then a temporal conv."""

    def __init__(
        self, in_channels: int, out_channels: int, kernel: int, dropout: float, a: torch.Tensor
    ) -> None:
        super().__init__()
        self.register_buffer("a", a, persistent=False)
        self.spatial = nn.Conv2d(in_channels, out_channels, 1)
        self.temporal = nn.Sequential(
            nn.BatchNorm2d(out_channels),
            nn.ReLU(inplace=True),
            nn.Conv2d(out_channels, out_channels, (kernel, 1), padding=(kernel // 2, 0)),
            nn.BatchNorm2d(out_channels),
            nn.Dropout(dropout),
        )
        self.residual = (
            nn.Identity()
            if in_channels == out_channels
            else nn.Conv2d(in_channels, out_channels, 1)
        )
        self.relu = nn.ReLU(inplace=True)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        y = torch.einsum("bctv,vw->bctw", self.spatial(x), self.a)
        return self.relu(self.temporal(y) + self.residual(x))


class PoseNet(nn.Module):
    """Keypoints ``(B, T, 33, 3)`` → normalised ``(B, 7, T, 33)`` → ST-GCN blocks ``(B, C, T, 33)``
    → mean over joints and real frames ``(B, C)`` → dropout → FC ``(B, K)``."""

    needs_flow = False
    needs_keypoints = True

    def __init__(
        self,
        num_classes: int,
        channels: int = 64,
        blocks: int = 3,
        kernel: int = 5,
        dropout: float = 0.3,
    ) -> None:
        super().__init__()
        self.config = {"channels": channels, "blocks": blocks, "kernel": kernel, "dropout": dropout}
        a = adjacency()
        self.input_norm = nn.BatchNorm2d(IN_CHANNELS)
        self.blocks = nn.Sequential(
            *(
                STGCNBlock(IN_CHANNELS if i == 0 else channels, channels, kernel, dropout, a)
                for i in range(blocks)
            )
        )
        self.classifier = nn.Sequential(nn.Dropout(dropout), nn.Linear(channels, num_classes))

    def forward(self, batch: dict[str, torch.Tensor]) -> torch.Tensor:
        x, seen = normalise_keypoints(batch["keypoints"], batch["mask"])
        y = self.blocks(self.input_norm(x))  # (B, C, T, V)
        # Frames without a person still carry a temporal context; the mean counts the real
        # frames with a person (all real frames when none has one: the logits of nothing).
        keep = seen | (batch["mask"] & ~seen.any(1, keepdim=True))
        return self.classifier(masked_mean(y.mean(3).transpose(1, 2), keep))

    def pretrained_parameters(self) -> list[nn.Parameter]:
        """None: the pretrained part (MediaPipe's pose model) runs before the net, not in it."""
        return []


def build_pose(
    num_classes: int, channels: int = 64, blocks: int = 3, kernel: int = 5, dropout: float = 0.3
) -> PoseNet:
    """The skeleton method: ``blocks`` ST-GCN blocks of ``channels`` over normalised keypoint
    sequences (temporal kernel ``kernel`` frames), ``dropout`` in the blocks and before the FC."""
    return PoseNet(num_classes, channels, blocks, kernel, dropout)
