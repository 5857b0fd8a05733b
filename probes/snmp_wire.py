"""SNMP request/response exchange: version-neutral types and a lean v2c client on one UDP socket.

v2c speaks BER through probes/ber.py (a narrow codec for the few message shapes a poller sends
and receives). v3 is probes/snmp_v3.py, on pysnmp's engine, imported on the first v3 request
only: nothing here imports pysnmp. See probes/snmp.py for the measurements behind this split.
"""

from __future__ import annotations

import asyncio
import errno
import ipaddress
import secrets
import socket
from collections.abc import Sequence
from dataclasses import dataclass

from probes import ber
from probes.ber import Kind, Oid, Value, VarBinds
from probes.snmp_types import SnmpFailure

__all__ = [
    "Kind",
    "Oid",
    "Outcome",
    "Reply",
    "Request",
    "V2cClient",
    "V2cTemplate",
    "Value",
    "VarBinds",
    "WireFailure",
    "WireStats",
    "bulk_request",
    "community_octets",
    "get_request",
    "peer_of",
    "random_request_id",
    "settle",
    "udp_socket",
    "v2c_template",
]


@dataclass(frozen=True, slots=True)
class Reply:
    """A Response-PDU that matched the request it answers."""

    error_status: int
    error_index: int
    varbinds: VarBinds


@dataclass(frozen=True, slots=True)
class WireFailure:
    """Why an exchange produced no Response-PDU."""

    reason: SnmpFailure
    detail: str


Outcome = Reply | WireFailure


@dataclass(frozen=True, slots=True)
class WireStats:
    """Counters of the v2c client since its poller was opened."""

    decode_errors: int
    """Datagrams (or answers) that were not valid BER of a v2c message: each failed a request
    to its sender as GARBAGE, or was dropped when it named no request."""
    stray: int
    """Well-formed answers nobody waits for: late, duplicate, or from another address."""


@dataclass(frozen=True, slots=True)
class Request:
    """What to ask, independent of the SNMP version: a GET or a GETBULK (non-repeaters 0)."""

    pdu_tag: int  # ber.GET_REQUEST or ber.GET_BULK_REQUEST
    oids: tuple[Oid, ...]
    max_repetitions: int = 0


def get_request(oids: Sequence[Oid]) -> Request:
    """A GetRequest for the given numeric OIDs."""
    return Request(ber.GET_REQUEST, tuple(oids))


def bulk_request(oids: Sequence[Oid], max_repetitions: int) -> Request:
    """A GetBulkRequest (non-repeaters 0) for the given columns."""
    return Request(ber.GET_BULK_REQUEST, tuple(oids), max_repetitions)


# Request-ids are drawn from [2**24, 2**31) so that BER always encodes them in exactly four
# content octets: a pre-encoded request then changes only in those four bytes.
_RID_LOW = 1 << 24
_RID_SPAN = (1 << 31) - _RID_LOW


def random_request_id() -> int:
    """A random request-id of [2**24, 2**31), as every request of ours carries."""
    return secrets.randbelow(_RID_SPAN) + _RID_LOW


@dataclass(frozen=True, slots=True)
class V2cTemplate:
    """A v2c request encoded once; only the four request-id octets change per send."""

    payload: bytes
    rid_offset: int


_NULL = Value(Kind.NULL, None)


def community_octets(community: str) -> bytes:
    """The community as sent: ISO-8859-1 as pysnmp sent it, UTF-8 for what Latin-1 lacks."""
    try:
        return community.encode("latin-1")
    except UnicodeEncodeError:
        return community.encode("utf-8")


def v2c_template(community: str, request: Request) -> V2cTemplate:
    """Encode request in a v2c message once and locate its request-id octets."""
    payload = ber.encode_message(
        community_octets(community),
        request.pdu_tag,
        _RID_LOW,  # any id of [2**24, 2**31) encodes in four octets, as every real one will
        0,
        request.max_repetitions,
        [(oid, _NULL) for oid in request.oids],
    )
    # The decoder finds the request-id: it ends where error-status begins.
    offset = ber.decode_header(payload).body - 4
    if payload[offset - 2 : offset] != b"\x02\x04":
        raise AssertionError("request-id octets not found in encoded template")
    return V2cTemplate(payload, offset)


def peer_of(address: str, port: int) -> tuple[int, tuple[str, int]]:
    """Socket family and (address, port) as recvfrom reports them, for an IP literal."""
    ip = ipaddress.ip_address(address)
    return (socket.AF_INET6 if ip.version == 6 else socket.AF_INET), (str(ip), port)


def settle(future: asyncio.Future[Outcome], outcome: Outcome) -> None:
    """End a request with outcome unless something else ended it first."""
    # An answer, a timer and close() may each try to end a request: the first one wins.
    if not future.done():
        future.set_result(outcome)


# Room for a burst of answers while the loop is busy decoding: hundreds of requests are in
# flight, and a datagram costs ~2 KiB of buffer, so the 208 KiB default overflows (measured:
# RcvbufErrors and then timeouts at 256 in flight). Capped by net.core.rmem_max.
RECEIVE_BUFFER_BYTES = 4 << 20


def udp_socket(family: int) -> socket.socket:
    """A non-blocking UDP socket bound to an ephemeral port with a large receive buffer."""
    sock = socket.socket(family, socket.SOCK_DGRAM)
    try:
        sock.setblocking(False)
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, RECEIVE_BUFFER_BYTES)
        sock.bind(("::", 0) if family == socket.AF_INET6 else ("0.0.0.0", 0))
    except OSError:
        sock.close()
        raise
    return sock


@dataclass(slots=True, eq=False)
class _Pending:
    """A v2c request awaiting its answer."""

    future: asyncio.Future[Outcome]
    peer: tuple[str, int]
    family: int
    payload: bytes
    timeout_s: float
    retries_left: int
    timer: asyncio.TimerHandle | None = None


class V2cClient:
    """SNMPv2c over one non-blocking UDP socket per address family, demultiplexed by request-id.

    Requests are pre-encoded templates (see V2cTemplate); answers are decoded by probes/ber.py
    and accepted only from the address the request went to. Decoding stops after the
    request-id unless someone waits for it: late and foreign answers cost only their header.
    """

    def __init__(self) -> None:
        """Create the client; sockets open lazily inside the running loop."""
        self._loop = asyncio.get_running_loop()
        self._sockets: dict[int, socket.socket] = {}
        self._pending: dict[int, _Pending] = {}
        self._next_rid = secrets.randbelow(_RID_SPAN)
        self._decode_errors = 0
        self._stray = 0

    def stats(self) -> WireStats:
        """A snapshot of the counters."""
        return WireStats(decode_errors=self._decode_errors, stray=self._stray)

    def _socket(self, family: int) -> socket.socket:
        sock = self._sockets.get(family)
        if sock is None:
            sock = udp_socket(family)
            self._loop.add_reader(sock.fileno(), self._read_ready, sock)
            self._sockets[family] = sock
        return sock

    def close(self) -> None:
        """Close the sockets and fail whatever is still in flight."""
        for sock in self._sockets.values():
            self._loop.remove_reader(sock.fileno())
            sock.close()
        self._sockets.clear()
        for pending in list(self._pending.values()):
            settle(pending.future, WireFailure(SnmpFailure.TRANSPORT_ERROR, "poller closed"))
        self._pending.clear()

    def _request_id(self) -> int:
        while True:
            self._next_rid = (self._next_rid + 1) % _RID_SPAN
            rid = self._next_rid + _RID_LOW
            if rid not in self._pending:
                return rid

    async def exchange(
        self,
        address: str,
        port: int,
        template: V2cTemplate,
        timeout_s: float,
        retries: int,
    ) -> Outcome:
        """Send one request (retrying on timeout) and return its answer or why there is none."""
        family, peer = peer_of(address, port)
        rid = self._request_id()
        off = template.rid_offset
        payload = template.payload[:off] + rid.to_bytes(4, "big") + template.payload[off + 4 :]
        pending = _Pending(self._loop.create_future(), peer, family, payload, timeout_s, retries)
        self._pending[rid] = pending
        try:
            self._send(rid, pending)
            return await pending.future
        finally:
            # Also on cancellation: nothing of this request may linger.
            if self._pending.get(rid) is pending:
                del self._pending[rid]
            if pending.timer is not None:
                pending.timer.cancel()

    def _send(self, rid: int, pending: _Pending) -> None:
        try:
            self._socket(pending.family).sendto(pending.payload, pending.peer)
        except OSError as exc:
            name = errno.errorcode.get(exc.errno or 0, "OSError")
            self._pending.pop(rid, None)
            failure = WireFailure(SnmpFailure.TRANSPORT_ERROR, f"send failed: {name}")
            settle(pending.future, failure)
            return
        pending.timer = self._loop.call_later(pending.timeout_s, self._expire, rid)

    def _expire(self, rid: int) -> None:
        pending = self._pending.get(rid)
        if pending is None:
            return
        if pending.retries_left > 0:
            pending.retries_left -= 1
            # Same bytes, same request-id: a late answer to the first try still counts.
            self._send(rid, pending)
            return
        del self._pending[rid]
        settle(pending.future, WireFailure(SnmpFailure.TIMEOUT, "no response"))

    def _read_ready(self, sock: socket.socket) -> None:
        # Drain everything queued: one wake-up serves a burst of answers.
        for _ in range(256):
            try:
                data, addr = sock.recvfrom(65535)
            except (BlockingIOError, InterruptedError):
                return
            except OSError:
                # An ICMP error queued on the socket; it names no request, the timer handles it.
                continue
            self._datagram(data, (addr[0], addr[1]))

    def _datagram(self, data: bytes, peer: tuple[str, int]) -> None:
        try:
            header = ber.decode_header(data)
        except ber.BerError as exc:
            self._decode_errors += 1
            self._garbage_from(peer, f"undecodable datagram: {exc}")
            return
        rid = header.request_id
        pending = self._pending.get(rid)
        if pending is None or pending.peer != peer:
            self._stray += 1
            return  # late, duplicate, or from an address we did not ask: ignore
        del self._pending[rid]
        if header.version != ber.VERSION_2C:
            failure = WireFailure(SnmpFailure.GARBAGE, f"message version {header.version}")
        elif header.pdu_tag != ber.RESPONSE:
            failure = WireFailure(SnmpFailure.GARBAGE, "answer is not a Response-PDU")
        else:
            try:
                error_status, error_index, varbinds = ber.decode_body(data, header)
            except ber.BerError as exc:
                self._decode_errors += 1
                failure = WireFailure(SnmpFailure.GARBAGE, f"undecodable response: {exc}")
            else:
                settle(pending.future, Reply(error_status, error_index, varbinds))
                return
        settle(pending.future, failure)

    def _garbage_from(self, peer: tuple[str, int], detail: str) -> None:
        # Undecodable means no request-id: blame what is pending towards that address (rare path,
        # so a scan of the in-flight table is fine).
        for rid, pending in list(self._pending.items()):
            if pending.peer == peer:
                del self._pending[rid]
                settle(pending.future, WireFailure(SnmpFailure.GARBAGE, detail))
