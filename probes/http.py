"""HTTP(S) probe: phase timings, status, content check and certificate expiry of a portal.

Phases follow blackbox_exporter's http prober (resolve, connect, tls, processing, transfer):

- ``dns_s``: name to address (the configured resolver's query time, or ``loop.getaddrinfo``;
  ``None`` when the host is an IP literal or pinned by ``resolve``),
- ``connect_s``: TCP handshake,
- ``tls_s``: TLS handshake including certificate verification,
- ``first_byte_s``: from the end of the handshake (request written) to the first response byte,
- ``transfer_s``: from the first response byte to the end of the body.

Across redirects each phase is the sum over the hops, so the phases add up to ``total_s``
(minus a few microseconds of parsing between them). The whole probe, redirects included, is
bounded by ``timeout_s``; a timeout names the phase that was in progress.

Every probe opens a fresh TCP connection and does a full TLS handshake (no pooling, no session
resumption), because the cost of a new connection is what a citizen's browser pays and what a
monitor has to measure. The request is HTTP/1.1 with ``Connection: close``; the response body
is read by Content-Length, chunked transfer coding, or to EOF.

Implementation choice (measured with benchmarks/bench_https.py: 5,000 probes, fresh TCP+TLS
each, 50 concurrent, against a local HTTPS server in another process, on the shared 2-core
machine, medians of 3 interleaved runs; client CPU per probe, RSA-2048 / ECDSA P-256 server key):

=================================================  =================  ===============
client                                             RSA-2048           ECDSA P-256
=================================================  =================  ===============
blackbox_exporter 0.23 http_2xx (exporter CPU)     1.31 ms            1.13 ms
aiohttp 3.14 + TraceConfig, force_close            0.87 ms            0.82 ms
this module (non-blocking ssl.SSLSocket)           0.72 ms (x0.55)    0.78 ms (x0.69)
=================================================  =================  ===============

Runs vary by 15-25 % on this machine (an earlier sitting gave x0.58 and x0.68). About
0.55 ms of every probe is OpenSSL's client handshake itself (``do_handshake``), the floor for
any Python client, so the design only moves the remaining ~0.2-0.3 ms: this module spends
5-20 % less CPU than aiohttp with tracing, and about 0.55-0.7 of blackbox_exporter's. The
deciding reason is exactness rather than CPU: aiohttp's trace cannot tell connect from TLS.

So this module drives a non-blocking socket and ``ssl.SSLSocket`` directly from the event
loop's readiness callbacks: OpenSSL reads and writes the kernel socket itself (no MemoryBIO
copies through asyncio's SSL protocol), the HTTP/1.1 response is parsed with a few ``bytes``
operations, and each phase boundary is an exact point in straight-line code instead of an
inferred trace signal. SSL contexts are built once per CA file and reused.

Timing caveat (BASELINES.md): inside a saturated event loop phase times are inflated by
queueing; the scheduler must keep the loop far from saturation for them to be true.
"""

from __future__ import annotations

import asyncio
import enum
import errno
import ipaddress
import os
import socket
import ssl
import time
import types
from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Self
from urllib.parse import quote, urljoin, urlsplit
from zoneinfo import ZoneInfo

from probes.dns import DnsFailure, bound_socket, parse_resolver, resolve_host

__all__ = [
    "HttpCheck",
    "HttpFailure",
    "HttpPhase",
    "HttpProber",
    "HttpResult",
    "format_http_result",
]

_USER_AGENT = "NetWatch/0.1 (+https probe)"
_REDIRECT_STATUSES = frozenset({301, 302, 303, 307, 308})
_MAX_HEAD_BYTES = 64 * 1024
_MAX_BODY_BYTES = 16 * 1024 * 1024
_RECV_BYTES = 64 * 1024
_SECONDS_PER_DAY = 86_400.0
_PATH_SAFE = "/?&=:;@!$'()*+,%-._~"


class HttpPhase(enum.Enum):
    """The part of an HTTP(S) probe that was in progress when it failed."""

    DNS = "dns"
    CONNECT = "connect"
    TLS = "tls"
    HTTP = "http"
    CONTENT = "content"


class HttpFailure(enum.Enum):
    """Why an HTTP(S) probe failed."""

    DNS_ERROR = "dns_error"
    TIMEOUT = "timeout"
    CONNECTION_REFUSED = "connection_refused"
    CONNECT_ERROR = "connect_error"
    TLS_ERROR = "tls_error"
    HTTP_STATUS = "http_status"
    CONTENT_MISMATCH = "content_mismatch"
    TOO_MANY_REDIRECTS = "too_many_redirects"
    PROTOCOL_ERROR = "protocol_error"


@dataclass(frozen=True, slots=True)
class HttpResult:
    """One HTTP(S) probe: phase timings, what the server answered, and why it failed if it did."""

    url: str
    started_at: datetime
    dns_s: float | None
    connect_s: float | None
    tls_s: float | None
    first_byte_s: float | None
    transfer_s: float | None
    total_s: float
    status: int | None
    redirects: int
    body_bytes: int
    content_ok: bool | None
    cert_not_after: datetime | None
    cert_days_left: float | None
    failure: HttpFailure | None
    failed_phase: HttpPhase | None
    detail: str

    @property
    def ok(self) -> bool:
        """True when status, content and every phase were as expected."""
        return self.failure is None


@dataclass(frozen=True, slots=True)
class _Target:
    """A URL taken apart once, with the request bytes ready to send."""

    url: str
    https: bool
    host: str  # without IPv6 brackets: for DNS, SNI and certificate matching
    port: int
    host_is_ip: bool
    request: bytes


def _parse_target(url: str, method: str) -> _Target:
    """Split ``url`` and pre-build the request; raises ValueError for what cannot be probed."""
    parts = urlsplit(url)
    scheme = parts.scheme.lower()
    if scheme not in ("http", "https"):
        raise ValueError(f"url {url!r}: scheme must be http or https")
    host = parts.hostname
    if not host:
        raise ValueError(f"url {url!r}: no host")
    port = parts.port or (443 if scheme == "https" else 80)
    try:
        host_is_ip = ipaddress.ip_address(host) is not None
    except ValueError:
        host_is_ip = False
    if not host.isascii():
        host = host.encode("idna").decode("ascii")
    host_header = f"[{host}]" if ":" in host else host
    if port != (443 if scheme == "https" else 80):
        host_header = f"{host_header}:{port}"
    # Percent-encode whatever is not already URL-safe so the request line stays ASCII.
    path = quote(parts.path or "/", safe=_PATH_SAFE)
    if parts.query:
        path = f"{path}?{quote(parts.query, safe=_PATH_SAFE)}"
    request = (
        f"{method} {path} HTTP/1.1\r\nHost: {host_header}\r\nUser-Agent: {_USER_AGENT}\r\n"
        "Accept: */*\r\nAccept-Encoding: identity\r\nConnection: close\r\n\r\n"
    ).encode("ascii")
    return _Target(url, scheme == "https", host, port, host_is_ip, request)


@dataclass(frozen=True, slots=True)
class HttpCheck:
    """One portal check, validated and compiled once at config load.

    Redirects are followed up to ``max_redirects``, except a redirect whose status is in
    ``expect_status``: that one is the answer being checked (e.g. ``expect_status=(301,)``).
    ``dns_resolver`` is ``"ip"`` or ``"ip:port"``; ``resolve`` pins host names to IPs.
    """

    url: str
    timeout_s: float = 10.0
    expect_status: tuple[int, ...] = (200,)
    expect_text: str | None = None
    max_redirects: int = 5
    ca_file: str | None = None
    dns_resolver: str | None = None
    resolve: Mapping[str, str] | None = field(default=None, hash=False)
    method: str = "GET"
    _target: _Target = field(init=False, repr=False, compare=False)
    _expect_bytes: bytes | None = field(init=False, repr=False, compare=False)
    _resolver: tuple[str, int] | None = field(init=False, repr=False, compare=False)

    def __post_init__(self) -> None:
        """Validate and pre-compute everything the hot path needs."""
        method = self.method.upper()
        if method not in ("GET", "HEAD"):
            raise ValueError(f"method {self.method!r}: only GET and HEAD are probed")
        if method == "HEAD" and self.expect_text is not None:
            raise ValueError("expect_text needs a body: use GET, not HEAD")
        if not self.timeout_s > 0:
            raise ValueError(f"timeout_s {self.timeout_s!r}: must be > 0")
        if self.max_redirects < 0:
            raise ValueError(f"max_redirects {self.max_redirects!r}: must be >= 0")
        statuses = tuple(int(s) for s in self.expect_status)
        if not statuses or any(not 100 <= s <= 599 for s in statuses):
            raise ValueError(f"expect_status {self.expect_status!r}: codes must be 100-599")
        pinned: Mapping[str, str] | None = None
        if self.resolve is not None:
            for host, address in self.resolve.items():
                try:
                    ipaddress.ip_address(address)
                except ValueError:
                    raise ValueError(
                        f"resolve {host!r}: {address!r} is not an IP address"
                    ) from None
            pinned = types.MappingProxyType({h.lower(): a for h, a in self.resolve.items()})
        set_ = object.__setattr__  # frozen: the derived fields are set once, here
        set_(self, "method", method)
        set_(self, "expect_status", statuses)
        set_(self, "resolve", pinned)
        set_(self, "_target", _parse_target(self.url, method))
        set_(self, "_expect_bytes", None if self.expect_text is None else self.expect_text.encode())
        set_(
            self,
            "_resolver",
            None if self.dns_resolver is None else parse_resolver(self.dns_resolver),
        )


class _ProbeError(Exception):
    """An expected failure inside one probe, turned into a result value by ``probe``."""

    def __init__(self, failure: HttpFailure, detail: str) -> None:
        super().__init__(detail)
        self.failure = failure
        self.detail = detail


class _Run:
    """Mutable accumulators of one probe (phases summed over redirect hops)."""

    __slots__ = (
        "body_bytes",
        "cert_not_after",
        "connect_s",
        "content_ok",
        "dns_s",
        "first_byte_s",
        "interface",
        "phase",
        "redirects",
        "source",
        "status",
        "tls_s",
        "transfer_s",
    )

    def __init__(self, source: str | None = None, interface: str | None = None) -> None:
        self.source = source
        self.interface = interface
        self.phase = HttpPhase.DNS
        self.dns_s: float | None = None
        self.connect_s: float | None = None
        self.tls_s: float | None = None
        self.first_byte_s: float | None = None
        self.transfer_s: float | None = None
        self.status: int | None = None
        self.redirects = 0
        self.body_bytes = 0
        self.content_ok: bool | None = None
        self.cert_not_after: datetime | None = None


def _add(total: float | None, value: float) -> float:
    return value if total is None else total + value


def _wake(fut: asyncio.Future[None]) -> None:
    if not fut.done():
        fut.set_result(None)


async def _readable(loop: asyncio.AbstractEventLoop, fd: int) -> None:
    fut: asyncio.Future[None] = loop.create_future()
    loop.add_reader(fd, _wake, fut)
    try:
        await fut
    finally:
        loop.remove_reader(fd)


async def _writable(loop: asyncio.AbstractEventLoop, fd: int) -> None:
    fut: asyncio.Future[None] = loop.create_future()
    loop.add_writer(fd, _wake, fut)
    try:
        await fut
    finally:
        loop.remove_writer(fd)


async def _recv(loop: asyncio.AbstractEventLoop, sock: socket.socket) -> bytes:
    """Read what is there (b"" at EOF), waiting for readiness; works for TLS and plain sockets."""
    while True:
        try:
            return sock.recv(_RECV_BYTES)
        except (ssl.SSLWantReadError, BlockingIOError):
            await _readable(loop, sock.fileno())
        except ssl.SSLWantWriteError:
            await _writable(loop, sock.fileno())
        except (ssl.SSLZeroReturnError, ssl.SSLEOFError):
            # A server that closes without close_notify ends the body all the same (RFC 8446 6.1
            # makes truncation detectable only with a length, which we check separately).
            return b""


async def _send_all(loop: asyncio.AbstractEventLoop, sock: socket.socket, data: bytes) -> None:
    view = memoryview(data)
    while view:
        try:
            sent = sock.send(view)
        except (ssl.SSLWantWriteError, BlockingIOError):
            await _writable(loop, sock.fileno())
        except ssl.SSLWantReadError:
            await _readable(loop, sock.fileno())
        else:
            view = view[sent:]


class _Response:
    """Status, the few headers the probe needs, and the body (kept only for a content check)."""

    __slots__ = ("body", "body_bytes", "chunked", "content_length", "location", "status")

    def __init__(self) -> None:
        self.status = 0
        self.location: str | None = None
        self.content_length: int | None = None
        self.chunked = False
        self.body = bytearray()
        self.body_bytes = 0


def _redirect_to(check: HttpCheck, resp: _Response) -> str | None:
    """Where to follow ``resp`` to; None when it is the answer (also an expected redirect)."""
    if resp.status in _REDIRECT_STATUSES and resp.status not in check.expect_status:
        return resp.location
    return None


def _parse_head(head: bytes, resp: _Response) -> None:
    lines = head.split(b"\r\n")
    status_line = lines[0].split(b" ", 2)
    if len(status_line) < 2 or not status_line[0].startswith(b"HTTP/1."):
        raise _ProbeError(HttpFailure.PROTOCOL_ERROR, f"bad status line {lines[0][:80]!r}")
    try:
        resp.status = int(status_line[1])
    except ValueError:
        raise _ProbeError(
            HttpFailure.PROTOCOL_ERROR, f"bad status line {lines[0][:80]!r}"
        ) from None
    for line in lines[1:]:
        name, sep, value = line.partition(b":")
        if not sep:
            raise _ProbeError(HttpFailure.PROTOCOL_ERROR, f"bad header line {line[:80]!r}")
        name = name.strip().lower()
        if name == b"content-length":
            try:
                resp.content_length = int(value)
                if resp.content_length < 0:
                    raise ValueError
            except ValueError:
                raise _ProbeError(
                    HttpFailure.PROTOCOL_ERROR, f"bad Content-Length {value[:40]!r}"
                ) from None
        elif name == b"transfer-encoding":
            resp.chunked = value.strip().lower().endswith(b"chunked")
        elif name == b"location":
            resp.location = value.strip().decode("latin-1")


class HttpProber:
    """Runs HTTP(S) checks; long-lived, holds one SSL context per CA file."""

    __slots__ = ("_contexts",)

    def __init__(self) -> None:
        self._contexts: dict[str | None, ssl.SSLContext] = {}

    async def __aenter__(self) -> Self:
        return self

    async def __aexit__(self, *exc_info: object) -> None:
        self._contexts.clear()

    def ssl_context(self, ca_file: str | None) -> ssl.SSLContext:
        """The client context for ``ca_file`` (system CAs plus that file), built on first use."""
        ctx = self._contexts.get(ca_file)
        if ctx is None:
            ctx = ssl.create_default_context()
            if ca_file is not None:
                ctx.load_verify_locations(cafile=ca_file)
            ctx.set_alpn_protocols(["http/1.1"])
            self._contexts[ca_file] = ctx
        return ctx

    def prepare(self, checks: list[HttpCheck]) -> None:
        """Build the SSL contexts of ``checks`` now (at config load), not on the first probe."""
        for check in checks:
            self.ssl_context(check.ca_file)

    async def probe(
        self, check: HttpCheck, *, source: str | None = None, interface: str | None = None
    ) -> HttpResult:
        """Run one check; network and server faults come back as a failure value, never raised.

        ``source`` binds the TCP connection (and the DNS query to ``check.dns_resolver``) to a
        local address, ``interface`` to a device (SO_BINDTODEVICE): a commune agent times the
        portal over one WAN path. Without a configured resolver the name is resolved by the
        system (unbound). An address or interface that does not exist here is a CONNECT_ERROR.
        """
        started_at = datetime.now(UTC)
        run = _Run(source, interface)
        failure: HttpFailure | None = None
        detail = ""
        t0 = time.monotonic()
        try:
            async with asyncio.timeout(check.timeout_s):
                await self._follow(check, run)
        except _ProbeError as exc:
            failure, detail = exc.failure, exc.detail
        except TimeoutError:
            failure = HttpFailure.TIMEOUT
            detail = f"{run.phase.value} not finished after {check.timeout_s:g} s"
        total_s = time.monotonic() - t0
        days_left = None
        if run.cert_not_after is not None:
            days_left = (run.cert_not_after - datetime.now(UTC)).total_seconds() / _SECONDS_PER_DAY
        return HttpResult(
            url=check.url,
            started_at=started_at,
            dns_s=run.dns_s,
            connect_s=run.connect_s,
            tls_s=run.tls_s,
            first_byte_s=run.first_byte_s,
            transfer_s=run.transfer_s,
            total_s=total_s,
            status=run.status,
            redirects=run.redirects,
            body_bytes=run.body_bytes,
            content_ok=run.content_ok,
            cert_not_after=run.cert_not_after,
            cert_days_left=days_left,
            failure=failure,
            failed_phase=None if failure is None else run.phase,
            detail=detail,
        )

    async def _follow(self, check: HttpCheck, run: _Run) -> None:
        target = check._target
        while True:
            resp = await self._exchange(check, target, run)
            run.status = resp.status
            location = _redirect_to(check, resp)
            if location is not None:
                if run.redirects >= check.max_redirects:
                    raise _ProbeError(
                        HttpFailure.TOO_MANY_REDIRECTS,
                        f"more than {check.max_redirects} redirects (last to {location})",
                    )
                run.redirects += 1
                # RFC 9110 15.4: a 303 (and in practice 301/302) turns the method into GET;
                # GET and HEAD are kept as they are by every redirect status.
                try:
                    target = _parse_target(urljoin(target.url, location), check.method)
                except ValueError as exc:
                    raise _ProbeError(HttpFailure.PROTOCOL_ERROR, f"bad redirect: {exc}") from None
                continue
            run.body_bytes = resp.body_bytes
            if check._expect_bytes is not None:
                run.content_ok = check._expect_bytes in resp.body
            if resp.status not in check.expect_status:
                raise _ProbeError(
                    HttpFailure.HTTP_STATUS,
                    f"status {resp.status}, expected {'/'.join(map(str, check.expect_status))}",
                )
            if run.content_ok is False:
                run.phase = HttpPhase.CONTENT
                raise _ProbeError(
                    HttpFailure.CONTENT_MISMATCH, f"body does not contain {check.expect_text!r}"
                )
            return

    async def _address(self, check: HttpCheck, target: _Target, run: _Run) -> tuple[int, str]:
        """The address family and IP to connect to; records the DNS phase."""
        host = target.host
        pinned = check.resolve.get(host) if check.resolve is not None else None
        if target.host_is_ip or pinned is not None:
            address = host if pinned is None else pinned
            return (socket.AF_INET6 if ":" in address else socket.AF_INET), address
        t = time.monotonic()
        if check._resolver is not None:
            ip, port = check._resolver
            res = await resolve_host(
                host,
                ip,
                port=port,
                timeout_s=check.timeout_s,
                source=run.source,
                interface=run.interface,
            )
            if res.failure is DnsFailure.TIMEOUT:
                raise _ProbeError(HttpFailure.TIMEOUT, f"resolver {ip}:{port}: {res.detail}")
            if res.failure is not None:
                raise _ProbeError(
                    HttpFailure.DNS_ERROR, f"resolver {ip}:{port}: {host}: {res.detail}"
                )
            # The resolver's query time, not our bookkeeping around it.
            run.dns_s = _add(run.dns_s, res.rtt_s or (time.monotonic() - t))
            address = res.addresses[0]
            return (socket.AF_INET6 if ":" in address else socket.AF_INET), address
        loop = asyncio.get_running_loop()
        try:
            infos = await loop.getaddrinfo(
                host, target.port, type=socket.SOCK_STREAM, proto=socket.IPPROTO_TCP
            )
        except (socket.gaierror, UnicodeError) as exc:
            raise _ProbeError(HttpFailure.DNS_ERROR, f"{host}: {exc}") from None
        run.dns_s = _add(run.dns_s, time.monotonic() - t)
        # IPv4 first, as with a configured resolver (A before AAAA): commune links and
        # government networks are IPv4; a name without A still works over IPv6.
        family, _, _, _, sockaddr = min(infos, key=lambda info: info[0] != socket.AF_INET)
        return family, str(sockaddr[0])

    async def _exchange(self, check: HttpCheck, target: _Target, run: _Run) -> _Response:
        """One request on a fresh connection: DNS, connect, TLS, request, response."""
        loop = asyncio.get_running_loop()
        run.phase = HttpPhase.DNS
        family, address = await self._address(check, target, run)

        run.phase = HttpPhase.CONNECT
        t_connect = time.monotonic()
        try:
            sock = bound_socket(
                family, socket.SOCK_STREAM, source=run.source, interface=run.interface
            )
        except OSError as exc:  # out of descriptors, no such source address or interface
            raise _ProbeError(HttpFailure.CONNECT_ERROR, f"socket: {exc}") from None
        try:
            # Without it Nagle holds the request until the server ACKs our TLS Finished (up to
            # its 40 ms delayed ACK), and that wait would be measured as first_byte_s.
            sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
            try:
                err = sock.connect_ex((address, target.port))
            except OSError as exc:
                err = exc.errno or errno.EINVAL
            if err in (errno.EINPROGRESS, errno.EAGAIN):
                await _writable(loop, sock.fileno())
                err = sock.getsockopt(socket.SOL_SOCKET, socket.SO_ERROR)
            if err:
                failure = (
                    HttpFailure.CONNECTION_REFUSED
                    if err == errno.ECONNREFUSED
                    else HttpFailure.TIMEOUT
                    if err == errno.ETIMEDOUT
                    else HttpFailure.CONNECT_ERROR
                )
                raise _ProbeError(failure, f"{address}:{target.port}: {os.strerror(err)}")
            t_tls = time.monotonic()
            run.connect_s = _add(run.connect_s, t_tls - t_connect)

            if target.https:
                run.phase = HttpPhase.TLS
                sock = await self._handshake(check, target, sock, run)
                t_request = time.monotonic()
                run.tls_s = _add(run.tls_s, t_request - t_tls)
            else:
                t_request = t_tls

            run.phase = HttpPhase.HTTP
            return await self._request(check, target, loop, sock, run, t_request)
        finally:
            sock.close()

    async def _handshake(
        self, check: HttpCheck, target: _Target, sock: socket.socket, run: _Run
    ) -> ssl.SSLSocket:
        loop = asyncio.get_running_loop()
        ctx = self.ssl_context(check.ca_file)
        try:
            tls = ctx.wrap_socket(sock, server_hostname=target.host, do_handshake_on_connect=False)
        except (ssl.SSLError, OSError) as exc:
            raise _ProbeError(HttpFailure.TLS_ERROR, str(exc)) from None
        # wrap_socket detached ``sock``; from here on only ``tls`` owns the descriptor.
        try:
            while True:
                try:
                    tls.do_handshake()
                    break
                except ssl.SSLWantReadError:
                    await _readable(loop, tls.fileno())
                except ssl.SSLWantWriteError:
                    await _writable(loop, tls.fileno())
            peer = tls.getpeercert()
        except ssl.SSLCertVerificationError as exc:
            tls.close()
            raise _ProbeError(
                HttpFailure.TLS_ERROR, f"certificate verify failed: {exc.verify_message}"
            ) from None
        except (ssl.SSLError, OSError) as exc:
            tls.close()
            raise _ProbeError(HttpFailure.TLS_ERROR, f"{type(exc).__name__}: {exc}") from None
        except BaseException:
            tls.close()
            raise
        not_after = peer.get("notAfter") if peer else None
        if isinstance(not_after, str):
            expires = datetime.fromtimestamp(ssl.cert_time_to_seconds(not_after), UTC)
            # Across redirects the earliest expiry is the one that will break first.
            if run.cert_not_after is None or expires < run.cert_not_after:
                run.cert_not_after = expires
        return tls

    async def _request(
        self,
        check: HttpCheck,
        target: _Target,
        loop: asyncio.AbstractEventLoop,
        sock: socket.socket,
        run: _Run,
        t_request: float,
    ) -> _Response:
        try:
            await _send_all(loop, sock, target.request)
            data = await _recv(loop, sock)
            t_first = time.monotonic()
            if not data:
                raise _ProbeError(HttpFailure.PROTOCOL_ERROR, "connection closed before a response")
            run.first_byte_s = _add(run.first_byte_s, t_first - t_request)
            resp = await self._read_response(check, loop, sock, bytearray(data))
            run.transfer_s = _add(run.transfer_s, time.monotonic() - t_first)
        except (ssl.SSLError, OSError) as exc:
            raise _ProbeError(HttpFailure.PROTOCOL_ERROR, f"{type(exc).__name__}: {exc}") from None
        return resp

    async def _read_response(
        self,
        check: HttpCheck,
        loop: asyncio.AbstractEventLoop,
        sock: socket.socket,
        buf: bytearray,
    ) -> _Response:
        resp = _Response()
        while True:  # skips 1xx interim responses (RFC 9110 15.2)
            end = buf.find(b"\r\n\r\n")
            while end < 0:
                if len(buf) > _MAX_HEAD_BYTES:
                    raise _ProbeError(HttpFailure.PROTOCOL_ERROR, "response head too large")
                data = await _recv(loop, sock)
                if not data:
                    raise _ProbeError(HttpFailure.PROTOCOL_ERROR, "connection closed in headers")
                buf += data
                end = buf.find(b"\r\n\r\n")
            _parse_head(bytes(buf[:end]), resp)
            del buf[: end + 4]
            if resp.status >= 200 or resp.status == 101:
                break
            resp = _Response()

        if _redirect_to(check, resp) is not None:
            # The connection is closed anyway: the body of a redirect we follow is not needed.
            return resp
        if check.method == "HEAD" or resp.status in (204, 304) or 100 <= resp.status < 200:
            return resp
        keep = check._expect_bytes is not None
        if resp.chunked:
            await self._read_chunked(loop, sock, buf, resp, keep)
        else:
            await self._read_length(loop, sock, buf, resp, keep, resp.content_length)
        return resp

    @staticmethod
    async def _read_length(
        loop: asyncio.AbstractEventLoop,
        sock: socket.socket,
        buf: bytearray,
        resp: _Response,
        keep: bool,
        length: int | None,
    ) -> None:
        """Read ``length`` body bytes, or to EOF when ``length`` is None."""
        if length is not None and length > _MAX_BODY_BYTES:
            raise _ProbeError(HttpFailure.PROTOCOL_ERROR, f"body of {length} bytes too large")
        got = len(buf)
        if keep:
            resp.body += buf
        while length is None or got < length:
            data = await _recv(loop, sock)
            if not data:
                if length is None:
                    break
                raise _ProbeError(
                    HttpFailure.PROTOCOL_ERROR, f"body ended after {got} of {length} bytes"
                )
            got += len(data)
            if got > _MAX_BODY_BYTES:
                raise _ProbeError(HttpFailure.PROTOCOL_ERROR, "body too large")
            if keep:
                resp.body += data
        if length is not None and got > length:
            got = length
            del resp.body[length:]
        resp.body_bytes = got

    @staticmethod
    async def _read_chunked(
        loop: asyncio.AbstractEventLoop,
        sock: socket.socket,
        buf: bytearray,
        resp: _Response,
        keep: bool,
    ) -> None:
        """Decode chunked transfer coding (RFC 9112 7.1); trailers are ignored."""
        pos = 0
        while True:
            eol = buf.find(b"\r\n", pos)
            while eol < 0:
                data = await _recv(loop, sock)
                if not data:
                    raise _ProbeError(HttpFailure.PROTOCOL_ERROR, "connection closed in chunks")
                buf += data
                eol = buf.find(b"\r\n", pos)
            size_text = bytes(buf[pos:eol]).split(b";", 1)[0].strip()
            try:
                size = int(size_text, 16)
            except ValueError:
                raise _ProbeError(
                    HttpFailure.PROTOCOL_ERROR, f"bad chunk size {size_text[:20]!r}"
                ) from None
            if size == 0:
                return
            start = eol + 2
            while len(buf) < start + size + 2:
                data = await _recv(loop, sock)
                if not data:
                    raise _ProbeError(HttpFailure.PROTOCOL_ERROR, "connection closed in a chunk")
                buf += data
            resp.body_bytes += size
            if resp.body_bytes > _MAX_BODY_BYTES:
                raise _ProbeError(HttpFailure.PROTOCOL_ERROR, "body too large")
            if keep:
                resp.body += buf[start : start + size]
            pos = start + size + 2
            if pos > _RECV_BYTES:  # drop consumed bytes now and then, not per chunk
                del buf[:pos]
                pos = 0


def _seconds(value: float | None) -> str:
    return f"{'-':>10}" if value is None else f"{value * 1000:10.1f} ms"


def format_http_result(r: HttpResult) -> str:
    """A readable table of one result, for the ``netwatch probe`` command."""
    local = ZoneInfo("Asia/Ho_Chi_Minh")
    if r.failure is None:
        verdict = "OK"
    else:
        phase = r.failed_phase.value if r.failed_phase is not None else "?"
        verdict = f"FAILED  {r.failure.value} in {phase}: {r.detail}"
    content = {None: "not checked", True: "ok", False: "MISSING"}[r.content_ok]
    if r.cert_not_after is not None and r.cert_days_left is not None:
        cert = (
            f"expires {r.cert_not_after.astimezone(local):%Y-%m-%d %H:%M %Z}"
            f" ({r.cert_days_left:.1f} days left)"
        )
    else:
        cert = "-"
    rows = [
        ("url", r.url),
        ("started", f"{r.started_at.astimezone(local):%Y-%m-%d %H:%M:%S %Z}"),
        ("result", verdict),
        ("status", "-" if r.status is None else str(r.status)),
        ("redirects", str(r.redirects)),
        ("body", f"{r.body_bytes} bytes"),
        ("content", content),
        ("certificate", cert),
        ("dns", _seconds(r.dns_s)),
        ("connect", _seconds(r.connect_s)),
        ("tls", _seconds(r.tls_s)),
        ("first byte", _seconds(r.first_byte_s)),
        ("transfer", _seconds(r.transfer_s)),
        ("total", _seconds(r.total_s)),
    ]
    width = max(len(name) for name, _ in rows)
    return "\n".join(f"{name:<{width}}  {value}" for name, value in rows)
