"""What defines a training run, in a module light enough for the CLI to read its defaults.

The CLI, `compare` and the Python API all take their defaults from `TrainConfig`, so a default
changed here is changed everywhere (the recipe behind docs/benchmarks.md's figures).
"""

from __future__ import annotations

from dataclasses import dataclass, field


@dataclass
class TrainConfig:
    """Everything that defines a training run (saved in config.json)."""

    model: str
    options: dict = field(default_factory=dict)
    epochs: int = 12
    batch_size: int = 16
    lr: float = 2e-3
    # Fine-tuning: layers that came from ImageNet train at lr × this (new layers at lr), so the
    # pretrained features are adapted rather than overwritten by the first noisy gradients.
    pretrained_lr_scale: float = 0.1
    # Fine-tuning: "frozen" keeps the ImageNet layers' BatchNorm statistics (train/batchnorm.py);
    # "train" re-estimates them from each batch.
    pretrained_bn: str = "frozen"
    weight_decay: float = 1e-4
    # Cross-entropy against (1 - s) on the label + s spread over all classes (Szegedy et al.
    # 2016): keeps a head on few clips from driving its logits apart without limit.
    label_smoothing: float = 0.0
    warmup_epochs: float = 1.0
    seed: int = 0
    workers: int = 0
    normalize: str = "auto"  # "imagenet" for pretrained backbones, else per-clip ("clip")
    # None = auto: random crops and temporal jitter for every method that encodes its clips
    # each epoch; off for a frozen backbone, whose features are computed once per clip.
    augment: bool | None = None
    # Mirrored clips: a frozen backbone's features of each clip and of its mirror image are
    # cached once and one of the two is drawn per clip per epoch; other methods flip at random.
    # The run then averages each clip with its mirror at test time (config.json "tta").
    hflip: bool = False
    # Test-time flip (evaluate, val, predict): "auto" averages each clip with its mirror image
    # where the run trained with hflip; "none" keeps the training flips but scores one view
    # (half the encoder work at prediction).
    tta: str = "auto"
    val_split: str = "val"  # the split that chooses the best epoch; never "test"
    flow_method: str = "farneback"
    # Choose the epoch count on val, then train again from scratch on train + val for that
    # many epochs and keep the last (train/refit.py): every labelled clip trains the model.
    refit: bool = False
    # With refit: "chosen" (the epoch count val chose) or "all" (the whole schedule, one pass
    # on train + val: val chooses nothing).
    refit_epochs: str = "chosen"
    # The recipe whose defaults filled the fields not given (train/recipe.py), and those fields.
    recipe: str = ""
    recipe_chose: tuple = ()


DEFAULTS = TrainConfig(model="")

# What a resumed run must share with the saved one: a different value would mix two budgets
# in one model (workers only changes speed).
RESUME_KEYS = (
    "model",
    "options",
    "epochs",
    "batch_size",
    "lr",
    "pretrained_lr_scale",
    "pretrained_bn",
    "weight_decay",
    "label_smoothing",
    "warmup_epochs",
    "seed",
    "normalize",
    "augment",
    "hflip",
    "tta",
    "val_split",
    "flow_method",
    "refit",
    "refit_epochs",
)


def test_time_flip(cfg: TrainConfig) -> bool:
    """Whether val, evaluate and predict average each clip with its mirror image."""
    if cfg.tta not in ("auto", "flip", "none"):
        raise ValueError(f"tta {cfg.tta!r}: auto, flip or none")
    return cfg.hflip if cfg.tta == "auto" else cfg.tta == "flip"


def resolve_normalize(cfg: TrainConfig) -> str:
    """Pretrained weights expect ImageNet statistics; small nets from scratch learn motion
    far better from per-clip standardized input (the background colour dominates otherwise)."""
    if cfg.normalize != "auto":
        return cfg.normalize
    return "imagenet" if cfg.options.get("pretrained") else "clip"
