"""The shared pieces of every detection-style metric: one average precision, one box IoU and
one temporal IoU. Localization (segments in time) and detection (boxes on frames) rank their
predictions and match them to ground truth differently, then both score the ranking here.
"""

from __future__ import annotations

import numpy as np

__all__ = ["average_precision", "box_intersections", "box_iou", "interpolated_ap", "temporal_iou"]


def interpolated_ap(precision: np.ndarray, recall: np.ndarray) -> float:
    """Area under the PR curve after making precision non-increasing in recall (all-point
    interpolation: VOC 2010+, AVA, and the ActivityNet code's `interpolated_prec_rec`)."""
    p = np.concatenate([[0.0], precision, [0.0]])
    r = np.concatenate([[0.0], recall, [1.0]])
    p = np.maximum.accumulate(p[::-1])[::-1]
    idx = np.flatnonzero(r[1:] != r[:-1]) + 1
    return float(np.sum((r[idx] - r[idx - 1]) * p[idx]))


def average_precision(is_tp: np.ndarray, num_gt: int) -> float:
    """AP of predictions already sorted by descending score (`is_tp` bools) against `num_gt`
    ground truths: NaN when there is no ground truth, 0 when there are no predictions."""
    if num_gt == 0:
        return float("nan")
    is_tp = np.asarray(is_tp, bool)
    if not len(is_tp):
        return 0.0
    tp = np.cumsum(is_tp)
    return interpolated_ap(tp / np.arange(1, len(is_tp) + 1), tp / num_gt)


def temporal_iou(a: tuple[float, float], b: np.ndarray) -> np.ndarray:
    """IoU in time of segment `a` = (start, end) with each row of `b` (N, 2)."""
    b = np.asarray(b, dtype=np.float64).reshape(-1, 2)
    inter = np.clip(np.minimum(a[1], b[:, 1]) - np.maximum(a[0], b[:, 0]), 0, None)
    union = (a[1] - a[0]) + (b[:, 1] - b[:, 0]) - inter
    return np.where(union > 0, inter / np.where(union > 0, union, 1), 0.0)


def box_intersections(a: np.ndarray, b: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Boxes as float arrays and their pairwise intersection areas `(len(a), len(b))`."""
    a = np.asarray(a, np.float64).reshape(-1, 4)
    b = np.asarray(b, np.float64).reshape(-1, 4)
    x1 = np.maximum(a[:, None, 0], b[None, :, 0])
    y1 = np.maximum(a[:, None, 1], b[None, :, 1])
    x2 = np.minimum(a[:, None, 2], b[None, :, 2])
    y2 = np.minimum(a[:, None, 3], b[None, :, 3])
    return a, b, np.clip(x2 - x1, 0, None) * np.clip(y2 - y1, 0, None)


def box_iou(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    """IoU matrix `(len(a), len(b))` of xyxy boxes."""
    a, b, inter = box_intersections(a, b)
    area_a = (a[:, 2] - a[:, 0]) * (a[:, 3] - a[:, 1])
    area_b = (b[:, 2] - b[:, 0]) * (b[:, 3] - b[:, 1])
    union = area_a[:, None] + area_b[None, :] - inter
    return np.where(union > 0, inter / np.maximum(union, 1e-12), 0.0)
