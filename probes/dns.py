"""DNS probe: how long a configured resolver takes to answer A/AAAA for a name, and what it says.

One query over a connected UDP socket (so a resolver whose port is closed is reported at once
from the ICMP error instead of as a timeout; dnspython's own asyncio UDP uses an unconnected
socket) straight to the resolver communes use, and over TCP when the answer is truncated
(RFC 7766). dnspython builds and parses the messages. Every outcome a resolver can give is a value:
NXDOMAIN, SERVFAIL (any other error rcode is reported as SERVFAIL with the real rcode in
``detail``), REFUSED, NO_ANSWER (NOERROR without a record of the asked type, RFC 2308 NODATA),
TIMEOUT and TRANSPORT_ERROR (port unreachable, malformed or mismatched reply).
"""

from __future__ import annotations

import asyncio
import enum
import ipaddress
import socket
import time
from dataclasses import dataclass, replace
from datetime import UTC, datetime
from typing import Any

import dns.asyncbackend
import dns.asyncquery
import dns.exception
import dns.flags
import dns.message
import dns.name
import dns.rcode
import dns.rdatatype

__all__ = [
    "DnsFailure",
    "DnsResult",
    "bound_socket",
    "parse_resolver",
    "probe_dns",
    "resolve_host",
]

_RTYPES = {"A": dns.rdatatype.A, "AAAA": dns.rdatatype.AAAA}


class DnsFailure(enum.Enum):
    """Why a DNS probe did not produce an address."""

    NXDOMAIN = "nxdomain"
    SERVFAIL = "servfail"
    TIMEOUT = "timeout"
    NO_ANSWER = "no_answer"
    REFUSED = "refused"
    TRANSPORT_ERROR = "transport_error"


@dataclass(frozen=True, slots=True)
class DnsResult:
    """One DNS probe: the addresses a resolver gave for a name and how long it took."""

    name: str
    resolver: str
    rtype: str
    addresses: tuple[str, ...]
    rtt_s: float | None
    failure: DnsFailure | None
    detail: str
    started_at: datetime

    @property
    def ok(self) -> bool:
        """True when the resolver answered with at least one address."""
        return self.failure is None


class _UdpExchange(asyncio.DatagramProtocol):
    """One query on a connected UDP socket, so an ICMP port unreachable is seen at once."""

    def __init__(
        self, query: dns.message.Message, done: asyncio.Future[tuple[dns.message.Message, float]]
    ) -> None:
        self.query = query
        self.done = done

    def datagram_received(self, data: bytes, addr: tuple[str | Any, int]) -> None:
        t_answer = time.monotonic()
        if self.done.done():
            return
        try:
            response = dns.message.from_wire(data, ignore_trailing=True)
        except dns.exception.DNSException as exc:
            self.done.set_exception(exc)
            return
        # A reply to some other question (a stray or spoofed packet) is not our answer.
        if self.query.is_response(response):
            self.done.set_result((response, t_answer))

    def error_received(self, exc: Exception) -> None:
        if not self.done.done():
            self.done.set_exception(exc)

    def connection_lost(self, exc: Exception | None) -> None:
        if not self.done.done():
            self.done.set_exception(exc or EOFError("socket closed"))


def bound_socket(
    family: int, kind: int, *, source: str | None, interface: str | None
) -> socket.socket:
    """A non-blocking socket bound to ``interface`` (SO_BINDTODEVICE) and/or ``source``."""
    sock = socket.socket(family, kind)
    try:
        sock.setblocking(False)
        if interface is not None:
            sock.setsockopt(socket.SOL_SOCKET, socket.SO_BINDTODEVICE, interface.encode())
        if source is not None:
            sock.bind((source, 0))
    except BaseException:
        sock.close()
        raise
    return sock


async def _exchange_udp(
    query: dns.message.Message,
    resolver: str,
    port: int,
    timeout_s: float,
    *,
    source: str | None = None,
    interface: str | None = None,
) -> tuple[dns.message.Message, float]:
    """Send ``query`` and wait for its answer: (response, monotonic time it arrived)."""
    loop = asyncio.get_running_loop()
    done: asyncio.Future[tuple[dns.message.Message, float]] = loop.create_future()
    family = socket.AF_INET6 if ":" in resolver else socket.AF_INET
    if source is None and interface is None:
        transport, _ = await loop.create_datagram_endpoint(
            lambda: _UdpExchange(query, done), remote_addr=(resolver, port), family=family
        )
    else:
        sock = bound_socket(family, socket.SOCK_DGRAM, source=source, interface=interface)
        try:
            sock.connect((resolver, port))
        except BaseException:
            sock.close()
            raise
        transport, _ = await loop.create_datagram_endpoint(
            lambda: _UdpExchange(query, done), sock=sock
        )
    try:
        transport.sendto(query.to_wire())
        async with asyncio.timeout(timeout_s):
            return await done
    finally:
        transport.close()


def parse_resolver(text: str, default_port: int = 53) -> tuple[str, int]:
    """Split ``"addr"``, ``"addr:port"`` or ``"[v6]:port"`` into an IP literal and a port."""
    text = text.strip()
    host, port = text, default_port
    if text.startswith("["):
        end = text.find("]")
        if end < 0:
            raise ValueError(f"resolver {text!r}: missing ']'")
        host, rest = text[1:end], text[end + 1 :]
        if rest:
            if not rest.startswith(":"):
                raise ValueError(f"resolver {text!r}: expected ':port' after ']'")
            port = int(rest[1:])
    elif text.count(":") == 1:
        host, _, port_text = text.partition(":")
        port = int(port_text)
    try:
        ipaddress.ip_address(host)
    except ValueError:
        # A resolver named by a host name would need a resolver to find it.
        raise ValueError(f"resolver {text!r}: must be an IP address") from None
    if not 0 < port < 65536:
        raise ValueError(f"resolver {text!r}: port {port} out of range")
    return host, port


async def probe_dns(
    name: str,
    resolver: str,
    *,
    port: int = 53,
    rtype: str = "A",
    timeout_s: float = 2.0,
    source: str | None = None,
    interface: str | None = None,
) -> DnsResult:
    """Ask ``resolver`` (an IP) for ``rtype`` records of ``name``; network faults are values.

    ``source`` / ``interface`` bind the query's socket (a commune agent asks over one path).
    """
    started_at = datetime.now(UTC)
    rdtype = _RTYPES.get(rtype.upper())
    if rdtype is None:
        raise ValueError(f"rtype {rtype!r}: only A and AAAA are supported")
    query = dns.message.make_query(dns.name.from_text(name), rdtype)

    def result(
        failure: DnsFailure | None,
        detail: str,
        rtt_s: float | None = None,
        addresses: tuple[str, ...] = (),
    ) -> DnsResult:
        return DnsResult(
            name=name,
            resolver=resolver,
            rtype=rtype.upper(),
            addresses=addresses,
            rtt_s=rtt_s,
            failure=failure,
            detail=detail,
            started_at=started_at,
        )

    t0 = time.monotonic()
    try:
        response, t_answer = await _exchange_udp(
            query, resolver, port, timeout_s, source=source, interface=interface
        )
        if response.flags & dns.flags.TC:
            # Truncated over UDP: ask again over TCP (RFC 7766), within the same budget.
            remaining_s = max(timeout_s - (time.monotonic() - t0), 0.001)
            response = await dns.asyncquery.tcp(
                query,
                resolver,
                timeout=remaining_s,
                port=port,
                source=source,
                backend=dns.asyncbackend.get_backend("asyncio"),
            )
            t_answer = time.monotonic()
    except (TimeoutError, dns.exception.Timeout):
        return result(DnsFailure.TIMEOUT, f"no answer within {timeout_s:g} s")
    except (OSError, EOFError, dns.exception.DNSException) as exc:
        # Port unreachable (ICMP), reset TCP fallback, a malformed reply.
        return result(DnsFailure.TRANSPORT_ERROR, f"{type(exc).__name__}: {exc}".rstrip(": "))
    rtt_s = t_answer - t0

    rcode = response.rcode()
    if rcode == dns.rcode.NXDOMAIN:
        return result(DnsFailure.NXDOMAIN, "NXDOMAIN", rtt_s)
    if rcode == dns.rcode.REFUSED:
        return result(DnsFailure.REFUSED, "REFUSED", rtt_s)
    if rcode != dns.rcode.NOERROR:
        return result(DnsFailure.SERVFAIL, dns.rcode.to_text(rcode), rtt_s)
    # Follow no CNAME ourselves: a recursive resolver puts the chain and its target in the
    # answer section, so every record of the asked type there belongs to the name.
    addresses = tuple(
        rdata.address for rrset in response.answer if rrset.rdtype == rdtype for rdata in rrset
    )
    if not addresses:
        return result(DnsFailure.NO_ANSWER, f"NOERROR without {rtype.upper()} records", rtt_s)
    return result(None, "", rtt_s, addresses)


async def resolve_host(
    name: str,
    resolver: str,
    *,
    port: int = 53,
    timeout_s: float = 2.0,
    source: str | None = None,
    interface: str | None = None,
) -> DnsResult:
    """Resolve ``name`` for connecting: A first, AAAA when the name has no A record."""
    bind: dict[str, Any] = {"source": source, "interface": interface}
    result = await probe_dns(name, resolver, port=port, rtype="A", timeout_s=timeout_s, **bind)
    if result.failure is DnsFailure.NO_ANSWER:
        aaaa = await probe_dns(name, resolver, port=port, rtype="AAAA", timeout_s=timeout_s, **bind)
        if aaaa.failure is None:
            # The time to the address is both queries, counted from the first.
            rtt_s = (result.rtt_s or 0.0) + (aaaa.rtt_s or 0.0)
            return replace(aaaa, rtt_s=rtt_s, started_at=result.started_at)
    return result
