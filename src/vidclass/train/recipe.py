"""The recipe: what `vidclass train` does with every choice the user leaves out.

Two recipes, chosen by the data (`--recipe auto`) or by name:

- **real** (footage of people, the default for any dataset a user prepares): ImageNet
  EfficientNet-Lite0 with its 2D weights frozen, mirrored clips in training (unless classes
  come in mirror pairs; the test-time flip is `--tta flip`'s), a long schedule for the
  heads on cached features, the val clips folded into training for the whole schedule, and
  for tsn 3x3 grid pooling with its motion consensus. Each lever was measured on Weizmann held out by
  actor (docs/benchmarks.md, "Real people"); together they took the frozen frame heads from
  72–83 % (the old defaults' centre crop, 15 epochs, val held out) to the figures there.
- **quick** (the embedded synthetic set, `vidclass demo`): the `TrainConfig` defaults, a small
  network from scratch for 12 epochs: seconds per epoch on rendered shapes, where ImageNet
  brings little and mirrored clips would swap `move_left` and `move_right`.

The crop, the frame count and the input size are fixed when the data is prepared;
`describe` names them and, where they differ from what measured best, the `prepare` flags
that would change them. Whatever the user gives on the command line wins over the recipe;
config.json records the recipe's name and the fields it chose (`train.recipe`, `recipe_chose`).
"""

from __future__ import annotations

from dataclasses import dataclass, field, fields, replace
from pathlib import Path

from vidclass.data.dataset import load_prepared_config
from vidclass.data.sampling import REAL_FPS, REAL_FRAMES
from vidclass.data.views import mirror_pairs
from vidclass.errors import UserError
from vidclass.models import MODELS, SKELETON_MODELS
from vidclass.synth.labels import CLASSES as SYNTH_CLASSES
from vidclass.train.config import TrainConfig

RECIPES = ("auto", "real", "quick")
# Methods whose frozen encoder's features are cached (one forward pass per clip and view),
# so a long schedule costs seconds per epoch.
FEATURE_HEADS = ("single_frame", "tsn", "temporal_conv", "cnn_lstm", "late_fusion", "two_stream")
FROZEN_LITE0 = {"backbone": "efficientnet_lite0", "pretrained": True, "freeze_backbone": True}
# Measured on Weizmann (frozen heads, 224 px): 15 epochs cost 8–10 points against 60.
REAL_EPOCHS_FEATURE_HEAD = 60
# The 3D methods encode every clip each epoch (their temporal layers sit inside the
# network); at 224 px an epoch on a few hundred clips takes minutes on a laptop CPU, and
# schedules longer than the default were not measured for them.
REAL_EPOCHS_3D = TrainConfig.epochs
# Chosen on inner folds (the training actors only, never the test ones; docs/benchmarks.md,
# "All levers together"): tsn over 3x3 cells of Lite0's last map with the motion consensus,
# scored with its mirror, was the best of the frame heads there (+3.9 points over plain tsn).
MODEL_OPTIONS: dict[str, dict] = {"tsn": {"grid": 3, "motion": True}}
# Test-time flip: +2.3 points on the inner folds with 16 frames spread over each clip, +0.5
# (one clip in 180) with 32 at 12.5 fps, for twice predict's encoder work: not by default
# (`--tta flip` asks for it; docs/benchmarks.md, "Frames at a fixed rate").
REAL_TTA = "none"
# What measured best for the prepared data (docs/benchmarks.md, "Which part of the frame" and
# "Frames at a fixed rate"): a square around the person at 224 px, 32 frames at 12.5 per second
# from the start of the clip (2.6 s; longer clips are cut there, as predict's windows are).
BEST_CROP, BEST_SIZE, BEST_FRAMES, BEST_FPS = "person", 224, REAL_FRAMES, REAL_FPS
SKELETON_CROP = "full"


@dataclass(frozen=True)
class Recipe:
    """A named set of `TrainConfig` fields, and why it was chosen for this data."""

    name: str
    values: dict = field(default_factory=dict)
    why: str = ""
    data_notes: tuple[str, ...] = ()


def is_synthetic(prepared: dict) -> bool:
    """Data from `vidclass synth`: every class is one of its rendered actions."""
    classes = prepared.get("classes") or []
    return bool(classes) and set(classes) <= set(SYNTH_CLASSES)


def choose_recipe(data: str | Path, model: str, name: str = "auto") -> Recipe:
    """The recipe for `model` on the prepared folder `data` (`auto`: quick for the embedded
    synthetic set, real for anything else)."""
    if name not in RECIPES:
        raise UserError(f"--recipe {name!r}: choose one of {', '.join(RECIPES)}")
    if model not in MODELS:
        raise UserError(f"--model {model!r}: unknown; `vidclass models` lists them")
    prepared = load_prepared_config(data)
    if name == "auto":
        name = "quick" if is_synthetic(prepared) else "real"
    if name == "quick":
        return Recipe(
            "quick",
            {},
            "small network from scratch, 12 epochs"
            + (" (the embedded synthetic set)" if is_synthetic(prepared) else ""),
        )
    return _real(prepared, model)


def _real(prepared: dict, model: str) -> Recipe:
    pairs = mirror_pairs(prepared.get("classes") or [])
    head = model in FEATURE_HEADS
    skeleton = model in SKELETON_MODELS  # keypoints in, no backbone: a small net, many epochs
    epochs = REAL_EPOCHS_FEATURE_HEAD if head or skeleton else REAL_EPOCHS_3D
    extra = MODEL_OPTIONS.get(model, {})
    values = {
        "options": {} if skeleton else {**FROZEN_LITE0, **extra},
        "epochs": epochs,
        "hflip": not pairs,
        "refit": True,
        "refit_epochs": "all",
        "tta": "none" if pairs else REAL_TTA,  # a mirror swaps a pair's labels
    }
    why = [
        "MediaPipe pose keypoints"
        if skeleton
        else "ImageNet EfficientNet-Lite0, 2D weights frozen",
        f"{epochs} epochs" + (" on cached features" if head else ""),
        "mirrored clips" if not pairs else f"no mirrored clips ({pairs[0][0]}/{pairs[0][1]})",
        "val folded into training",
        "test-time flip" if values["tta"] == "flip" else "no test-time flip",
    ]
    if extra:
        why.insert(1, ", ".join(f"{k}={v}" for k, v in extra.items()))
    notes = []
    crop = prepared.get("crop", "center")
    # The skeleton needs the camera's frame: a crop that follows the person hides how the body
    # moves across it (walk, run, skip, jump; docs/benchmarks.md, "Real people").
    best_crop = SKELETON_CROP if skeleton else BEST_CROP
    if crop != best_crop:
        notes.append(f"--crop {best_crop} (this data: {crop})")
    if int(prepared.get("size", 0)) < BEST_SIZE:
        notes.append(f"--size {BEST_SIZE} (this data: {prepared.get('size')})")
    fps, frames = prepared.get("sample_fps"), prepared.get("frames")
    if prepared.get("interval") is None and (fps != BEST_FPS or frames != BEST_FRAMES):
        rate = f"{frames} at {fps:g} fps" if fps else f"{frames} spread over each clip"
        notes.append(f"--frames {BEST_FRAMES} --fps {BEST_FPS:g} (this data: {rate})")
    return Recipe("real", values, ", ".join(why), tuple(notes))


def apply_recipe(recipe: Recipe, cfg: TrainConfig, given: set[str]) -> TrainConfig:
    """`cfg` with the recipe's values in every field the user did not give (`given` names
    the `TrainConfig` fields set on the command line; model options merge key by key)."""
    names = {f.name for f in fields(TrainConfig)}
    changes: dict = {}
    chose = []
    for key, value in recipe.values.items():
        if key not in names:
            raise ValueError(f"recipe {recipe.name}: {key!r} is not a TrainConfig field")
        if key == "options":
            merged = {**value, **cfg.options}
            if cfg.options.get("backbone", value.get("backbone")) != value.get("backbone"):
                merged = dict(cfg.options)  # another backbone: none of the recipe's options
            chose += [f"options.{k}" for k in value if k not in cfg.options and k in merged]
            changes["options"] = merged
        elif key not in given:
            changes[key] = value
            chose.append(key)
    if not changes.get("hflip", cfg.hflip) and changes.get("tta") == "flip":
        changes["tta"] = (
            "none"  # --no-hflip given: a model never shown mirrors is not scored on them
        )
    if not changes.get("refit", cfg.refit) and "refit_epochs" in changes:
        del changes["refit_epochs"]  # --no-refit given: the refit's epoch rule means nothing
        chose.remove("refit_epochs")
    options = changes.get("options", cfg.options)
    frozen = all(options.get(k) == v for k, v in FROZEN_LITE0.items())
    if "epochs" in changes and not frozen and cfg.model not in SKELETON_MODELS:
        changes["epochs"] = REAL_EPOCHS_3D  # the long schedule: frozen features, or keypoints
    return replace(cfg, **changes, recipe=recipe.name, recipe_chose=tuple(chose))


def config_for(data: str | Path, name: str, **flags) -> tuple[TrainConfig, Recipe]:
    """The `TrainConfig` of `flags` (TrainConfig fields; None = not given) with the recipe's
    values in every field not given, and the recipe (`vidclass train`'s defaults)."""
    recipe = choose_recipe(data, flags["model"], name)
    given = {k for k, v in flags.items() if v is not None}
    cfg = TrainConfig(**{k: v for k, v in flags.items() if v is not None})
    return apply_recipe(recipe, cfg, given), recipe


def describe(recipe: Recipe) -> str:
    """One line: the recipe, what it chose and why, and the prepare flags that would help."""
    line = f"recipe {recipe.name}: {recipe.why}"
    if recipe.name == "real":
        line += " (the best measured on real people held out by actor, docs/benchmarks.md)"
        if recipe.data_notes:
            line += "; measured better input: `vidclass prepare` " + ", ".join(recipe.data_notes)
    return line + "; any flag given overrides it"
