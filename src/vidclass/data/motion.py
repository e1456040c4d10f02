"""What moves in a static camera's view, as boxes: the motion detector's core.

`vidclass detect --detector motion` tracks people with it, and `prepare --crop person` finds
the person in a clip's sampled frames with it (`vidclass.data.crop`); it lives here, below
both, so the two run the same code.

MOG2 learns whatever stands still into the background, including a person who stands still
from the first frame (never seen) or for a few seconds (lost). So the model starts from the
median of frames spread over the video (people move, the background stays) and then learns
slowly (`learning_rate`), slower than anyone stands still.

Boxes are float `(N, 4)` `x1, y1, x2, y2` in frame pixels, scores `(N,)` in [0, 1].
"""

from __future__ import annotations

from collections.abc import Iterable

import cv2
import numpy as np


def no_boxes() -> tuple[np.ndarray, np.ndarray]:
    return np.zeros((0, 4), np.float32), np.zeros(0, np.float32)


class MotionDetector:
    """Moving (or moved) regions of a static camera's view, as boxes (MOG2 + components)."""

    def __init__(
        self,
        min_area: float = 0.002,
        learning_rate: float = 0.0005,
        var_threshold: float = 32.0,
        close: float = 0.025,
    ) -> None:
        """`min_area`: smallest blob as a share of the frame; `learning_rate`: how fast MOG2
        absorbs what stands still (0.0005 a frame: minutes); `close`: the closing kernel as a
        share of the frame's short side, joining the parts of one person (thin limbs)."""
        self.min_area, self.learning_rate, self.close = min_area, learning_rate, close
        self.mog = cv2.createBackgroundSubtractorMOG2(
            history=500, varThreshold=var_threshold, detectShadows=False
        )
        self.primed = False

    def prime(self, background: np.ndarray) -> None:
        """Start the background model from an empty-scene image (e.g. `median_background`)."""
        self.mog.apply(background, learningRate=1.0)
        self.primed = True

    def __call__(self, frame: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        # Unprimed (a live source), MOG2 learns the first frames at its own pace.
        mask = self.mog.apply(frame, learningRate=self.learning_rate if self.primed else -1)
        h, w = mask.shape
        k = max(3, round(self.close * min(h, w)) | 1)
        mask = cv2.morphologyEx(mask, cv2.MORPH_OPEN, np.ones((3, 3), np.uint8))
        mask = cv2.morphologyEx(mask, cv2.MORPH_CLOSE, cv2.getStructuringElement(2, (k, k)))
        n, _, stats, _ = cv2.connectedComponentsWithStats(mask, connectivity=8)
        boxes, scores = [], []
        for x, y, bw, bh, area in stats[1:n]:
            if area < self.min_area * h * w:
                continue
            boxes.append([x, y, x + bw, y + bh])
            scores.append(min(1.0, area / (bw * bh) + 0.3))  # solid blobs are surer
        if not boxes:
            return no_boxes()
        return np.array(boxes, np.float32), np.array(scores, np.float32)


# Up to this many frames the median comes from a sorting network (n rounds of min/max over
# whole frames), which was measured 15x faster than np.partition on 16 frames of 213x160
# (4 vs 65 ms): the person search takes one median per clip-long block of frames.
NETWORK_UP_TO = 64


def median_background(frames: Iterable[np.ndarray]) -> np.ndarray:
    """The per-pixel median of frames spread over a video: the scene without its movers.

    Of an even count, the mean of the two middle values rounded down: exactly what
    `np.median(...).astype(np.uint8)` gives (tests/test_crop.py), so the prepared crops stay
    the same byte for byte, computed on the uint8 values themselves."""
    stack = np.stack(list(frames))
    if stack.dtype != np.uint8:
        return np.median(stack, axis=0).astype(np.uint8)
    n = len(stack)
    if n <= NETWORK_UP_TO:
        flat = list(stack.reshape(n, -1))
        for r in range(n):  # odd-even transposition sort: n rounds sort any n values
            for i in range(r % 2, n - 1, 2):
                a, b = flat[i], flat[i + 1]
                flat[i], flat[i + 1] = np.minimum(a, b), np.maximum(a, b)
        low, high = flat[(n - 1) // 2], flat[n // 2]
    else:
        part = np.partition(stack.reshape(n, -1), ((n - 1) // 2, n // 2), axis=0)
        low, high = part[(n - 1) // 2], part[n // 2]
    middle = (low.astype(np.uint16) + high) // 2
    return middle.astype(np.uint8).reshape(stack.shape[1:])
