"""The `vidclass` command line: one sub-command per user job; parsing only, the work is in the API.

`common` (consoles, exit codes, option parsers), `sources` (the per-video loop of predict,
localize and detect), and one module per group of commands: `data` (synth, prepare), `train`
(models, train, features, evaluate, compare), `predict` (predict, export), `localize` (localize,
evaluate-localization), `detect` (detect, evaluate-detection, train-detector) and `serve`
(serve, label, demo). Commands import the heavy stages inside their bodies, so `vidclass --help`
starts without torch; option defaults come from the library's light config objects.

The top of the package with `serve`: may import every stage; nothing imports it but
`vidclass.__main__`. Exit codes: 0 success, 1 user error, 2 partial failure (some inputs
failed, the rest done).
"""

from __future__ import annotations

import sys

import typer

from vidclass.cli import data, detect, localize, predict, serve, train
from vidclass.cli.common import EXIT_USER_ERROR, print_error
from vidclass.errors import UserError

app = typer.Typer(
    name="vidclass",
    help="Video classification and human action recognition on a CPU laptop.",
    no_args_is_help=True,
    add_completion=False,
    rich_markup_mode="markdown",
)

# In the order `vidclass --help` lists them: the pipeline's order.
COMMANDS = (
    ("synth", data.synth),
    ("prepare", data.prepare),
    ("models", train.models),
    ("train", train.train),
    ("features", train.features),
    ("evaluate", train.evaluate),
    ("compare", train.compare),
    ("predict", predict.predict),
    ("localize", localize.localize),
    ("evaluate-localization", localize.evaluate_localization),
    ("export", predict.export),
    ("detect", detect.detect),
    ("evaluate-detection", detect.evaluate_detection_cmd),
    ("train-detector", detect.train_detector_cmd),
    ("serve", serve.serve),
    ("label", serve.label),
    ("demo", serve.demo),
)
for _name, _command in COMMANDS:
    app.command(_name)(_command)


def main() -> None:
    """Entry point: user errors become one red line and exit code 1."""
    try:
        app()
    except UserError as exc:
        print_error(exc)
        sys.exit(EXIT_USER_ERROR)
