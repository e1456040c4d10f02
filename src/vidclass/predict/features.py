"""Frame features computed once per sampled frame, so overlapping windows share them.

Windows of T frames sliding by a stride see most frames several times (twice at the default
stride of T/2). For the frame-based methods the expensive part, the 2D encoder, depends on the
frame alone (BatchNorm is in eval mode), so each frame is encoded once, kept while a window can
still read it, and only the head (`forward_features`) runs per window. `window_logits` gives
what `model(batch)` gives for the same window; tests/test_predict_features.py checks it.
"""

from __future__ import annotations

import contextlib
import functools
import os
from collections.abc import Callable, Iterator
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import cv2
import numpy as np
import torch

from vidclass.data.dataset import normalize_clip
from vidclass.data.views import flip_item
from vidclass.errors import UserError
from vidclass.models.blocks import ChannelsLastEncoder, FrameModel
from vidclass.models.cnn_lstm import CNNLSTM, with_deltas

# Frames per encoder call. Larger batches were measured slower per frame on 2 cores (the
# activations no longer fit the cache): EfficientNet-Lite0 at 224 px, one thread, torch
# channels_last 31 ms/frame at 1 and 16, 50 at 32; onnxruntime 12.5 at 1, 14.3 at 16.
ENCODE_BATCH = 1

Encoder = Callable[[np.ndarray], torch.Tensor]  # (N, 3, H, W) float32 -> (N, D)


def reuse_reason(model: object, config: dict) -> str | None:
    """Why windows of this run cannot share frame features (``None``: they can)."""
    if not isinstance(model, FrameModel):
        return "not a frame-based model"
    if config.get("normalize") == "clip":
        return "normalized per clip, so a frame's input depends on its window"
    if type(model).encode_frames is FrameModel.encode_frames:
        return None
    if type(model).encode_frames is CNNLSTM.encode_frames:
        return None
    return f"{type(model).__name__} transforms its frame features in a way not replayed here"


def transform_features(model: FrameModel, raw: torch.Tensor) -> torch.Tensor:
    """What ``model.encode_frames`` returns, from the encoder's rows ``(B, T, D)`` of it
    (padding rows zero): cnn_lstm's deltas are computed per window, so a window's first frame
    has zero change whatever came before it, exactly as when the window is encoded whole."""
    if isinstance(model, CNNLSTM) and model.deltas:
        return with_deltas(raw)
    return raw


def torch_encoder(model: FrameModel) -> Encoder:
    """The model's 2D encoder in ``channels_last`` (`ChannelsLastEncoder`); a copy taken now,
    so the caller's model keeps its layout (weights changed later are not seen: a Classifier
    is made for a trained run)."""
    encoder = ChannelsLastEncoder(model.encoder).eval()

    def encode(frames: np.ndarray) -> torch.Tensor:
        return encoder(torch.from_numpy(frames))

    return encode


def onnx_frame_encoder(
    run: str | os.PathLike, config: dict, digest: str, int8: bool = False
) -> tuple[FrameModel | None, Encoder | None]:
    """(torch head, onnxruntime frame encoder) of a run of a frame model, else (None, None);
    exports ``RUN/encoder.onnx`` unless it was exported from the run as it is now (``digest``,
    `vidclass.predict.onnx.run_digest`, taken before the weights are read). ``int8``: the
    encoder quantised to int8 (``RUN/encoder.int8.onnx``, `vidclass.predict.quantize`), a
    UserError for a run that is not frame-based.

    The encoder is nearly the whole cost and ran 2.5x faster in onnxruntime than in torch
    (12.5 vs 31 ms/frame, EfficientNet-Lite0, one thread); the head over kept features is
    small and stays in torch.
    """
    from vidclass.models.run import load_model
    from vidclass.predict.onnx import export_encoder, reuse_or_export

    model, _ = load_model(run)
    reason = reuse_reason(model, config)
    if reason is not None:
        if int8:
            raise UserError(
                f"--backend onnx-int8 quantises the frame encoder of frame-based methods, and "
                f"this run cannot use one ({reason}); use --backend onnx"
            )
        return None, None
    size = int(config["size"])
    path = reuse_or_export(
        Path(run) / "encoder.onnx", digest, lambda out: export_encoder(model, out, size, digest)
    )
    if int8:
        from vidclass.predict.quantize import (
            calibration_digest,
            calibration_frames,
            quantize_encoder,
        )

        fp32, int8_digest = path, calibration_digest(digest, config)
        path = reuse_or_export(
            Path(run) / "encoder.int8.onnx",
            int8_digest,
            lambda out: quantize_encoder(fp32, out, calibration_frames(config), int8_digest),
        )
    # One thread fewer than torch has, so the decoder keeps a core (two threads were
    # measured slower than one on 2 cores: 22-91 vs 12.5-16 ms/frame at batch 1).
    threads = max(1, torch.get_num_threads() - 1)
    return model, onnx_encoder(path, threads)


def onnx_encoder(path: str | os.PathLike, threads: int) -> Encoder:
    """An exported frame encoder in onnxruntime with ``threads`` intra-op threads (one fewer
    than the machine has when predicting, so the decoder keeps a core as with torch)."""
    import onnxruntime as ort

    options = ort.SessionOptions()
    options.intra_op_num_threads = max(1, threads)
    options.inter_op_num_threads = 1
    session = ort.InferenceSession(str(path), options, providers=["CPUExecutionProvider"])

    def encode(frames: np.ndarray) -> torch.Tensor:
        (features,) = session.run(None, {"frames": np.ascontiguousarray(frames, np.float32)})
        return torch.from_numpy(features)

    return encode


@functools.lru_cache(maxsize=8)
def _normalize_table(mode: str, mean: tuple[float, ...], std: tuple[float, ...]) -> np.ndarray:
    """`(1, 256, 3)` float32: what `normalize_clip` makes of each grey level in each channel
    (a per-pixel normalization: `reuse_reason` keeps per-clip ones off this path)."""
    levels = np.repeat(np.arange(256, dtype=np.uint8)[:, None], 3, axis=1)
    return normalize_clip(levels[None, :, None, :], mode, mean, std).reshape(1, 256, 3)


def normalized_frames(config: dict, frames: list[np.ndarray]) -> np.ndarray:
    """float32 ``(n, 3, H, W)`` of uint8 ``(H, W, 3)`` frames, normalized as the run was
    trained: `normalize_clip`'s numbers exactly (the same float32 operations on each grey
    level), read from a table per channel, which was measured 5x faster (1 vs 6 ms a 224 px
    frame) than computing them for every pixel."""
    table = _normalize_table(config["normalize"], tuple(config["mean"]), tuple(config["std"]))
    h, w = frames[0].shape[:2]
    out = np.empty((len(frames), 3, h, w), np.float32)
    for i, frame in enumerate(frames):
        out[i] = cv2.LUT(np.ascontiguousarray(frame), table).transpose(2, 0, 1)
    return out


def encode_frames(encode: Encoder, config: dict, frames: list[np.ndarray]) -> torch.Tensor:
    """``(n, D)`` features of uint8 ``(H, W, 3)`` frames, normalized as the run was trained
    (per pixel: `reuse_reason` keeps per-clip normalization off this path)."""
    clip = normalized_frames(config, frames)
    parts = [clip[start : start + ENCODE_BATCH] for start in range(0, len(clip), ENCODE_BATCH)]
    return torch.cat([encode(part) for part in parts])


class FeatureRing:
    """Encoder features of the last ``keep`` sampled frames, by sample index: a frame is
    encoded the first time a window reads it and forgotten once no window can, so memory is
    bounded by ``keep`` rows whatever the length of the video. ``flipped``: of the frames'
    mirror images; ``mirror``: keep such a ring beside this one (test-time flip). The frames
    come cropped (`vidclass.data.crop.frame_crops`: a frame's crop, a person's included, does
    not depend on the window that reads it)."""

    def __init__(
        self, encode: Encoder, config: dict, keep: int, mirror: bool = False, flipped: bool = False
    ) -> None:
        self.encode, self.config, self.keep, self.flipped = encode, config, keep, flipped
        self.rows: dict[int, torch.Tensor] = {}
        self.encoded = 0  # frames run through the encoder so far
        self.mirror = FeatureRing(encode, config, keep, flipped=True) if mirror else None

    def get(self, indices: list[int], frames: list[np.ndarray]) -> torch.Tensor:
        """``(n, D)`` features of sample ``indices`` (uint8 ``(H, W, 3)`` ``frames``)."""
        new = {i: f for i, f in zip(indices, frames, strict=True) if i not in self.rows}
        if new:
            todo = [f[:, ::-1] for f in new.values()] if self.flipped else list(new.values())
            rows = encode_frames(self.encode, self.config, todo)
            self.rows.update(zip(new, rows, strict=True))
            self.encoded += len(new)
        out = torch.stack([self.rows[i] for i in indices])
        oldest = max(indices) - self.keep + 1
        for key in [k for k in self.rows if k < oldest]:
            del self.rows[key]
        return out


def window_logits(
    model: FrameModel,
    ring: FeatureRing,
    indices: list[int],
    frames: list[np.ndarray],
    length: int,
    flow: torch.Tensor | None = None,
) -> torch.Tensor:
    """Logits ``(1, K)`` of one window (sample ``indices`` and their uint8 ``frames``, padded
    to ``length`` frames), as ``model.forward`` computes them: the frames the head reads
    (``frame_indices``) or all real ones, zero rows elsewhere."""
    n = len(frames)
    mask = torch.zeros(1, length, dtype=torch.bool)
    mask[0, :n] = True
    chosen = model.frame_indices(mask)
    if chosen is None:
        raw = ring.get(indices, frames)
        features = raw.new_zeros(1, length, raw.shape[1])
        features[0, :n] = raw
        features = transform_features(model, features)
    else:
        picks = chosen[0].tolist()
        encoded = transform_features(
            model, ring.get([indices[j] for j in picks], [frames[j] for j in picks])[None]
        )
        features = encoded.new_zeros(1, length, encoded.shape[-1])
        features.scatter_(1, chosen[:, :, None].expand_as(encoded), encoded)
    return model.forward_features(features, mask, flow)


def window_probs(
    model: FrameModel,
    ring: FeatureRing,
    indices: list[int],
    frames: list[np.ndarray],
    length: int,
    flow: torch.Tensor | None = None,
) -> np.ndarray:
    """Probabilities ``(K,)`` of one window (see `window_logits`); with a mirror ring
    (test-time flip), the mean of the window's and its mirror image's, whose flow is the
    window's mirrored (x negated)."""
    mirror = None
    if ring.mirror is not None:  # on the mirror thread, while this one scores the window
        mirrored = None if flow is None else flip_item({"flow": flow})["flow"]
        task = (model, ring.mirror, indices, frames, length, mirrored)
        mirror = _mirror_thread().submit(_logits_elsewhere, *task)
    try:
        probs = torch.softmax(window_logits(model, ring, indices, frames, length, flow), dim=1)[0]
    finally:
        logits = mirror.result() if mirror is not None else None
    if logits is not None:
        probs = (probs + torch.softmax(logits, dim=1)[0]) / 2
    return probs.float().numpy()


@functools.cache
def _mirror_thread() -> ThreadPoolExecutor:
    """The one thread that encodes and scores the mirror images (test-time flip) while the
    caller's thread does the originals: the encoders release the GIL, so on two cores the
    flip costs the second core's spare time rather than doubling the first's (the frames'
    preparation and the decoder share that core; docs/benchmarks.md, "Predict speed")."""
    return ThreadPoolExecutor(max_workers=1, thread_name_prefix="vidclass-mirror")


def _logits_elsewhere(*task) -> torch.Tensor:
    """`window_logits(*task)` on the mirror thread, under what the caller's thread runs in
    (both thread-local): inference mode, and denormals flushed."""
    with torch.inference_mode(), flush_denormal():
        return window_logits(*task)


def _flushes_denormals() -> bool:
    """Whether this thread treats denormal floats as zero (torch only reports support)."""
    return float((torch.tensor([1e-40]) * 1.0).item()) == 0.0


@contextlib.contextmanager
def flush_denormal() -> Iterator[None]:
    """Denormals as zero during a model call, then the thread's setting back.

    Tiny activations (e.g. BatchNorm of near-constant inputs) turn into denormal floats, which
    are many times slower on x86; treating them as zero changes no prediction. The setting
    belongs to the calling thread (the CPU's control register), so it must not outlive the
    call (other code may need the denormals).
    """
    was_on = _flushes_denormals()
    torch.set_flush_denormal(True)
    try:
        yield
    finally:
        if not was_on:
            torch.set_flush_denormal(False)


class FlowCache:
    """Optical flow between two sampled frames, computed once: overlapping windows of the
    two-stream model share most of their frame pairs (about 7 of 8 at the defaults); none
    when not ``shared`` (a crop decided per window)."""

    def __init__(self, method: str, shared: bool = True) -> None:
        self.method, self.shared = method, shared
        self.pairs: dict[tuple[int, int], np.ndarray] = {}

    def clip(self, idx: list[int], frames: list[np.ndarray]) -> np.ndarray:
        """`(2, n-1, H, W)` flow of a window of sample indices `idx` and their frames."""
        from vidclass.data.flow import compute_flow

        if not self.shared:
            self.pairs.clear()
        fields = []
        for j in range(len(idx) - 1):
            key = (idx[j], idx[j + 1])
            if key not in self.pairs:
                pair = np.stack([frames[j], frames[j + 1]])
                self.pairs[key] = compute_flow(pair, method=self.method)[:, 0]
            fields.append(self.pairs[key])
        return np.stack(fields, axis=1)

    def window(self, idx: list[int], frames: list[np.ndarray], length: int) -> torch.Tensor:
        """``(1, 2, length-1, H, W)`` float32 flow of one window padded with zero fields, as
        `Classifier._batch` builds it; pairs before the window are forgotten."""
        h, w = frames[0].shape[:2]
        flow = torch.zeros(1, 2, length - 1, h, w)
        if len(frames) > 1:
            fields = self.clip(idx, frames)[:, : length - 1]
            flow[0, :, : fields.shape[1]] = torch.from_numpy(fields.astype(np.float32))
        self.forget_before(idx[0])
        return flow

    def forget_before(self, i: int) -> None:
        for key in [k for k in self.pairs if k[0] < i]:
            del self.pairs[key]
