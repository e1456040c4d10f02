"""Serve a trained model over HTTP with a web page to try it (`vidclass serve RUN`).

The FastAPI app is in `vidclass.serve.app`; this module only checks that the optional
dependencies are there and runs uvicorn, so `import vidclass.serve` stays light.
"""

from __future__ import annotations

import os
from collections.abc import Callable, Sequence

from vidclass.errors import UserError

JOB_TIMEOUT_S = 600.0  # `vidclass serve --job-timeout-s`: a job's wall time once it runs
CACHE_MB = 500.0  # `vidclass label --cache-mb`: the bound of the label page's preview folder


def _require_serve_extra() -> None:
    try:
        import fastapi  # noqa: F401
        import python_multipart  # noqa: F401
        import uvicorn  # noqa: F401
    except ImportError as exc:
        raise UserError(
            f"serving needs the 'serve' extra ({exc.name} is missing): "
            "pip install 'vidclass[serve]'"
        ) from None


def create_app(run, **options):
    """`vidclass.serve.app.create_app`, after checking that the serve extra is installed."""
    _require_serve_extra()
    from vidclass.serve.app import create_app as _create_app

    return _create_app(run, **options)


def run_server(
    run: str | os.PathLike,
    host: str = "127.0.0.1",
    port: int = 8000,
    log: Callable[[str], None] = print,
    allow_hosts: Sequence[str] = (),
    **options,
) -> None:
    """Load the run, then serve it with uvicorn until interrupted (Ctrl-C)."""
    app = create_app(run, allow_hosts=[host, *allow_hosts], **options)
    serve_app(app, f"serving {run}", host, port, log, after=" (API docs at /docs)")


def serve_app(
    app,
    what: str,
    host: str,
    port: int,
    log: Callable[[str], None] = print,
    after: str = "",
) -> None:
    """Run a web app of vidclass with uvicorn until interrupted (Ctrl-C), saying where."""
    import uvicorn

    shown = f"[{host}]" if ":" in host else host
    log(f"{what} at http://{shown}:{port}/{after}; Ctrl-C to stop")
    if host not in ("127.0.0.1", "localhost", "::1"):
        log(f"note: bound to {host}, so other machines can reach it; there is no authentication")
    uvicorn.run(app, host=host, port=port, log_level="warning", access_log=False)
