"""The rolling prediction average that removes flicker, and how much flicker there is.

A clip model's label on consecutive windows of a stream jumps between classes whenever a
window is ambiguous; a viewer sees flicker. Averaging the last N probability vectors and
taking the argmax of the mean keeps the label stable at the cost of N windows of latency.
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


def rolling_average(probs: np.ndarray, n: int) -> np.ndarray:
    """Row i → mean of rows max(0, i-n+1)..i of `(N, K)` probabilities."""
    avg = RollingAverage(n)
    return np.stack([avg.update(p) for p in probs]) if len(probs) else np.asarray(probs)


def label_changes(labels: Sequence[int]) -> int:
    """How often consecutive labels differ."""
    return int(sum(a != b for a, b in zip(labels[:-1], labels[1:], strict=True)))


def flicker_rate(labels: Sequence[int], duration_s: float) -> float:
    """Label changes per minute of video (0 for an empty or instantaneous timeline)."""
    if duration_s <= 0 or len(labels) < 2:
        return 0.0
    return label_changes(labels) / (duration_s / 60.0)
