"""The HTTP edge: what every request meets before a route (docs/security.md, "HTTP edge").

Issue 15 found the web reading whole request bodies before any limit or token check (a 300 MB
note grew the process by 200 MB), keeping slow and idle sockets open forever, and answering
without CSP, X-Frame-Options or HSTS. This module closes those holes in one place, around the
whole ASGI app (the status pages' fast path included):

- `EdgeGuard`, an ASGI middleware: the body is counted while it streams (a too long
  Content-Length is refused before a byte is read: 413), must arrive within `body_timeout_s`
  (408), and a write to the API is refused before its body is read when the bearer token is
  missing or not valid (401/403); every answer gets the security headers, and HSTS when the
  request came over https (directly or through a trusted proxy's X-Forwarded-Proto).
- `server_config`: the uvicorn settings that go with it (keep-alive, a concurrency limit, the
  header size limit, the proxies trusted for X-Forwarded-*) and protocol classes that close a
  connection whose request headers do not arrive within `header_timeout_s` (uvicorn has no such
  timeout: a client sending one header every 2 s kept its socket for ever).
"""

from __future__ import annotations

import asyncio
import base64
import hashlib
import json
import logging
from collections.abc import Mapping
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from fastapi import HTTPException, Request
from fastapi.security import HTTPBearer
from starlette.applications import Starlette
from starlette.types import ASGIApp, Message, Receive, Scope, Send
from uvicorn.protocols.http.h11_impl import H11Protocol
from uvicorn.protocols.http.httptools_impl import HttpToolsProtocol

from netwatch.web.edgeargs import MAX_CONNECTIONS, TRUSTED_PROXIES
from netwatch.web.templating import RELOAD_SCRIPT

if TYPE_CHECKING:
    import argparse

    import uvicorn

log = logging.getLogger(__name__)

KIB = 1024
# The largest body any route takes: a note (2,000 characters, up to 3 bytes each in UTF-8 and
# three times that form-encoded) with its CSRF token, or a maintenance window as JSON.
DEFAULT_BODY_LIMIT_BYTES = 64 * KIB
# Per-route limits, longest prefix first; a route not listed has the default. Every NetWatch
# route takes a small form or JSON body; a route that needs more gets a line here.
BODY_LIMITS: tuple[tuple[str, int], ...] = (
    ("/api/v1/", 64 * KIB),  # JSON: notes, acknowledgements, maintenance windows
    ("/admin/", 64 * KIB),  # admin forms (login, tokens, maintenance, ticket actions)
    ("/t/", 64 * KIB),  # the ISP's ticket forms (acknowledge, note, resolve)
)
# Methods of the write API whose bearer token is checked before the body is read.
_WRITE_METHODS = frozenset({"POST", "PUT", "PATCH", "DELETE"})
_API_PREFIX = "/api/v1/"


def _script_hash(script: str) -> str:
    digest = hashlib.sha256(script.encode()).digest()
    return f"'sha256-{base64.b64encode(digest).decode()}'"


# The pages inline their stylesheet (one request per page on a commune's slow line) and draw
# charts with style attributes: styles may be inline. Scripts: only the pages' one inline
# script (the reload, by its hash), none from anywhere else. No frames, no plugins, no <base>,
# forms post to NetWatch only.
CONTENT_SECURITY_POLICY = (
    f"default-src 'self'; script-src {_script_hash(RELOAD_SCRIPT)}; "
    "style-src 'self' 'unsafe-inline'; "
    "img-src 'self' data:; object-src 'none'; base-uri 'none'; form-action 'self'; "
    "frame-ancestors 'none'"
)
SECURITY_HEADERS: tuple[tuple[bytes, bytes], ...] = (
    (b"content-security-policy", CONTENT_SECURITY_POLICY.encode()),
    (b"x-frame-options", b"DENY"),
    (b"x-content-type-options", b"nosniff"),
    # Signed ISP links carry their signature in the URL: never send it to another site.
    (b"referrer-policy", b"no-referrer"),
)
HSTS_MAX_AGE_S = 31_536_000  # one year (RFC 6797); only ever sent over https


@dataclass(frozen=True)
class EdgeOptions:
    """Limits of the HTTP edge; the defaults suit a province's NetWatch (docs/security.md)."""

    default_body_limit_bytes: int = DEFAULT_BODY_LIMIT_BYTES
    body_limits: tuple[tuple[str, int], ...] = BODY_LIMITS
    body_timeout_s: float = 30.0  # the whole body, from the app's first read
    header_timeout_s: float = 15.0  # request line and headers, from connect or the last answer
    keep_alive_s: int = 5  # an idle connection between requests
    max_connections: int = MAX_CONNECTIONS  # beyond: 503 (uvicorn's limit_concurrency)
    max_header_bytes: int = 16 * KIB  # h11's limit on incomplete headers
    trusted_proxies: str = TRUSTED_PROXIES  # X-Forwarded-For/-Proto believed from these only
    hsts_max_age_s: int = HSTS_MAX_AGE_S

    def body_limit(self, path: str) -> int:
        """The largest body accepted on `path`, in bytes."""
        for prefix, limit in self.body_limits:
            if path.startswith(prefix):
                return limit
        return self.default_body_limit_bytes


class _AnsweredError(Exception):
    """The edge already answered (413, 408): the app's own answer is dropped."""


def _header(scope: Scope, name: bytes) -> bytes | None:
    for key, value in scope.get("headers", ()):
        if key == name:
            return bytes(value)
    return None


def _json_answer(
    status: int, detail: str, headers: Mapping[str, str] | None = None
) -> list[Message]:
    body = json.dumps({"detail": detail}, ensure_ascii=False).encode()
    raw = [
        (b"content-type", b"application/json"),
        (b"content-length", str(len(body)).encode()),
        # The rest of the body is not read: the connection cannot carry another request.
        (b"connection", b"close"),
        *((k.lower().encode(), v.encode()) for k, v in (headers or {}).items()),
    ]
    return [
        {"type": "http.response.start", "status": status, "headers": raw},
        {"type": "http.response.body", "body": body},
    ]


_bearer = HTTPBearer(auto_error=False)


class EdgeGuard:
    """The ASGI middleware of the HTTP edge (see the module docstring)."""

    def __init__(
        self, app: ASGIApp, options: EdgeOptions | None = None, *, web: Starlette | None = None
    ) -> None:
        self.app = app
        self.options = options or EdgeOptions()
        # The FastAPI app whose runtime checks API tokens: `app` itself, or the app that `app`
        # (the web worker's fast path) falls back to.
        self.web = web if web is not None else app if isinstance(app, Starlette) else None
        hsts = f"max-age={self.options.hsts_max_age_s}; includeSubDomains"
        self._hsts = (b"strict-transport-security", hsts.encode())

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        extra = list(SECURITY_HEADERS)
        if scope.get("scheme") == "https":
            extra.append(self._hsts)
        answered = started = False

        async def send_with_headers(message: Message) -> None:
            nonlocal started
            if answered:
                return  # the edge's 413/408 went out instead
            if message["type"] == "http.response.start":
                started = True
                present = {k.lower() for k, _ in message.get("headers", ())}
                headers = list(message.get("headers", ()))
                headers.extend((k, v) for k, v in extra if k not in present)
                message = {**message, "headers": headers}
            await send(message)

        async def answer(
            status: int, detail: str, headers: Mapping[str, str] | None = None
        ) -> None:
            nonlocal answered
            if not started:  # else the app's answer is under way: cut it short
                for message in _json_answer(status, detail, headers):
                    await send_with_headers(message)
            answered = True

        path: str = scope["path"]
        limit = self.options.body_limit(path)
        length = _header(scope, b"content-length")
        if length is not None and length.isdigit() and int(length) > limit:
            await answer(413, _too_large(limit))
            return
        if scope["method"] in _WRITE_METHODS and path.startswith(_API_PREFIX):
            refusal = await _write_refusal({**scope, "app": self.web}) if self.web else None
            if refusal is not None:
                await answer(refusal.status_code, str(refusal.detail), refusal.headers)
                return

        received = 0
        body_done = False
        deadline: float | None = None

        async def bounded_receive() -> Message:
            nonlocal received, body_done, deadline
            if body_done:
                return await receive()  # after the body: waiting for a disconnect, unbounded
            loop = asyncio.get_running_loop()
            if deadline is None:
                deadline = loop.time() + self.options.body_timeout_s
            try:
                async with asyncio.timeout_at(deadline):
                    message = await receive()
            except TimeoutError:
                await answer(408, _too_slow(self.options.body_timeout_s))
                raise _AnsweredError from None
            if message["type"] == "http.request":
                received += len(message.get("body", b""))
                if received > limit:
                    await answer(413, _too_large(limit))
                    raise _AnsweredError
                body_done = not message.get("more_body", False)
            return message

        try:
            await self.app(scope, bounded_receive, send_with_headers)
        except _AnsweredError:
            pass  # already answered; nothing to report
        except Exception:
            if answered:  # the app turned our interruption into an error of its own
                return
            raise


def _too_large(limit: int) -> str:
    return (
        f"request body too large: at most {limit // KIB} KiB here / nội dung yêu cầu quá lớn: "
        f"tối đa {limit // KIB} KiB"
    )


def _too_slow(timeout_s: float) -> str:
    return (
        f"request body not received within {timeout_s:g} s / không nhận được nội dung yêu cầu "
        f"trong {timeout_s:g} giây"
    )


async def _write_refusal(scope: Scope) -> HTTPException | None:
    """Why a write to the API is refused before its body is read (no token, a bad token, no
    write scope, NetWatch starting), or None to go on. The route checks the token again (the
    same check: netwatch.web.auth), so a refusal here never changes what the route decides."""
    from netwatch.web.auth import require_write

    request = Request(scope)
    try:
        credentials = await _bearer(request)
        await require_write(request, credentials)
    except HTTPException as exc:
        return exc
    return None


# --- uvicorn ---------------------------------------------------------------------------------


class _HeaderDeadline:
    """Mixed into uvicorn's protocols: a connection whose request line and headers are not in
    within `header_timeout_s` (from connect, or from the previous answer) is closed. Idle
    connections, and clients that trickle a header every few seconds, no longer hold a socket
    (and one of `max_connections`) for ever."""

    header_timeout_s: float = EdgeOptions.header_timeout_s
    _header_timer: asyncio.TimerHandle | None = None

    # Attributes of uvicorn's protocol classes this mixin uses.
    loop: asyncio.AbstractEventLoop
    transport: asyncio.Transport
    cycle: Any

    def _arm_header_deadline(self) -> None:
        self._disarm_header_deadline()
        self._header_timer = self.loop.call_later(self.header_timeout_s, self._header_deadline)

    def _disarm_header_deadline(self) -> None:
        if self._header_timer is not None:
            self._header_timer.cancel()
            self._header_timer = None

    def _header_deadline(self) -> None:
        self._header_timer = None
        busy = self.cycle is not None and not self.cycle.response_complete
        if not busy and not self.transport.is_closing():
            log.info("http.header_timeout: request headers not received in time; closing")
            self.transport.close()


class HttpToolsWithDeadline(_HeaderDeadline, HttpToolsProtocol):
    """uvicorn's httptools protocol with the header deadline."""

    def connection_made(self, transport: asyncio.Transport) -> None:  # type: ignore[override]
        super().connection_made(transport)
        self._arm_header_deadline()

    def connection_lost(self, exc: Exception | None) -> None:
        self._disarm_header_deadline()
        super().connection_lost(exc)

    def on_headers_complete(self) -> None:
        self._disarm_header_deadline()
        super().on_headers_complete()

    def on_response_complete(self) -> None:
        super().on_response_complete()
        if not self.transport.is_closing() and not self.pipeline:
            self._arm_header_deadline()


class H11WithDeadline(_HeaderDeadline, H11Protocol):
    """uvicorn's h11 protocol with the header deadline."""

    def connection_made(self, transport: asyncio.Transport) -> None:  # type: ignore[override]
        super().connection_made(transport)
        self._arm_header_deadline()

    def connection_lost(self, exc: Exception | None) -> None:
        self._disarm_header_deadline()
        super().connection_lost(exc)

    def handle_events(self) -> None:
        super().handle_events()
        if self.cycle is not None and not self.cycle.response_complete:
            self._disarm_header_deadline()

    def on_response_complete(self) -> None:
        super().on_response_complete()
        if not self.transport.is_closing() and (self.cycle is None or self.cycle.response_complete):
            self._arm_header_deadline()


def _protocol(base: type[_HeaderDeadline], timeout_s: float) -> type[Any]:
    """The protocol class with this server's header timeout."""
    return type(base.__name__, (base,), {"header_timeout_s": timeout_s})


def server_config(
    app: ASGIApp,
    options: EdgeOptions | None = None,
    *,
    web: Starlette | None = None,
    http: str = "httptools",
    **kwargs: Any,
) -> uvicorn.Config:
    """A uvicorn.Config serving `app` behind the edge (EdgeGuard; `web`: the FastAPI app when
    `app` wraps it) with its limits; `kwargs` go to uvicorn.Config unchanged (host, port,
    log_level, ...)."""
    import uvicorn

    options = options or EdgeOptions()
    base = HttpToolsWithDeadline if http == "httptools" else H11WithDeadline
    return uvicorn.Config(
        EdgeGuard(app, options, web=web),
        http=_protocol(base, options.header_timeout_s),
        timeout_keep_alive=options.keep_alive_s,
        limit_concurrency=options.max_connections,
        h11_max_incomplete_event_size=options.max_header_bytes,
        forwarded_allow_ips=options.trusted_proxies,
        proxy_headers=True,
        **kwargs,
    )


def edge_options(args: argparse.Namespace) -> EdgeOptions:
    """The edge's options from `netwatch run`'s arguments."""
    return EdgeOptions(
        trusted_proxies=getattr(args, "trusted_proxies", EdgeOptions.trusted_proxies),
        max_connections=getattr(args, "max_connections", EdgeOptions.max_connections),
    )
