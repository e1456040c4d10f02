"""A whole video's result (`Classifier.predict`): the timeline of one pass over it, smoothed
with the rolling average centred on each window, and summed up as one label, the top k and
the flicker rates.

A file is known whole, so the centred average has no lag; `Classifier.stream` shows the
causal average of the last N instead.
"""

from __future__ import annotations

import os
from collections import Counter
from collections.abc import Callable
from dataclasses import dataclass
from typing import TYPE_CHECKING

import numpy as np

from vidclass.errors import UserError
from vidclass.predict import stream as streaming
from vidclass.predict.options import PredictOptions
from vidclass.predict.smoothing import flicker_rate, rolling_average
from vidclass.video.reader import SourceInfo

if TYPE_CHECKING:
    from vidclass.predict.classifier import Classifier


@dataclass(frozen=True)
class Scored:
    """What one pass over a video gave: its `timeline` of units (`vidclass.predict.stream`)
    with their centred average `smoothed` `(n, K)`, what the reader learnt of the video
    (`info`, None if it said nothing) and the time of the last decoded frame."""

    video: str | os.PathLike
    info: SourceInfo | None
    timeline: list[dict]
    smoothed: np.ndarray
    last_t: float


def require_windows(video: str | os.PathLike, timeline: list[dict]) -> None:
    """A summary needs at least one scored window; say so rather than crash on an empty mean."""
    if not timeline:
        raise UserError(
            f"{video}: no window could be scored (no frame was sampled); "
            "check that the video plays and is not empty"
        )


def predict_video(
    clf: Classifier,
    video: str | os.PathLike,
    options: PredictOptions,
    annotate: str | os.PathLike | None = None,
    plot: str | os.PathLike | None = None,
    progress: Callable[[float], None] | None = None,
) -> dict:
    """`Classifier.predict`: score `video` in one pass, smooth, draw the annotated copy (a
    second decoding pass) and sum up. `progress` gets the share of the video scored so far."""
    timeline: list[dict] = []
    info, last_t = None, 0.0
    passes = streaming.events(clf, video, options.window, options.stride, 1, keep_frames=False)
    for kind, item, _ in passes:
        if kind == "info":
            info = item
        elif kind == "unit":
            timeline.append(item)  # type: ignore[arg-type]
            if progress is not None and info is not None and info.duration_s:
                progress(min(1.0, item["t_end"] / info.duration_s))  # type: ignore[index]
        else:
            last_t = item.t  # type: ignore[union-attr]
    require_windows(video, timeline)
    probs = np.array([u["probs"] for u in timeline], np.float32)
    smoothed = rolling_average(probs, options.smooth, centred=True)
    for unit, sp in zip(timeline, smoothed, strict=True):
        k = int(np.argmax(sp))
        unit["smoothed_label"], unit["smoothed_score"] = clf.classes[k], float(sp[k])
    if annotate is not None:
        from vidclass.predict.annotate import annotate_video

        annotate_video(clf, video, timeline, smoothed, annotate)
    scored = Scored(video, info, timeline, smoothed, last_t)  # type: ignore[arg-type]
    return summarize(clf, scored, options, annotate, plot)


def summarize(
    clf: Classifier,
    scored: Scored,
    options: PredictOptions,
    annotate: str | os.PathLike | None = None,
    plot: str | os.PathLike | None = None,
) -> dict:
    """The result dict of `Classifier.predict` (README, "Predictions"), and the `plot`."""
    timeline, info = scored.timeline, scored.info
    require_windows(scored.video, timeline)
    window, stride = streaming.window_stride(clf.frames, options.window, options.stride)
    probs = np.array([u["probs"] for u in timeline], np.float32)
    mean = probs.mean(0)
    order = np.argsort(-mean)[: max(1, options.top_k)]
    fps = info.fps if info is not None and info.fps > 0 else clf.sample_fps
    decoded = info.decoded_duration_s if info is not None else None
    decoded = decoded or scored.last_t + 1.0 / fps
    duration = info.duration_s if info is not None and info.duration_s else decoded
    classes = clf.classes
    result = {
        "video": str(scored.video),
        "model": clf.config["model"],
        "backend": clf.backend,
        "classes": classes,
        "label": classes[int(order[0])],
        "score": float(mean[order[0]]),
        "top_k": [{"label": classes[int(i)], "score": float(mean[i])} for i in order],
        "duration_s": round(float(duration), 3),
        "decoded_duration_s": round(float(decoded), 3),
        "truncated": bool(info is not None and info.truncated),
        "truncated_reason": info.truncated_reason if info is not None else None,
        "sample_fps": clf.sample_fps,
        "window": window,
        "stride": window if clf.per_frame else stride,
        "smooth": options.smooth,
        "smoothing": "centred rolling average over `smooth` units",
        "unit": "frame" if clf.per_frame else "window",
        "flicker_rate": {  # per minute of what was scored
            "raw": flicker_rate([u["label"] for u in timeline], decoded),
            "smoothed": flicker_rate([u["smoothed_label"] for u in timeline], decoded),
        },
        "timeline": timeline,
        "annotated": str(annotate) if annotate else None,
        "plot": str(plot) if plot else None,
    }
    if clf.per_frame:
        votes = Counter(u["label"] for u in timeline)
        result["majority_label"] = max(votes, key=lambda c: (votes[c], -classes.index(c)))
    if plot:
        from vidclass.report.plots import plot_timeline

        times = [(u["t_start"] + u["t_end"]) / 2 for u in timeline]
        plot_timeline(times, probs, classes, plot, smoothed=scored.smoothed)
    return result
