"""Temporal activity localization: every action in a long video, with its start and end.

The method of the field's sliding-window detectors (S-CNN) with TAG-style grouping:

1. *Dense multi-scale windows.* The video is sampled once at a fine rate; windows of the
   model's T frames slide over it at several time spans (`spans`, relative to the span of a
   training clip), so short and long actions are both seen whole by some window. Each window
   is classified by the trained clip model, `background` ("no action") included. A window's
   frames are whole fine samples apart, and the fine rate cannot exceed the video's frame
   rate: spans that cannot run as asked are refused, never quietly rounded (see
   `plan_sampling`); the result's `options` say what ran.
2. *Curves.* Each scale's window probabilities, placed at the window centres, are
   interpolated onto the fine time grid, averaged over scales and smoothed: one probability
   curve per class.
3. *Proposals.* For each action class, the runs of time where its curve stays above a
   threshold are proposals (gaps shorter than `max_gap` bridged), for several thresholds at
   once: a low threshold gives wide proposals, a high one tight ones (the watershed idea of
   TAG, without having to pick one threshold).
4. *Re-scoring.* A proposal's score is its mean probability inside minus the mean in margins
   just outside it (SSN's completeness idea): a proposal that cuts an action short has the
   action in its margins, one that spills over has background inside; the one whose edges
   sit on the action's edges scores best.
5. *Soft temporal NMS* per class: overlapping proposals of the same class keep their place
   in the ranking only as far as they do not repeat a better one (`temporal_nms`: soft by
   default, hard on request; `nms_iou` is the overlap above which either acts).

Decoding streams (bounded memory): only the frames of the longest window are kept; the
per-window probabilities (a few floats per window) are all that grows with the video.
"""

from __future__ import annotations

import math
import os
from collections import deque
from collections.abc import Callable, Sequence
from dataclasses import asdict, dataclass, field

import numpy as np

from vidclass.errors import UserError
from vidclass.evaluation.ap import temporal_iou
from vidclass.predict.options import (
    DEFAULT_SPANS,
    SPAN_TOLERANCE,
    LocalizeOptions,
    fmt_values,
)
from vidclass.predict.smoothing import rolling_average
from vidclass.predict.threads import decoder_core
from vidclass.synth.labels import BACKGROUND
from vidclass.video.reader import iter_frames, open_source


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


# ---------------------------------------------------------------------- intervals


def temporal_nms(segments: list[dict], iou: float, soft_sigma: float | None = None) -> list[dict]:
    """Temporal NMS per label, best-scored segment first. Hard (`soft_sigma` None): drop
    same-label segments overlapping a kept one by more than `iou`. Soft (Bodla et al. 2017,
    as BSN/BMN use it): multiply the scores of those overlapping by more than `iou` by
    exp(-IoU² / soft_sigma) instead, so a fragment of a found action sinks in the ranking
    without a true neighbour being lost (`iou` 0: every overlap decays).
    Returns new dicts, best first."""
    kept: list[dict] = []
    for label in dict.fromkeys(s["label"] for s in segments):
        pool = [dict(s) for s in segments if s["label"] == label]
        while pool:
            pool.sort(key=lambda s: -s["score"])
            best = pool.pop(0)
            kept.append(best)
            if not pool:
                break
            overlap = temporal_iou(
                (best["t_start"], best["t_end"]), [[s["t_start"], s["t_end"]] for s in pool]
            )
            if soft_sigma is None:
                pool = [s for s, o in zip(pool, overlap, strict=True) if o <= iou]
            else:
                for s, o in zip(pool, overlap, strict=True):
                    if o > iou:
                        s["score"] *= float(np.exp(-(o**2) / soft_sigma))
    return sorted(kept, key=lambda s: -s["score"])


def _runs(mask: np.ndarray) -> list[tuple[int, int]]:
    """Index ranges [i, j] (inclusive) where `mask` is True."""
    edges = np.diff(np.concatenate([[0], mask.astype(np.int8), [0]]))
    return list(zip(np.flatnonzero(edges == 1), np.flatnonzero(edges == -1) - 1, strict=True))


def _crossing(times: np.ndarray, curve: np.ndarray, i: int, j: int, tau: float) -> float:
    """Time between grid points i and j where the curve crosses `tau` (linear)."""
    if i < 0 or j >= len(times):
        return float(times[max(0, min(i, j, len(times) - 1)) if i < 0 else len(times) - 1])
    a, b = curve[i], curve[j]
    w = 0.5 if a == b else float(np.clip((tau - a) / (b - a), 0.0, 1.0))
    return float(times[i] + w * (times[j] - times[i]))


def _mean_over(times: np.ndarray, curve: np.ndarray, t0: float, t1: float) -> float | None:
    """Time-average of the (piecewise linear) curve over [t0, t1]; None for an empty span."""
    if t1 - t0 <= 1e-9:
        return None
    inside = (times > t0) & (times < t1)
    ts = np.concatenate([[t0], times[inside], [t1]])
    vs = np.interp(ts, times, curve)
    return float(np.trapezoid(vs, ts) / (t1 - t0))


def proposals(
    times: np.ndarray, curve: np.ndarray, options: LocalizeOptions, end: float | None = None
) -> list[tuple[float, float, float]]:
    """(t_start, t_end, score) candidates for one class from its probability curve.

    `times` (N,) are the grid times (seconds, increasing), `curve` (N,) the class's
    probability there, `end` the video's end (defaults to the last grid time).
    """
    times = np.asarray(times, dtype=np.float64)
    curve = np.asarray(curve, dtype=np.float64)
    if len(times) == 0:
        return []
    start, end = 0.0, float(times[-1] if end is None else end)
    found: dict[tuple[float, float], float] = {}
    for tau in options.thresholds:
        runs = _runs(curve >= tau)
        merged: list[list[int]] = []
        for i, j in runs:  # bridge short dips
            if merged and times[i] - times[merged[-1][1]] <= options.max_gap_s:
                merged[-1][1] = j
            else:
                merged.append([i, j])
        for i, j in merged:
            t0 = start if i == 0 else _crossing(times, curve, i - 1, i, tau)
            t1 = end if j == len(times) - 1 else _crossing(times, curve, j, j + 1, tau)
            if t1 - t0 < options.min_length_s:
                continue
            key = (round(t0, 3), round(t1, 3))
            if key in found:
                continue
            inner = _mean_over(times, curve, t0, t1) or 0.0
            m = options.margin * (t1 - t0)
            outer = [
                v
                for v in (
                    _mean_over(times, curve, max(start, t0 - m), t0),
                    _mean_over(times, curve, t1, min(end, t1 + m)),
                )
                if v is not None
            ]
            found[key] = inner - (float(np.mean(outer)) if outer else 0.0)
    return [(a, b, s) for (a, b), s in found.items()]


def segments_from_probs(
    times: np.ndarray,
    probs: np.ndarray,
    classes: list[str],
    background: str | None = BACKGROUND,
    options: LocalizeOptions | None = None,
    end: float | None = None,
) -> list[dict]:
    """Action segments `[{"label", "t_start", "t_end", "score"}]` (by start time) from class
    probability curves: `times` (N,) seconds, `probs` (N, K) in the order of `classes`.

    Every class but `background` is localized; with no background class a model can still
    localize, from the dips of each class's own curve.
    """
    options = options or LocalizeOptions()
    probs = np.asarray(probs, dtype=np.float64)
    times = np.asarray(times, dtype=np.float64)
    if probs.ndim != 2 or probs.shape != (len(times), len(classes)):
        raise ValueError(f"probs must be (len(times), len(classes)), got {probs.shape}")
    candidates = []
    for k, label in enumerate(classes):
        if label == background:
            continue
        for t0, t1, score in proposals(times, probs[:, k], options, end):
            if score >= options.min_score:
                candidates.append({"label": label, "t_start": t0, "t_end": t1, "score": score})
    kept = temporal_nms(candidates, options.iou_threshold, options.soft_sigma)
    segments = [
        {
            "label": s["label"],
            "t_start": round(s["t_start"], 3),
            "t_end": round(s["t_end"], 3),
            "score": round(float(s["score"]), 4),
        }
        for s in kept
        if s["score"] >= options.min_score
    ]
    return sorted(segments, key=lambda s: (s["t_start"], -s["score"]))


# ---------------------------------------------------------------------- windows


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
    info, frames = iter_frames(video, clf.size, rate)
    buf: deque[np.ndarray] = deque(maxlen=keep)
    times: list[float] = []
    pending: list[tuple[WindowScores, float, list[np.ndarray], np.ndarray | None]] = []
    last_end = [-1] * len(scales)
    flow_cache = _FlowCache(clf.flow_method) if clf.needs_flow else None

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
        frames_ = [buf[len(buf) - 1 - (i - j)] for j in idx]
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


class _FlowCache:
    """Optical flow between two sampled frames, computed once: overlapping windows of the
    two-stream model share most of their frame pairs (about 7 of 8 at the defaults)."""

    def __init__(self, method: str) -> None:
        self.method = method
        self.pairs: dict[tuple[int, int], np.ndarray] = {}

    def clip(self, idx: list[int], frames: list[np.ndarray]) -> np.ndarray:
        """`(2, n-1, H, W)` flow of a window of sample indices `idx` and their frames."""
        from vidclass.data.flow import compute_flow

        fields = []
        for j in range(len(idx) - 1):
            key = (idx[j], idx[j + 1])
            if key not in self.pairs:
                pair = np.stack([frames[j], frames[j + 1]])
                self.pairs[key] = compute_flow(pair, method=self.method)[:, 0]
            fields.append(self.pairs[key])
        return np.stack(fields, axis=1)

    def forget_before(self, i: int) -> None:
        for key in [k for k in self.pairs if k[0] < i]:
            del self.pairs[key]


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


def localize(
    clf,
    video: str | os.PathLike,
    options: LocalizeOptions | None = None,
    plot: str | os.PathLike | None = None,
    truth: list[dict] | None = None,
    progress: Callable[[float], None] | None = None,
    ensemble: Sequence = (),
) -> dict:
    """Segments of every action in `video`, with the curve they came from.

    `ensemble`: more classifiers (same classes) whose curves are averaged with `clf`'s, each
    decoding the video at its own rate: e.g. a model trained on trimmed clips (sure of the
    class) with one trained on windows cut from long videos (`synth --kind windows`: sure
    of the edges). Returns {"video", "model", "models", "duration_s", "classes",
    "background", "segments", "actionness": {"t", "p"}, "options", "truncated",
    "decoded_duration_s", "truncated_reason"}: `duration_s` is the time that decoded (less
    than the video's when `truncated`), `options` what ran (`_options_report`). `plot`
    draws ground truth (`truth`, if given) against the predicted segments on a timeline.
    """
    options = options or LocalizeOptions()
    models = [clf, *ensemble]
    for other in ensemble:
        if list(other.classes) != list(clf.classes):
            raise UserError(
                "the ensemble's models must have the same classes in the same order; "
                "train them on data with the same classes.json"
            )
    container, header = open_source(video)  # the frame rate bounds the sampling rate
    container.close()
    plans = [plan_sampling(m, options, header.fps, video) for m in models]
    grid, info, fused = np.zeros(0), None, []
    for n, (model, plan) in enumerate(zip(models, plans, strict=True)):
        step = None if progress is None else (lambda f, n=n: progress((n + f) / len(models)))
        m_info, m_grid, scales = score_windows(model, video, options, plan, step)
        curves = fuse_curves(m_grid, scales, round(options.smooth_s * plan.rate))
        if n == 0:
            grid, info = m_grid, m_info
            fused.append(curves)
        else:  # onto the first model's time grid
            fused.append(np.stack([np.interp(grid, m_grid, c) for c in curves.T], 1))
    curves = np.mean(fused, axis=0)
    # What decoded, not what the header claims: a cut-off video ends where its frames end.
    duration = float(
        info.decoded_duration_s or (grid[-1] + 1.0 / plans[0].rate if len(grid) else 0.0)
    )
    background = BACKGROUND if BACKGROUND in clf.classes else None
    segments = segments_from_probs(grid, curves, clf.classes, background, options, end=duration)
    for s in segments:
        s["t_end"] = min(s["t_end"], round(duration, 3))
    if background is not None:
        actionness = 1.0 - curves[:, clf.classes.index(background)]
    else:
        actionness = curves.max(1)
    result = {
        "video": str(video),
        "model": clf.config["model"],
        "models": [m.config["model"] for m in models],
        "duration_s": round(duration, 3),
        "classes": [c for c in clf.classes if c != background],
        "background": background,
        "segments": segments,
        "actionness": {
            "t": [round(float(t), 3) for t in grid],
            "p": [round(float(v), 4) for v in actionness],
        },
        "options": _options_report(options, plans, models),
        **info.result_fields(),
    }
    if plot:
        from vidclass.report.plots import plot_segments

        plot_segments(
            segments,
            duration,
            plot,
            truth=truth,
            curve=(grid, actionness),
            title=os.path.basename(str(video)),
        )
    return result


def _options_report(options: LocalizeOptions, plans: list[Sampling], models: list) -> dict:
    """The options as they ran: real spans (factors, seconds, samples between a window's
    frames) and sampling rate of the first model, the NMS mode and the IoU it used."""
    report = asdict(options) | plans[0].as_dict()
    report |= {
        "spans_requested": None if options.spans is None else list(options.spans),
        "nms": options.nms,
        "nms_iou": options.iou_threshold,
    }
    if len(models) > 1:
        report["ensemble"] = [
            {"model": m.config["model"], **p.as_dict()}
            for m, p in zip(models[1:], plans[1:], strict=True)
        ]
    return report


def read_truth(video: str | os.PathLike) -> list[dict] | None:
    """Ground-truth segments stored beside a video (`long_000.json` next to `long_000.mp4`,
    as `vidclass synth --kind long` writes them), or None."""
    import json
    from pathlib import Path

    path = Path(video).with_suffix(".json")
    try:
        segments = json.loads(path.read_text()).get("segments")
    except (OSError, ValueError, AttributeError):
        return None
    return segments if isinstance(segments, list) else None
