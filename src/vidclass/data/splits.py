"""Train/val/test splits that never leak: class-stratified, randomized, and group-aware.

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
    val_fraction: float = 0.0,
) -> list[str]:
    """'train', 'val' or 'test' per item: about `test_fraction` of each class in 'test' and
    `val_fraction` (of all its clips) in 'val', carved out of what is left for training; no
    group on two sides.

    The test side does not depend on `val_fraction`: asking for a validation split never moves
    a clip into or out of the test split of the same seed.
    """
    if len(labels) != len(groups):
        raise ValueError("labels and groups must have the same length")
    if not 0.0 <= test_fraction < 1.0:
        raise UserError(f"the held-out fraction must be in [0, 1), got {test_fraction}")
    if not 0.0 <= val_fraction < 1.0 - test_fraction:
        raise UserError(
            f"the validation fraction must be in [0, {1.0 - test_fraction:g}) with a test "
            f"fraction of {test_fraction:g}, got {val_fraction}"
        )
    totals = Counter(labels)
    rng = random.Random(seed)
    test_groups = _holdout(labels, groups, {c: test_fraction * n for c, n in totals.items()}, rng)
    split = ["test" if g in test_groups else "train" for g in groups]
    if val_fraction > 0:
        rest = [i for i, s in enumerate(split) if s == "train"]
        val_groups = _holdout(
            [labels[i] for i in rest],
            [groups[i] for i in rest],
            {c: val_fraction * n for c, n in totals.items()},
            rng,
        )
        for i in rest:
            if groups[i] in val_groups:
                split[i] = "val"
    return split


def _holdout(
    labels: Sequence[str], groups: Sequence[str], target: dict[str, float], rng: random.Random
) -> set[str]:
    """Groups to hold out so that each class's held-out count nears `target[class]`.

    Greedy: visit groups in random order and hold one out when that brings every class's
    held-out count closer to its target. A class with two or more groups always gets one
    held-out group; a class with one group stays in (it cannot be split without leaking).
    """
    members: dict[str, list[int]] = defaultdict(list)
    for i, g in enumerate(groups):
        members[g].append(i)
    counts = {g: Counter(labels[i] for i in idx) for g, idx in members.items()}
    held: Counter[str] = Counter()
    out: set[str] = set()
    if not any(target.values()):
        return out

    def gain(g: str) -> float:
        # Decrease of the sum of squared relative errors if g were held out.
        total = 0.0
        for c, k in counts[g].items():
            t = max(target[c], 1.0)
            before = (held[c] - target[c]) ** 2
            after = (held[c] + k - target[c]) ** 2
            total += (before - after) / t
        return total

    order = sorted(members)
    rng.shuffle(order)
    for g in order:
        if gain(g) > 0:
            out.add(g)
            held.update(counts[g])

    # A class with several groups but none held out: hold out its smallest group.
    groups_of_class: dict[str, set[str]] = defaultdict(set)
    for g, cnt in counts.items():
        for c in cnt:
            groups_of_class[c].add(g)
    for c in sorted(groups_of_class):
        if held[c] == 0 and len(groups_of_class[c]) >= 2:
            g = min(groups_of_class[c], key=lambda x: (sum(counts[x].values()), order.index(x)))
            out.add(g)
            held.update(counts[g])
    return out


def carve_validation(
    labels: Sequence[str], groups: Sequence[str], targets: dict[str, float], seed: int = 0
) -> list[bool]:
    """Which of these training items go to 'val' (about `targets[class]` clips), whole groups.

    For splits given from outside (UCF101's trainlist, a CSV with train/test only): the
    validation clips come out of the training side, never out of the test side.
    """
    chosen = _holdout(labels, groups, targets, random.Random(seed))
    return [g in chosen for g in groups]


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
