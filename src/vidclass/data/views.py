"""Named views of a clip (as prepared, mirrored) and test-time flip averaging.

A frozen backbone's features are computed once per clip, so random augmentation cannot reach
them; instead each *view* of a clip is encoded once into its own feature cache, and training
draws one view per clip per epoch (`train.features`). The same mirroring averages the class
probabilities of a clip and its mirror image at test time (`evaluate`, `Classifier`), for
every method: the clip tensor is reversed along W, and optical flow's x component changes
sign with it.

Mirroring changes the label where direction is the label (`move_left`/`move_right`,
`rotate_cw`/`rotate_ccw`): `check_flip` refuses it for classes that come in mirror pairs.
"""

from __future__ import annotations

import re
from collections.abc import Sequence

from torch.utils.data import Dataset

from vidclass.errors import UserError

ORIG, HFLIP = "orig", "hflip"
# What each view is; part of the spec of the view's feature cache, so that a view whose
# meaning changes is never read from a cache made under its old meaning.
VIEWS: dict[str, str] = {
    ORIG: "the clip as prepared",
    HFLIP: "mirrored left-right: W reversed, optical flow's x component negated",
}
TTA_MODES = ("auto", "flip", "none")

# Words that a mirror image turns into each other.
_MIRROR_WORDS = {
    "left": "right",
    "right": "left",
    "cw": "ccw",
    "ccw": "cw",
    "clockwise": "anticlockwise",
    "anticlockwise": "clockwise",
    "counterclockwise": "clockwise",
}
_WORD = re.compile(r"[a-z]+")


def flip_item(item: dict) -> dict:
    """A clip dict (an item `(C, T, H, W)` or a batch `(B, C, T, H, W)`, torch or numpy) with
    `video` and `flow` mirrored left-right; other keys as they are. The flow's x displacement
    (its first channel) changes sign, as flow computed on the mirrored frames would."""
    out = dict(item)
    if "video" in item:
        out["video"] = _reverse_w(item["video"])
    if item.get("flow") is not None:
        flow = _reverse_w(item["flow"])
        flow[..., 0, :, :, :] *= -1  # the channel axis is the 4th from the end
        out["flow"] = flow
    if item.get("keypoints") is not None:
        out["keypoints"] = flip_keypoints(item["keypoints"])
    return out


def _mirror_joint(name: str) -> str:
    for a, b in (("left", "right"), ("right", "left")):
        if a in name:
            return name.replace(a, b)
    return name


def flip_keypoints(keypoints):
    """Pose keypoints `(..., 33, 3)` (x, y as shares of the frame, visibility; torch or numpy)
    of the mirrored frames: x becomes 1 - x and each left joint the right one (a frame without
    a person stays all zeros)."""
    from vidclass.data.pose import KEYPOINT_NAMES

    perm = [KEYPOINT_NAMES.index(_mirror_joint(n)) for n in KEYPOINT_NAMES]
    out = keypoints[..., perm, :]
    seen = out[..., 2:3] > 0
    out[..., 0:1] = seen * (1 - out[..., 0:1]) + ~seen * out[..., 0:1]
    return out


def apply_view(item: dict, view: str) -> dict:
    """`item` seen through `view` (one of `VIEWS`)."""
    if view == ORIG:
        return item
    if view == HFLIP:
        return flip_item(item)
    raise UserError(f"unknown view {view!r}; choose from {', '.join(VIEWS)}")


def _reverse_w(x):
    """A copy of `x` reversed along its last axis (torch or numpy)."""
    if hasattr(x, "flip"):
        return x.flip(-1)
    return x[..., ::-1].copy()


def mirror_pairs(classes: Sequence[str]) -> list[tuple[str, str]]:
    """Pairs of classes whose names are mirror images (left/right, cw/ccw, clockwise/
    anticlockwise swapped), e.g. `("move_left", "move_right")`."""
    lower = {c.lower(): c for c in classes}
    pairs = []
    for c in classes:
        twin = _WORD.sub(lambda m: _MIRROR_WORDS.get(m.group(0), m.group(0)), c.lower())
        other = lower.get(twin)
        if other is not None and other != c and (other, c) not in pairs:
            pairs.append((c, other))
    return pairs


def directional_classes(classes: Sequence[str]) -> list[str]:
    """Classes whose name says a direction (left, right, cw, ...): mirroring may relabel them."""
    return [c for c in classes if any(w in _MIRROR_WORDS for w in _WORD.findall(c.lower()))]


def check_flip(classes: Sequence[str], option: str) -> list[str]:
    """Refuse mirroring for classes that come in mirror pairs (a mirrored `move_left` is a
    `move_right`); → warnings for classes whose names merely say a direction."""
    pairs = mirror_pairs(classes)
    if pairs:
        shown = ", ".join(f"{a}/{b}" for a, b in pairs[:4])
        raise UserError(
            f"{option}: these classes are mirror images of each other ({shown}), so a "
            "mirrored clip would carry the wrong label; drop the option for this data"
        )
    named = directional_classes(classes)
    if named:
        return [
            f"{option}: the classes {', '.join(named[:4])} name a direction; a mirrored clip "
            "keeps its label, which is wrong if the direction is what tells it apart"
        ]
    return []


def resolve_tta(config: dict, tta: str = "auto") -> bool:
    """Whether to average a clip's probabilities with its mirror's: `auto` does what the run
    was trained for (config.json's "tta", "flip" for a run trained with mirrored clips),
    `flip` and `none` override it (`flip` is refused for mirror-pair classes)."""
    if tta not in TTA_MODES:
        raise UserError(f"--tta {tta!r}: choose one of {', '.join(TTA_MODES)}")
    if tta == "auto":
        return config.get("tta", "none") == "flip"
    if tta == "flip":
        check_flip(config["classes"], "--tta flip")
    return tta == "flip"


class TestTimeFlip(Dataset):
    """Each item of `base` twice, as it is and mirrored, with the same `video_id`, so that
    averaging the probabilities per video (`average_views`) averages a clip with its mirror.
    A base that has the mirrored clip already (`base.mirrored(i)`, e.g. cached features of the
    `hflip` view) gives it; otherwise the item is mirrored here."""

    __test__ = False  # not a pytest class, whatever its name

    def __init__(self, base: Dataset) -> None:
        self.base = base

    def __len__(self) -> int:
        return 2 * len(self.base)  # type: ignore[arg-type]

    def __getitem__(self, j: int) -> dict:
        i, mirrored = divmod(j, 2)
        if not mirrored:
            return self.base[i]
        if hasattr(self.base, "mirrored"):
            return self.base.mirrored(i)
        return flip_item(self.base[i])
