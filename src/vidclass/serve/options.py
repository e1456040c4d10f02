"""The options a client may send, one typed (pydantic) model per task, and their checking.

The models are built from the library's option dataclasses (`vidclass.predict.options`), so
the defaults, limits and help texts are the library's. A client never names a path on the
server: `detector` is one of the built-in detectors or the one the server was started with,
under a public name (`ServedDetectors`). Every refusal is an `RequestError` 422 that names
the field, never a 500 from deep inside the method.
"""

from __future__ import annotations

import dataclasses
import json
import types
import typing
from collections.abc import Sequence
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field, ValidationError, create_model

from vidclass.detect.detectors import AUTO, DETECTORS, available_detectors, default_detector
from vidclass.errors import UserError
from vidclass.predict.options import DetectOptions, LocalizeOptions, PredictOptions
from vidclass.serve.errors import RequestError

TASKS = ("predict", "localize", "detect")
# What a client may set per task: the parameters of the Classifier's method, less those
# the server sets itself (outputs on the server's disk, progress, ground truth).
CLIENT_FIELDS: dict[str, tuple[type, tuple[str, ...]]] = {
    "predict": (PredictOptions, ("window", "stride", "smooth", "top_k")),
    "localize": (LocalizeOptions, ("spans", "stride", "min_score", "nms_iou")),
    "detect": (DetectOptions, ("detector", "stride", "smooth", "min_track_s")),
}
RESERVED_OPTIONS = {
    "annotate", "plot", "truth", "ensemble", "progress", "video", "path", "source", "task",
}  # fmt: skip
TRAINED = "trained"  # the public name of a server's own trained detector folder


@dataclasses.dataclass(frozen=True)
class ServedDetectors:
    """The detectors a client may choose by name, and what each name means on the server.

    `detector` is what the server was started with: a built-in name or a folder from
    `vidclass train-detector` (then offered as "trained"; the path itself stays private)."""

    detector: str | None = None

    @property
    def specs(self) -> dict[str, str]:
        """Public name → what `load_detector` gets."""
        specs = {name: name for name in available_detectors()}
        if self.detector is not None and self.detector not in (*DETECTORS, AUTO):
            specs[TRAINED] = self.detector
        return specs

    @property
    def default(self) -> str:
        if self.detector is None or self.detector == AUTO:
            return default_detector()
        return self.detector if self.detector in DETECTORS else TRAINED


def _is_sequence(annotation: Any) -> bool:
    """A list or tuple type, also as an optional one (`tuple[float, ...] | None`)."""
    origin = typing.get_origin(annotation)
    if origin in (typing.Union, types.UnionType):
        return any(_is_sequence(a) for a in typing.get_args(annotation))
    return origin in (tuple, list)


def request_model(
    task: str, overrides: dict[str, tuple[Any, Any]] | None = None
) -> type[BaseModel]:
    """The pydantic model of `task`'s client options, from its dataclass: the same types,
    defaults, limits (`ge`, `gt`, `le` metadata) and help; unknown fields are refused."""
    source, names = CLIENT_FIELDS[task]
    hints = typing.get_type_hints(source)
    spec: dict[str, Any] = {}
    for f in dataclasses.fields(source):
        if f.name not in names:
            continue
        limits = {k: f.metadata[k] for k in ("ge", "gt", "le") if f.metadata.get(k) is not None}
        spec[f.name] = (
            hints[f.name],
            Field(f.default, description=f.metadata.get("help"), **limits),
        )
    spec.update(overrides or {})
    return create_model(
        f"{task.title()}Options", __config__=ConfigDict(extra="forbid", frozen=True), **spec
    )


def request_models(detectors: ServedDetectors) -> dict[str, type[BaseModel]]:
    """One model per task; `detector` is a choice among the served detectors' names."""
    choice = Literal[tuple(detectors.specs)]  # type: ignore[valid-type]
    detector = (
        choice,
        Field(detectors.default, description=f"one of {', '.join(detectors.specs)} (by name only)"),
    )
    return {
        "predict": request_model("predict"),
        "localize": request_model("localize"),
        "detect": request_model("detect", {"detector": detector}),
    }


def raw_options(fields: dict[str, str], query: dict[str, str]) -> dict[str, Any]:
    """Query parameters and form fields (fields win), with the JSON object of the field
    `options` merged in; empty values mean "not given" (a web form's blank box)."""
    raw: dict[str, Any] = {k: v for k, v in {**query, **fields}.items() if v != ""}
    raw.pop("task", None)
    if "options" in raw:
        try:
            extra = json.loads(raw.pop("options"))
        except ValueError:
            raise RequestError(422, "options: expected a JSON object") from None
        if not isinstance(extra, dict):
            raise RequestError(422, "options: expected a JSON object")
        raw.update(extra)
    return raw


def validate_options(task: str, model: type[BaseModel], raw: dict[str, Any]) -> dict[str, Any]:
    """The keyword options of `task`'s method from the client's `raw` options (only those
    given: the method keeps its own defaults); RequestError 422 naming the field if bad."""
    allowed = list(model.model_fields)
    reserved = sorted(set(raw) & RESERVED_OPTIONS)
    if reserved:
        raise RequestError(422, f"option(s) {', '.join(reserved)} cannot be set through the API")
    unknown = sorted(set(raw) - set(allowed))
    if unknown:
        raise RequestError(
            422,
            f"unknown option(s) {', '.join(unknown)} for {task}; use {', '.join(allowed)}",
        )
    values = {}
    for name, value in raw.items():
        if isinstance(value, str) and _is_sequence(model.model_fields[name].annotation):
            value = _sequence(value)
        values[name] = value
    try:
        checked = model.model_validate(values)
    except ValidationError as exc:
        raise RequestError(422, "; ".join(_message(e) for e in exc.errors())) from None
    given = checked.model_dump(include=set(values))
    source = CLIENT_FIELDS[task][0]
    try:  # the dataclass's own checks (e.g. LocalizeOptions' ranges)
        source(**given)
    except UserError as exc:
        raise RequestError(422, f"{task} options: {exc}") from None
    return given


def _sequence(text: str) -> Any:
    """A list field sent as a form field: JSON (`[0.4, 0.8]`) or comma-separated (`0.4,0.8`)."""
    try:
        value = json.loads(text)
    except ValueError:
        return [v.strip() for v in text.split(",")]
    return value if isinstance(value, list) else [value]


def _message(error: dict) -> str:
    """One pydantic error as `field: what is wrong`, in the words of the API's other errors.

    The value sent is not echoed: for `detector` the answer is the same whatever it names."""
    loc = error.get("loc") or ("options",)
    name = str(loc[0]) + "".join(f"[{p}]" for p in loc[1:])
    kind, ctx = error.get("type", ""), error.get("ctx") or {}
    if kind.startswith("int_"):
        text = "expected a whole number"
    elif kind.startswith("float_"):
        text = "expected a number"
    elif kind == "greater_than_equal":
        text = f"must be at least {ctx.get('ge')}"
    elif kind == "greater_than":
        text = f"must be more than {ctx.get('gt')}"
    elif kind == "less_than_equal":
        text = f"must be at most {ctx.get('le')}"
    elif kind == "literal_error":
        text = f"choose one of {ctx.get('expected')}"
    elif kind in ("tuple_type", "list_type"):
        text = "expected a list of numbers, e.g. [0.4, 0.8]"
    else:
        text = str(error.get("msg", "invalid value"))
    return f"{name}: {text}"


def form_fields(models: Sequence[type[BaseModel]]) -> dict[str, dict]:
    """The OpenAPI properties of the models' fields, for the docs of the multipart body."""
    props: dict[str, dict] = {}
    for model in models:
        props.update(model.model_json_schema().get("properties", {}))
    return props
