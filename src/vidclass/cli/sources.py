"""The per-source loop that predict, localize and detect share.

Each command names its videos (files, folders, live sources), runs its job on each one and
shows the result; a video that fails with a user error is one red line, its outputs from an
earlier run are removed (`vidclass.outputs`) and the loop goes on. The caller then exits with
`common.finish(failed, done)`: 2 when some videos failed, 1 when all did.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import TYPE_CHECKING, NamedTuple

from rich.markup import escape

from vidclass.cli.common import err_console, print_error
from vidclass.errors import UserError

if TYPE_CHECKING:
    from vidclass.outputs import Target
    from vidclass.predict.inputs import Inputs


def video_inputs(items: list[str]) -> Inputs:
    """The videos that predict/localize/detect work on and their output names (folders
    scanned, see `scan_inputs`); the files a folder scan skipped are named in one line, never
    dropped without a word."""
    from vidclass.predict.inputs import scan_inputs
    from vidclass.video.probe import VIDEO_EXTENSIONS, skipped_summary

    inputs = scan_inputs(items)
    if inputs.skipped:
        hint = f"videos end in {', '.join(VIDEO_EXTENSIONS)}"
        err_console.print(
            f"[yellow]{escape(skipped_summary(inputs.skipped, hint))}[/yellow]", soft_wrap=True
        )
    return inputs


def warn_if_truncated(result: dict) -> None:
    """One warning line for a video whose decoding stopped early: its results are partial."""
    if result.get("truncated"):
        err_console.print(
            f"[yellow]warning:[/yellow] {escape(str(result['video']))}: decoding stopped after "
            f"{result['decoded_duration_s']:.1f} s ({escape(str(result.get('truncated_reason')))}"
            "); the results cover that part only",
            soft_wrap=True,
        )


class Tally(NamedTuple):
    """How many sources a loop finished and how many failed (`common.finish` takes them)."""

    done: int
    failed: int


def run_each(
    sources: list[str],
    job: Callable[[str], dict | None],
    show: Callable[[str, dict], None],
    outputs: Sequence[Target] = (),
) -> Tally:
    """Run `job` on every source and `show` what it returns; count those done and failed.

    A `UserError` fails that source only, and removes what an earlier run left at its
    `outputs` (stale results would otherwise pass for this run's). `job` returns None for a
    source it has shown itself (a live stream, printed as it runs): that source is done,
    with nothing to show.
    """
    done = failed = 0
    for src in sources:
        try:
            result = job(src)
        except UserError as exc:
            failed += 1
            print_error(exc)
            for target in outputs:
                target.discard(src)
            continue
        done += 1
        if result is not None:
            warn_if_truncated(result)
            show(src, result)
    return Tally(done, failed)
