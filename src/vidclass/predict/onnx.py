"""ONNX export of a trained run, and an onnxruntime model that is called like the torch one.

``export_onnx(run, out)`` writes a graph with inputs ``video (B, 3, T, H, W) float32``,
``mask (B, T) bool`` (and ``flow (B, 2, T-1, H, W) float32`` for two_stream) and output
``logits (B, K)``. T, H and W are fixed at the run's ``frames`` and ``size``; the batch axis is
1, or dynamic with ``dynamic_batch=True``. The mask stays ``bool`` because that is what the
models and the data pipeline use, onnxruntime takes numpy ``bool`` directly, and a float mask
would invite "soft" values the models never saw.

All eight methods export. A few model parts are fine in PyTorch but not for the TorchScript
ONNX exporter, so the export runs on a copy of the model with export-friendly equivalents that
compute the same numbers (checked against PyTorch on every export):

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
import copy
import json
import os
import sys
import tempfile
import warnings
from collections.abc import Iterator, Mapping
from pathlib import Path

import numpy as np
import torch
from torch import nn

from vidclass.atomic import replacing
from vidclass.errors import UserError

TOLERANCE = 1e-4  # max abs logit difference accepted between onnxruntime and PyTorch
METADATA_KEY = "vidclass.config"

# Methods that cannot be exported, with the reason. Empty: all eight export (tests check it).
_NOT_EXPORTABLE: dict[str, str] = {}


def exportable_methods() -> dict[str, str | None]:
    """Method → ``None`` if it exports to ONNX, else the reason it cannot."""
    from vidclass.models import MODELS

    return {name: _NOT_EXPORTABLE.get(name) for name in MODELS}


# ----------------------------------------------------------------------- export-friendly parts


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


def _swap_adaptive_pools(model: nn.Module) -> None:
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
def _export_friendly_time_pool() -> Iterator[None]:
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


class _ExportWrapper(nn.Module):
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
        self, video: torch.Tensor, mask: torch.Tensor, flow: torch.Tensor | None = None
    ) -> torch.Tensor:
        from vidclass.models.blocks import real_lengths
        from vidclass.models.early_fusion import EarlyFusion

        if self.lstm_head is not None:
            features = self.model.encode_frames(video, mask)
            return self.model.classifier(self.lstm_head(features, real_lengths(mask)))
        if isinstance(self.model, EarlyFusion):
            video, mask = self._pad_to_windows(video, mask)
        batch = {"video": video, "mask": mask}
        if flow is not None:
            batch["flow"] = flow
        return self.model(batch)


# ------------------------------------------------------------------------------------ export


@contextlib.contextmanager
def _quiet_native_output() -> Iterator[None]:
    """Silence what the exporter's C++ side writes straight to fds 1 and 2 (shape-inference
    notes, and on failure a dump of the whole TorchScript graph): the caller reports one line."""
    sys.stdout.flush()
    sys.stderr.flush()
    try:
        saved = [os.dup(1), os.dup(2)]
    except OSError:  # no standard fds (a daemon): nothing to silence
        yield
        return
    try:
        with tempfile.TemporaryFile() as sink:
            os.dup2(sink.fileno(), 1)
            os.dup2(sink.fileno(), 2)
            try:
                yield
            finally:
                sys.stdout.flush()
                sys.stderr.flush()
                os.dup2(saved[0], 1)
                os.dup2(saved[1], 2)
    finally:
        for fd in saved:
            os.close(fd)


def _example_inputs(
    model: nn.Module, batch: int, frames: int, size: int, seed: int, padded: bool
) -> dict[str, torch.Tensor]:
    """Random inputs; with ``padded``, the last clip ends in padding frames."""
    g = torch.Generator().manual_seed(seed)
    inputs = {
        "video": torch.randn(batch, 3, frames, size, size, generator=g),
        "mask": torch.ones(batch, frames, dtype=torch.bool),
    }
    if padded and frames > 1:
        inputs["mask"][-1, max(1, frames - frames // 3) :] = False
    if getattr(model, "needs_flow", False):
        inputs["flow"] = torch.randn(batch, 2, frames - 1, size, size, generator=g) * 0.5
    return inputs


def _first_line(exc: BaseException) -> str:
    text = str(exc).strip().splitlines()
    line = text[0] if text else type(exc).__name__
    return line if len(line) <= 300 else line[:297] + "..."


def export_model(
    model: nn.Module,
    out: str | os.PathLike,
    frames: int,
    size: int,
    dynamic_batch: bool = False,
    opset: int = 17,
    name: str | None = None,
    metadata: Mapping[str, object] | None = None,
) -> Path:
    """Export ``model`` (any vidclass model) at ``frames × size × size`` to ``out``; the file is
    checked against PyTorch before it replaces ``out``. ``export_onnx`` is the run-folder entry."""
    name = name or type(model).__name__
    out = Path(out)
    frames, size = int(frames), int(size)
    if frames < 1 or size < 1:
        raise UserError(f"cannot export {name}: frames and size must be >= 1, got {frames}, {size}")
    out.parent.mkdir(parents=True, exist_ok=True)

    export_copy = copy.deepcopy(model).eval()
    _swap_adaptive_pools(export_copy)
    wrapper = _ExportWrapper(export_copy).eval()
    example = _example_inputs(model, 2 if dynamic_batch else 1, frames, size, 0, padded=False)
    names = list(example)
    dynamic_axes = {n: {0: "batch"} for n in [*names, "logits"]} if dynamic_batch else None
    with replacing(out) as tmp:
        try:
            with (
                torch.no_grad(),
                _export_friendly_time_pool(),
                warnings.catch_warnings(),
                _quiet_native_output(),
            ):
                # TracerWarnings say shapes become constants: intended, T/H/W are fixed.
                warnings.simplefilter("ignore")
                torch.onnx.export(
                    wrapper,
                    tuple(example.values()),
                    str(tmp),
                    input_names=names,
                    output_names=["logits"],
                    opset_version=opset,
                    dynamic_axes=dynamic_axes,
                    do_constant_folding=True,
                    dynamo=False,
                )
        except UserError:
            raise
        except Exception as exc:
            raise UserError(
                f"cannot export {name} to ONNX: the exporter failed ({_first_line(exc)}); "
                "use the PyTorch backend (vidclass predict --backend torch) for this run"
            ) from None
        _add_metadata(tmp, {"model": name, "frames": frames, "size": size, **(metadata or {})})
        _verify(model, tmp, name, frames, size, dynamic_batch)
    return out


def _add_metadata(path: Path, config: Mapping[str, object]) -> None:
    """Store the run config in the file so an ONNX model can be used on its own."""
    import onnx

    proto = onnx.load(str(path))
    entry = proto.metadata_props.add()
    entry.key = METADATA_KEY
    entry.value = json.dumps(config)
    onnx.checker.check_model(proto)
    onnx.save(proto, str(path))


def _verify(
    model: nn.Module, path: Path, name: str, frames: int, size: int, dynamic_batch: bool
) -> None:
    """Compare onnxruntime with PyTorch on a random batch that includes padding frames."""
    batch = 3 if dynamic_batch else 1
    inputs = _example_inputs(model, batch, frames, size, seed=1, padded=True)
    was_training = model.training
    model.eval()
    try:
        with torch.no_grad():
            expected = model(dict(inputs)).numpy()
    finally:
        model.train(was_training)
    got = OnnxModel(path)({k: v.numpy() for k, v in inputs.items()})
    diff = float(np.abs(got - expected).max())
    if not diff <= TOLERANCE:
        raise UserError(
            f"cannot export {name} to ONNX: onnxruntime differs from PyTorch by {diff:.2e} "
            f"(> {TOLERANCE:g}); use the PyTorch backend (vidclass predict --backend torch)"
        )


def export_onnx(
    run: str | os.PathLike, out: str | os.PathLike, dynamic_batch: bool = False, opset: int = 17
) -> Path:
    """Export the model of run folder ``run`` to ``out`` (written atomically) and return ``out``.

    Inputs ``video``, ``mask`` (bool) and ``flow`` when the method needs it, output ``logits``;
    frames and size are the run's, the batch axis is 1 or, with ``dynamic_batch``, any size.
    """
    from vidclass.models.run import load_model

    model, config = load_model(run)
    missing = [k for k in ("frames", "size") if k not in config]
    if missing:
        raise UserError(
            f"{Path(run) / 'config.json'}: has no {', '.join(missing)}; cannot fix the ONNX "
            "input size (re-save the run with `vidclass train`)"
        )
    method = str(config["model"])
    reason = exportable_methods().get(method)
    if reason:
        raise UserError(f"cannot export {method} to ONNX: {reason}")
    keep = ("model", "options", "classes", "frames", "size", "normalize", "mean", "std")
    metadata = {k: config[k] for k in keep if k in config}
    metadata["needs_flow"] = bool(getattr(model, "needs_flow", False))
    return export_model(
        model,
        out,
        int(config["frames"]),
        int(config["size"]),
        dynamic_batch=dynamic_batch,
        opset=opset,
        name=method,
        metadata=metadata,
    )


# -------------------------------------------------------------------------------- inference


_ORT_DTYPES = {"tensor(float)": np.float32, "tensor(bool)": np.bool_}


class OnnxModel:
    """An exported model in onnxruntime (CPU): ``model(batch) -> logits (B, K)`` numpy, with the
    batch dict the torch models take (numpy arrays or tensors; extra keys are ignored)."""

    def __init__(self, path: str | os.PathLike) -> None:
        import onnxruntime as ort

        self.path = Path(path)
        if not self.path.is_file():
            raise UserError(f"{self.path}: not found; create it with `vidclass export RUN --onnx`")
        try:
            self.session = ort.InferenceSession(str(self.path), providers=["CPUExecutionProvider"])
        except Exception as exc:  # onnxruntime raises its own, unexported exception types
            raise UserError(
                f"{self.path}: not a loadable ONNX model ({_first_line(exc)}); export it again"
            ) from None
        inputs = self.session.get_inputs()
        self.input_names: list[str] = [i.name for i in inputs]
        self.output_names: list[str] = [o.name for o in self.session.get_outputs()]
        # Fixed dims as ints, symbolic (dynamic) dims as None.
        self.input_shapes: dict[str, tuple[int | None, ...]] = {
            i.name: tuple(d if isinstance(d, int) else None for d in i.shape) for i in inputs
        }
        self._dtypes = {i.name: _ORT_DTYPES.get(i.type, np.float32) for i in inputs}
        meta = self.session.get_modelmeta().custom_metadata_map or {}
        self.metadata: dict = json.loads(meta[METADATA_KEY]) if METADATA_KEY in meta else {}

    @property
    def batch_size(self) -> int | None:
        """The fixed batch size of the graph, or ``None`` when the batch axis is dynamic."""
        return self.input_shapes[self.input_names[0]][0]

    def _feeds(self, batch: Mapping[str, object]) -> dict[str, np.ndarray]:
        """Inputs as contiguous arrays of the graph's dtypes, with shapes checked."""
        missing = [n for n in self.input_names if n not in batch or batch[n] is None]
        if missing:
            hint = " (optical flow: vidclass.data.flow.compute_flow)" if "flow" in missing else ""
            raise UserError(
                f"{self.path.name}: batch lacks input(s) {', '.join(missing)}{hint}; "
                f"the model takes {', '.join(self.input_names)}"
            )
        feeds: dict[str, np.ndarray] = {}
        batch_sizes = set()
        for name in self.input_names:
            value = batch[name]
            if isinstance(value, torch.Tensor):
                value = value.detach().cpu().numpy()
            array = np.ascontiguousarray(np.asarray(value), dtype=self._dtypes[name])
            expected = self.input_shapes[name]
            fixed_ok = array.ndim == len(expected) and all(
                want is None or got == want
                for got, want in zip(array.shape[1:], expected[1:], strict=True)
            )
            if not fixed_ok:
                shown = ", ".join("batch" if d is None else str(d) for d in expected)
                raise UserError(
                    f"{self.path.name}: input {name!r} has shape {tuple(array.shape)}, but the "
                    f"model takes ({shown}); the export fixes frames and size "
                    "(re-export the run, or resample the clip to them)"
                )
            batch_sizes.add(array.shape[0])
            feeds[name] = array
        if len(batch_sizes) != 1:
            raise UserError(
                f"{self.path.name}: inputs disagree on the batch size: "
                + ", ".join(f"{n} {feeds[n].shape[0]}" for n in self.input_names)
            )
        if 0 in batch_sizes:
            raise UserError(f"{self.path.name}: empty batch")
        return feeds

    def __call__(self, batch: Mapping[str, object]) -> np.ndarray:
        """``{"video", "mask"[, "flow"]}`` → logits ``(B, K)`` float32."""
        feeds = self._feeds(batch)
        b = next(iter(feeds.values())).shape[0]
        fixed = self.batch_size
        if fixed is None or fixed == b:
            return self.session.run(self.output_names[:1], feeds)[0]
        if fixed == 1:  # a batch-1 export: run the clips one at a time
            parts = [
                self.session.run(self.output_names[:1], {k: v[i : i + 1] for k, v in feeds.items()})
                for i in range(b)
            ]
            return np.concatenate([p[0] for p in parts])
        raise UserError(
            f"{self.path.name}: the model was exported for batch size {fixed}, got {b}; "
            "export with --dynamic-batch"
        )


__all__ = ["OnnxModel", "TOLERANCE", "export_model", "export_onnx", "exportable_methods"]
