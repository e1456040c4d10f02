"""Two-stream network (Simonyan & Zisserman 2014): a spatial stream classifies one RGB frame
(appearance), a temporal stream classifies a stack of ``flow_frames`` optical-flow fields
(motion, x and y displacements as ``2·L`` input channels), and the class probabilities of the
two are averaged (``fusion="average"``; ``forward`` returns the log of the mean) or their
features concatenated and classified (``fusion="learned"``).

Flow comes in ``batch["flow"]`` ``(B, 2, T-1, H, W)`` as produced by
:func:`vidclass.data.flow.compute_flow` (``needs_flow = True`` tells the data pipeline to
compute and cache it with the clip). If it is missing, it is computed on the fly from the
video with OpenCV (slow; meant for inference only).

The spatial stream reads the centre real frame; the flow stack is the ``L`` consecutive real
flow fields centred there (zero-padded when the clip has fewer). Feature caching: the spatial
stream follows the frame-model split, ``encode_frames(video, mask) -> (B, T, D)`` and
``forward_features(features, mask, flow)``; the temporal stream always runs on the flow.

Defaults, measured on the synthetic set (appearance says nothing there: the spatial stream alone
is near chance, so the temporal stream decides): ``flow_frames=15`` stacks every flow field of
a 16-frame clip (10 missed the start and end of actions such as a door closing or a jump);
the temporal SmallCNN is wider (``flow_widths=(32, 64, 128, 128)``: a 16-channel stem was
narrower than its 30 input channels); and ``subtract_mean=True`` removes each field's mean
displacement (camera motion), as the original paper does, so the stream learns the actor's
motion rather than the jitter of the training scenes.

``backbone="efficientnet_lite0"`` makes both streams ImageNet EfficientNet-Lite0. The temporal
stream's first convolution starts from the RGB kernel averaged over its three inputs and
replicated over the ``2L`` flow channels (cross-modality initialisation, Wang et al. 2016,
TSN); flow in [-1, 1] is what the network's [-1, 1] input scale expects. ``freeze_backbone``
freezes the RGB stream only: flow is a new modality, so the temporal stream always fine-tunes
(as in TSN), its pretrained layers at the lower learning rate.
"""

from __future__ import annotations

import math
from collections.abc import Sequence

import torch
from torch import nn

from vidclass.errors import UserError
from vidclass.models.backbones import SmallCNN, build_backbone
from vidclass.models.blocks import FrameModel, gather_frames, real_lengths

FUSIONS = ("average", "learned")


class TwoStream(FrameModel):
    """Spatial 2D CNN on the centre RGB frame + temporal SmallCNN (``flow_widths``) on ``2L``
    flow channels, each field minus its mean displacement when ``subtract_mean``."""

    needs_flow = True

    def __init__(
        self,
        num_classes: int,
        flow_frames: int = 15,
        fusion: str = "average",
        backbone: str = "small",
        pretrained: bool = False,
        freeze_backbone: bool = False,
        dropout: float = 0.2,
        flow_widths: Sequence[int] = (32, 64, 128, 128),
        subtract_mean: bool = True,
    ) -> None:
        super().__init__()
        if fusion not in FUSIONS:
            raise UserError(f"unknown fusion {fusion!r}; valid: {', '.join(FUSIONS)}")
        self.config = {
            "flow_frames": flow_frames,
            "fusion": fusion,
            "backbone": backbone,
            "pretrained": pretrained,
            "freeze_backbone": freeze_backbone,
            "dropout": dropout,
            "flow_widths": list(flow_widths),
            "subtract_mean": subtract_mean,
        }
        self.subtract_mean = subtract_mean
        self.flow_frames = flow_frames
        self.fusion = fusion
        self.encoder = build_backbone(backbone, pretrained, freeze_backbone)
        self.temporal: nn.Module
        if backbone == "small":
            self.temporal = SmallCNN(in_channels=2 * flow_frames, widths=tuple(flow_widths))
        else:
            self.temporal = build_backbone(
                backbone, pretrained, in_channels=2 * flow_frames, stem="cross_modality"
            )
            if pretrained:
                # The stem BatchNorm meets flow, not RGB (ImageNet's variances are ~10x the
                # flow responses'): its statistics start afresh and follow PyTorch's default
                # momentum, so they converge in a short run. With Lite0's 0.01 they moved about
                # half way in 70 steps and evaluation normalized with stale ones: 48.9 % top-1
                # on Weizmann instead of 64.4 (docs/benchmarks.md).
                stem_bn = self.temporal.net._bn0
                stem_bn.reset_running_stats()
                stem_bn.momentum = 0.1
        if fusion == "average":
            self.spatial_head = nn.Sequential(
                nn.Dropout(dropout), nn.Linear(self.encoder.out_dim, num_classes)
            )
            self.temporal_head = nn.Sequential(
                nn.Dropout(dropout), nn.Linear(self.temporal.out_dim, num_classes)
            )
        else:
            self.head = nn.Sequential(
                nn.Dropout(dropout),
                nn.Linear(self.encoder.out_dim + self.temporal.out_dim, num_classes),
            )

    def pretrained_parameters(self) -> list[nn.Parameter]:
        """The RGB encoder and the flow stream's body. The flow stream's stem, its convolution
        and the BatchNorm after it, meets a new modality: the cross-modality kernel sums 30
        flow channels, whose responses ImageNet's RGB statistics do not describe. So that
        BatchNorm keeps batch statistics under partial BN, as in TSN, and trains at the full
        learning rate with the convolution it normalises."""
        if not self.config["pretrained"]:
            return []
        net = self.temporal.net
        stem = {id(p) for p in [*net._conv_stem.parameters(), *net._bn0.parameters()]}
        flow_body = [p for p in self.temporal.parameters() if id(p) not in stem]
        return list(self.encoder.parameters()) + flow_body

    def frame_indices(self, mask: torch.Tensor) -> torch.Tensor:
        """The centre real frame, ``(B, 1)``."""
        return ((real_lengths(mask) - 1) // 2)[:, None]

    def flow_stack(self, flow: torch.Tensor, mask: torch.Tensor) -> torch.Tensor:
        """``(B, 2, T-1, H, W)`` → ``(B, 2L, H, W)`` (channels x₀, y₀, x₁, y₁, ...)."""
        b, _, steps, h, w = flow.shape
        length = self.flow_frames
        if steps < length:
            flow = nn.functional.pad(flow, (0, 0, 0, 0, 0, length - steps))
        n_flow = real_lengths(mask) - 1  # real flow fields per clip
        centre = (real_lengths(mask) - 1) // 2
        start = (centre - length // 2).clamp(min=0)
        start = torch.minimum(start, (n_flow - length).clamp(min=0))
        index = start[:, None] + torch.arange(length, device=flow.device)[None, :]
        stack = gather_frames(flow, index, dim=2)  # (B, 2, L, H, W)
        if self.subtract_mean:
            # Mean flow subtraction (Simonyan & Zisserman 2014): remove each field's mean
            # displacement, i.e. global camera motion; zero (padding) fields stay zero.
            stack = stack - stack.mean(dim=(3, 4), keepdim=True)
        return stack.transpose(1, 2).reshape(b, 2 * length, h, w)

    def stream_logits(
        self, features: torch.Tensor, mask: torch.Tensor, flow: torch.Tensor
    ) -> tuple[torch.Tensor, torch.Tensor]:
        """Per-stream logits ``(B, K)`` each (``fusion="average"`` only)."""
        if self.fusion != "average":
            raise UserError("stream_logits needs fusion='average'")
        rgb = gather_frames(features, self.frame_indices(mask), dim=1)[:, 0]
        motion = self.temporal(self.flow_stack(flow, mask))
        return self.spatial_head(rgb), self.temporal_head(motion)

    def forward_features(
        self, features: torch.Tensor, mask: torch.Tensor, flow: torch.Tensor | None = None
    ) -> torch.Tensor:
        """``(B, T, D), (B, T), flow (B, 2, T-1, H, W)`` → logits ``(B, K)``."""
        if flow is None:
            raise UserError("two_stream needs optical flow in batch['flow'] (compute_flow)")
        if self.fusion == "average":
            spatial, temporal = self.stream_logits(features, mask, flow)
            logp = torch.stack([spatial.log_softmax(-1), temporal.log_softmax(-1)])
            return torch.logsumexp(logp, dim=0) - math.log(2.0)
        rgb = gather_frames(features, self.frame_indices(mask), dim=1)[:, 0]
        motion = self.temporal(self.flow_stack(flow, mask))
        return self.head(torch.cat([rgb, motion], dim=1))

    def forward(self, batch: dict[str, torch.Tensor]) -> torch.Tensor:
        """As :meth:`FrameModel.forward`; computes flow with OpenCV if the batch lacks it."""
        if batch.get("flow") is None:
            from vidclass.data.flow import flow_from_video

            batch = {**batch, "flow": flow_from_video(batch["video"], batch["mask"])}
        return super().forward(batch)


def build_two_stream(
    num_classes: int,
    flow_frames: int = 15,
    fusion: str = "average",
    backbone: str = "small",
    pretrained: bool = False,
    freeze_backbone: bool = False,
    dropout: float = 0.2,
    flow_widths: Sequence[int] = (32, 64, 128, 128),
    subtract_mean: bool = True,
) -> TwoStream:
    """Two-stream RGB + optical flow; ``fusion`` is ``"average"`` (of probabilities) or
    ``"learned"`` (concatenated features → FC)."""
    return TwoStream(
        num_classes,
        flow_frames,
        fusion,
        backbone,
        pretrained,
        freeze_backbone,
        dropout,
        flow_widths,
        subtract_mean,
    )
