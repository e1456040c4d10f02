"""The options of `predict`, `localize` and `detect`: defaults and limits in one place.

`Classifier.predict/localize/detect`, the CLI and the HTTP server all take their defaults
from these dataclasses, and the server builds its request models from them
(`vidclass.serve.options`), so a default or a limit changed here changes everywhere.
`LocalizeOptions` lives with its method (`vidclass.infer.localize`) and is re-exported here.

A field's `metadata` holds its `help` text and its limits (`ge`, `gt`, `le`), checked when
an instance is made.
"""

from __future__ import annotations

from dataclasses import dataclass, field, fields
from typing import Any

from vidclass.errors import UserError
from vidclass.infer.localize import LocalizeOptions

__all__ = ["DetectOptions", "LocalizeOptions", "PredictOptions", "check_limits"]

LIMITS = ("ge", "gt", "le")


def _option(default: Any, help: str, **limits: float) -> Any:
    """A dataclass field with its help text and limits kept beside the default."""
    return field(default=default, metadata={"help": help, **limits})


def check_limits(options: Any) -> None:
    """UserError naming the first field of the dataclass `options` outside its limits."""
    for f in fields(options):
        value = getattr(options, f.name)
        if value is None or isinstance(value, (str, tuple)):
            continue
        ge, gt, le = (f.metadata.get(k) for k in LIMITS)
        if ge is not None and value < ge:
            raise UserError(f"{f.name}={value}: must be at least {ge}")
        if gt is not None and value <= gt:
            raise UserError(f"{f.name}={value}: must be more than {gt}")
        if le is not None and value > le:
            raise UserError(f"{f.name}={value}: must be at most {le}")


@dataclass(frozen=True)
class PredictOptions:
    """The knobs of `Classifier.predict` (and `stream`)."""

    window: int | None = _option(None, "frames per window [default: the model's clip]", ge=1)
    stride: int | None = _option(None, "frames between windows [default: half a window]", ge=1)
    smooth: int = _option(5, "rolling average over N windows (frames for single_frame)", ge=1)
    top_k: int = _option(5, "how many best classes to list", ge=1)

    def __post_init__(self) -> None:
        check_limits(self)


@dataclass(frozen=True)
class DetectOptions:
    """The knobs of `Classifier.detect` (more in `vidclass.infer.detect.detect`)."""

    detector: str = _option(
        "motion", "motion (static camera), hog (pedestrians), or a train-detector folder"
    )
    stride: int | None = _option(
        None, "sampled frames between a track's windows [default: window / 8]", ge=1
    )
    smooth: int = _option(1, "rolling average over N windows of a track", ge=1)
    min_track_s: float = _option(0.5, "tracks shorter than this (seconds) are dropped", ge=0)

    def __post_init__(self) -> None:
        check_limits(self)
