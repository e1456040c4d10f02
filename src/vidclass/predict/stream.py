"""Windows over a video or a live source as it decodes: what `Classifier.stream` yields and
what `Classifier.predict` collects.

Frames are sampled at the rate the model was trained at (so a window spans the same time as
a training clip), windows of T frames slide by a stride, and each window's probabilities
feed the causal rolling average. Nothing but the current window is kept, so memory does not
grow with the video. `single_frame` is scored per frame, as it is trained; frame-based
models share the features of the frames windows have in common (`vidclass.predict.features`).
"""

from __future__ import annotations

import os
from collections import deque
from collections.abc import Iterator
from dataclasses import dataclass, field
from typing import TYPE_CHECKING

import numpy as np

from vidclass.data.crop import FIT, FrameCrop, FrameCrops, frame_crops
from vidclass.errors import UserError
from vidclass.predict import features as frame_features
from vidclass.predict.ahead import run_ahead
from vidclass.predict.options import PredictOptions
from vidclass.predict.smoothing import RollingAverage
from vidclass.predict.threads import decoder_core
from vidclass.video.reader import StreamFrame, iter_frames

if TYPE_CHECKING:
    from vidclass.predict.classifier import Classifier


# Decoded frames made ready ahead of the scoring (each holds at most one sampled frame).
AHEAD = 8


@dataclass
class State:
    """What is shown at the current moment of the stream."""

    label: str | None = None
    score: float = 0.0
    top: list[tuple[str, float]] = field(default_factory=list)


def window_stride(frames: int, window: int | None, stride: int | None) -> tuple[int, int]:
    """(window, stride) with their defaults for a model of `frames` frames; 0 or less is
    refused, not read as unset."""
    window = frames if window is None else window
    if not 1 <= window <= frames:
        raise UserError(f"--window {window}: must be between 1 and the model's {frames} frames")
    if stride is None:
        stride = max(1, window // 2)
    if stride < 1:
        raise UserError(f"--stride {stride}: must be at least 1 (frames between windows)")
    return window, stride


def events(
    clf: Classifier,
    source: str | os.PathLike,
    window: int | None,
    stride: int | None,
    smooth: int,
    keep_frames: bool,
) -> Iterator[tuple[str, object, object]]:
    """("info", SourceInfo, None) first, then ("frame", StreamFrame, State) for every decoded
    frame and ("unit", entry, None) for every scored window (or frame, for single_frame), in
    stream order."""
    window, stride = window_stride(clf.frames, window, stride)
    if smooth < 1:
        raise UserError(f"--smooth must be at least 1 (windows averaged), got {smooth}")
    avg = RollingAverage(smooth)
    state = State()
    info, frames = iter_frames(
        source, clf.size, clf.sample_fps, keep_frames=keep_frames, fit=FIT[clf.crop]
    )
    with decoder_core():
        yield from _windows(clf, info, frames, avg, state, window, stride)


def _windows(clf: Classifier, info, frames, avg: RollingAverage, state: State, window, stride):
    """The body of `events`: windows over the sampled frames as they arrive, each frame
    cropped once (`frame_crops`: a person crop may wait for the frames after it)."""
    yield "info", info, None
    buf: deque[tuple[int, float, np.ndarray]] = deque(maxlen=window)  # (index, t, frame)
    waiting: deque[tuple[int, float]] = deque()  # sampled, not cropped yet: (index, t)
    crops = frame_crops(clf.config)
    since, emitted, count = 0, False, 0
    ring = flows = None
    if clf.reuse_features and not clf.per_frame:
        ring = frame_features.FeatureRing(clf.encoder, clf.config, window, clf.flip)
        if clf.needs_flow:
            flows = frame_features.FlowCache(clf.flow_method)

    def score(items: list[tuple[int, float, np.ndarray]]):
        samples = [s for *_, s in items]
        if clf.per_frame:
            probs = clf.frame_probs(samples)
            dt = 1.0 / clf.sample_fps
            return [(t, t + dt, p) for (_, t, _), p in zip(items, probs, strict=True)]
        if ring is not None:
            indices = [i for i, *_ in items]
            probs = clf.shared_window_probs(ring, flows, indices, samples)
        else:
            probs = clf.window_probs(samples)
        return [(items[0][1], items[-1][1] + 1.0 / clf.sample_fps, probs)]

    def units(items):
        for t0, t1, p in score(items):
            sp = avg.update(p)
            k = int(np.argmax(sp))
            order = np.argsort(-sp)[:3]
            state.label, state.score = clf.classes[k], float(sp[k])
            state.top = [(clf.classes[j], float(sp[j])) for j in order]
            yield (
                "unit",
                {
                    "t_start": round(t0, 4),
                    "t_end": round(t1, 4),
                    "probs": [round(float(v), 6) for v in p],
                    "label": clf.classes[int(np.argmax(p))],
                    "score": float(np.max(p)),
                    "smoothed_label": clf.classes[k],
                    "smoothed_score": float(sp[k]),
                },
                None,
            )

    chunk = window if clf.per_frame else None

    def cropped(ready):
        """Windows completed by the frames just cropped."""
        nonlocal since, emitted
        for c in ready:
            index, t = waiting.popleft()
            buf.append((index, t, c.frame))
            since += 1
            full = len(buf) == window
            if full and (since >= (chunk or stride) or not emitted):
                yield from units(list(buf) if not chunk else list(buf)[-since:])
                since, emitted = 0, True

    for f, ready in run_ahead(_prepared(frames, crops), AHEAD, "vidclass-prepare"):
        if f is not None and f.sample is not None:
            waiting.append((count, f.t))
            count += 1
        yield from cropped(ready)
        if f is not None:
            yield "frame", f, state
    if buf and (since > 0 or not emitted):
        yield from units(list(buf)[-since:] if chunk and emitted else list(buf))


def _prepared(
    frames: Iterator[StreamFrame], crops: FrameCrops
) -> Iterator[tuple[StreamFrame | None, list[FrameCrop]]]:
    """Each decoded frame with the sampled frames its arrival lets `crops` decide, then
    (None, the rest) at the end: run on a thread ahead of the scoring (`run_ahead`), so the
    conversion from YUV (the reader converts as it is iterated), the person search and the
    crop of the next frames run on the second core while the encoder scores these."""
    for f in frames:
        yield f, crops.push(f.sample) if f.sample is not None else []
    yield None, crops.finish()


def stream(
    clf: Classifier,
    source: str | os.PathLike,
    window: int | None = PredictOptions.window,
    stride: int | None = PredictOptions.stride,
    smooth: int = PredictOptions.smooth,
) -> Iterator[dict]:
    """Timed predictions as they come: one dict per window (per frame for single_frame),
    each with its own label and the causal rolling average of the last `smooth`."""
    for kind, item, _ in events(clf, source, window, stride, smooth, keep_frames=False):
        if kind == "unit":
            yield item  # type: ignore[misc]
