"""The CLI's shared exit-code rule and per-source loop (predict, localize and detect use them)."""

from __future__ import annotations

import pytest
import typer

from vidclass.cli.common import EXIT_OK, EXIT_PARTIAL, EXIT_USER_ERROR, exit_code, finish
from vidclass.cli.sources import Tally, run_each
from vidclass.errors import UserError


def test_exit_code_partial_when_some_failed_user_error_when_all_did() -> None:
    assert exit_code(0, 3) == EXIT_OK
    assert exit_code(1, 2) == EXIT_PARTIAL
    assert exit_code(3, 0) == EXIT_USER_ERROR
    assert exit_code(0, 0) == EXIT_OK  # nothing to do is no failure
    assert exit_code(3) == EXIT_PARTIAL  # prepare, compare: an output is written whatever failed
    finish(0, 1)  # returns
    with pytest.raises(typer.Exit) as raised:
        finish(1, 1)
    assert raised.value.exit_code == EXIT_PARTIAL


def test_run_each_goes_on_after_a_failed_source(capsys) -> None:
    shown = []

    def job(src: str) -> dict | None:
        if src == "bad":
            raise UserError(f"{src}: not a video")
        return None if src == "live" else {"video": src}

    tally = run_each(["a", "bad", "live", "b"], job, lambda src, r: shown.append(r["video"]))
    assert tally == Tally(done=3, failed=1)  # a live stream that ran is done, shown as it ran
    assert shown == ["a", "b"]
    assert "bad: not a video" in capsys.readouterr().err
