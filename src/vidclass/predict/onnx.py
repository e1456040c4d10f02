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
PyTorch on every export). `export_encoder` writes a frame model's 2D encoder alone, through the
same export-and-check (`export_checked`).

An export of a run folder carries the digest of what it was made from (`run_digest`: the
weights' bytes and the config that shapes the graph) in its metadata; `reuse_or_export` keeps a
file only while that digest is the run's, so a copied or retrained run never predicts with an
old graph (modification times cannot tell: `cp -p` and `rsync -a` keep them).
"""

from __future__ import annotations

import contextlib
import copy
import hashlib
import json
import os
import sys
import tempfile
import warnings
from collections.abc import Callable, Iterator, Mapping
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
DIGEST_KEY = "vidclass.digest"  # `run_digest` of the run folder the file was exported from
# The config entries an export of a run depends on: the graph's (method, options, input size)
# and those its metadata repeats for users of the file alone.
RUN_KEYS = ("model", "options", "classes", "frames", "size", "normalize", "mean", "std")

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
    if getattr(model, "needs_keypoints", False):
        from vidclass.models import example_keypoints

        inputs["keypoints"] = example_keypoints(batch, frames, g)
    return inputs


def _first_line(exc: BaseException) -> str:
    text = str(exc).strip().splitlines()
    line = text[0] if text else type(exc).__name__
    return line if len(line) <= 300 else line[:297] + "..."


def export_checked(
    module: nn.Module,
    inputs: Mapping[str, torch.Tensor],
    out: str | os.PathLike,
    check: Mapping[str, torch.Tensor],
    reference: Callable[[], np.ndarray],
    what: str,
    output: str,
    dynamic_axes: dict | None = None,
    opset: int = 17,
    props: Mapping[str, str] | None = None,
) -> Path:
    """Trace ``module`` on the named ``inputs`` into ``out`` (output ``output``), with the
    metadata ``props``; kept only if onnxruntime's output for the inputs ``check`` is within
    ``TOLERANCE`` of ``reference()``, the original PyTorch module's, else ``out`` is left as it
    was and a UserError naming ``what`` says so. The one export-and-check of the run's model
    and of the frame encoder."""
    out = Path(out)
    out.parent.mkdir(parents=True, exist_ok=True)
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
                    module,
                    tuple(inputs.values()),
                    str(tmp),
                    input_names=list(inputs),
                    output_names=[output],
                    opset_version=opset,
                    dynamic_axes=dynamic_axes,
                    do_constant_folding=True,
                    dynamo=False,
                )
        except UserError:
            raise
        except Exception as exc:
            raise UserError(
                f"cannot export {what} to ONNX: the exporter failed ({_first_line(exc)}); "
                "use the PyTorch backend (vidclass predict --backend torch) for this run"
            ) from None
        if props:
            _add_metadata(tmp, props)
        _verify(tmp, what, check, reference())
    return out


def export_model(
    model: nn.Module,
    out: str | os.PathLike,
    frames: int,
    size: int,
    dynamic_batch: bool = False,
    opset: int = 17,
    name: str | None = None,
    metadata: Mapping[str, object] | None = None,
    digest: str | None = None,
) -> Path:
    """Export ``model`` (any vidclass model) at ``frames × size × size`` to ``out``; the file is
    checked against PyTorch before it replaces ``out``. ``export_onnx`` is the run-folder entry
    (``digest``: the run's, stored for ``reuse_or_export``)."""
    name = name or type(model).__name__
    frames, size = int(frames), int(size)
    if frames < 1 or size < 1:
        raise UserError(f"cannot export {name}: frames and size must be >= 1, got {frames}, {size}")
    export_copy = copy.deepcopy(model).eval()
    swap_adaptive_pools(export_copy)
    wrapper = ExportWrapper(export_copy).eval()
    example = _example_inputs(model, 2 if dynamic_batch else 1, frames, size, 0, padded=False)
    dynamic_axes = {n: {0: "batch"} for n in [*example, "logits"]} if dynamic_batch else None
    # The check: a batch of another size than traced, with padding frames.
    check = _example_inputs(model, 3 if dynamic_batch else 1, frames, size, seed=1, padded=True)
    config = {"model": name, "frames": frames, "size": size, **(metadata or {})}
    props = {METADATA_KEY: json.dumps(config), **({DIGEST_KEY: digest} if digest else {})}
    return export_checked(
        wrapper,
        example,
        out,
        check,
        lambda: _torch_outputs(model, check),
        name,
        "logits",
        dynamic_axes,
        opset,
        props,
    )


def export_encoder(
    model: nn.Module, out: str | os.PathLike, size: int, digest: str | None = None
) -> Path:
    """Write a frame model's ``model.encoder`` as an ONNX graph ``frames (N, 3, size, size) ->
    features (N, D)``, checked against PyTorch before it replaces ``out``."""
    encoder = copy.deepcopy(model.encoder).eval()
    swap_adaptive_pools(encoder)
    example = {"frames": torch.randn(2, 3, size, size, generator=torch.Generator().manual_seed(0))}

    def reference() -> np.ndarray:
        with torch.no_grad():
            return model.encoder.eval()(example["frames"]).numpy()

    return export_checked(
        encoder,
        example,
        out,
        example,
        reference,
        "the frame encoder",
        "features",
        {"frames": {0: "n"}, "features": {0: "n"}},
        props={DIGEST_KEY: digest} if digest else None,
    )


def _add_metadata(path: Path, props: Mapping[str, str]) -> None:
    """Store ``props`` in the file's ``metadata_props`` (the run config, so an ONNX model can be
    used on its own, and the digest of the run it came from), replacing entries of those keys
    (an int8 encoder is made from a file that carries its fp32 digest)."""
    import onnx

    proto = onnx.load(str(path))
    kept = [(p.key, p.value) for p in proto.metadata_props if p.key not in props]
    del proto.metadata_props[:]
    for key, value in [*kept, *props.items()]:
        entry = proto.metadata_props.add()
        entry.key, entry.value = key, value
    onnx.checker.check_model(proto)
    onnx.save(proto, str(path))


def _torch_outputs(model: nn.Module, inputs: Mapping[str, torch.Tensor]) -> np.ndarray:
    """``model``'s logits for ``inputs`` in eval mode (its own mode restored afterwards)."""
    was_training = model.training
    model.eval()
    try:
        with torch.no_grad():
            return model(dict(inputs)).numpy()
    finally:
        model.train(was_training)


def _verify(
    path: Path, what: str, inputs: Mapping[str, torch.Tensor], expected: np.ndarray
) -> None:
    """Refuse the file at ``path`` unless onnxruntime gives ``expected`` for ``inputs``."""
    import onnxruntime as ort

    session = ort.InferenceSession(str(path), providers=["CPUExecutionProvider"])
    feeds = {i.name: inputs[i.name].numpy() for i in session.get_inputs()}
    got = session.run(None, feeds)[0]
    diff = float(np.abs(got - expected).max())
    if not diff <= TOLERANCE:
        raise UserError(
            f"cannot export {what} to ONNX: onnxruntime differs from PyTorch by {diff:.2e} "
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

    digest = run_digest(run)  # before the weights are read: a later change then re-exports
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
    metadata = {k: config[k] for k in RUN_KEYS if k in config}
    metadata["needs_flow"] = bool(getattr(model, "needs_flow", False))
    metadata["needs_keypoints"] = bool(getattr(model, "needs_keypoints", False))
    return export_model(
        model,
        out,
        int(config["frames"]),
        int(config["size"]),
        dynamic_batch=dynamic_batch,
        opset=opset,
        name=method,
        metadata=metadata,
        digest=digest,
    )


def run_digest(run: str | os.PathLike) -> str:
    """sha256 of what an export of run folder ``run`` is made of: the bytes of its weights and
    the ``RUN_KEYS`` of its config (a UserError if either is missing)."""
    from vidclass.models.run import MODEL_FILE, read_config

    config = read_config(run)
    weights = Path(run) / MODEL_FILE
    h = hashlib.sha256()
    try:
        with open(weights, "rb") as f:
            for block in iter(lambda: f.read(1 << 20), b""):
                h.update(block)
    except FileNotFoundError:
        raise UserError(f"{weights}: not found; the run has no trained weights yet") from None
    h.update(json.dumps({k: config.get(k) for k in RUN_KEYS}, sort_keys=True).encode())
    return h.hexdigest()


def exported_digest(path: str | os.PathLike) -> str | None:
    """The ``run_digest`` an ONNX file was exported with; None when the file is missing, cannot
    be read, or carries none (exported by an older vidclass or another tool)."""
    import onnx

    try:
        proto = onnx.load(str(path), load_external_data=False)
    except Exception:  # missing, truncated, not ONNX: all mean "export it again"
        return None
    return next((p.value for p in proto.metadata_props if p.key == DIGEST_KEY), None)


def reuse_or_export(path: str | os.PathLike, digest: str, export: Callable[[Path], object]) -> Path:
    """``path`` as an export of the run whose ``run_digest`` is ``digest``: kept when it says
    so, else written by ``export(path)``, with one line on stderr saying why."""
    path = Path(path)
    found = exported_digest(path)
    if found == digest:
        return path
    if not path.exists():
        why = "exporting it once (kept while the run's weights and config stay the same)"
    elif found is None:
        why = "carries no digest of the weights it came from; exporting it again"
    else:
        why = "was exported from other weights or config than the run has now; exporting it again"
    print(f"{path}: {why}", file=sys.stderr, flush=True)
    export(path)
    return path


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


__all__ = [
    "OnnxModel",
    "TOLERANCE",
    "export_encoder",
    "export_model",
    "export_onnx",
    "exportable_methods",
    "reuse_or_export",
    "run_digest",
]
