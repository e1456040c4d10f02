"""Errors a user can act on. The CLI maps them to exit code 1 and prints one line."""

from __future__ import annotations


class UserError(Exception):
    """Bad input from the user: a wrong path, an unreadable file, an invalid option.

    The message names the file, the problem and the fix.
    """


class VideoError(UserError):
    """A video that cannot be used, with a one-line reason (kept in the manifest)."""

    def __init__(self, path: object, reason: str) -> None:
        self.path = str(path)
        self.reason = reason
        super().__init__(f"{self.path}: {reason}")
