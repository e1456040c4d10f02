"""Dense multi-scale windows: the sampling plan that realises the spans on a video
(`plan_sampling`), one streaming pass that classifies every scale's windows in batches
(`score_windows`, optical flow shared between overlapping windows) and the per-class curves
fused from them (`fuse_curves`). Steps 1 and 2 of `vidclass.localize.localize`.
"""

from __future__ import annotations

import math
import os
from collections import deque
from collections.abc import Callable
from dataclasses import dataclass, field

import numpy as np

from vidclass.data.crop import FIT, crop_window, per_window
from vidclass.errors import UserError
from vidclass.predict.features import FlowCache
from vidclass.predict.options import (
    DEFAULT_SPANS,
    SPAN_TOLERANCE,
    LocalizeOptions,
    fmt_values,
)
from vidclass.predict.smoothing import rolling_average
from vidclass.predict.threads import decoder_core
from vidclass.video.reader import iter_frames


@dataclass(frozen=True)
class Sampling:
    """How one model samples one video: the fine rate, and per scale the samples between a
    window's frames, the span as a factor of the training clip's, and in seconds."""

    rate: float
    steps: tuple[int, ...]
    spans: tuple[float, ...]
    span_s: tuple[float, ...]

    def as_dict(self) -> dict:
        return {
            "sample_fps": round(self.rate, 4),
            "spans": [round(s, 4) for s in self.spans],
            "span_s": [round(s, 4) for s in self.span_s],
            "window_step": list(self.steps),
        }


def plan_sampling(clf, options: LocalizeOptions, video_fps: float, video: object = "") -> Sampling:
    """The fine rate and window steps that realise `options.spans` for `clf` on a video of
    `video_fps` frames per second (0: unknown).

    A window of span s holds the model's T frames, s / sample_fps seconds apart, so the fine
    rate is sample_fps / min(spans), but no more than the video has frames: then the
    shortest span is sample_fps / video_fps. Spans that cannot run (within 5 %) are a
    UserError naming the ones that can; default spans are raised to fit instead.
    """
    cap = video_fps if video_fps > 0 else math.inf
    unit_floor = clf.sample_fps / cap  # the shortest span this video's frames allow
    spans = options.spans
    if spans is None:
        base = max(DEFAULT_SPANS[0], unit_floor)
        spans = tuple(base * s / DEFAULT_SPANS[0] for s in DEFAULT_SPANS)
    rate = clf.sample_fps / min(spans)
    if rate >= cap * (1 - 1e-6):
        rate = cap  # exactly: a hair above the video's rate would skip frames now and then
    unit = clf.sample_fps / rate
    steps = tuple(max(1, round(s / unit)) for s in spans)
    real = tuple(k * unit for k in steps)
    if any(abs(r - s) > SPAN_TOLERANCE * s for r, s in zip(real, spans, strict=True)):
        raise UserError(
            f"spans {fmt_values(spans)} cannot run on {video}: at {video_fps:g} fps, windows of this "
            f"model (trained at {clf.sample_fps:g} fps) span whole multiples of {unit:.3g} "
            f"training clips; valid spans are {fmt_values([unit * k for k in (1, 2, 3, 4)])}, ..., "
            f"e.g. --spans {fmt_values([unit, 2 * unit])} (or leave --spans out to fit the video)"
        )
    span_s = tuple(clf.frames * k / rate for k in steps)
    return Sampling(rate, steps, real, span_s)


@dataclass
class WindowScores:
    """Window probabilities of one scale: centres (n,) seconds and probs (n, K)."""

    span: float
    step: int
    centres: list[float] = field(default_factory=list)
    probs: list[np.ndarray] = field(default_factory=list)


def score_windows(
    clf,
    video: str | os.PathLike,
    options: LocalizeOptions,
    sampling: Sampling,
    progress: Callable[[float], None] | None = None,
) -> tuple[object, np.ndarray, list[WindowScores]]:
    """Stream the video once at `sampling.rate`; classify windows of every scale in batches.

    Returns (source info, fine grid times (N,), one WindowScores per scale).
    """
    rate, steps = sampling.rate, list(sampling.steps)
    scales = [WindowScores(s, k) for s, k in zip(sampling.spans, steps, strict=True)]
    T = clf.frames
    keep = (T - 1) * max(steps) + 1
    info, frames = iter_frames(video, clf.size, rate, fit=FIT[clf.crop])
    buf: deque[np.ndarray] = deque(maxlen=keep)
    times: list[float] = []
    pending: list[tuple[WindowScores, float, list[np.ndarray], np.ndarray | None]] = []
    last_end = [-1] * len(scales)
    # A person crop is decided per window: its flow is computed per window too.
    flow_cache = FlowCache(clf.flow_method, not per_window(clf.crop)) if clf.needs_flow else None

    def flush() -> None:
        if not pending:
            return
        flows = [f for *_, f in pending] if flow_cache else None
        probs = clf.windows_probs([w for _, _, w, _ in pending], flows)
        for (scale, centre, _, _), p in zip(pending, probs, strict=True):
            scale.centres.append(centre)
            scale.probs.append(p)
        pending.clear()

    def window(scale_i: int, i: int) -> None:
        k = steps[scale_i]
        idx = list(range(i - (T - 1) * k, i + 1, k))
        first = len(times) - 1 - (i - idx[0])
        frames_ = crop_window([buf[len(buf) - 1 - (i - j)] for j in idx], clf.config)
        t0, t1 = times[first], times[-1] + 1.0 / rate
        flow = flow_cache.clip(idx, frames_) if flow_cache else None
        pending.append((scales[scale_i], (t0 + t1) / 2, frames_, flow))
        last_end[scale_i] = i

    with decoder_core():
        for f in frames:
            if f.sample is None:
                continue
            buf.append(f.sample)
            times.append(f.t)
            i = len(times) - 1
            if flow_cache:
                flow_cache.forget_before(i - keep)
            for s, k in enumerate(steps):
                first = i - (T - 1) * k
                if first >= 0 and first % options.stride == 0:
                    window(s, i)
            if len(pending) >= options.batch_size:
                flush()
                if progress and info.duration_s:
                    progress(min(1.0, f.t / info.duration_s))
        n = len(times)
        for s, k in enumerate(steps):
            if n - 1 >= (T - 1) * k and last_end[s] < n - 1:
                window(s, n - 1)  # the tail, so the curves reach the end of the video
        if times and all(e < 0 for e in last_end):
            # Shorter than every window: one padded window over what there is.
            avail = list(buf)[-T:]
            pending.append((scales[0], (times[0] + times[-1] + 1.0 / rate) / 2, avail, None))
        flush()
    if progress:
        progress(1.0)
    return info, np.asarray(times, dtype=np.float64), scales


def fuse_curves(grid: np.ndarray, scales: list[WindowScores], smooth_n: int) -> np.ndarray:
    """Class probability curves (N, K) on the grid: each scale interpolated from its window
    centres, the scales averaged, then a centred rolling average of `smooth_n` points."""
    curves = []
    for sc in scales:
        if not sc.centres:
            continue
        c = np.asarray(sc.centres)
        p = np.asarray(sc.probs, dtype=np.float64)
        curves.append(np.stack([np.interp(grid, c, p[:, k]) for k in range(p.shape[1])], 1))
    fused = np.mean(curves, axis=0)
    return rolling_average(fused, max(1, smooth_n), centred=True).astype(np.float64)
