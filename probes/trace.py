"""Path trace: where the path toward an address stops, MTR-style, in a second or two.

Taken when a ticket is about to open, so it must be quick on a *broken* path, where most probes
never come back: every TTL from 1 to ``max_hops`` is probed at once (as mtr and Paris-traceroute
do, rather than classic traceroute's TTL after TTL), ``probes_per_hop`` sweeps ``spacing_s``
apart, and the trace ends ``timeout_s`` after the last sweep, or earlier once every probe is
accounted for. Wall time on a broken path: ``(probes_per_hop - 1) * spacing_s + timeout_s``.

Probes are ICMP echo requests with a limited TTL (hop limit) on one raw socket per trace:
routers on the way answer "time exceeded" from their own address, the target answers the echo,
a router without a route may answer "destination unreachable"; a blackhole says nothing. Each
echo carries this trace's identifier, a random cookie and its serial (sweep, target, TTL), so
concurrent traces and the engine's pinger never take each other's answers, and an RFC 792
router that quotes only 8 bytes of the echo is still matched by its sequence number. RTTs are
kernel receive timestamps minus the send time, as in probes/icmp.py.

Why our own code and not mtr or scamper: docs/probes.md has the figures.
"""

from __future__ import annotations

import asyncio
import enum
import math
import os
import socket
import statistics
import time
from collections import Counter
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Final

from icmplib.utils import unique_identifier

from probes import _icmp_packet as pkt
from probes.icmp import IcmpUnavailableError, open_icmp_socket

__all__ = [
    "TraceHop",
    "TraceResult",
    "TraceStop",
    "format_trace",
    "trace_path",
    "trace_paths",
]

_NS_PER_S: Final = 1_000_000_000
_PAYLOAD_SIZE: Final = 24  # cookie and serial, and a little filler: small, like mtr's 64 bytes

# What answered one probe (a slot's outcome); a pending probe has none yet.
_ECHO: Final = 0
_TIME_EXCEEDED: Final = 1
_UNREACHABLE: Final = 2


class TraceStop(enum.Enum):
    """How the path toward the target ended."""

    REACHED = "reached"
    """The target answered the echo."""
    SILENT = "silent"
    """Nothing answered beyond the last hop listed (a blackhole, a cut link, a filter)."""
    UNREACHABLE = "unreachable"
    """A router on the way answered "destination unreachable" (it has no route)."""
    MAX_HOPS = "max_hops"
    """Routers still answered "time exceeded" at the largest TTL probed."""
    SEND_ERROR = "send_error"
    """The local stack refused every probe (no route from NetWatch itself)."""


@dataclass(frozen=True, slots=True)
class TraceHop:
    """One TTL of the path: who answered and how fast (an MTR line)."""

    ttl: int
    address: str | None  # the router (or the target) that answered; None: nothing did
    sent: int
    received: int
    rtt_median_s: float | None
    rtts_s: tuple[float, ...]
    # More than one address at this TTL (load balancing, a route change mid-trace): the others.
    other_addresses: tuple[str, ...] = ()


@dataclass(frozen=True, slots=True)
class TraceResult:
    """The path toward one target: its hops, in TTL order, up to where it stops."""

    target: str
    started_at: datetime
    hops: tuple[TraceHop, ...]
    stop: TraceStop
    duration_s: float

    @property
    def reached(self) -> bool:
        """The target itself answered."""
        return self.stop is TraceStop.REACHED

    def last_hop(self) -> TraceHop | None:
        """The farthest hop that answered: where the path stops when the target did not."""
        answered = [hop for hop in self.hops if hop.address is not None and hop.received]
        return answered[-1] if answered else None


class _Trace:
    """One trace call: its socket, its probes in flat slot-indexed tables, its answers."""

    def __init__(
        self,
        targets: Sequence[str],
        family: int,
        *,
        max_hops: int,
        probes_per_hop: int,
    ) -> None:
        self.targets = targets
        self.family = family
        self.v4 = family == socket.AF_INET
        self.max_hops = max_hops
        self.probes = probes_per_hop
        self.per_sweep = len(targets) * max_hops
        self.total = self.per_sweep * probes_per_hop
        # Slot = serial = sweep * per_sweep + target * max_hops + (ttl - 1).
        self.send_ns = [0] * self.total  # 0: not sent yet, -1: the send failed
        self.kind: list[int | None] = [None] * self.total
        self.rtt_ns = [0] * self.total
        self.source: list[str | None] = [None] * self.total
        self.settled = 0
        self.cookie = int.from_bytes(os.urandom(4), "big")
        self.identifier = unique_identifier()
        self.request = pkt.ECHO_REQUEST_V4 if self.v4 else pkt.ECHO_REQUEST_V6
        self.reply = pkt.ECHO_REPLY_V4 if self.v4 else pkt.ECHO_REPLY_V6
        self.exceeded = pkt.TIME_EXCEEDED_V4 if self.v4 else pkt.TIME_EXCEEDED_V6
        self.unreach = pkt.DEST_UNREACH_V4 if self.v4 else pkt.DEST_UNREACH_V6
        self.template, self.partial = pkt.echo_template(
            self.request, self.identifier, self.cookie, _PAYLOAD_SIZE
        )
        self.buffer = bytearray(pkt.RECV_SIZE)
        self.done: asyncio.Future[None] | None = None

    # --- sending -------------------------------------------------------------------------

    def send_sweep(self, sock: socket.socket, sweep: int) -> None:
        """Probe every TTL of every target once; a refused send settles its slot at once."""
        level, option = (
            (socket.IPPROTO_IP, socket.IP_TTL)
            if self.v4
            else (socket.IPPROTO_IPV6, socket.IPV6_UNICAST_HOPS)
        )
        packet = self.template
        base = sweep * self.per_sweep
        for index, target in enumerate(self.targets):
            dest = (target, 0)
            for ttl in range(1, self.max_hops + 1):
                serial = base + index * self.max_hops + ttl - 1
                seq = serial & 0xFFFF
                high = serial >> 16
                csum = self.partial + seq + (high >> 16) + (high & 0xFFFF)
                csum = (csum & 0xFFFF) + (csum >> 16)
                csum = (csum & 0xFFFF) + (csum >> 16)
                pkt.ECHO_FIELDS.pack_into(
                    packet, 2, ~csum & 0xFFFF, self.identifier, seq, self.cookie, high
                )
                sock.setsockopt(level, option, ttl)
                stamp = time.time_ns()
                try:
                    sock.sendto(packet, dest)
                except OSError as exc:
                    if exc.errno in pkt.TRANSIENT_SEND_ERRNOS:
                        # A few dozen probes never fill a send buffer; treat it as lost.
                        self.send_ns[serial] = stamp
                        continue
                    self.send_ns[serial] = -1
                    self._settle()
                else:
                    self.send_ns[serial] = stamp

    # --- receiving -----------------------------------------------------------------------

    def on_readable(self, sock: socket.socket) -> None:
        """Drain the socket, matching each answer to its probe."""
        buffer = self.buffer
        while True:
            try:
                size, ancdata, _flags, addr = sock.recvmsg_into([buffer], pkt.ANC_TIMESTAMP_SIZE)
            except (BlockingIOError, InterruptedError):
                return
            except OSError:
                return
            rx_ns = 0
            for level, kind, value in ancdata:
                if level == socket.SOL_SOCKET and kind == pkt.SO_TIMESTAMPNS:
                    sec, nsec = pkt.TIMESPEC.unpack(value)
                    rx_ns = sec * _NS_PER_S + nsec
            self._on_packet(bytes(buffer[:size]), addr[0], rx_ns or time.time_ns())

    def _on_packet(self, data: bytes, source: str, rx_ns: int) -> None:
        offset = (data[0] & 0x0F) << 2 if self.v4 and data else 0
        if len(data) < offset + pkt.ECHO_SHORT.size:
            return
        icmp_type = data[offset]
        if icmp_type == self.reply:
            if len(data) < offset + pkt.ECHO_HEADER.size:
                return
            _t, _c, _s, ident, seq, cookie, high = pkt.ECHO_HEADER.unpack_from(data, offset)
            if ident != self.identifier or cookie != self.cookie:
                return
            self._answer((high << 16) | seq, _ECHO, source, rx_ns)
        elif icmp_type in (self.exceeded, self.unreach):
            quoted = self._quoted_echo(data, offset + 8)
            if quoted is None:
                return
            kind = _TIME_EXCEEDED if icmp_type == self.exceeded else _UNREACHABLE
            self._answer(quoted, kind, source, rx_ns)

    def _quoted_echo(self, data: bytes, inner: int) -> int | None:
        """The serial of our echo quoted by an ICMP error, or None when it is not ours."""
        if self.v4:
            if len(data) < inner + 20 or data[inner + 9] != socket.IPPROTO_ICMP:
                return None
            quoted = inner + ((data[inner] & 0x0F) << 2)
        else:
            if len(data) < inner + 40 or data[inner + 6] != socket.IPPROTO_ICMPV6:
                return None
            quoted = inner + 40
        if len(data) < quoted + pkt.ECHO_SHORT.size:
            return None
        request, _code, _csum, ident, seq = pkt.ECHO_SHORT.unpack_from(data, quoted)
        if request != self.request or ident != self.identifier:
            return None
        if len(data) >= quoted + pkt.ECHO_HEADER.size:
            *_, cookie, high = pkt.ECHO_HEADER.unpack_from(data, quoted)
            if cookie != self.cookie:
                return None
            return int((high << 16) | seq)
        # RFC 792 routers quote only 8 bytes: the sequence alone (a trace has < 65,536 probes).
        return int(seq)

    def _answer(self, serial: int, kind: int, source: str, rx_ns: int) -> None:
        if not 0 <= serial < self.total or self.send_ns[serial] <= 0:
            return
        if self.kind[serial] is not None:
            return  # a duplicate
        self.kind[serial] = kind
        self.rtt_ns[serial] = max(rx_ns - self.send_ns[serial], 0)
        self.source[serial] = source
        self._settle()

    def _settle(self) -> None:
        self.settled += 1
        if self.settled >= self.total and self.done is not None and not self.done.done():
            self.done.set_result(None)

    # --- the result ----------------------------------------------------------------------

    def result(self, index: int, started_at: datetime, duration_s: float) -> TraceResult:
        """The path toward target ``index``: hops up to where it stops, and how it stopped."""
        target = self.targets[index]
        per_ttl: list[list[int]] = []
        for ttl in range(1, self.max_hops + 1):
            per_ttl.append(
                [
                    sweep * self.per_sweep + index * self.max_hops + ttl - 1
                    for sweep in range(self.probes)
                ]
            )
        if all(self.send_ns[s] == -1 for slots in per_ttl for s in slots):
            hop = TraceHop(1, None, 0, 0, None, ())
            return TraceResult(target, started_at, (hop,), TraceStop.SEND_ERROR, duration_s)
        # The path ends at the first TTL answered by the target or by "unreachable"; probes
        # with a larger TTL only repeat that answer.
        end, stop = self.max_hops, TraceStop.MAX_HOPS
        for ttl, slots in enumerate(per_ttl, start=1):
            kinds = {self.kind[s] for s in slots}
            if _ECHO in kinds:
                end, stop = ttl, TraceStop.REACHED
                break
            if _UNREACHABLE in kinds:
                end, stop = ttl, TraceStop.UNREACHABLE
                break
        if stop is TraceStop.MAX_HOPS:
            answered = [
                ttl
                for ttl, slots in enumerate(per_ttl, start=1)
                if any(self.kind[s] is not None for s in slots)
            ]
            last = answered[-1] if answered else 0
            if last < self.max_hops:
                # One silent hop after the last answer shows where the path breaks.
                end, stop = last + 1, TraceStop.SILENT
        hops = tuple(self._hop(ttl, per_ttl[ttl - 1]) for ttl in range(1, end + 1))
        return TraceResult(target, started_at, hops, stop, duration_s)

    def _hop(self, ttl: int, slots: list[int]) -> TraceHop:
        sent = sum(1 for s in slots if self.send_ns[s] > 0)
        answers = [s for s in slots if self.kind[s] is not None]
        rtts = tuple(self.rtt_ns[s] / _NS_PER_S for s in answers)
        counts = Counter(source for s in answers if (source := self.source[s]) is not None)
        ranked = [address for address, _n in counts.most_common()]
        return TraceHop(
            ttl=ttl,
            address=ranked[0] if ranked else None,
            sent=sent,
            received=len(answers),
            rtt_median_s=statistics.median(rtts) if rtts else None,
            rtts_s=rtts,
            other_addresses=tuple(ranked[1:]),
        )


def _open_socket(family: int) -> socket.socket:
    """The pinger's raw socket (kernel timestamps, large buffers, a filter for echo replies and
    the errors that quote them), or the fix when the process may not open one."""
    try:
        return open_icmp_socket(family, raw=True)
    except PermissionError as exc:
        msg = (
            f"cannot open a raw ICMP socket for the path trace ({exc.strerror}). To fix: run as "
            "root or give the interpreter CAP_NET_RAW (AmbientCapabilities=CAP_NET_RAW in the "
            "systemd unit)"
        )
        raise IcmpUnavailableError(msg) from None


async def _trace_family(
    targets: Sequence[str],
    family: int,
    *,
    max_hops: int,
    probes_per_hop: int,
    spacing_s: float,
    timeout_s: float,
) -> list[TraceResult]:
    loop = asyncio.get_running_loop()
    started_at = datetime.now(UTC)
    t0 = loop.time()
    run = _Trace(targets, family, max_hops=max_hops, probes_per_hop=probes_per_hop)
    run.done = loop.create_future()
    sock = _open_socket(family)
    timers: list[asyncio.TimerHandle] = []
    try:
        loop.add_reader(sock.fileno(), run.on_readable, sock)
        try:
            run.send_sweep(sock, 0)
            for sweep in range(1, probes_per_hop):
                timers.append(loop.call_at(t0 + sweep * spacing_s, run.send_sweep, sock, sweep))
            deadline = (probes_per_hop - 1) * spacing_s + timeout_s
            if run.settled < run.total:
                # Early end once every probe is answered or refused (a healthy path).
                await asyncio.wait([run.done], timeout=deadline)
        finally:
            loop.remove_reader(sock.fileno())
    finally:
        for timer in timers:
            timer.cancel()
        sock.close()
    duration_s = loop.time() - t0
    return [run.result(i, started_at, duration_s) for i in range(len(targets))]


async def trace_paths(
    targets: Sequence[str],
    *,
    max_hops: int = 12,
    probes_per_hop: int = 3,
    spacing_s: float = 0.25,
    timeout_s: float = 1.0,
) -> list[TraceResult]:
    """Trace the path toward each target at once; results in target order.

    Targets are IP address literals. Raises IcmpUnavailableError without CAP_NET_RAW (a setup
    problem); a broken path is a result (``stop``), never an exception.
    """
    if not 1 <= max_hops <= 64:
        msg = f"max_hops must be 1..64, got {max_hops}"
        raise ValueError(msg)
    if not 1 <= probes_per_hop <= 10:
        msg = f"probes_per_hop must be 1..10, got {probes_per_hop}"
        raise ValueError(msg)
    if not (spacing_s >= 0 and timeout_s > 0 and math.isfinite(spacing_s + timeout_s)):
        msg = f"spacing_s must be >= 0 and timeout_s > 0, got {spacing_s}, {timeout_s}"
        raise ValueError(msg)
    by_family: dict[int, list[int]] = {}
    for index, address in enumerate(targets):
        family = socket.AF_INET6 if ":" in address else socket.AF_INET
        try:
            socket.inet_pton(family, address)
        except (OSError, ValueError):
            msg = f"not an IP address: {address!r}"
            raise ValueError(msg) from None
        by_family.setdefault(family, []).append(index)
    if len(targets) * max_hops * probes_per_hop > 0xFFFF:
        # Sequence numbers must stay unique within a trace (8-byte quotes carry only those).
        msg = "too many probes for one trace: split the targets"
        raise ValueError(msg)
    results: list[TraceResult | None] = [None] * len(targets)
    runs = [
        _trace_family(
            [targets[i] for i in indexes],
            family,
            max_hops=max_hops,
            probes_per_hop=probes_per_hop,
            spacing_s=spacing_s,
            timeout_s=timeout_s,
        )
        for family, indexes in by_family.items()
    ]
    for indexes, family_results in zip(
        by_family.values(), await asyncio.gather(*runs), strict=True
    ):
        for index, result in zip(indexes, family_results, strict=True):
            results[index] = result
    return [r for r in results if r is not None]


async def trace_path(
    target: str,
    *,
    max_hops: int = 12,
    probes_per_hop: int = 3,
    spacing_s: float = 0.25,
    timeout_s: float = 1.0,
) -> TraceResult:
    """Trace the path toward one address (see ``trace_paths``)."""
    (result,) = await trace_paths(
        [target],
        max_hops=max_hops,
        probes_per_hop=probes_per_hop,
        spacing_s=spacing_s,
        timeout_s=timeout_s,
    )
    return result


def format_trace(result: TraceResult) -> str:
    """An mtr-like text table, for `netwatch probe --trace` and logs."""
    lines = [f"path to {result.target}: {result.stop.value} ({result.duration_s:.2f} s)"]
    lines.append(f"{'ttl':>3}  {'address':<39} {'loss':>5} {'median':>9}")
    for hop in result.hops:
        loss = 1 - hop.received / hop.sent if hop.sent else 1.0
        rtt = f"{hop.rtt_median_s * 1000:.2f} ms" if hop.rtt_median_s is not None else "—"
        lines.append(f"{hop.ttl:>3}  {hop.address or '*':<39} {loss:>5.0%} {rtt:>9}")
    return "\n".join(lines)
