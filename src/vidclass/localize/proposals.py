"""From class curves to action segments: the runs above several thresholds (`proposals`),
re-scored against their margins, and soft temporal NMS (`temporal_nms`);
`segments_from_probs` chains them. Steps 3 to 5 of `vidclass.localize.localize`.
"""

from __future__ import annotations

import numpy as np

from vidclass.evaluation.ap import temporal_iou
from vidclass.predict.options import LocalizeOptions
from vidclass.synth.labels import BACKGROUND


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
