"""Classification metrics for video evaluation, in plain numpy (no torch, so reports and tests
can use them without loading a model).

Scores are rows of ``probs`` ``(N, K)``: probabilities or any monotone scores (logits work too).
Ties are broken towards the lower class index everywhere, the same rule as ``np.argmax``, so
top-1 equals the confusion matrix's diagonal and a tied score never counts as a lucky hit.
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np

__all__ = [
    "average_views",
    "classification_metrics",
    "confusion_matrix",
    "pair_accuracy",
    "top_k_accuracy",
]


def _check(probs: np.ndarray, labels: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Validate shapes and label range early: a silent broadcast here gives wrong numbers."""
    probs = np.asarray(probs, dtype=np.float64)
    labels = np.asarray(labels).astype(np.int64, copy=False).reshape(-1)
    if probs.ndim != 2:
        raise ValueError(f"probs must be (N, K), got shape {probs.shape}")
    if probs.shape[0] != labels.shape[0]:
        raise ValueError(f"{probs.shape[0]} score rows but {labels.shape[0]} labels")
    k = probs.shape[1]
    if labels.size and (labels.min() < 0 or labels.max() >= k):
        raise ValueError(f"labels must be in [0, {k}), got {labels.min()}..{labels.max()}")
    return probs, labels


def _ranks(probs: np.ndarray, labels: np.ndarray) -> np.ndarray:
    """0-based rank of the true class in each row; ties rank the lower index first (argmax rule)."""
    n = labels.shape[0]
    true = probs[np.arange(n), labels][:, None]
    idx = np.arange(probs.shape[1])[None, :]
    ahead = (probs > true) | ((probs == true) & (idx < labels[:, None]))
    return ahead.sum(axis=1)


def top_k_accuracy(probs: np.ndarray, labels: np.ndarray, k: int) -> float:
    """Fraction of rows whose true class is among the ``k`` best scores (k capped at K)."""
    probs, labels = _check(probs, labels)
    if labels.size == 0:
        return 0.0
    k = max(1, min(int(k), probs.shape[1]))
    return float(np.mean(_ranks(probs, labels) < k))


def confusion_matrix(labels: np.ndarray, preds: np.ndarray, num_classes: int) -> np.ndarray:
    """``(K, K)`` int64 counts, rows = true class, columns = predicted class."""
    labels = np.asarray(labels, dtype=np.int64).reshape(-1)
    preds = np.asarray(preds, dtype=np.int64).reshape(-1)
    if labels.shape != preds.shape:
        raise ValueError(f"{labels.size} labels but {preds.size} predictions")
    for name, a in (("labels", labels), ("preds", preds)):
        if a.size and (a.min() < 0 or a.max() >= num_classes):
            raise ValueError(f"{name} must be in [0, {num_classes})")
    flat = np.bincount(labels * num_classes + preds, minlength=num_classes * num_classes)
    return flat.reshape(num_classes, num_classes)


def _pair_index(classes: Sequence[str], pairs: Sequence[Sequence[str]] | None) -> dict[int, int]:
    """class index → index of its time-reversed twin; pairs naming unknown classes are skipped
    (a prepared subset of a dataset may hold only one member of a pair)."""
    where = {c: i for i, c in enumerate(classes)}
    twin: dict[int, int] = {}
    for pair in pairs or []:
        if len(pair) != 2:
            raise ValueError(f"a pair has two class names, got {pair!r}")
        a, b = pair
        if a in where and b in where and a != b:
            twin[where[a]] = where[b]
            twin[where[b]] = where[a]
    return twin


def pair_accuracy(
    probs: np.ndarray,
    labels: np.ndarray,
    classes: Sequence[str],
    pairs: Sequence[Sequence[str]] | None,
) -> float | None:
    """How often a clip's true class scores strictly above its time-reversed twin.

    Only samples whose true class belongs to a pair count; a tie counts as wrong (a model that
    cannot see order gives equal scores, and that must read as chance, not as success).
    ``None`` when there are no pairs or no such samples.
    """
    probs, labels = _check(probs, labels)
    twin = _pair_index(classes, pairs)
    if not twin:
        return None
    rows = np.array([i for i, y in enumerate(labels) if int(y) in twin], dtype=np.int64)
    if rows.size == 0:
        return None
    y = labels[rows]
    other = np.array([twin[int(c)] for c in y], dtype=np.int64)
    return float(np.mean(probs[rows, y] > probs[rows, other]))


def _safe_div(num: np.ndarray, den: np.ndarray) -> np.ndarray:
    """num / den with 0 where den is 0, without numpy warnings."""
    out = np.zeros(np.broadcast(num, den).shape, dtype=np.float64)
    np.divide(num, den, out=out, where=den != 0)
    return out


def classification_metrics(
    probs: np.ndarray,
    labels: np.ndarray,
    classes: list[str],
    pairs: list[tuple[str, str]] | None = None,
) -> dict:
    """Everything ``evaluate`` and ``compare`` report, as a JSON-serializable dict.

    Keys: ``num_samples``, ``top1``, ``top5`` (k = min(5, K)), ``per_class`` ({class:
    precision/recall/f1/support}, 0 where undefined), ``macro_f1`` (mean over all K classes),
    ``confusion`` (K×K ints, rows true, cols predicted) and ``pair_accuracy`` (see
    :func:`pair_accuracy`).
    """
    probs, labels = _check(probs, labels)
    k = probs.shape[1]
    if len(classes) != k:
        raise ValueError(f"{len(classes)} class names but scores for {k} classes")
    preds = probs.argmax(axis=1) if labels.size else np.zeros(0, dtype=np.int64)
    cm = confusion_matrix(labels, preds, k)
    tp = np.diag(cm).astype(np.float64)
    support = cm.sum(axis=1)
    predicted = cm.sum(axis=0)
    precision = _safe_div(tp, predicted)
    recall = _safe_div(tp, support)
    f1 = _safe_div(2 * precision * recall, precision + recall)
    per_class = {
        c: {
            "precision": float(precision[i]),
            "recall": float(recall[i]),
            "f1": float(f1[i]),
            "support": int(support[i]),
        }
        for i, c in enumerate(classes)
    }
    return {
        "num_samples": int(labels.size),
        "top1": top_k_accuracy(probs, labels, 1),
        "top5": top_k_accuracy(probs, labels, min(5, k)),
        "per_class": per_class,
        "macro_f1": float(f1.mean()) if k else 0.0,
        "confusion": cm.astype(int).tolist(),
        "pair_accuracy": pair_accuracy(probs, labels, classes, pairs),
    }


def average_views(probs: np.ndarray, video_ids: Sequence[str]) -> tuple[list[str], np.ndarray]:
    """Mean scores over the views (clips/crops) of each video, the field's video-level protocol.

    Returns the video ids in first-seen order and a ``(num_videos, K)`` float array aligned
    with them.
    """
    probs = np.asarray(probs, dtype=np.float64)
    if probs.ndim != 2:
        raise ValueError(f"probs must be (N, K), got shape {probs.shape}")
    if probs.shape[0] != len(video_ids):
        raise ValueError(f"{probs.shape[0]} score rows but {len(video_ids)} video ids")
    order: dict[str, int] = {}
    index = np.array([order.setdefault(v, len(order)) for v in video_ids], dtype=np.int64)
    sums = np.zeros((len(order), probs.shape[1]), dtype=np.float64)
    np.add.at(sums, index, probs)
    counts = np.bincount(index, minlength=len(order)).astype(np.float64)
    return list(order), sums / np.maximum(counts, 1.0)[:, None]
