"""The split never leaks a group and keeps each class near the asked share."""

from __future__ import annotations

from collections import Counter

from hypothesis import given, settings
from hypothesis import strategies as st

from vidclass.data.splits import group_of, stratified_group_split


@st.composite
def datasets(draw):
    """Classes with several groups of a few clips; sometimes a group spans classes."""
    labels, groups = [], []
    for c in range(draw(st.integers(1, 8))):
        for g in range(draw(st.integers(1, 12))):
            for _ in range(draw(st.integers(1, 7))):
                labels.append(f"class{c}")
                groups.append(f"class{c}_g{g}")
    shared = draw(st.integers(0, 3))
    for i in range(shared):
        labels.append(f"class{i % 2}")
        groups.append("shared_scene")
    return labels, groups


@given(datasets(), st.floats(0.1, 0.5), st.integers(0, 10_000))
@settings(max_examples=200, deadline=None)
def test_no_group_on_both_sides(data, fraction, seed):
    labels, groups = data
    split = stratified_group_split(labels, groups, fraction, seed)
    sides: dict[str, set] = {}
    for g, s in zip(groups, split, strict=True):
        sides.setdefault(g, set()).add(s)
    assert all(len(s) == 1 for s in sides.values())
    # Every class with two or more groups is tested on something.
    groups_per_class: dict[str, set] = {}
    for label, g in zip(labels, groups, strict=True):
        groups_per_class.setdefault(label, set()).add(g)
    tested = {label for label, s in zip(labels, split, strict=True) if s == "test"}
    for label, gs in groups_per_class.items():
        if len(gs) >= 2:
            assert label in tested


def test_class_proportions_near_target():
    # 10 classes x 25 groups x 4-7 clips, like UCF101.
    labels, groups = [], []
    for c in range(10):
        for g in range(25):
            for _ in range(4 + (c + g) % 4):
                labels.append(f"c{c}")
                groups.append(f"c{c}_g{g}")
    for seed in range(5):
        split = stratified_group_split(labels, groups, 0.2, seed)
        total, test = (
            Counter(labels),
            Counter(lab for lab, s in zip(labels, split, strict=True) if s == "test"),
        )
        for c in total:
            assert abs(test[c] / total[c] - 0.2) < 0.04, (seed, c, test[c], total[c])


def test_zero_fraction_is_all_train():
    assert set(stratified_group_split(["a", "b"], ["1", "2"], 0.0)) == {"train"}


def test_group_of_ucf101_and_custom_regex():
    assert group_of("x/v_ApplyEyeMakeup_g08_c01.avi") == "g08"
    assert group_of("x/clip.mp4") is None
    assert group_of("cam3_take7.mp4", r"^(cam\d+)_") == "cam3"
