"""Loopback helpers the tests share: NetWatch in process (no socket) or under uvicorn, ports.

- `in_process(app)`: the app's lifespan on an event loop in a thread and httpx clients that hand
  requests to it through `httpx.ASGITransport`: no socket, no port, for tests of NetWatch's own
  pages and API.
- `uvicorn_thread(app)`: a real server, for tests that need a socket (a browser, Prometheus
  scraping NetWatch, the lab). It listens on a socket bound to port 0, so the kernel picks a port
  nobody holds and no other test can take it between choosing and binding.
- `smtp_server(handler)`: aiosmtpd on port 0, asked for its port.
- `reserved_port()`: only for foreign servers that must be told their port before they start
  (a NetWatch or Prometheus subprocess, the HTML checker, an SMTP server that must come back on
  the same port) or for a port where nothing may listen.
"""

from __future__ import annotations

import fcntl
import os
import random
import socket
import threading
from collections.abc import Awaitable, Callable, Iterator, Mapping
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any, TypeVar

import anyio.from_thread
import httpx
import uvicorn
from aiosmtpd.controller import Controller
from fastapi import FastAPI

from tests.waiting import wait_until

T = TypeVar("T")

# Reserved ports come from below Linux's ephemeral range (net.ipv4.ip_local_port_range, 32768 by
# default): the kernel never hands them to a bind(0) or an outgoing connection, and a lock file
# per port (shared by every worker and worktree on the machine) keeps two tests off one port.
_RESERVED = range(24000, 30000)
_LOCKS = Path("/tmp/netwatch-test-ports")
_held: dict[int, int] = {}  # port -> its lock file's descriptor, held until the process ends


def reserved_port() -> int:
    """A loopback TCP port that is this test process's alone until it exits.

    Race-free where binding port 0 is not possible: the port is locked (flock) before it is
    handed out, so no other test process picks it, and it lies outside the ephemeral range, so
    the kernel does not either. A port something else already holds is skipped (bind checked).
    """
    _LOCKS.mkdir(exist_ok=True)
    start = random.randrange(len(_RESERVED))
    for offset in range(len(_RESERVED)):
        port = _RESERVED[(start + offset) % len(_RESERVED)]
        if _reserve(port):
            return port
    raise RuntimeError(f"no free port left in {_RESERVED}")


def reserved_ports(count: int) -> range:
    """`count` consecutive reserved ports (as reserved_port), for a server told only the first
    (`netwatch run --metrics-port-base`)."""
    _LOCKS.mkdir(exist_ok=True)
    for _attempt in range(100):
        first = random.randrange(_RESERVED.start, _RESERVED.stop - count)
        got = []
        for port in range(first, first + count):
            if not _reserve(port):
                break
            got.append(port)
        else:
            return range(first, first + count)
        for port in got:  # not consecutive: give them back, try elsewhere
            os.close(_held.pop(port))
    raise RuntimeError(f"no {count} consecutive free ports in {_RESERVED}")


def _reserve(port: int) -> bool:
    """Lock `port` for this process if nobody holds it (another test or another program)."""
    if port in _held:
        return False
    fd = os.open(_LOCKS / f"{port}.lock", os.O_CREAT | os.O_RDWR, 0o666)
    try:
        fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
    except BlockingIOError:
        os.close(fd)
        return False
    try:
        with socket.socket() as probe:
            probe.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
            probe.bind(("127.0.0.1", port))
    except OSError:  # held by something that does not take our locks
        os.close(fd)
        return False
    _held[port] = fd
    return True


def listening_socket() -> socket.socket:
    """A TCP socket bound to 127.0.0.1 on a port the kernel picked (read it with getsockname)."""
    sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    sock.bind(("127.0.0.1", 0))
    return sock


@contextmanager
def uvicorn_thread(app: FastAPI, sock: socket.socket | None = None) -> Iterator[str]:
    """Serve the app under uvicorn in a thread (its lifespan runs); yields the base URL.

    The server listens on `sock` (bound by the caller who needed the port first, e.g. for a
    public URL in the config), or on a fresh socket bound to port 0. Leaving the block shuts the
    server down (the lifespan's exit included) and fails the test if it does not stop.
    """
    sock = sock or listening_socket()
    port: int = sock.getsockname()[1]
    server = uvicorn.Server(uvicorn.Config(app, log_level="warning"))
    thread = threading.Thread(target=server.run, kwargs={"sockets": [sock]}, daemon=True)
    thread.start()
    try:

        def started() -> bool:
            assert thread.is_alive(), "uvicorn did not start"
            return server.started

        wait_until(started, timeout_s=30, message="uvicorn serving")
        yield f"http://127.0.0.1:{port}"
    finally:
        server.should_exit = True
        thread.join(timeout=30)
        sock.close()
        assert not thread.is_alive(), "NetWatch did not shut down"


class _Port0Controller(Controller):  # type: ignore[misc]
    """aiosmtpd's Controller on port 0: the bound port is read back before its self-test."""

    def _trigger_server(self) -> None:
        assert self.server is not None
        self.port = self.server.sockets[0].getsockname()[1]
        super()._trigger_server()


@contextmanager
def smtp_server(handler: Any) -> Iterator[int]:
    """A real SMTP server (aiosmtpd) on a loopback port the kernel picked; yields the port."""
    controller = _Port0Controller(handler, hostname="127.0.0.1", port=0)
    controller.start()
    try:
        yield int(controller.port)
    finally:
        controller.stop()


# -- in process: the app's own loop in a thread, requests through httpx.ASGITransport ---------


class _LoopTransport(httpx.BaseTransport):
    """A sync httpx transport that runs each request through ASGITransport on the app's loop."""

    def __init__(self, portal: anyio.from_thread.BlockingPortal, app: Any) -> None:
        self._portal = portal
        self._asgi = httpx.ASGITransport(app=app)

    def handle_request(self, request: httpx.Request) -> httpx.Response:
        request.read()  # a ByteStream: what ASGITransport can iterate on the other loop

        async def send() -> tuple[httpx.Response, bytes]:
            response = await self._asgi.handle_async_request(request)
            assert isinstance(response.stream, httpx.AsyncByteStream)
            body = b"".join([chunk async for chunk in response.stream])  # raw: gzip stays gzip
            return response, body

        response, body = self._portal.call(send)
        return httpx.Response(
            response.status_code,
            headers=response.headers,
            stream=httpx.ByteStream(body),
            extensions=response.extensions,
        )


@dataclass(frozen=True, slots=True)
class InProcess:
    """A started app on its own event loop (in a thread), and ways to reach it without a socket."""

    app: FastAPI
    portal: anyio.from_thread.BlockingPortal
    asgi: Any  # the app, with the lifespan's state in every request scope when it yields one

    def client(self, **options: Any) -> httpx.Client:
        """A new httpx client (own cookies) for the app; options as for httpx.Client."""
        options.setdefault("base_url", "http://testserver")
        options.setdefault("timeout", 15)
        return httpx.Client(transport=_LoopTransport(self.portal, self.asgi), **options)

    def call(self, work: Callable[[], Awaitable[T]]) -> T:
        """Run a coroutine function on the app's event loop; its result."""

        async def run() -> T:
            return await work()

        return self.portal.call(run)


def _with_state(app: Any, state: Mapping[str, Any]) -> Any:
    async def with_state(scope: Any, receive: Any, send: Any) -> None:
        scope = {**scope, "state": dict(state)}
        await app(scope, receive, send)

    return with_state


@contextmanager
def in_process(app: FastAPI) -> Iterator[InProcess]:
    """Run the app's lifespan on an event loop in a thread; yield what reaches the app.

    The loop keeps running between requests (NetWatch's alerting and outbox tasks live on it),
    as under uvicorn; leaving the block runs the lifespan's exit, then stops the loop.
    """
    with (
        anyio.from_thread.start_blocking_portal() as portal,
        portal.wrap_async_context_manager(app.router.lifespan_context(app)) as state,
    ):
        asgi = _with_state(app, state) if state else app
        yield InProcess(app, portal, asgi)
