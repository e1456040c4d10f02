"""What every command shares: the consoles, the exit codes and the option parsers.

Exit codes: 0 success, 1 user error, 2 partial failure (some inputs failed, the rest done);
`exit_code` is the one place that turns an outcome into one of them.
"""

from __future__ import annotations

import typer
from rich.console import Console
from rich.markup import escape

from vidclass.errors import UserError

console = Console()
err_console = Console(stderr=True)

EXIT_OK, EXIT_USER_ERROR, EXIT_PARTIAL = 0, 1, 2


def exit_code(failed: int, done: int | None = None) -> int:
    """The exit code of a job over many inputs: 0 when none failed, 2 (partial failure) when
    some failed, 1 (user error) when every one failed, i.e. `done` is 0. `done=None`: the job
    has an output whatever failed (prepare's manifest, compare's report), so it is never 1."""
    if not failed:
        return EXIT_OK
    return EXIT_USER_ERROR if done == 0 else EXIT_PARTIAL


def finish(failed: int, done: int | None = None) -> None:
    """Leave the command with `exit_code(failed, done)`; return when that is 0."""
    code = exit_code(failed, done)
    if code != EXIT_OK:
        raise typer.Exit(code)


def print_error(exc: UserError) -> None:
    """A user error as one red line on stderr."""
    err_console.print(f"[red]error:[/red] {escape(str(exc))}", soft_wrap=True)


def print_missing(missing: list[str]) -> None:
    """The evaluate commands' line for ground-truth videos that have no prediction file."""
    if missing:
        console.print(
            f"[yellow]no prediction for {len(missing)} videos "
            f"(counted as missed): {', '.join(missing[:5])}[/yellow]"
        )


def parse_size(text: str) -> tuple[int, int]:
    """WIDTHxHEIGHT, both positive and even (H.264 needs even sides)."""
    try:
        w, h = (int(v) for v in text.lower().split("x"))
    except ValueError:
        raise typer.BadParameter(f"expected WIDTHxHEIGHT such as 160x120, got {text!r}") from None
    if w <= 0 or h <= 0 or w % 2 or h % 2:
        raise typer.BadParameter(f"{text!r}: width and height must be positive and even (H.264)")
    return w, h


def parse_floats(option: str, text: str, example: str) -> tuple[float, ...]:
    """Numbers separated by commas, for `option`; `example` is shown when they are not."""
    try:
        return tuple(float(v) for v in text.split(","))
    except ValueError:
        raise UserError(
            f"{option} {text!r}: give numbers separated by commas, e.g. {example}"
        ) from None
