"""Train/test splits that never leak: class-stratified, randomized, and group-aware.

Clips cut from one source video (a UCF101 group `g08`, a synthetic scene) look alike; if
they land on both sides the test score measures memory, not recognition. Groups are
therefore atomic, and the split only approximates each class's share.
"""

from __future__ import annotations

import random
import re
from collections import Counter, defaultdict
from collections.abc import Sequence
from pathlib import Path

from vidclass.errors import UserError

# UCF101 (and `vidclass synth`) names: v_<Class>_g<GG>_c<CC>.ext → group "g<GG>".
# The group number is taken across classes, as UCF101's official splits do (they hold out
# groups 1-7 of every class together). It matters when scenes recur across classes: held-out
# scenes must be unseen by every class, or the scene itself tells the class apart.
UCF101_GROUP_REGEX = r"^v_.+_(g\d+)_c\d+"


def group_of(path: str | Path, regex: str | None = UCF101_GROUP_REGEX) -> str | None:
    """The group id in a file name: the regex's first group, or its whole match; None if none."""
    if regex is None:
        return None
    stem = Path(path).stem
    match = re.search(regex, stem)
    if not match:
        return None
    return match.group(1) if match.groups() else match.group(0)


def stratified_group_split(
    labels: Sequence[str],
    groups: Sequence[str],
    test_fraction: float = 0.2,
    seed: int = 0,
) -> list[str]:
    """'train' or 'test' per item, about `test_fraction` of each class in 'test', no group split.

    Greedy: visit groups in random order and send one to test when that brings every class's
    test count closer to its target. A class with two or more groups always gets one test
    group; a class with one group stays in train (it cannot be split without leaking).
    """
    if len(labels) != len(groups):
        raise ValueError("labels and groups must have the same length")
    if not 0.0 <= test_fraction < 1.0:
        raise UserError(f"the held-out fraction must be in [0, 1), got {test_fraction}")
    members: dict[str, list[int]] = defaultdict(list)
    for i, g in enumerate(groups):
        members[g].append(i)
    counts = {g: Counter(labels[i] for i in idx) for g, idx in members.items()}
    totals = Counter(labels)
    target = {c: test_fraction * n for c, n in totals.items()}
    test_count: Counter[str] = Counter()
    test_groups: set[str] = set()
    if test_fraction == 0.0:
        return ["train"] * len(labels)

    def gain(g: str) -> float:
        # Decrease of the sum of squared relative errors if g moved to test.
        total = 0.0
        for c, k in counts[g].items():
            t = max(target[c], 1.0)
            before = (test_count[c] - target[c]) ** 2
            after = (test_count[c] + k - target[c]) ** 2
            total += (before - after) / t
        return total

    order = sorted(members)
    random.Random(seed).shuffle(order)
    for g in order:
        if gain(g) > 0:
            test_groups.add(g)
            test_count.update(counts[g])

    # A class with several groups but none in test: move its smallest group there.
    groups_of_class: dict[str, set[str]] = defaultdict(set)
    for g, cnt in counts.items():
        for c in cnt:
            groups_of_class[c].add(g)
    for c in sorted(totals):
        if test_count[c] == 0 and len(groups_of_class[c]) >= 2:
            g = min(groups_of_class[c], key=lambda x: (sum(counts[x].values()), order.index(x)))
            test_groups.add(g)
            test_count.update(counts[g])

    return ["test" if groups[i] in test_groups else "train" for i in range(len(labels))]


def read_ucf101_splits(split_dir: str | Path, fold: int = 1) -> tuple[list[str], dict[str, str]]:
    """Parse UCF101's classInd.txt and train/testlist0N.txt.

    Returns the class names in classInd order and a map from "Class/v_..._gGG_cCC" (no
    extension) to 'train' or 'test'.
    """
    d = Path(split_dir)
    class_file = d / "classInd.txt"
    train_file, test_file = d / f"trainlist0{fold}.txt", d / f"testlist0{fold}.txt"
    for f in (class_file, train_file, test_file):
        if not f.is_file():
            raise UserError(
                f"{f}: missing; --ucf101-splits must point at the folder holding UCF101's "
                "classInd.txt, trainlist0N.txt and testlist0N.txt (ucfTrainTestlist)"
            )
    classes: list[tuple[int, str]] = []
    for n, line in enumerate(class_file.read_text().splitlines(), 1):
        if not line.strip():
            continue
        parts = line.split()
        if len(parts) != 2 or not parts[0].isdigit():
            raise UserError(f"{class_file}:{n}: expected '<index> <ClassName>', got {line!r}")
        classes.append((int(parts[0]), parts[1]))
    names = [name for _, name in sorted(classes)]
    split: dict[str, str] = {}
    for f, which in ((train_file, "train"), (test_file, "test")):
        for line in f.read_text().splitlines():
            if line.strip():
                rel = line.split()[0].replace("\\", "/")
                split[str(Path(rel).with_suffix(""))] = which
    return names, split
