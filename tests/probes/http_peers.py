"""Real peers for the HTTP(S) and DNS probe tests: HTTPS servers with a trustme CA and a DNS server.

Everything listens on 127.0.0.1 only and runs in one background thread with its own event
loop, so a server that sleeps or stalls never blocks the probe under test.

HTTPS paths (every HTTPS port serves them; each port has its own certificate):

==================  ===========================================================
/ok                 200, a page containing ``PAGE_TEXT`` (Content-Length)
/slow?s=N           waits N seconds before sending anything, then /ok
/503                503 Service Unavailable
/redirect/N         302 to /redirect/N-1; /redirect/0 redirects to /ok
/loop               302 to itself
/abs-redirect       301 to ``https://portal.test:<port>/ok`` (absolute, needs DNS)
/chunked            200, chunked, ``PAGE_TEXT`` split across chunk boundaries
/wrong              200, a page without ``PAGE_TEXT``
/eof                200 announcing 1000 bytes, closes after 10
/to-eof             200 without Content-Length, body ends at connection close
/garbage            not HTTP at all
/peer               200, the body is the client's IP address (source binding tests)
==================  ===========================================================
"""

from __future__ import annotations

import asyncio
import contextlib
import datetime as dt
import socket
import ssl
import tempfile
import threading
from collections.abc import Awaitable, Callable, Iterator, Mapping
from concurrent.futures import Future
from dataclasses import dataclass
from pathlib import Path
from typing import Any, TypeVar, cast
from urllib.parse import parse_qs, urlsplit

import dns.flags
import dns.message
import dns.rcode
import dns.rdatatype
import dns.rrset
import trustme

T = TypeVar("T")

HOST = "127.0.0.1"
PAGE_TEXT = "Cổng Dịch vụ công quốc gia"
PAGE = f"<html><body><h1>{PAGE_TEXT}</h1><p>{'x' * 500}</p></body></html>".encode()
WRONG_PAGE = b"<html><body><h1>Trang bao tri</h1></body></html>"
CERT_NAMES = ("portal.test", "alias.test", "localhost", "127.0.0.1")


@dataclass(frozen=True, slots=True)
class PeerPki:
    """Files of the test CA and of every server certificate the peers use."""

    ca_file: str
    other_ca_file: str
    good: trustme.LeafCert
    expiring: trustme.LeafCert  # valid for about ten more days
    expired: trustme.LeafCert
    untrusted: trustme.LeafCert  # issued by a CA the probe does not trust
    expiring_not_after: dt.datetime


def make_pki(directory: Path, days_left: float = 10.0) -> PeerPki:
    """Create the test CA, a second (untrusted) CA and the server certificates."""
    ca, other = trustme.CA(), trustme.CA()
    now = dt.datetime.now(dt.UTC).replace(microsecond=0)
    expiring_not_after = now + dt.timedelta(days=days_left)
    ca_file, other_file = directory / "ca.pem", directory / "other-ca.pem"
    ca.cert_pem.write_to_path(str(ca_file))
    other.cert_pem.write_to_path(str(other_file))
    return PeerPki(
        ca_file=str(ca_file),
        other_ca_file=str(other_file),
        good=ca.issue_cert(*CERT_NAMES),
        expiring=ca.issue_cert(*CERT_NAMES, not_after=expiring_not_after),
        expired=ca.issue_cert(*CERT_NAMES, not_after=now - dt.timedelta(days=1)),
        untrusted=other.issue_cert(*CERT_NAMES),
        expiring_not_after=expiring_not_after,
    )


def server_context(leaf: trustme.LeafCert) -> ssl.SSLContext:
    """A TLS server context presenting ``leaf``."""
    ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    leaf.configure_cert(ctx)
    return ctx


def _response(status: str, body: bytes, headers: Mapping[str, str] | None = None) -> bytes:
    head = [f"HTTP/1.1 {status}", f"Content-Length: {len(body)}", "Connection: close"]
    head += [f"{k}: {v}" for k, v in (headers or {}).items()]
    return ("\r\n".join(head) + "\r\n\r\n").encode() + body


@dataclass(slots=True)
class _HttpsServer:
    """Serves the paths in the module docstring; counts accepted connections."""

    port: int
    connections: int = 0

    async def handle(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        self.connections += 1
        try:
            head = await reader.readuntil(b"\r\n\r\n")
            method, target, _ = head.split(b"\r\n", 1)[0].decode().split(" ", 2)
            await self.respond(method, target, writer)
            await writer.drain()
        except (OSError, asyncio.IncompleteReadError, asyncio.LimitOverrunError, ValueError):
            pass  # the probe gave up or sent nonsense: nothing to answer
        finally:
            writer.close()
            with contextlib.suppress(OSError):
                await writer.wait_closed()

    async def respond(self, method: str, target: str, writer: asyncio.StreamWriter) -> None:
        parts = urlsplit(target)
        path = parts.path
        if path == "/slow":
            await asyncio.sleep(float(parse_qs(parts.query)["s"][0]))
            path = "/ok"
        if path == "/ok":
            ok = _response("200 OK", PAGE)
            writer.write(ok[: -len(PAGE)] if method == "HEAD" else ok)
        elif path == "/503":
            writer.write(_response("503 Service Unavailable", b"busy"))
        elif path.startswith("/redirect/"):
            left = int(path.rsplit("/", 1)[1])
            location = "/ok" if left == 0 else f"/redirect/{left - 1}"
            writer.write(_response("302 Found", b"", {"Location": location}))
        elif path == "/loop":
            writer.write(_response("302 Found", b"", {"Location": "/loop"}))
        elif path == "/abs-redirect":
            location = f"https://portal.test:{self.port}/ok"
            writer.write(_response("301 Moved Permanently", b"", {"Location": location}))
        elif path == "/chunked":
            half = len(PAGE) // 2 + 3  # splits the text's UTF-8 bytes across two chunks
            writer.write(b"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n")
            for piece in (PAGE[:half], PAGE[half:]):
                writer.write(b"%x;ext=1\r\n%s\r\n" % (len(piece), piece))
            writer.write(b"0\r\n\r\n")
        elif path == "/wrong":
            writer.write(_response("200 OK", WRONG_PAGE))
        elif path == "/eof":
            writer.write(b"HTTP/1.1 200 OK\r\nContent-Length: 1000\r\n\r\n0123456789")
        elif path == "/to-eof":
            writer.write(b"HTTP/1.1 200 OK\r\nConnection: close\r\n\r\n" + PAGE)
        elif path == "/peer":
            peer = writer.get_extra_info("peername")
            writer.write(_response("200 OK", f"peer={peer[0]}".encode()))
        elif path == "/garbage":
            writer.write(b"SSH-2.0-OpenSSH_9.2\r\n\r\n")
        else:
            writer.write(_response("404 Not Found", b"no such page"))


def _dns_answer(
    zone: Mapping[tuple[str, str], tuple[str, ...]],
    query: dns.message.Message,
    *,
    tcp: bool,
    client: str = HOST,
) -> dns.message.Message | None:
    """A tiny authoritative-looking server for the ``.test`` names the tests use.

    ``silent.test`` is never answered; ``big.test`` is truncated over UDP (answer over TCP);
    ``whoami.test`` A is the asking client's address (source binding tests).
    """
    question = query.question[0]
    name = question.name.to_text(omit_final_dot=True).lower()
    rtype = dns.rdatatype.to_text(question.rdtype)
    if name == "silent.test":
        return None  # never answers: the probe must time out
    response = dns.message.make_response(query)
    response.flags |= dns.flags.RA
    if name == "big.test" and not tcp:
        response.flags |= dns.flags.TC
    elif name == "whoami.test" and rtype == "A":
        response.answer.append(dns.rrset.from_text(f"{name}.", 0, "IN", "A", client))
    elif name == "servfail.test":
        response.set_rcode(dns.rcode.SERVFAIL)
    elif name == "refused.test":
        response.set_rcode(dns.rcode.REFUSED)
    elif name == "notimp.test":
        response.set_rcode(dns.rcode.NOTIMP)
    else:
        owner = name
        cname = zone.get((name, "CNAME"))
        if cname and rtype != "CNAME":
            response.answer.append(dns.rrset.from_text(f"{name}.", 60, "IN", "CNAME", *cname))
            owner = cname[0].rstrip(".")
        addresses = zone.get((owner, rtype))
        if addresses:
            response.answer.append(dns.rrset.from_text(f"{owner}.", 60, "IN", rtype, *addresses))
        elif not any(key[0] == owner for key in zone):
            response.set_rcode(dns.rcode.NXDOMAIN)
        # else: the name exists without this type: NOERROR, empty answer (RFC 2308 NODATA)
    return response


class _DnsProtocol(asyncio.DatagramProtocol):
    """DNS over UDP from ``_dns_answer``."""

    def __init__(self, zone: Mapping[tuple[str, str], tuple[str, ...]]) -> None:
        self.zone = zone
        self.transport: asyncio.DatagramTransport | None = None

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        # 3.11's selector datagram transport does not subclass DatagramTransport.
        self.transport = cast(asyncio.DatagramTransport, transport)

    def datagram_received(self, data: bytes, addr: tuple[str | Any, int]) -> None:
        response = _dns_answer(
            self.zone, dns.message.from_wire(data), tcp=False, client=str(addr[0])
        )
        if response is not None:
            assert self.transport is not None
            self.transport.sendto(response.to_wire(), addr)


async def _dns_over_tcp(
    zone: Mapping[tuple[str, str], tuple[str, ...]],
    reader: asyncio.StreamReader,
    writer: asyncio.StreamWriter,
) -> None:
    """DNS over TCP from ``_dns_answer``: length-prefixed messages (RFC 1035 4.2.2)."""
    try:
        while True:
            size = int.from_bytes(await reader.readexactly(2), "big")
            query = dns.message.from_wire(await reader.readexactly(size))
            response = _dns_answer(zone, query, tcp=True)
            if response is not None:
                wire = response.to_wire()
                writer.write(len(wire).to_bytes(2, "big") + wire)
                await writer.drain()
    except (OSError, asyncio.IncompleteReadError):
        pass  # the client closed after its answer
    finally:
        writer.close()
        with contextlib.suppress(OSError):
            await writer.wait_closed()


DEFAULT_ZONE: Mapping[tuple[str, str], tuple[str, ...]] = {
    ("portal.test", "A"): ("127.0.0.1",),
    ("portal.test", "TXT"): ('"no AAAA here"',),
    ("multi.test", "A"): ("127.0.0.1", "127.0.0.2"),
    ("v6only.test", "AAAA"): ("::1",),
    ("alias.test", "CNAME"): ("portal.test.",),
    ("big.test", "A"): ("127.0.0.1", "127.0.0.2", "127.0.0.3"),
}


class Peers:
    """A background event loop hosting the test servers; use as a context manager."""

    def __init__(self) -> None:
        self._loop = asyncio.new_event_loop()
        self._thread = threading.Thread(target=self._run, name="test-peers", daemon=True)
        self._closers: list[Callable[[], Awaitable[None]]] = []
        self.https: dict[int, _HttpsServer] = {}
        self.errors: list[BaseException] = []  # bugs in the peers themselves; tests assert none

    def _on_error(self, loop: asyncio.AbstractEventLoop, context: dict[str, Any]) -> None:
        exc = context.get("exception")
        if isinstance(exc, OSError):
            return  # aborted handshakes and resets are provoked on purpose
        self.errors.append(exc if exc is not None else RuntimeError(context.get("message")))
        loop.default_exception_handler(context)

    def _run(self) -> None:
        asyncio.set_event_loop(self._loop)
        self._loop.set_exception_handler(self._on_error)
        self._loop.run_forever()

    def __enter__(self) -> Peers:
        self._thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self.call(self._close_all())
        self._loop.call_soon_threadsafe(self._loop.stop)
        self._thread.join(timeout=10)
        self._loop.close()

    def call(self, coro: Awaitable[T]) -> T:
        """Run ``coro`` on the peers' loop and wait for its result."""

        async def wrap() -> T:
            return await coro

        future: Future[T] = asyncio.run_coroutine_threadsafe(wrap(), self._loop)
        return future.result(timeout=10)

    async def _close_all(self) -> None:
        for close in reversed(self._closers):
            await close()
        current = asyncio.current_task()
        pending = [t for t in asyncio.all_tasks() if t is not current]
        for task in pending:
            task.cancel()
        await asyncio.gather(*pending, return_exceptions=True)

    def start_https(self, port: int, ctx: ssl.SSLContext | None) -> _HttpsServer:
        """Serve the test paths on ``port`` over TLS with ``ctx`` (plain HTTP when None)."""
        server = _HttpsServer(port)

        async def start() -> None:
            srv = await asyncio.start_server(server.handle, HOST, port, ssl=ctx, reuse_address=True)

            async def close() -> None:
                srv.close()
                await srv.wait_closed()

            self._closers.append(close)

        self.call(start())
        self.https[port] = server
        return server

    def start_stuck(self, port: int) -> None:
        """Accept TCP connections and never say anything: a TLS handshake never completes."""
        held: list[socket.socket] = []
        listener = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
        listener.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        listener.bind((HOST, port))
        listener.listen(16)
        listener.setblocking(False)

        def accept() -> None:
            with contextlib.suppress(BlockingIOError):
                conn, _ = listener.accept()
                held.append(conn)

        async def start() -> None:
            asyncio.get_running_loop().add_reader(listener.fileno(), accept)

            async def close() -> None:
                asyncio.get_running_loop().remove_reader(listener.fileno())
                for conn in held:
                    conn.close()
                listener.close()

            self._closers.append(close)

        self.call(start())

    def start_dns(
        self, port: int, zone: Mapping[tuple[str, str], tuple[str, ...]] = DEFAULT_ZONE
    ) -> None:
        """Answer DNS over UDP and TCP on ``port`` from ``zone`` (special names: _dns_answer)."""

        async def start() -> None:
            transport, _ = await asyncio.get_running_loop().create_datagram_endpoint(
                lambda: _DnsProtocol(zone), local_addr=(HOST, port)
            )
            tcp = await asyncio.start_server(
                lambda r, w: _dns_over_tcp(zone, r, w), HOST, port, reuse_address=True
            )

            async def close() -> None:
                transport.close()
                tcp.close()
                await tcp.wait_closed()

            self._closers.append(close)

        self.call(start())


@contextlib.contextmanager
def temp_dir() -> Iterator[Path]:
    """A temporary directory removed afterwards."""
    with tempfile.TemporaryDirectory(prefix="netwatch-http-peers-") as name:
        yield Path(name)
