"""The class names of the embedded datasets, defined once: the time-reversed PAIRS, the
unpaired actions, and BACKGROUND, the "no action" class (an actor holding still) that
localization and detection treat as nothing happening. Imports nothing.
"""

from __future__ import annotations

PAIRS: list[tuple[str, str]] = [
    ("open_door", "close_door"),
    ("move_left", "move_right"),
    ("rise", "fall"),
    ("grow", "shrink"),
    ("rotate_cw", "rotate_ccw"),
]
UNPAIRED: list[str] = ["wave", "jump"]
ACTION_CLASSES: list[str] = [name for pair in PAIRS for name in pair] + UNPAIRED
# "No action": the actor holds still in some pose of a random motion. It lets a clip model
# say that nothing happens, which temporal localization needs between actions.
BACKGROUND = "background"
CLASSES: list[str] = [*ACTION_CLASSES, BACKGROUND]

TWIN: dict[str, str] = {a: b for a, b in PAIRS} | {b: a for a, b in PAIRS}
