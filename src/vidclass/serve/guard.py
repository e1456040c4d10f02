"""What both web apps refuse before any route runs, so that no other web page can use them.

A page on another site that the user has open can send requests to a server on localhost:
a form or `fetch` POST needs no permission (the browser only hides the answer), and with DNS
rebinding (the attacker's name made to point at 127.0.0.1) it can even read the answers.
`RequestGuard` refuses, for every request of the app it wraps:

- a `Host` that is not a name of this server (421): localhost, 127.0.0.1, [::1], any IP
  address (a rebinding attack needs a name), the `--host` the server is bound to, and the
  names given with `--allow-host` (e.g. the name a reverse proxy passes on);
- a write (POST, PUT, PATCH, DELETE) whose `Origin` is not the server's own (403): the
  browser sends `Origin` with every cross-site write, curl and scripts send none;
- with `json_writes`, a write whose body is not declared `application/json` (415): only a
  page of the same origin can send that type to another site at all (it needs a CORS
  preflight that this server never grants). The label page's API is JSON; the serve API's
  writes are video uploads (multipart or a raw body), guarded by Host and Origin alone.
"""

from __future__ import annotations

import ipaddress
from collections.abc import Callable, Iterable
from contextlib import asynccontextmanager
from urllib.parse import urlsplit

from fastapi import FastAPI
from starlette.types import ASGIApp, Receive, Scope, Send

from vidclass.serve.errors import error_response

LOCAL_HOSTS = ("localhost", "127.0.0.1", "::1")
WILDCARD_HOSTS = ("", "0.0.0.0", "::")  # bound to every address: no name of its own
WRITES = frozenset({"POST", "PUT", "PATCH", "DELETE"})
DEFAULT_PORTS = {"http": 80, "https": 443}


def split_host(value: str) -> tuple[str, int | None]:
    """`Host` header → (lower-case name without brackets, port or None); ("", None) if bad."""
    value = value.strip().lower()
    if value.startswith("["):  # [::1]:8000
        end = value.find("]")
        if end < 0:
            return "", None
        name, rest = value[1:end], value[end + 1 :]
    elif value.count(":") == 1:  # 127.0.0.1:8000
        name, _, port = value.partition(":")
        rest = ":" + port
    else:  # a bare name, or an IPv6 address without brackets
        name, rest = value, ""
    if not rest:
        return name.rstrip("."), None
    if not rest.startswith(":") or not rest[1:].isdigit():
        return "", None
    return name.rstrip("."), int(rest[1:])


def _is_ip(name: str) -> bool:
    try:
        ipaddress.ip_address(name)
    except ValueError:
        return False
    return True


def host_names(names: Iterable[str] = ()) -> frozenset[str]:
    """The names a server answers to besides IP addresses: the local ones and `names` (the
    `--host` it is bound to, unless that is every address, and the `--allow-host` names)."""
    given = (split_host(n)[0] or n.strip().lower() for n in names if n not in WILDCARD_HOSTS)
    return frozenset({*LOCAL_HOSTS, *given})


class RequestGuard:
    """ASGI middleware: refuse foreign Hosts, cross-origin writes and (with `json_writes`)
    writes that are not JSON, each with a message that says how to do it right."""

    def __init__(self, app: ASGIApp, hosts: Iterable[str] = (), json_writes: bool = False):
        self.app, self.hosts, self.json_writes = app, host_names(hosts), json_writes

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] == "http" and (refusal := self.refusal(scope)) is not None:
            await error_response(*refusal)(scope, receive, send)
            return
        await self.app(scope, receive, send)

    def refusal(self, scope: Scope) -> tuple[int, str] | None:
        """(status, message) of the rule the request breaks, or None."""
        headers = {k.decode("latin-1"): v.decode("latin-1") for k, v in scope["headers"]}
        host = headers.get("host")
        name, port = split_host(host) if host is not None else ("", None)
        if host is not None and not (name in self.hosts or _is_ip(name)):
            shown = host[:60]
            more = "".join(f", {n}" for n in sorted(self.hosts - set(LOCAL_HOSTS)))
            return 421, (
                f"Host {shown!r} is not a name of this server, so the request is refused "
                f"(a guard against DNS rebinding); it answers to localhost{more} and IP "
                f"addresses. To reach it as {name or shown!r}, start it with --allow-host "
                f"{name or 'NAME'}"
            )
        if scope["method"] not in WRITES:
            return None
        origin = headers.get("origin")
        if origin is not None and not _same_origin(origin, name, port):
            return 403, (
                f"a {scope['method']} from the page at {origin[:80]!r} is refused: only this "
                "server's own page may change anything here. Scripts and curl send no Origin "
                "header and are not affected"
            )
        if origin is None and headers.get("sec-fetch-site") in ("cross-site", "same-site"):
            return 403, f"a {scope['method']} from another site's page is refused"
        if self.json_writes:
            kind = headers.get("content-type", "").split(";")[0].strip().lower()
            if kind != "application/json":
                return 415, (
                    f"{scope['method']} {scope['path'][:80]} takes JSON: send the header "
                    f"Content-Type: application/json (got {kind or 'none'}), e.g. curl -H "
                    "'Content-Type: application/json' -d '{\"label\": \"walk\"}'"
                )
        return None


def _same_origin(origin: str, host: str, port: int | None) -> bool:
    """Whether `origin` (scheme://name[:port]) is the server that the Host names."""
    try:
        parts = urlsplit(origin)
        origin_port = parts.port
    except ValueError:
        return False
    default = DEFAULT_PORTS.get(parts.scheme)
    if not host or default is None or (parts.hostname or "").rstrip(".") != host:
        return False  # includes Origin "null" (a sandboxed frame, a file:// page)
    return (origin_port or default) == (port or default)


def guarded_app(
    title: str,
    summary: str,
    close: Callable[[], None],
    hosts: Iterable[str] = (),
    json_writes: bool = False,
    version: str | None = None,
) -> FastAPI:
    """A FastAPI app behind `RequestGuard` that calls `close` when the server stops."""

    @asynccontextmanager
    async def lifespan(_: FastAPI):
        try:
            yield
        finally:
            close()

    extra = {} if version is None else {"version": version}
    app = FastAPI(title=title, summary=summary, lifespan=lifespan, **extra)
    app.add_middleware(RequestGuard, hosts=list(hosts), json_writes=json_writes)
    return app
