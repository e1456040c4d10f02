"""ONNX export of a trained run, and an onnxruntime model that is called like the torch one.

``export_onnx(run, out)`` writes a graph with inputs ``video (B, 3, T, H, W) float32``,
``mask (B, T) bool`` (and ``flow (B, 2, T-1, H, W) float32`` for two_stream) and output
``logits (B, K)``. T, H and W are fixed at the run's ``frames`` and ``size``; the batch axis is
1, or dynamic with ``dynamic_batch=True``. The mask stays ``bool`` because that is what the
models and the data pipeline use, onnxruntime takes numpy ``bool`` directly, and a float mask
would invite "soft" values the models never saw.

All eight methods export. A few model parts are fine in PyTorch but not for the TorchScript
ONNX exporter, so the export runs on a copy of the model with export-friendly equivalents that
compute the same numbers (`vidclass.predict.onnx_parts`, which lists them; checked against
PyTorch on every export).
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
from vidclass.predict.onnx_parts import (
    ExportWrapper,
    export_friendly_time_pool,
    swap_adaptive_pools,
)

TOLERANCE = 1e-4  # max abs logit difference accepted between onnxruntime and PyTorch
METADATA_KEY = "vidclass.config"

# Methods that cannot be exported, with the reason. Empty: all eight export (tests check it).
_NOT_EXPORTABLE: dict[str, str] = {}


def exportable_methods() -> dict[str, str | None]:
    """Method → ``None`` if it exports to ONNX, else the reason it cannot."""
    from vidclass.models import MODELS

    return {name: _NOT_EXPORTABLE.get(name) for name in MODELS}


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
    swap_adaptive_pools(export_copy)
    wrapper = ExportWrapper(export_copy).eval()
    example = _example_inputs(model, 2 if dynamic_batch else 1, frames, size, 0, padded=False)
    names = list(example)
    dynamic_axes = {n: {0: "batch"} for n in [*names, "logits"]} if dynamic_batch else None
    with replacing(out) as tmp:
        try:
            with (
                torch.no_grad(),
                export_friendly_time_pool(),
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
