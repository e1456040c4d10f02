"""One progress-bar helper for every long job, so `--quiet` means the same everywhere."""

from __future__ import annotations

from collections.abc import Iterable, Iterator
from typing import TypeVar

from rich.progress import (
    BarColumn,
    MofNCompleteColumn,
    Progress,
    TextColumn,
    TimeElapsedColumn,
    TimeRemainingColumn,
)

T = TypeVar("T")


def make_progress(quiet: bool = False) -> Progress:
    """A rich Progress with the columns we use everywhere; disabled when quiet."""
    return Progress(
        TextColumn("[bold]{task.description}"),
        BarColumn(),
        MofNCompleteColumn(),
        TimeElapsedColumn(),
        TimeRemainingColumn(),
        TextColumn("{task.fields[status]}"),
        disable=quiet,
        transient=False,
    )


def track(
    items: Iterable[T], total: int | None = None, description: str = "", quiet: bool = False
) -> Iterator[T]:
    """Iterate with a progress bar (none when `quiet`)."""
    if total is None and hasattr(items, "__len__"):
        total = len(items)  # type: ignore[arg-type]
    with make_progress(quiet) as progress:
        task = progress.add_task(description, total=total, status="")
        for item in items:
            yield item
            progress.advance(task)
