"""The method zoo: every video-classification method behind one interface.

``build(name, num_classes, **options)`` returns an ``nn.Module`` whose ``forward(batch)`` takes
``{"video": (B, C, T, H, W), "mask": (B, T)[, "flow": (B, 2, T-1, H, W)]}`` and returns logits
``(B, num_classes)``. Every model has ``config`` (its options, defaults filled, JSON-safe:
``build(name, n, **model.config)`` rebuilds it) and ``needs_flow``.

Frame-based models (single_frame, late_fusion, cnn_lstm, two_stream, tsn, temporal_conv) split into
``encode_frames(video, mask) -> (B, T, D)`` and ``forward_features(features, mask, flow=None)``
so features of a frozen backbone can be cached (see :mod:`vidclass.models.blocks`).
"""

from __future__ import annotations

import inspect
from collections.abc import Callable

import torch
from torch import nn

from vidclass.errors import UserError
from vidclass.models.cnn_lstm import build_cnn_lstm
from vidclass.models.early_fusion import build_early_fusion
from vidclass.models.late_fusion import build_late_fusion
from vidclass.models.multires import build_multires
from vidclass.models.pose import build_pose
from vidclass.models.single_frame import build_single_frame
from vidclass.models.slow_fusion import build_slow_fusion
from vidclass.models.slowfast import build_slowfast
from vidclass.models.temporal_conv import build_temporal_conv
from vidclass.models.tsn import build_tsn
from vidclass.models.two_stream import build_two_stream

MODELS: dict[str, Callable[..., nn.Module]] = {
    "single_frame": build_single_frame,
    "late_fusion": build_late_fusion,
    "early_fusion": build_early_fusion,
    "slow_fusion": build_slow_fusion,
    "cnn_lstm": build_cnn_lstm,
    "two_stream": build_two_stream,
    "slowfast": build_slowfast,
    "multires": build_multires,
    "tsn": build_tsn,
    "temporal_conv": build_temporal_conv,
    "pose": build_pose,
}

DESCRIPTIONS = {
    "single_frame": "2D CNN per frame, mean of frame probabilities; blind to order (baseline)",
    "late_fusion": "shared 2D tower on first and last real frame, concat -> FC",
    "early_fusion": "4-frame windows folded into channels at the first conv, averaged",
    "slow_fusion": "small R3D-like 3D CNN, time merged gradually by strided 3D convs",
    "cnn_lstm": "2D CNN frame features -> 2-layer LSTM, state after last real frame",
    "two_stream": "RGB centre frame + stack of 15 optical-flow fields, probabilities averaged",
    "slowfast": "slow (T/4 frames, wide) + fast (T frames, 1/8 channels) with laterals",
    "multires": "3D context stream at half res + fovea stream on centre crop, ~2x cheaper",
    "tsn": "TSN consensus: mean of real-frame features -> dropout -> FC; blind to order",
    "temporal_conv": "2 temporal convs (3 frames) over frame features, max over time -> FC",
    "pose": "skeleton: small ST-GCN over the person's 33 pose keypoints (the pose extra)",
}

# How each method starts from ImageNet EfficientNet-Lite0 (``backbone="efficientnet_lite0"``).
PRETRAINED_INIT = {
    "single_frame": "ImageNet frame encoder",
    "late_fusion": "ImageNet tower",
    "early_fusion": "RGB stem kernel repeated per frame / window",
    "slow_fusion": "(2+1)D: ImageNet per frame, zero temporal taps",
    "cnn_lstm": "ImageNet frame encoder; LSTM new",
    "two_stream": "ImageNet RGB; flow stem = mean RGB kernel (TSN)",
    "slowfast": "slow = ImageNet (2+1)D; fast new; laterals zero",
    "multires": "both streams ImageNet (2+1)D, own copies",
    "tsn": "ImageNet frame encoder; FC new",
    "temporal_conv": "ImageNet frame encoder; temporal convs new",
    "pose": "MediaPipe's pretrained pose model gives its input; no ImageNet variant",
}

FRAME_MODELS = ("single_frame", "late_fusion", "cnn_lstm", "two_stream", "tsn", "temporal_conv")
# Methods fed the person's pose keypoints (`model.needs_keypoints`), not pixels: they need the
# pose extra, have no ImageNet backbone, and `compare all` leaves them out (name them).
SKELETON_MODELS = ("pose",)
RGB_MODELS = tuple(m for m in MODELS if m not in SKELETON_MODELS)

DEFAULT_FRAMES = 16
DEFAULT_SIZE = 112


def build(name: str, num_classes: int, **options: object) -> nn.Module:
    """Build method ``name`` with ``num_classes`` outputs; options are the builder's kwargs."""
    if name not in MODELS:
        raise UserError(f"unknown model {name!r}; valid: {', '.join(MODELS)}")
    builder = MODELS[name]
    valid = [p for p in inspect.signature(builder).parameters if p != "num_classes"]
    unknown = sorted(set(options) - set(valid))
    if unknown:
        raise UserError(
            f"unknown option(s) {', '.join(unknown)} for model {name!r}; valid: {', '.join(valid)}"
        )
    if int(num_classes) < 1:
        raise UserError(f"num_classes must be >= 1, got {num_classes}")
    return builder(int(num_classes), **options)


def example_batch(
    model: nn.Module,
    batch_size: int = 1,
    frames: int = DEFAULT_FRAMES,
    size: int = DEFAULT_SIZE,
    seed: int = 0,
) -> dict[str, torch.Tensor]:
    """A random batch at the given input size (with flow if the model needs it)."""
    g = torch.Generator().manual_seed(seed)
    batch = {
        "video": torch.randn(batch_size, 3, frames, size, size, generator=g),
        "mask": torch.ones(batch_size, frames, dtype=torch.bool),
    }
    if getattr(model, "needs_flow", False):
        batch["flow"] = torch.randn(batch_size, 2, frames - 1, size, size, generator=g) * 0.1
    if getattr(model, "needs_keypoints", False):
        batch["keypoints"] = example_keypoints(batch_size, frames, g)
    return batch


def example_keypoints(batch_size: int, frames: int, g: torch.Generator) -> torch.Tensor:
    """Random keypoints ``(B, T, 33, 3)``: positions around the frame's centre, visibilities."""
    from vidclass.data.pose import NUM_KEYPOINTS

    xy = 0.5 + 0.15 * torch.randn(batch_size, frames, NUM_KEYPOINTS, 2, generator=g)
    vis = torch.rand(batch_size, frames, NUM_KEYPOINTS, 1, generator=g)
    return torch.cat([xy, vis], -1)


def count_flops(model: nn.Module, batch: dict[str, torch.Tensor]) -> int:
    """FLOPs of one forward pass: FlopCounterMode (2 FLOPs per multiply-add; convolutions and
    matrix products, which dominate) plus what a model reports in ``extra_flops`` (the LSTM)."""
    from torch.utils.flop_counter import FlopCounterMode

    was_training = model.training
    model.eval()
    counter = FlopCounterMode(display=False)
    with torch.no_grad(), counter:
        model(batch)
    model.train(was_training)
    extra = model.extra_flops(batch) if hasattr(model, "extra_flops") else 0
    return int(counter.get_total_flops()) + int(extra)


def describe(num_classes: int = 12, pretrained_sizes: tuple[int, ...] = (112, 224)) -> list[dict]:
    """One row per method: name, params, GFLOPs per clip (16×112×112, FLOPs not MACs), input,
    description, and the ImageNet variant: how it starts (``pretrained``), its params and
    GFLOPs per clip of 16 frames at each of ``pretrained_sizes``."""
    rows = []
    for name in MODELS:
        model = build(name, num_classes)
        flops = count_flops(model, example_batch(model))
        input_desc = f"{DEFAULT_FRAMES}x{DEFAULT_SIZE}x{DEFAULT_SIZE} RGB"
        if getattr(model, "needs_flow", False):
            input_desc += " + flow"
        if name in SKELETON_MODELS:
            input_desc = f"{DEFAULT_FRAMES}x33 keypoints (x, y, visibility)"
        # Random weights: the architecture, and so the cost, is that of the ImageNet variant
        # (a skeleton method has none: its own figures stand).
        lite0 = (
            model
            if name in SKELETON_MODELS
            else build(name, num_classes, backbone="efficientnet_lite0", pretrained=False)
        )
        rows.append(
            {
                "name": name,
                "params": sum(p.numel() for p in model.parameters()),
                "gflops": flops / 1e9,
                "input": input_desc,
                "description": DESCRIPTIONS[name],
                "pretrained": PRETRAINED_INIT[name],
                "pretrained_params": sum(p.numel() for p in lite0.parameters()),
                "pretrained_gflops": {
                    size: count_flops(lite0, example_batch(lite0, size=size)) / 1e9
                    for size in pretrained_sizes
                },
            }
        )
    return rows


__all__ = [
    "MODELS",
    "FRAME_MODELS",
    "RGB_MODELS",
    "SKELETON_MODELS",
    "PRETRAINED_INIT",
    "build",
    "describe",
    "example_batch",
    "count_flops",
]
