"""Metrics on hand-made cases whose values are worked out in the comments, plus properties."""

from __future__ import annotations

import json
import warnings

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from hypothesis.extra.numpy import arrays

from vidclass.evaluation.classification import (
    average_views,
    classification_metrics,
    confusion_matrix,
    pair_accuracy,
    top_k_accuracy,
)


def scores_for(preds: list[int], k: int) -> np.ndarray:
    """Rows whose argmax is ``preds[i]`` (0.6 there, the rest shared)."""
    probs = np.full((len(preds), k), 0.4 / (k - 1))
    probs[np.arange(len(preds)), preds] = 0.6
    return probs


def test_three_class_confusion_by_hand():
    # true:  0 0 0 0 | 1 1 1 | 2 2 2
    # pred:  0 0 0 1 | 1 1 0 | 2 1 2
    labels = np.array([0, 0, 0, 0, 1, 1, 1, 2, 2, 2])
    preds = [0, 0, 0, 1, 1, 1, 0, 2, 1, 2]
    m = classification_metrics(scores_for(preds, 3), labels, ["a", "b", "c"])
    # rows = true, cols = predicted
    assert m["confusion"] == [[3, 1, 0], [1, 2, 0], [0, 1, 2]]
    assert m["num_samples"] == 10
    assert m["top1"] == pytest.approx(0.7)
    assert m["top5"] == 1.0  # k = min(5, 3) = 3 = every class
    pc = m["per_class"]
    # a: tp 3, predicted 4, support 4 -> P 3/4, R 3/4, F1 3/4
    assert pc["a"] == pytest.approx({"precision": 0.75, "recall": 0.75, "f1": 0.75, "support": 4})
    # b: tp 2, predicted 4 (1 + 2 + 1), support 3 -> P 1/2, R 2/3, F1 = 2PR/(P+R) = 4/7
    assert pc["b"] == pytest.approx({"precision": 0.5, "recall": 2 / 3, "f1": 4 / 7, "support": 3})
    # c: tp 2, predicted 2, support 3 -> P 1, R 2/3, F1 = 4/5
    assert pc["c"] == pytest.approx({"precision": 1.0, "recall": 2 / 3, "f1": 0.8, "support": 3})
    assert m["macro_f1"] == pytest.approx((0.75 + 4 / 7 + 0.8) / 3)
    assert m["pair_accuracy"] is None
    json.dumps(m)  # plain Python types only


def test_top_k_with_fewer_than_five_classes_and_ties():
    probs = np.array(
        [
            [0.5, 0.3, 0.2, 0.0],  # true 1: rank 1
            [0.1, 0.2, 0.3, 0.4],  # true 0: rank 3
            [0.25, 0.25, 0.25, 0.25],  # true 2: all tied, lower indices rank first -> rank 2
        ]
    )
    labels = np.array([1, 0, 2])
    assert top_k_accuracy(probs, labels, 1) == 0.0
    assert top_k_accuracy(probs, labels, 2) == pytest.approx(1 / 3)
    assert top_k_accuracy(probs, labels, 3) == pytest.approx(2 / 3)
    m = classification_metrics(probs, labels, list("abcd"))
    assert m["top5"] == 1.0  # k capped at K = 4


def test_tie_at_top_follows_argmax():
    probs = np.array([[0.5, 0.5], [0.5, 0.5]])
    labels = np.array([0, 1])
    m = classification_metrics(probs, labels, ["x", "y"])
    assert m["top1"] == 0.5  # argmax picks index 0 for both rows
    assert m["confusion"] == [[1, 0], [1, 0]]


def test_pair_accuracy_with_a_tie():
    classes = ["open", "close", "wave"]
    pairs = [("open", "close")]
    probs = np.array(
        [
            [0.6, 0.3, 0.1],  # open:  0.6 > 0.3 right
            [0.4, 0.4, 0.2],  # open:  tie -> wrong
            [0.5, 0.2, 0.3],  # close: 0.2 < 0.5 wrong
            [0.1, 0.2, 0.7],  # close: 0.2 > 0.1 right (though top-1 is wrong)
            [0.0, 0.0, 1.0],  # wave: not in a pair, not counted
        ]
    )
    labels = np.array([0, 0, 1, 1, 2])
    assert pair_accuracy(probs, labels, classes, pairs) == 0.5
    m = classification_metrics(probs, labels, classes, pairs)
    assert m["pair_accuracy"] == 0.5
    # lists (as read from JSON) work as pairs
    assert pair_accuracy(probs, labels, classes, [["close", "open"]]) == 0.5


def test_pair_accuracy_none_cases():
    probs = np.array([[0.2, 0.3, 0.5]])
    labels = np.array([2])
    classes = ["open", "close", "wave"]
    assert pair_accuracy(probs, labels, classes, None) is None
    assert pair_accuracy(probs, labels, classes, []) is None
    assert pair_accuracy(probs, labels, classes, [("open", "close")]) is None  # no paired sample
    assert pair_accuracy(probs, labels, classes, [("open", "missing")]) is None  # unknown: skipped


def test_empty_class_gives_zero_without_warnings():
    # class "c" has no samples and is never predicted; class "b" is predicted but has no samples
    labels = np.array([0, 0, 0])
    preds = [0, 1, 0]
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        m = classification_metrics(scores_for(preds, 3), labels, ["a", "b", "c"])
    assert m["per_class"]["b"] == {"precision": 0.0, "recall": 0.0, "f1": 0.0, "support": 0}
    assert m["per_class"]["c"] == {"precision": 0.0, "recall": 0.0, "f1": 0.0, "support": 0}
    assert m["per_class"]["a"]["precision"] == 1.0
    assert m["per_class"]["a"]["recall"] == pytest.approx(2 / 3)
    assert not any(np.isnan(v) for c in m["per_class"].values() for v in c.values())


def test_no_samples():
    m = classification_metrics(np.zeros((0, 3)), np.zeros(0, int), ["a", "b", "c"], [("a", "b")])
    assert m["num_samples"] == 0 and m["top1"] == 0.0 and m["pair_accuracy"] is None
    assert m["confusion"] == [[0] * 3] * 3


def test_bad_inputs_raise():
    with pytest.raises(ValueError, match="labels"):
        classification_metrics(np.zeros((2, 3)), np.array([0, 3]), ["a", "b", "c"])
    with pytest.raises(ValueError, match="class names"):
        classification_metrics(np.zeros((2, 3)), np.array([0, 1]), ["a", "b"])
    with pytest.raises(ValueError, match="rows"):
        classification_metrics(np.zeros((2, 3)), np.array([0]), ["a", "b", "c"])


def test_confusion_matrix_direct():
    cm = confusion_matrix(np.array([0, 1, 1, 2]), np.array([0, 2, 1, 2]), 4)
    assert cm.tolist() == [[1, 0, 0, 0], [0, 1, 1, 0], [0, 0, 1, 0], [0, 0, 0, 0]]


def test_average_views():
    probs = np.array(
        [
            [1.0, 0.0],  # v2
            [0.2, 0.8],  # v1
            [0.0, 1.0],  # v2
            [0.6, 0.4],  # v1
            [0.3, 0.7],  # v3
        ]
    )
    ids, mean = average_views(probs, ["v2", "v1", "v2", "v1", "v3"])
    assert ids == ["v2", "v1", "v3"]  # first-seen order
    np.testing.assert_allclose(mean, [[0.5, 0.5], [0.4, 0.6], [0.3, 0.7]])
    ids, mean = average_views(np.zeros((0, 2)), [])
    assert ids == [] and mean.shape == (0, 2)
    with pytest.raises(ValueError):
        average_views(probs, ["a"])


@st.composite
def scored_samples(draw):
    k = draw(st.integers(1, 8))
    n = draw(st.integers(1, 40))
    # few distinct values so ties are common
    probs = draw(arrays(np.float64, (n, k), elements=st.sampled_from([0.0, 0.25, 0.5, 1.0])))
    labels = draw(arrays(np.int64, (n,), elements=st.integers(0, k - 1)))
    return probs, labels, k


@settings(max_examples=200, deadline=None)
@given(scored_samples())
def test_properties(sample):
    probs, labels, k = sample
    classes = [f"c{i}" for i in range(k)]
    pairs = [(classes[i], classes[i + 1]) for i in range(0, k - 1, 2)]
    m = classification_metrics(probs, labels, classes, pairs)
    cm = np.array(m["confusion"])
    assert cm.sum() == len(labels)
    assert 0.0 <= m["top1"] <= m["top5"] <= 1.0
    assert m["top1"] == pytest.approx(np.trace(cm) / len(labels))
    assert m["top1"] == pytest.approx(np.mean(probs.argmax(1) == labels))
    for i, c in enumerate(classes):
        row = cm[i].sum()
        assert m["per_class"][c]["support"] == row
        assert m["per_class"][c]["recall"] == pytest.approx(cm[i, i] / row if row else 0.0)
        assert 0.0 <= m["per_class"][c]["f1"] <= 1.0
    pa = m["pair_accuracy"]
    assert pa is None or 0.0 <= pa <= 1.0
    # equal scores everywhere: a model blind to order never wins a pair
    assert pair_accuracy(np.ones_like(probs), labels, classes, pairs) in (None, 0.0)
    json.dumps(m)
