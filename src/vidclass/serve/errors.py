"""The one refusal of the web apps: an HTTP status and a message the user can act on.

Raised by the upload reader, the option checks, the jobs and the labelling session alike;
each app turns it into `{"detail": message}` with its status (and headers, e.g. Retry-After).
"""

from __future__ import annotations

from starlette.responses import JSONResponse


class RequestError(Exception):
    """A request the server refuses (or a job that failed) with its HTTP status."""

    def __init__(self, status: int, message: str, headers: dict[str, str] | None = None) -> None:
        self.status, self.message, self.headers = status, message, headers
        super().__init__(message)

    def response(self) -> JSONResponse:
        return error_response(self.status, self.message, self.headers)


def error_response(
    status: int, message: str, headers: dict[str, str] | None = None
) -> JSONResponse:
    return JSONResponse({"detail": message}, status_code=status, headers=headers)
