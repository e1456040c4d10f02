"""The rolling prediction average that removes flicker, and how much flicker there is.

A clip model's label on consecutive windows of a stream jumps between classes whenever a
window is ambiguous; a viewer sees flicker. Averaging N probability vectors and taking the
argmax of the mean keeps the label stable. On a live stream only the last N are known, so
the label lags by about N/2 windows; on a file the average is centred on each window instead,
which smooths as much without the lag.
"""

from __future__ import annotations

from collections import deque
from collections.abc import Sequence

import numpy as np


class RollingAverage:
    """Mean of the last `n` probability vectors, updated one vector at a time (streams)."""

    def __init__(self, n: int) -> None:
        if n < 1:
            raise ValueError(f"the rolling average needs n >= 1, got {n}")
        self.n = n
        self._window: deque[np.ndarray] = deque(maxlen=n)
        self._sum: np.ndarray | None = None

    def update(self, probs: np.ndarray) -> np.ndarray:
        probs = np.asarray(probs, dtype=np.float64)
        if self._sum is None:
            self._sum = np.zeros_like(probs)
        if len(self._window) == self.n:
            self._sum -= self._window[0]
        self._window.append(probs)
        self._sum += probs
        return (self._sum / len(self._window)).astype(np.float32)


def rolling_average(probs: np.ndarray, n: int, centred: bool = False) -> np.ndarray:
    """Mean of `n` consecutive rows of `(N, K)` probabilities for each row i.

    Causal (a live display): rows i-n+1..i, which lags behind the video by about n/2 rows.
    Centred (a whole file is known): rows i-(n-1)//2..i+n//2, no lag, the same smoothing.
    """
    probs = np.asarray(probs, dtype=np.float32)
    if not len(probs):
        return probs
    if n < 1:
        raise ValueError(f"the rolling average needs n >= 1, got {n}")
    before, after = ((n - 1) // 2, n // 2) if centred else (n - 1, 0)
    cums = np.concatenate([np.zeros((1, probs.shape[1]), np.float64), np.cumsum(probs, 0)])
    idx = np.arange(len(probs))
    lo, hi = np.maximum(idx - before, 0), np.minimum(idx + after + 1, len(probs))
    return ((cums[hi] - cums[lo]) / (hi - lo)[:, None]).astype(np.float32)


def label_changes(labels: Sequence[int]) -> int:
    """How often consecutive labels differ."""
    return int(sum(a != b for a, b in zip(labels[:-1], labels[1:], strict=True)))


def flicker_rate(labels: Sequence[int], duration_s: float) -> float:
    """Label changes per minute of video (0 for an empty or instantaneous timeline)."""
    if duration_s <= 0 or len(labels) < 2:
        return 0.0
    return label_changes(labels) / (duration_s / 60.0)


def timeline_accuracy(timeline: list[dict], segments: list[dict], key: str = "label") -> float:
    """Share of timeline units (windows or frames) inside a ground-truth action whose `key`
    ("label" raw, "smoothed_label") names that action; units at rest are not counted."""
    hits = total = 0
    for unit in timeline:
        t = (unit["t_start"] + unit["t_end"]) / 2
        truth = next((s["label"] for s in segments if s["t_start"] <= t < s["t_end"]), None)
        if truth is not None:
            total += 1
            hits += unit[key] == truth
    return hits / total if total else 0.0
