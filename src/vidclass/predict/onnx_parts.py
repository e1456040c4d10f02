"""Export-friendly equivalents of the model parts the TorchScript ONNX exporter cannot take.

They compute the same numbers as the originals (`vidclass.predict.onnx` checks every export
against PyTorch) and are swapped in on a copy of the model, never on the model itself:

- ``nn.AdaptiveAvgPool2d`` (SmallCNN's 3×3 grid): the exporter only handles output sizes that
  divide the input (7×7 → 3×3 does not); replaced by two constant averaging matrices.
- ``pool_time_mask`` (3D models): ``adaptive_max_pool1d`` has the same limit (e.g. 9 frames →
  2 steps); replaced by a constant "any frame in the bin" matrix while exporting.
- early fusion: the clip is zero-padded to whole windows before the model sees it (what the
  model does itself, but with sizes known at export time so ``unfold`` exports).
- cnn_lstm: ``pack_padded_sequence`` crashes the exporter for one-layer LSTMs; instead the LSTM
  runs over the padded features and the state after the last real frame is gathered (for a
  bidirectional LSTM the backward direction runs on each clip reversed within its length).

Frame models keep their boolean-mask indexing (only real frames are encoded): it exports as
NonZero/Gather/ScatterND and works for any mask and batch size.
"""

from __future__ import annotations

import contextlib
from collections.abc import Iterator

import torch
from torch import nn

from vidclass.errors import UserError


def _bin_matrix(n_in: int, n_out: int) -> torch.Tensor:
    """``(n_out, n_in)`` 0/1 matrix of adaptive-pooling bins (PyTorch's start/end rule)."""
    m = torch.zeros(n_out, n_in)
    for i in range(n_out):
        start = (i * n_in) // n_out
        end = -(-((i + 1) * n_in) // n_out)
        m[i, start:end] = 1.0
    return m


class _MatrixAdaptiveAvgPool2d(nn.Module):
    """``AdaptiveAvgPool2d`` as ``A_h @ x @ A_wᵀ`` with constant averaging matrices, which exports
    for any input/output size (the input size is fixed when tracing)."""

    def __init__(self, output_size: int | tuple[int | None, int | None]) -> None:
        super().__init__()
        size = output_size if isinstance(output_size, tuple) else (output_size, output_size)
        self.output_size = size

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        h, w = int(x.shape[-2]), int(x.shape[-1])
        oh = h if self.output_size[0] is None else int(self.output_size[0])
        ow = w if self.output_size[1] is None else int(self.output_size[1])
        ah = _bin_matrix(h, oh)
        aw = _bin_matrix(w, ow)
        ah = (ah / ah.sum(1, keepdim=True)).to(x.dtype)
        aw = (aw / aw.sum(1, keepdim=True)).to(x.dtype)
        return ah @ x @ aw.T


def swap_adaptive_pools(model: nn.Module) -> None:
    """Replace every ``nn.AdaptiveAvgPool2d`` in ``model`` (in place) by the matrix form."""
    for parent in list(model.modules()):
        for child_name, child in list(parent.named_children()):
            if isinstance(child, nn.AdaptiveAvgPool2d):
                setattr(parent, child_name, _MatrixAdaptiveAvgPool2d(child.output_size))


def _pool_time_mask_static(mask: torch.Tensor, t_out: int) -> torch.Tensor:
    """Same result as :func:`vidclass.models.blocks.pool_time_mask` (a step is real if any frame
    in its adaptive-pooling bin is), as a constant matrix product that exports for any sizes."""
    t_in = int(mask.shape[1])
    if t_in == int(t_out):
        return mask
    bins = _bin_matrix(t_in, int(t_out))
    return (mask.to(torch.float32) @ bins.T) > 0


@contextlib.contextmanager
def export_friendly_time_pool() -> Iterator[None]:
    """Temporarily route the 3D models' mask pooling through :func:`_pool_time_mask_static`."""
    from vidclass.models import blocks

    original = blocks.pool_time_mask
    blocks.pool_time_mask = _pool_time_mask_static
    try:
        yield
    finally:
        blocks.pool_time_mask = original


def _gather_steps(x: torch.Tensor, index: torch.Tensor) -> torch.Tensor:
    """``x (B, T, D)``, ``index (B,)`` → ``x[b, index[b]]`` ``(B, D)``."""
    idx = index.view(-1, 1, 1).expand(x.shape[0], 1, x.shape[2])
    return torch.gather(x, 1, idx)[:, 0]


def _single_direction(lstm: nn.LSTM, layer: int, suffix: str, input_size: int) -> nn.LSTM:
    """One layer and direction of ``lstm`` as its own one-layer, one-direction LSTM."""
    single = nn.LSTM(input_size, lstm.hidden_size, batch_first=True, bias=lstm.bias)
    with torch.no_grad():
        for kind in ("weight_ih", "weight_hh") + (("bias_ih", "bias_hh") if lstm.bias else ()):
            getattr(single, f"{kind}_l0").copy_(getattr(lstm, f"{kind}_l{layer}{suffix}"))
    return single.eval()


class _LastRealStateLSTM(nn.Module):
    """``CNNLSTM``'s head without packed sequences: the final states of the packed run, read off
    an LSTM over the padded features (padding is at the end, so real steps never see it)."""

    def __init__(self, lstm: nn.LSTM) -> None:
        super().__init__()
        if getattr(lstm, "proj_size", 0):
            raise UserError("cnn_lstm with an LSTM projection (proj_size) cannot be exported")
        self.lstm = lstm
        self.layers = nn.ModuleList()
        if lstm.bidirectional:
            for layer in range(lstm.num_layers):
                size = lstm.input_size if layer == 0 else 2 * lstm.hidden_size
                self.layers.append(
                    nn.ModuleList(
                        [
                            _single_direction(lstm, layer, "", size),
                            _single_direction(lstm, layer, "_reverse", size),
                        ]
                    )
                )

    def forward(self, x: torch.Tensor, lengths: torch.Tensor) -> torch.Tensor:
        """``x (B, T, D)``, ``lengths (B,)`` ≥ 1 → ``(B, directions · hidden)``."""
        last = lengths - 1
        if not self.lstm.bidirectional:
            out, _ = self.lstm(x)
            return _gather_steps(out, last)
        # Reverse each clip within its real length; padding steps stay where they are (at the
        # end), so a forward pass over the reversed clip is the backward pass of the packed run.
        steps = torch.arange(x.shape[1], device=x.device)[None, :]
        reverse = torch.where(steps < lengths[:, None], last[:, None] - steps, steps)
        index = reverse[:, :, None]
        h = x
        fwd_out = bwd_out = x
        for pair in self.layers:
            forward, backward = pair[0], pair[1]
            fwd_out, _ = forward(h)
            flipped = torch.gather(h, 1, index.expand(-1, -1, h.shape[2]))
            bwd_rev, _ = backward(flipped)
            bwd_out = torch.gather(bwd_rev, 1, index.expand(-1, -1, bwd_rev.shape[2]))
            h = torch.cat([fwd_out, bwd_out], dim=2)
        return torch.cat([_gather_steps(fwd_out, last), bwd_out[:, 0]], dim=1)


class ExportWrapper(nn.Module):
    """Positional tensors in (what the exporter traces), the model's dict batch inside."""

    def __init__(self, model: nn.Module) -> None:
        super().__init__()
        from vidclass.models.cnn_lstm import CNNLSTM

        self.model = model
        self.lstm_head = _LastRealStateLSTM(model.lstm) if isinstance(model, CNNLSTM) else None

    def _pad_to_windows(
        self, video: torch.Tensor, mask: torch.Tensor
    ) -> tuple[torch.Tensor, torch.Tensor]:
        """Early fusion: zero-pad to whole windows here, with export-time constants."""
        window, stride = int(self.model.window), int(self.model.stride)
        t = int(video.shape[2])
        n_win = max(1, -(-(t - window) // stride) + 1)
        need = (n_win - 1) * stride + window
        if need > t:
            # Concatenated zeros rather than F.pad: the exporter then still knows T.
            extra = need - t
            video = torch.cat([video, torch.zeros_like(video[:, :, :extra])], dim=2)
            mask = torch.cat([mask, torch.zeros_like(mask[:, :extra])], dim=1)
        return video, mask

    def forward(
        self, video: torch.Tensor, mask: torch.Tensor, *extra: torch.Tensor
    ) -> torch.Tensor:
        """``extra``: ``flow`` for a model that needs it, ``keypoints`` for the pose method."""
        from vidclass.models.blocks import real_lengths
        from vidclass.models.early_fusion import EarlyFusion

        if self.lstm_head is not None:
            features = self.model.encode_frames(video, mask)
            return self.model.classifier(self.lstm_head(features, real_lengths(mask)))
        if isinstance(self.model, EarlyFusion):
            video, mask = self._pad_to_windows(video, mask)
        batch = {"video": video, "mask": mask}
        names = ["flow"] * bool(getattr(self.model, "needs_flow", False))
        names += ["keypoints"] * bool(getattr(self.model, "needs_keypoints", False))
        batch.update(zip(names, extra, strict=True))
        return self.model(batch)
