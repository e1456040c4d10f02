"""An int8 frame encoder for `--backend onnx-int8`: the exported fp32 encoder
(`RUN/encoder.onnx`) quantised statically by onnxruntime, calibrated on the run's own
training clips.

Why static, and why those clips: a CPU with int8 dot products (AVX-512 VNNI, AVX-VNNI) runs
EfficientNet-Lite0's QLinearConv about 1.7x faster than its fp32 convolutions (7.3 vs 12.6
ms a frame, one thread, docs/benchmarks.md), but only once every activation has a fixed
scale; dynamic quantisation measures the scales per call (ConvInteger), which costs what it
saves on convolutions. The scales are the ranges the encoder's activations take on frames
like the ones it will see: the prepared training clips (train and val splits, never test),
cropped as predict crops, a few frames of each and their mirror images.

Weights per output channel (int8, symmetric), activations per tensor (uint8), MinMax ranges:
on Weizmann held out by actor the int8 encoder's test top-1 equalled the fp32 one's on all
three folds (docs/benchmarks.md). The result of a prediction says `"backend": "onnx-int8"`.
"""

from __future__ import annotations

import hashlib
import os
import tempfile
from pathlib import Path

import numpy as np

from vidclass.data.dataset import normalize_clip
from vidclass.errors import UserError

# Frames taken from each training clip (evenly spread), each also mirrored; and at most
# this many in all (MinMax calibration runs the encoder once per frame: ~5 s for 400).
FRAMES_PER_CLIP = 3
MAX_FRAMES = 400
CALIBRATION = "minmax-u8s8-per-channel-v1"  # changes when the recipe below changes


def calibration_clips(config: dict) -> list[Path]:
    """The cached training clips (`cache/<id>.npy` of the train and val splits) of the data
    the run was trained on (`config["data"]`); a UserError saying what to do when missing."""
    from vidclass.data.prepare import read_manifest

    data = config.get("data")
    hint = "prepare the data again at that path, or use --backend onnx (fp32)"
    if not data or not (Path(data) / "manifest.csv").is_file():
        raise UserError(
            f"--backend onnx-int8 calibrates the int8 encoder on the clips the run was trained "
            f"on, and their prepared folder ({data or 'not recorded in config.json'}) is not "
            f"there; {hint}"
        )
    rows = [
        r
        for r in read_manifest(data)
        if r.get("status") == "ok" and r.get("split") in ("train", "val")
    ]
    paths = [Path(data) / "cache" / f"{r['video_id']}.npy" for r in rows]
    paths = [p for p in paths if p.is_file()]
    if not paths:
        raise UserError(f"{data}: no cached training clips to calibrate the int8 encoder; {hint}")
    return paths


def calibration_frames(config: dict) -> list[np.ndarray]:
    """Normalised `(3, H, W)` float32 frames to calibrate on: FRAMES_PER_CLIP of each
    training clip and their mirror images, clips taken evenly when there are too many."""
    paths = calibration_clips(config)
    per_clip = 2 * FRAMES_PER_CLIP
    if len(paths) * per_clip > MAX_FRAMES:
        keep = np.linspace(0, len(paths) - 1, MAX_FRAMES // per_clip).round().astype(int)
        paths = [paths[i] for i in sorted(set(keep.tolist()))]
    frames: list[np.ndarray] = []
    for path in paths:
        clip = np.load(path, mmap_mode="r")
        picks = np.linspace(0, len(clip) - 1, FRAMES_PER_CLIP).round().astype(int)
        x = normalize_clip(
            np.asarray(clip[sorted(set(picks.tolist()))]),
            config["normalize"],
            config["mean"],
            config["std"],
        ).transpose(0, 3, 1, 2)
        for frame in x:
            frames.append(np.ascontiguousarray(frame, np.float32))
            frames.append(np.ascontiguousarray(frame[:, :, ::-1], np.float32))
    return frames


def calibration_digest(run_digest: str, config: dict) -> str:
    """The digest an int8 encoder carries: the run's, the calibration recipe, and the clips
    it was calibrated on (their names and sizes), so any change quantises again."""
    h = hashlib.sha256(f"{run_digest}:{CALIBRATION}".encode())
    for path in calibration_clips(config):
        h.update(f"{path.name}:{path.stat().st_size}".encode())
    return h.hexdigest()


def quantize_encoder(
    fp32: str | os.PathLike, out: str | os.PathLike, frames: list[np.ndarray], digest: str
) -> Path:
    """Write the int8 (QDQ) version of the fp32 encoder graph `fp32` to `out`, its activation
    ranges from `frames`, with `digest` in its metadata (`reuse_or_export`)."""
    from onnxruntime.quantization import (
        CalibrationDataReader,
        CalibrationMethod,
        QuantFormat,
        QuantType,
        quant_pre_process,
        quantize_static,
    )

    from vidclass.atomic import replacing
    from vidclass.predict.onnx import DIGEST_KEY, _add_metadata

    class Frames(CalibrationDataReader):
        def __init__(self) -> None:
            self.left = iter(frames)

        def get_next(self) -> dict | None:
            frame = next(self.left, None)
            return None if frame is None else {"frames": frame[None]}

    out = Path(out)
    with tempfile.TemporaryDirectory() as tmp, replacing(out) as target:
        prepared = Path(tmp) / "pre.onnx"
        quant_pre_process(str(fp32), str(prepared))  # shapes and fused ops, as the tool advises
        try:
            quantize_static(
                str(prepared),
                str(target),
                Frames(),
                quant_format=QuantFormat.QDQ,
                per_channel=True,
                activation_type=QuantType.QUInt8,
                weight_type=QuantType.QInt8,
                calibrate_method=CalibrationMethod.MinMax,
            )
        except Exception as exc:  # onnxruntime's own exception types
            raise UserError(
                f"cannot quantise the frame encoder to int8 ({str(exc).splitlines()[0][:200]}); "
                "use --backend onnx"
            ) from None
        _add_metadata(target, {DIGEST_KEY: digest})
    return out
