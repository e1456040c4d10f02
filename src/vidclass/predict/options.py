"""The options of `predict`, `localize` and `detect`: defaults and limits in one place.

`Classifier.predict/localize/detect`, the CLI and the HTTP server all take their defaults
from these dataclasses, and the server builds its request models from them
(`vidclass.serve.options`), so a default or a limit changed here changes everywhere.
`LocalizeOptions` is the knobs of `vidclass.localize.localize`; it lives here, away from torch, so
the CLI can read its defaults without importing the models.

A field's `metadata` holds its `help` text and its limits (`ge`, `gt`, `le`), checked when
an instance is made.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field, fields
from typing import Any

from vidclass.errors import UserError

DEFAULT_SPANS = (0.4, 0.8)  # x the training clip's span, where the video's frame rate allows
HARD_NMS_IOU = 0.4  # hard NMS's default overlap; soft NMS decays every overlap by default
SPAN_TOLERANCE = 0.05  # a span may run this much (relative) off the one asked for
# Bounds on `spans`, so that no request can make a job hold or score without limit: the
# model is called once per span per window, and the longest window holds
# longest/shortest x (T - 1) + 1 fine samples in memory (16 x 15 + 1 = 241 frames at T=16).
MAX_SPANS = 8  # spans at most
MAX_SPAN = 8.0  # a window spans at most 8 training clips
MAX_SPAN_RATIO = 16.0  # the longest span over the shortest
NMS_MODES = ("soft", "hard")

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
    """The knobs of `Classifier.detect` (more in `vidclass.detect.detect.detect`)."""

    detector: str = _option(
        "auto",
        "person (pretrained, any pose and camera; the pose extra), motion (static camera), hog "
        "(pedestrians), or a train-detector folder; auto: person when installed, else motion",
    )
    stride: int | None = _option(
        None, "sampled frames between a track's windows [default: window / 8]", ge=1
    )
    smooth: int = _option(1, "rolling average over N windows of a track", ge=1)
    min_track_s: float = _option(0.5, "tracks shorter than this (seconds) are dropped", ge=0)

    def __post_init__(self) -> None:
        check_limits(self)


@dataclass(frozen=True)
class LocalizeOptions:
    """The knobs of `localize`; the defaults were tuned on held-out synthetic long videos
    (never the ones that the benchmark reports).

    `spans`: window time spans, as factors of the training clip's span; each must be a whole
    multiple of the smallest (a window's frames are whole samples apart). None: 0.4 and 0.8,
    both raised as far as a low frame rate requires (an 8 fps video with a model trained at
    8 fps: 1 and 2). NMS is soft (`soft_sigma`: Gaussian decay of overlapping scores) or hard
    (`soft_sigma=None`: overlapping segments dropped); `nms_iou` is the IoU above which it
    acts, in either mode: hard drops segments overlapping a better one by more than it
    [0.4], soft decays only those [None: every overlap, 0].
    """

    spans: tuple[float, ...] | None = None
    stride: int = 2  # fine samples between consecutive windows of one scale
    smooth_s: float = 0.5  # centred rolling average of the fused curves, seconds
    thresholds: tuple[float, ...] = (0.2, 0.3, 0.4, 0.5, 0.6, 0.7, 0.8)
    max_gap_s: float = 0.4  # dips below the threshold shorter than this are bridged
    min_length_s: float = 0.4  # shorter proposals are dropped
    margin: float = 0.25  # each outer margin, as a share of the proposal's length
    nms_iou: float | None = None  # None: 0.4 for hard NMS, 0 (every overlap) for soft
    soft_sigma: float | None = 0.5  # soft NMS (Gaussian decay); None: hard NMS
    min_score: float = 0.05
    # windows (and detect's tube clips) per model call: 4 is the fastest per clip on a CPU
    # (docs/benchmarks.md, detection speed); larger batches leave the cache and slow down
    batch_size: int = 4

    def __post_init__(self) -> None:
        if self.spans is not None:
            check_spans(self.spans)
            base = min(self.spans)
            off = [s for s in self.spans if abs(round(s / base) * base - s) > SPAN_TOLERANCE * s]
            if off:
                raise UserError(
                    f"spans {fmt_values(self.spans)}: {fmt_values(off)} is not a whole multiple of the "
                    f"smallest span {base:g} (a window's frames are whole samples apart); "
                    f"valid spans are {fmt_values([base * k for k in (1, 2, 3, 4)])}, ..., "
                    f"e.g. --spans {fmt_values([base, 2 * base])}"
                )
        if self.stride < 1 or self.batch_size < 1:
            raise UserError(
                f"stride {self.stride}, batch_size {self.batch_size}: both must be at least 1"
            )
        if not self.thresholds or not all(0 < t < 1 for t in self.thresholds):
            raise UserError(
                f"thresholds {self.thresholds}: must lie strictly between 0 and 1, e.g. 0.3,0.5"
            )
        if self.soft_sigma is not None and self.soft_sigma <= 0:
            raise UserError(
                f"soft_sigma {self.soft_sigma}: must be positive (e.g. 0.5), or None for hard NMS"
            )
        if self.nms_iou is not None:
            low_ok = self.nms_iou >= 0 if self.nms == "soft" else self.nms_iou > 0
            if not (low_ok and self.nms_iou <= 1):
                valid = "[0, 1] for soft NMS" if self.nms == "soft" else "(0, 1] for hard NMS"
                raise UserError(f"nms_iou (--nms-iou) {self.nms_iou}: must lie in {valid}")
        for name in ("smooth_s", "max_gap_s", "min_length_s", "margin"):
            if getattr(self, name) < 0:
                raise UserError(f"{name} {getattr(self, name)}: must be 0 or more")

    @property
    def nms(self) -> str:
        """`soft` or `hard`."""
        return "hard" if self.soft_sigma is None else "soft"

    @property
    def iou_threshold(self) -> float:
        """The IoU above which NMS acts, with its default filled in."""
        if self.nms_iou is not None:
            return self.nms_iou
        return HARD_NMS_IOU if self.nms == "hard" else 0.0


def check_spans(spans: Sequence[float]) -> None:
    """UserError naming `spans` unless they are 1 to MAX_SPANS distinct positive factors, none
    over MAX_SPAN, the longest at most MAX_SPAN_RATIO x the shortest."""
    shown = fmt_values(spans[: MAX_SPANS + 1]) + ("..." if len(spans) > MAX_SPANS + 1 else "")
    if len(spans) > MAX_SPANS:
        raise UserError(f"spans {shown}: {len(spans)} spans, at most {MAX_SPANS} (e.g. 0.4,0.8)")
    if not spans or min(spans) <= 0:
        raise UserError(
            f"spans {shown or '(none)'}: must be positive factors of the training clip's time "
            "span, e.g. --spans 0.4,0.8"
        )
    if len(set(spans)) < len(spans):
        raise UserError(f"spans {shown}: a span is given twice; give each once")
    if max(spans) > MAX_SPAN:
        raise UserError(
            f"spans {shown}: {max(spans):g} is longer than {MAX_SPAN:g} training clips, the "
            "longest window allowed"
        )
    if max(spans) > MAX_SPAN_RATIO * min(spans):
        raise UserError(
            f"spans {shown}: the longest is {max(spans) / min(spans):.3g} x the shortest, at "
            f"most {MAX_SPAN_RATIO:g} x (a window of the longest holds that many fine samples "
            "per model frame)"
        )


def localize_options(
    spans: Sequence[float] | None = None,
    stride: int | None = None,
    min_score: float | None = None,
    nms_iou: float | None = None,
    nms: str | None = None,
) -> LocalizeOptions:
    """`LocalizeOptions` from the knobs the API and the CLI expose; None keeps a default."""
    given: dict = {"stride": stride, "min_score": min_score, "nms_iou": nms_iou}
    given = {k: v for k, v in given.items() if v is not None}
    if spans is not None:
        given["spans"] = tuple(float(v) for v in spans)
    if nms is not None:
        if nms not in NMS_MODES:
            raise UserError(f"--nms {nms!r}: choose one of {', '.join(NMS_MODES)}")
        given["soft_sigma"] = None if nms == "hard" else LocalizeOptions.soft_sigma
    return LocalizeOptions(**given)


def fmt_values(values) -> str:
    return ",".join(f"{v:.3g}" for v in values)
