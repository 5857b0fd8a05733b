"""ICMP echo probe: SmokePing-style rounds to thousands of targets over one socket per family.

Design (benchmarks/bench_icmp.py measures it against fping):

* One socket per address family serves every target and every concurrent round. Replies are
  demultiplexed by (identifier, sequence): the identifier is the pinger's, the sequence is the
  low 16 bits of a 48-bit per-pinger echo serial whose high bits ride in the payload next to a
  random cookie. A round owns a contiguous block of serials, so ``serial - round.base`` is the
  slot ``echo_index * len(targets) + target_index``: no per-echo dict, no per-echo object.
* RTT = kernel receive timestamp (SO_TIMESTAMPNS, CLOCK_REALTIME) minus a CLOCK_REALTIME
  reading taken just before the send. Neither end depends on when the event loop gets to run,
  so a busy loop delays the bookkeeping, not the measurement.
* Echoes leave by ``sendmmsg`` and replies are read by ``recvmmsg`` (probes/_icmp_batch.py):
  one system call per run of echoes or per batch of replies, no Python object per reply, and
  a batch of ordinary replies accounted at once.
* Sends are paced by a token bucket refilled on a 5 ms timer (a timer per packet would cost
  more than the packet), sweep by sweep: echo k of every target, then echo k+1 of every target
  ``spacing_s`` later, like SmokePing's fping driver. While a sweep goes out, replies are read
  on that timer too (one loop wake-up per tick, not two); otherwise the loop wakes on them.

Why not icmplib's pinger: ``async_multiping`` opens a raw socket per concurrent request, so the
kernel copies every reply to every socket and each copy is parsed into Python objects; on this
machine that costs ~25x fping's CPU and loses replies at high concurrency (BASELINES.md).
Its packet builder computes the checksum byte pair by byte pair in Python for every packet.
We use icmplib for what it does well off the hot path: identifier allocation that does not
collide with other icmplib users in the process, and name resolution for ``ping_once``.
"""

from __future__ import annotations

import asyncio
import enum
import errno
import logging
import math
import operator
import os
import socket
import time
from collections import deque
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from itertools import repeat
from types import TracebackType
from typing import Final, Self

from icmplib.exceptions import NameLookupError
from icmplib.utils import async_resolve, unique_identifier

from probes import _icmp_batch as batch
from probes import _icmp_packet as pkt

__all__ = [
    "IcmpPinger",
    "IcmpUnavailableError",
    "PingFailure",
    "PingResult",
    "PingerStats",
    "format_ping_table",
    "open_icmp_socket",
    "ping_once",
]

_log = logging.getLogger(__name__)

# Slot states in a round's rtt table; a measured RTT (ns) is >= 0.
_PENDING: Final = -1
_SEND_FAILED: Final = -2
_UNREACHABLE: Final = -3
_TIME_EXCEEDED: Final = -4
_LATE: Final = -5

_NS_PER_S: Final = 1_000_000_000
# The pacing timer period: a 10,000 pps bucket sends 50 echoes (to 50 targets, one sendmmsg)
# per tick. Each tick is a loop wake-up from sleep, the biggest cost after the packets
# themselves (the kernel's sleep and wake-up more than the loop's work): at 1 ms the pinger
# spent ~25 % more CPU per echo than at 2 ms, and at 2 ms ~14 % more than at 5 ms (0.328 s vs
# 0.287 s per bench_icmp process, 7 interleaved runs each); 10 ms saved little more (0.279 s).
# 50 echoes of 84 bytes to 50 different targets is a 4 KB burst: nothing a link notices.
_TICK_S: Final = 0.005
# At most this many seconds' worth of tokens accumulate (two ticks: a tick that comes late does
# not lower the rate), so a stalled loop resumes with a short burst rather than a flood.
_BURST_S: Final = 0.010
# Echoes per sendmmsg. They all carry the clock read just before the call, so the longer the run
# the more a later echo's RTT is overstated (by the time the kernel took for the ones before it:
# a few microseconds each). 4 per call keeps that to microseconds at the same CPU as 50 (0.286 s
# vs 0.285 s per bench_icmp process; one per call, one ctypes call per echo, cost 0.408 s).
_SEND_RUN: Final = 4
_RECV_BUFFER_BYTES: Final = 8 * 1024 * 1024
_SEND_BUFFER_BYTES: Final = 1024 * 1024
_SO_SNDBUFFORCE: Final = 32
_FINISHED_ROUNDS_KEPT: Final = 8
# Replies read at once from which _take_batch is tried: below, reply by reply costs less.
_BATCH_MIN: Final = 4
_IPV4_NO_OPTIONS: Final = b"\x45"  # version 4, header length 5 words
_SHIFT_16: Final = 1 << 16


class PingFailure(enum.Enum):
    """Why a target answered no echo in a round."""

    NO_REPLY = "no_reply"
    """Echoes were sent, nothing came back before the timeout."""
    UNREACHABLE = "unreachable"
    """An ICMP destination unreachable came back for at least one echo."""
    TIME_EXCEEDED = "time_exceeded"
    """An ICMP time exceeded came back (routing loop or too long a path)."""
    SEND_ERROR = "send_error"
    """The local stack refused the echoes (no route, blackhole, link down)."""
    RESOLVE_ERROR = "resolve_error"
    """``ping_once`` could not resolve the name it was given."""


@dataclass(frozen=True, slots=True)
class PingResult:
    """One target's outcome of one round.

    ``jitter_s`` is the mean absolute difference between consecutive RTTs of the echoes that
    came back, in send order (the ``|D(i-1,i)|`` of RFC 3550 section 6.4.1 without its 1/16
    smoothing, as ping's "mdev" and mtr's "Jttr" report it); None with fewer than two replies.
    ``sent`` counts every echo attempted, including those the local stack refused, so a link
    that goes down mid-round shows up as loss.
    """

    address: str
    sent: int
    received: int
    loss_ratio: float
    rtt_min_s: float | None
    rtt_median_s: float | None
    rtt_max_s: float | None
    jitter_s: float | None
    rtts_s: tuple[float, ...]
    failure: PingFailure | None
    started_at: datetime


@dataclass(frozen=True, slots=True)
class PingerStats:
    """A snapshot of a pinger's counters since it was opened."""

    sent: int
    received: int
    foreign: int
    """Echo replies that were not ours: another identifier, process or cookie."""
    late: int
    """Replies after their echo's timeout, or for a round that had already ended."""
    duplicate: int
    """Second and later replies to one echo."""
    send_errors: int
    """Echoes the local stack refused (``sendto`` failed)."""
    icmp_errors: int
    """ICMP destination unreachable / time exceeded messages about our echoes."""
    malformed: int = 0
    """Datagrams too short to hold an echo header (of any ICMP type): ignored."""
    other_types: int = 0
    """ICMP messages neither an echo reply nor an error about an echo (the kernel's filter
    keeps most out of a raw socket): ignored."""


# Called once per sweep of a round (echo k of every target), as soon as each of its echoes is
# answered or past its timeout: the sweep's index and its per-target table, in target order,
# where a value >= 0 is the echo's RTT in nanoseconds and a negative one means no answer.
SweepCallback = Callable[[int, list[int]], None]


class IcmpUnavailableError(RuntimeError):
    """Neither a raw nor an unprivileged ICMP socket could be opened (a setup problem)."""


# What the send loop needs per run of same-family targets: the socket's file descriptor, the
# partial checksum of the family's echo template (every target's packet starts as a copy of it)
# and the identifier.
_Lane = tuple[int, int, int]


class _Channel:
    """One ICMP socket (one address family) and what is needed to send and parse on it."""

    __slots__ = (
        "error_types",
        "family",
        "fd",
        "has_ip_header",
        "identifier",
        "inbox",
        "raw",
        "reply_type",
        "request_type",
        "sock",
        "templates",
        "time_exceeded_type",
        "unreach_type",
    )

    def __init__(self, sock: socket.socket, family: int, *, raw: bool, identifier: int) -> None:
        self.sock = sock
        self.fd = sock.fileno()
        self.family = family
        self.raw = raw
        self.identifier = identifier
        v4 = family == socket.AF_INET
        # Only a raw IPv4 socket hands us the IP header; raw ICMPv6 and datagram sockets start
        # at the ICMP header.
        self.has_ip_header = raw and v4
        self.request_type = pkt.ECHO_REQUEST_V4 if v4 else pkt.ECHO_REQUEST_V6
        self.reply_type = pkt.ECHO_REPLY_V4 if v4 else pkt.ECHO_REPLY_V6
        self.unreach_type = pkt.DEST_UNREACH_V4 if v4 else pkt.DEST_UNREACH_V6
        self.time_exceeded_type = pkt.TIME_EXCEEDED_V4 if v4 else pkt.TIME_EXCEEDED_V6
        self.error_types = (self.unreach_type, self.time_exceeded_type)
        self.templates: dict[int, tuple[bytes, int]] = {}
        self.inbox = batch.Inbox()


class _Round:
    """The state of one round: targets, send times and RTTs in flat slot-indexed lists."""

    __slots__ = (
        "base",
        "cursor",
        "deadline",
        "done",
        "echoes",
        "end",
        "future",
        "lanes",
        "n",
        "on_sweep",
        "outbox",
        "reported",
        "rtt_ns",
        "run_end",
        "send_ns",
        "settled",
        "spacing_s",
        "sweep_timers",
        "t0",
        "targets",
        "timeout_ns",
        "timeout_s",
        "total",
    )

    def __init__(
        self,
        *,
        targets: Sequence[str],
        outbox: batch.Outbox,
        lanes: list[_Lane | None],
        run_end: list[int],
        base: int,
        echoes: int,
        spacing_s: float,
        timeout_s: float,
        t0: float,
        future: asyncio.Future[None],
        on_sweep: SweepCallback | None = None,
    ) -> None:
        self.targets = targets
        self.outbox = outbox
        self.lanes = lanes  # per target; None: no socket for its family
        self.run_end = run_end  # per target: where its run of targets with the same lane ends
        self.n = len(targets)
        self.echoes = echoes
        self.base = base
        self.end = base + self.n * echoes
        self.spacing_s = spacing_s
        self.timeout_s = timeout_s
        self.timeout_ns = int(timeout_s * _NS_PER_S)
        self.t0 = t0
        self.future = future
        total = self.total = self.n * echoes
        # Slot j = echo_index * n + target_index = send order; serial = base + j.
        self.send_ns = [0] * total
        self.rtt_ns = [_PENDING] * total
        self.cursor = 0
        self.settled = 0
        self.done = False
        self.deadline: asyncio.TimerHandle | None = None
        self.on_sweep = on_sweep
        self.reported = 0  # sweeps handed to on_sweep so far
        self.sweep_timers: list[asyncio.TimerHandle] = []


class IcmpPinger:
    """Pings many targets in SmokePing-style rounds over one ICMP socket per address family.

    Open with ``await IcmpPinger.open()``; use as an async context manager or call ``close()``.
    Several ``round()`` calls may run concurrently on one pinger; they share the send rate.
    """

    def __init__(
        self,
        loop: asyncio.AbstractEventLoop,
        channels: dict[int, _Channel],
        *,
        rate_pps: float,
        cookie: int,
    ) -> None:
        """Use ``IcmpPinger.open()``; this only wires already opened sockets."""
        self._loop = loop
        self._channels = channels
        self._v4 = channels.get(socket.AF_INET)
        self._rate_pps = rate_pps
        self._tick_s = max(_TICK_S, 1.0 / rate_pps)
        self._burst = max(1.0, rate_pps * max(_BURST_S, self._tick_s))
        self._tokens = 1.0
        self._last_refill = loop.time()
        self._cookie = cookie
        self._next_serial = 0
        self._rounds: list[_Round] = []
        self._sending: list[_Round] = []
        # Recently ended rounds, to tell a duplicate of an answered echo from a late reply.
        self._finished: deque[_Round] = deque(maxlen=_FINISHED_ROUNDS_KEPT)
        self._tick_handle: asyncio.TimerHandle | asyncio.Handle | None = None
        self._closed = False
        self._sent = 0
        self._received = 0
        self._foreign = 0
        self._late = 0
        self._duplicate = 0
        self._send_errors = 0
        self._icmp_errors = 0
        self._malformed = 0
        self._other_types = 0
        # Whether the loop watches the sockets; off while echoes leave on every tick (see _tick).
        self._readers_on = False
        self._watch_sockets(True)

    @classmethod
    async def open(
        cls,
        *,
        rate_pps: float = 10_000,
        privileged: bool | None = None,
        source: str | None = None,
        interface: str | None = None,
    ) -> Self:
        """Open the sockets: raw if allowed (``privileged=None`` tries raw, then datagram).

        ``source`` binds the echoes' source address (an IPv4 literal: the commune agent's
        per-path address that the router policy-routes by one link); the pinger then has no
        IPv6 socket and only sees replies addressed to ``source``. ``interface`` binds the
        sockets to one interface (SO_BINDTODEVICE): echoes leave by it whatever the routes say.
        Raises IcmpUnavailableError, naming the fix, when no ICMP socket can be opened, and
        OSError when ``source`` is not an address of this host or ``interface`` does not exist.
        """
        if not (rate_pps > 0 and math.isfinite(rate_pps)):
            msg = f"rate_pps must be a positive number, got {rate_pps}"
            raise ValueError(msg)
        if source is not None:
            try:
                socket.inet_pton(socket.AF_INET, source)
            except OSError:
                msg = f"source must be an IPv4 address literal, got {source!r}"
                raise ValueError(msg) from None
        loop = asyncio.get_running_loop()
        modes = [True, False] if privileged is None else [privileged]
        v4: socket.socket | None = None
        raw = True
        failures: list[str] = []
        for raw in modes:
            try:
                v4 = open_icmp_socket(socket.AF_INET, raw=raw, source=source, interface=interface)
            except PermissionError as exc:
                failures.append(f"{'raw' if raw else 'datagram'}: {exc.strerror}")
            else:
                break
        if v4 is None:
            raise IcmpUnavailableError(_unavailable_message(modes, failures))
        if not batch.AVAILABLE:
            v4.close()
            raise IcmpUnavailableError(batch.UNAVAILABLE_REASON)
        identifier = unique_identifier() if raw else 0
        channels: dict[int, _Channel] = {
            socket.AF_INET: _Channel(v4, socket.AF_INET, raw=raw, identifier=identifier)
        }
        if source is None:  # bound to an IPv4 source, an IPv6 echo could not leave from it
            try:
                v6 = open_icmp_socket(socket.AF_INET6, raw=raw, interface=interface)
            except OSError as exc:
                # A host without IPv6 (or without ICMPv6 permission) still pings IPv4; IPv6
                # targets then fail each round with SEND_ERROR rather than stopping the monitor.
                _log.warning("icmp ipv6 unavailable error=%r", exc.strerror)
            else:
                channels[socket.AF_INET6] = _Channel(
                    v6, socket.AF_INET6, raw=raw, identifier=identifier
                )
        cookie = int.from_bytes(os.urandom(4), "big")
        return cls(loop, channels, rate_pps=rate_pps, cookie=cookie)

    @property
    def privileged(self) -> bool:
        """True when the pinger uses raw sockets, False for unprivileged datagram sockets."""
        return self._v4 is not None and self._v4.raw

    @property
    def rate_pps(self) -> float:
        """The send rate limit shared by all rounds, in echoes per second."""
        return self._rate_pps

    def stats(self) -> PingerStats:
        """A snapshot of the counters."""
        return PingerStats(
            sent=self._sent,
            received=self._received,
            foreign=self._foreign,
            late=self._late,
            duplicate=self._duplicate,
            send_errors=self._send_errors,
            icmp_errors=self._icmp_errors,
            malformed=self._malformed,
            other_types=self._other_types,
        )

    async def __aenter__(self) -> Self:
        """Return the pinger itself."""
        return self

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        """Close the pinger."""
        await self.close()

    async def close(self) -> None:
        """Release the sockets; rounds still running end at once with what they have."""
        if self._closed:
            return
        self._closed = True
        if self._tick_handle is not None:
            self._tick_handle.cancel()
            self._tick_handle = None
        for rnd in list(self._rounds):
            self._finish(rnd)
        self._watch_sockets(False)
        for channel in self._channels.values():
            channel.sock.close()

    async def round(
        self,
        targets: Sequence[str],
        *,
        echoes: int = 5,
        spacing_s: float = 1.0,
        timeout_s: float = 2.0,
        payload_size: int = 56,
        on_sweep: SweepCallback | None = None,
    ) -> list[PingResult]:
        """Send ``echoes`` echoes to every target, ``spacing_s`` apart; results in target order.

        Targets are IP address literals (names are resolved once at config load, not here).
        The round ends ``timeout_s`` after its last echo left, or as soon as every echo is
        accounted for. ``on_sweep``, if given, hears each sweep's outcome while the round is
        still running (a round whose echoes are spread over its interval tells a lost echo
        seconds after it was due, not at the end of the round).
        """
        if self._closed:
            msg = "round() on a closed IcmpPinger"
            raise RuntimeError(msg)
        if echoes < 1:
            msg = f"echoes must be >= 1, got {echoes}"
            raise ValueError(msg)
        if spacing_s < 0 or timeout_s <= 0:
            msg = f"spacing_s must be >= 0 and timeout_s > 0, got {spacing_s}, {timeout_s}"
            raise ValueError(msg)
        started_at = datetime.now(UTC)
        if not targets:
            return []
        outbox, lanes, run_end = self._plan(targets, payload_size)
        loop = self._loop
        future: asyncio.Future[None] = loop.create_future()
        rnd = _Round(
            targets=targets,
            outbox=outbox,
            lanes=lanes,
            run_end=run_end,
            base=self._next_serial,
            echoes=echoes,
            spacing_s=spacing_s,
            timeout_s=timeout_s,
            t0=loop.time(),
            future=future,
            on_sweep=on_sweep,
        )
        self._next_serial = rnd.end
        self._rounds.append(rnd)
        self._sending.append(rnd)
        # Send its first sweep now, even when the sender sleeps until another round's next
        # sweep (seconds away when a round spreads its echoes over its interval).
        if self._tick_handle is not None:
            self._tick_handle.cancel()
        self._tick_handle = loop.call_soon(self._tick)
        try:
            await future
        finally:
            # Also on cancellation: stop sending this round's echoes and forget it.
            self._finish(rnd)
        return _results(rnd, started_at)

    def _plan(
        self, targets: Sequence[str], payload_size: int
    ) -> tuple[batch.Outbox, list[_Lane | None], list[int]]:
        """The round's outbox, per-target lanes and run ends; validates the addresses.

        Never resolves a name: sendmmsg takes sockaddrs, built here from address literals.
        """
        n = len(targets)
        families = [socket.AF_INET6 if ":" in address else socket.AF_INET for address in targets]
        v4_only = socket.AF_INET6 not in families
        per_family = {family: self._lane(family, payload_size) for family in set(families)}
        try:
            if v4_only:
                # Every target IPv4 (the usual round): C-level maps, no Python work per target.
                lane, template = per_family[socket.AF_INET]
                names = batch.sockaddrs_v4(targets)
                outbox = batch.Outbox(names, [batch.SOCKADDR_IN_LEN] * n, template * n, n)
                return outbox, [lane] * n, [n] * n
            records = list(map(batch.sockaddr, families, targets))
        except (OSError, ValueError):
            for family, address in zip(families, targets, strict=True):
                try:
                    batch.sockaddr(family, address)
                except (OSError, ValueError):
                    msg = f"not an IP address: {address!r} (resolve names when loading config)"
                    raise ValueError(msg) from None
            raise
        lanes = [per_family[family][0] for family in families]
        packets = b"".join([per_family[family][1] for family in families])
        outbox = batch.Outbox(
            [name for name, _ in records], [length for _, length in records], packets, n
        )
        # One sendmmsg per run of targets on the same socket.
        run_end = [n] * n
        for index in range(n - 2, -1, -1):
            same = families[index] == families[index + 1]
            run_end[index] = run_end[index + 1] if same else index + 1
        return outbox, lanes, run_end

    def _lane(self, family: int, payload_size: int) -> tuple[_Lane | None, bytes]:
        """How to send to one family (None: no socket for it here) and its echo template."""
        channel = self._channels.get(family)
        if channel is None:
            # Never sent: such a target's echoes fail at once (IPv6 disabled on this host).
            unused, _ = pkt.echo_template(pkt.ECHO_REQUEST_V6, 0, 0, payload_size)
            return None, bytes(unused)
        template = channel.templates.get(payload_size)
        if template is None:
            built, partial = pkt.echo_template(
                channel.request_type, channel.identifier, self._cookie, payload_size
            )
            template = channel.templates[payload_size] = (bytes(built), partial)
        packet, partial = template
        return (channel.fd, partial, channel.identifier), packet

    # --- sending -------------------------------------------------------------------------

    def _watch_sockets(self, on: bool) -> None:
        """Have the loop wake on replies (on), or leave them queued for the next tick (off)."""
        if on == self._readers_on:
            return
        self._readers_on = on
        for channel in self._channels.values():
            if on:
                self._loop.add_reader(channel.sock.fileno(), self._on_readable, channel)
            else:
                self._loop.remove_reader(channel.sock.fileno())

    def _read_queued(self) -> None:
        """Read the replies queued while the sockets were not watched."""
        if not self._readers_on:
            for channel in self._channels.values():
                self._on_readable(channel, polled=True)

    def _tick(self) -> None:
        """Send what the token bucket allows, sweep by sweep, then re-arm the timer.

        While a sweep is going out the loop wakes every tick anyway, so replies are read here
        and the sockets are not watched: one wake-up per tick instead of one for the sends and
        another for the replies they bring back a few microseconds later (measured: half the
        loop iterations, a third less CPU per echo). RTTs come from kernel receive timestamps,
        so reading a reply up to one tick later changes no measurement; every timer that
        judges echoes (round deadline, sweep report) reads the queue first.
        """
        self._tick_handle = None
        if self._closed:
            return
        self._read_queued()
        loop = self._loop
        now = loop.time()
        tokens = min(self._burst, self._tokens + (now - self._last_refill) * self._rate_pps)
        self._last_refill = now
        wake_at = math.inf
        blocked = False
        sending = self._sending
        # Rotate so that concurrent rounds share the rate instead of the first one hogging it.
        if len(sending) > 1:
            sending.append(sending.pop(0))
        for rnd in list(sending):
            while rnd.cursor < rnd.total:
                sweep_start = rnd.t0 + (rnd.cursor // rnd.n) * rnd.spacing_s
                if sweep_start > now:
                    wake_at = min(wake_at, sweep_start)
                    break
                count = min(int(tokens), rnd.n - rnd.cursor % rnd.n)
                if count <= 0:
                    blocked = True
                    break
                sent = self._send_batch(rnd, count)
                tokens -= sent
                if rnd.on_sweep is not None and sent and rnd.cursor % rnd.n == 0:
                    # A whole sweep is out: it is settled once its timeout has passed.
                    sweep = rnd.cursor // rnd.n - 1
                    rnd.sweep_timers.append(
                        loop.call_at(now + rnd.timeout_s, self._sweep_timeout, rnd, sweep)
                    )
                if sent < count:
                    # The socket's send queue is full: back off until the next tick.
                    blocked = True
                    tokens = 0.0
                    break
            if rnd.cursor == rnd.total:
                sending.remove(rnd)
                if rnd.settled == rnd.total:
                    self._finish(rnd)
                else:
                    rnd.deadline = loop.call_at(now + rnd.timeout_s, self._round_timeout, rnd)
        self._tokens = tokens
        if not sending:
            self._watch_sockets(True)
            return
        if blocked:
            wake_at = now + self._tick_s
        wake_at = max(wake_at, now + self._tick_s / 4)
        self._tick_handle = loop.call_at(wake_at, self._tick)
        # Watched again whenever the next tick is further away than a pacing tick.
        self._watch_sockets(wake_at > now + self._tick_s)

    def _round_timeout(self, rnd: _Round) -> None:
        """A round's last echo is past its timeout: read what is queued, then end it."""
        self._read_queued()
        self._finish(rnd)

    def _sweep_timeout(self, rnd: _Round, sweep: int) -> None:
        """A sweep's echoes are past their timeout: read what is queued, then report it."""
        self._read_queued()
        self._report_sweeps(rnd, sweep)

    def _send_batch(self, rnd: _Round, count: int) -> int:
        """Send the next ``count`` echoes of one sweep; returns how many were consumed.

        One sendmmsg per ``_SEND_RUN`` targets on the same socket. Each echo's send time is the
        clock just before the call (as it was just before sendto): never after the real send.
        """
        n = rnd.n
        sweep_slot = rnd.cursor - rnd.cursor % n  # slot of this sweep's first target
        target = rnd.cursor - sweep_slot
        stop = target + count
        serial_base = rnd.base + sweep_slot  # serial of this sweep's echo to target 0
        outbox = rnd.outbox
        packets = outbox.packets
        size = outbox.packet_size
        lanes = rnd.lanes
        run_end = rnd.run_end
        send_ns = rnd.send_ns
        rtt_ns = rnd.rtt_ns
        pack_into = pkt.ECHO_FIELDS.pack_into
        cookie = self._cookie
        send = batch.send
        time_ns = time.time_ns
        failed = 0
        while target < stop:
            end = min(run_end[target], stop)
            lane = lanes[target]
            if lane is None:
                # No socket for this family on this host (IPv6 disabled): send errors.
                first = sweep_slot + target
                last = sweep_slot + end
                rtt_ns[first:last] = [_SEND_FAILED] * (end - target)
                send_ns[first:last] = [-1] * (end - target)
                failed += end - target
                target = end
                continue
            fd, partial, identifier = lane
            offset = target * size + 2
            for serial in range(serial_base + target, serial_base + end):
                seq = serial & 0xFFFF
                high = serial >> 16
                # RFC 1624 incremental checksum over the three words that change. Datagram
                # sockets and ICMPv6 have the kernel overwrite it; computing it anyway is
                # cheaper than a branch per family.
                csum = partial + seq + (high >> 16) + (high & 0xFFFF)
                csum = (csum & 0xFFFF) + (csum >> 16)
                csum = (csum & 0xFFFF) + (csum >> 16)
                pack_into(packets, offset, ~csum & 0xFFFF, identifier, seq, cookie, high)
                offset += size
            while target < end:
                before = time_ns()
                sent = send(fd, outbox, target, min(end - target, _SEND_RUN))
                if sent > 0:
                    # Every echo of the call is stamped with the clock before it: never later
                    # than its real send, so an RTT is never negative. Spreading the stamps over
                    # the call's span was more precise until the call was preempted: then later
                    # echoes got stamps after their replies (RTT 0, a late reply taken as in time).
                    slot = sweep_slot + target
                    send_ns[slot : slot + sent] = [before] * sent
                    target += sent
                elif sent == 0 or -sent in pkt.TRANSIENT_SEND_ERRNOS:
                    # The socket's send queue is full: the rest waits for the next tick.
                    stop = target
                    break
                else:
                    # This echo was refused (no route, blackhole, link down); the next ones
                    # are tried on their own.
                    slot = sweep_slot + target
                    rtt_ns[slot] = _SEND_FAILED
                    send_ns[slot] = -1
                    failed += 1
                    target += 1
        done = target - (rnd.cursor - sweep_slot)
        rnd.cursor = sweep_slot + target
        rnd.settled += failed
        self._sent += done
        self._send_errors += failed
        return done

    # --- receiving -----------------------------------------------------------------------

    def _on_readable(self, channel: _Channel, polled: bool = False) -> None:
        """Drain the socket: every queued reply, each with its kernel receive timestamp.

        ``polled``: called from a timer, not woken by the loop (an empty queue means nothing).
        """
        # recvmmsg into the channel's inbox: one system call and no Python object per reply.
        inbox = channel.inbox
        receive, view, data_at, slot_size = (
            inbox.receive,
            inbox.view,
            inbox.data_at,
            inbox.slot_size,
        )
        fd = channel.fd
        unpack_from = pkt.ECHO_HEADER.unpack_from
        header_size = pkt.ECHO_HEADER.size
        cookie = self._cookie
        identifier = channel.identifier
        check_identifier = channel.raw
        has_ip_header = channel.has_ip_header
        reply_type = channel.reply_type
        error_types = channel.error_types
        rounds = self._rounds
        # Datagram sockets only: whether to read the error queue after the replies. Not on
        # every wake-up: that is one failing syscall per reply burst for nothing.
        check_errors = False
        woken_empty = not polled
        while True:
            got = receive(fd)
            if got <= 0:
                if got == 0 or got == -errno.EAGAIN:
                    # Woken with nothing to read: on a datagram socket only its error queue
                    # does that (it keeps the socket readable until drained, also for local
                    # errors that leave no pending socket error).
                    check_errors = check_errors or woken_empty
                    break
                # A datagram socket reports an ICMP error first as a pending socket error;
                # the details are on the error queue, drained below.
                if channel.raw:
                    break
                check_errors = True
                continue
            woken_empty = False
            sizes = inbox.sizes(got)
            stamps = inbox.stamps(got)
            if got >= _BATCH_MIN and self._take_batch(channel, got, sizes, stamps):
                if got < batch.INBOX_SLOTS and channel.raw:
                    break
                continue
            begin = data_at - slot_size
            for size, rx_ns in zip(sizes, stamps, strict=True):
                begin += slot_size
                offset = (view[begin] & 0x0F) << 2 if has_ip_header else 0
                if size < offset + header_size:
                    self._malformed += 1  # truncated: not even an identifier to match
                    continue
                icmp_type, _code, _csum, ident, seq, their_cookie, high = unpack_from(
                    view, begin + offset
                )
                if icmp_type != reply_type:
                    if icmp_type in error_types:
                        reply = bytes(view[begin : begin + size])
                        self._on_icmp_error(channel, icmp_type, reply, offset)
                    else:
                        self._other_types += 1
                    continue
                if their_cookie != cookie or (check_identifier and ident != identifier):
                    self._foreign += 1
                    continue
                if not rx_ns:
                    rx_ns = time.time_ns()
                serial = (high << 16) | seq
                for rnd in rounds:
                    if rnd.base <= serial < rnd.end:
                        break
                else:
                    self._on_stray_reply(serial)
                    continue
                slot = serial - rnd.base
                sent_ns = rnd.send_ns[slot]
                if sent_ns <= 0:
                    # Never sent, or its send failed: not a reply to anything we sent.
                    self._foreign += 1
                    continue
                state = rnd.rtt_ns[slot]
                if state != _PENDING:
                    if state == _LATE:
                        self._late += 1
                    else:
                        self._duplicate += 1
                    continue
                rtt = rx_ns - sent_ns
                if rtt > rnd.timeout_ns:
                    rnd.rtt_ns[slot] = _LATE
                    self._late += 1
                else:
                    # A negative RTT can only come from a wall-clock step between the two readings.
                    rnd.rtt_ns[slot] = rtt if rtt > 0 else 0
                    self._received += 1
                rnd.settled += 1
                if rnd.settled == rnd.total:
                    self._finish(rnd)
            if got < batch.INBOX_SLOTS and channel.raw:
                # recvmmsg stopped short: the queue is empty (a datagram socket reads on until
                # EAGAIN, as an ICMP error it holds for the next call ends a read short).
                break
        if check_errors and not channel.raw:
            self._drain_error_queue(channel)

    def _take_batch(
        self, channel: _Channel, count: int, sizes: list[int], stamps: list[int]
    ) -> bool:
        """Account a batch of replies at once if it is the usual kind; False: reply by reply.

        The usual kind: every reply is a whole echo reply of ours (type, cookie, identifier),
        carries a kernel timestamp and answers a distinct pending echo of one round within its
        timeout. Checked and stored with C-level list operations, no Python work per reply;
        anything else (an error, a foreign, late or duplicate reply, an IP option) sends the
        whole batch through the reply-by-reply path, which classifies each one.
        """
        offset = 20 if channel.has_ip_header else 0
        if min(sizes) < offset + pkt.ECHO_HEADER.size or 0 in stamps:
            return False
        inbox = channel.inbox
        if offset and inbox.first_bytes(count) != _IPV4_NO_OPTIONS * count:
            return False
        fields = inbox.echo_fields(count, offset)
        if (
            fields[0::5].count(channel.reply_type) != count
            or fields[3::5].count(self._cookie) != count
            or (channel.raw and fields[1::5].count(channel.identifier) != count)
        ):
            return False
        serials = list(
            map(operator.or_, map(_SHIFT_16.__rmul__, fields[4::5]), fields[2::5])  # high, seq
        )
        low = min(serials)
        high = max(serials)
        for rnd in self._rounds:
            if rnd.base <= low and high < rnd.end:
                break
        else:
            return False
        slots = list(map(rnd.base.__rsub__, serials))  # serial - base
        if len(set(slots)) != count:
            return False
        pick = operator.itemgetter(*slots)
        states: tuple[int, ...] = pick(rnd.rtt_ns)
        sent: tuple[int, ...] = pick(rnd.send_ns)
        if states.count(_PENDING) != count or min(sent) <= 0:
            return False
        rtts = list(map(operator.sub, stamps, sent))
        if min(rtts) < 0 or max(rtts) > rnd.timeout_ns:
            return False
        deque(map(rnd.rtt_ns.__setitem__, slots, rtts), maxlen=0)
        self._received += count
        rnd.settled += count
        if rnd.settled == rnd.total:
            self._finish(rnd)
        return True

    def _on_stray_reply(self, serial: int) -> None:
        """Classify one of our replies that no running round is waiting for."""
        if serial >= self._next_serial:
            # Our cookie but a serial we never sent: corrupted or forged.
            self._foreign += 1
            return
        for rnd in self._finished:
            if rnd.base <= serial < rnd.end:
                # An echo that was already answered when its round ended is a duplicate (the
                # round ends the moment its last echo is answered, so the duplicate of that
                # last reply is usually still in the socket queue); anything else is late.
                if rnd.rtt_ns[serial - rnd.base] >= 0:
                    self._duplicate += 1
                else:
                    self._late += 1
                return
        self._late += 1

    def _on_icmp_error(self, channel: _Channel, icmp_type: int, data: bytes, offset: int) -> None:
        """Attribute an ICMP error (quoting our echo request) on a raw socket to its echo."""
        inner = offset + 8
        if channel.family == socket.AF_INET:
            if len(data) < inner + 20 or data[inner + 9] != socket.IPPROTO_ICMP:
                return
            quoted = inner + ((data[inner] & 0x0F) << 2)
        else:
            if len(data) < inner + 40 or data[inner + 6] != socket.IPPROTO_ICMPV6:
                return
            quoted = inner + 40
        self._on_quoted_echo(channel, icmp_type, data, quoted)

    def _on_quoted_echo(self, channel: _Channel, icmp_type: int, data: bytes, quoted: int) -> None:
        """Mark the echo quoted at ``data[quoted:]`` as answered by an ICMP error."""
        if len(data) < quoted + 8:
            return
        request, _code, _csum, ident, seq = pkt.ECHO_SHORT.unpack_from(data, quoted)
        if request != channel.request_type or (channel.raw and ident != channel.identifier):
            return
        if len(data) >= quoted + pkt.ECHO_HEADER.size:
            *_, their_cookie, high = pkt.ECHO_HEADER.unpack_from(data, quoted)
            if their_cookie != self._cookie:
                return
            serial: int | None = (high << 16) | seq
        else:
            # RFC 792 routers quote only 8 bytes of our echo: match the 16-bit sequence to the
            # most recent echo that carried it.
            serial = self._serial_from_sequence(seq)
        if serial is None:
            return
        for rnd in self._rounds:
            if rnd.base <= serial < rnd.end:
                break
        else:
            return
        slot = serial - rnd.base
        if rnd.send_ns[slot] <= 0 or rnd.rtt_ns[slot] != _PENDING:
            return
        unreachable = icmp_type == channel.unreach_type
        rnd.rtt_ns[slot] = _UNREACHABLE if unreachable else _TIME_EXCEEDED
        self._icmp_errors += 1
        rnd.settled += 1
        if rnd.settled == rnd.total:
            self._finish(rnd)

    def _serial_from_sequence(self, seq: int) -> int | None:
        """The latest sent serial whose low 16 bits are ``seq``, if any round holds one."""
        best: int | None = None
        for rnd in self._rounds:
            sent = rnd.base + rnd.cursor
            if sent <= rnd.base:
                continue
            candidate = sent - 1 - ((sent - 1 - seq) & 0xFFFF)
            if candidate >= rnd.base and (best is None or candidate > best):
                best = candidate
        return best

    def _drain_error_queue(self, channel: _Channel) -> None:
        """Read ICMP errors a datagram socket queued with IP_RECVERR (it never sees them raw)."""
        recvmsg = channel.sock.recvmsg
        while True:
            try:
                data, ancdata, _flags, _addr = recvmsg(
                    pkt.RECV_SIZE, pkt.ANC_ERRQUEUE_SIZE, pkt.MSG_ERRQUEUE
                )
            except OSError:  # BlockingIOError once the queue is empty
                return
            for level, kind, value in ancdata:
                if (level, kind) not in (
                    (socket.IPPROTO_IP, pkt.IP_RECVERR),
                    (socket.IPPROTO_IPV6, pkt.IPV6_RECVERR),
                ):
                    continue
                if len(value) < pkt.SOCK_EXTENDED_ERR.size:
                    continue
                _errno, origin, ee_type, _ee_code, _pad, _info, _data = (
                    pkt.SOCK_EXTENDED_ERR.unpack_from(value)
                )
                if origin not in (pkt.SO_EE_ORIGIN_ICMP, pkt.SO_EE_ORIGIN_ICMP6):
                    continue
                if ee_type in channel.error_types:
                    # The queued datagram is our echo request as sent.
                    self._on_quoted_echo(channel, ee_type, data, 0)

    def _report_sweeps(self, rnd: _Round, last: int) -> None:
        """Hand sweeps up to ``last`` (inclusive) to the round's on_sweep, each once, in order."""
        callback = rnd.on_sweep
        if callback is None:
            return
        n = rnd.n
        while rnd.reported <= last:
            sweep = rnd.reported
            rnd.reported += 1
            try:
                callback(sweep, rnd.rtt_ns[sweep * n : (sweep + 1) * n])
            except Exception:  # the caller's bug must not stop the round
                _log.exception("icmp on_sweep callback failed")

    def _finish(self, rnd: _Round) -> None:
        """End a round: stop its timer, forget it, wake its caller."""
        if rnd.done:
            return
        rnd.done = True
        if rnd.deadline is not None:
            rnd.deadline.cancel()
            rnd.deadline = None
        for timer in rnd.sweep_timers:
            timer.cancel()
        rnd.sweep_timers.clear()
        # Every sent sweep is settled now (answered or timed out): report what is left before
        # the caller sees the round's results.
        self._report_sweeps(rnd, rnd.cursor // rnd.n - 1 if rnd.n else -1)
        if rnd in self._sending:
            self._sending.remove(rnd)
        if rnd in self._rounds:
            self._rounds.remove(rnd)
            self._finished.append(rnd)
        if not rnd.future.done():
            rnd.future.set_result(None)


def _results(rnd: _Round, started_at: datetime) -> list[PingResult]:
    """Summarise a finished round per target, in target order."""
    if rnd.cursor == rnd.total and rnd.n and min(rnd.rtt_ns) >= 0:
        return _all_answered(rnd, started_at)
    return _results_by_target(rnd, started_at)


def _all_answered(rnd: _Round, started_at: datetime) -> list[PingResult]:
    """``_results`` of a round whose every echo was answered (the usual round), column-wise.

    The same figures as ``_results_by_target`` computes target by target (same operations in
    the same order, so the same floats), but each as one C-level pass over all targets.
    """
    n = rnd.n
    echoes = rnd.echoes
    seconds = list(map(_NS_PER_S.__rtruediv__, rnd.rtt_ns))  # state / _NS_PER_S
    sweeps = [seconds[k * n : (k + 1) * n] for k in range(echoes)]
    rtts = list(zip(*sweeps, strict=True))
    ordered = list(map(sorted, rtts))
    middle = echoes >> 1
    medians: list[float] = list(map(operator.itemgetter(middle), ordered))
    if not echoes & 1:
        lower = map(operator.itemgetter(middle - 1), ordered)
        medians = list(map((2.0).__rtruediv__, map(operator.add, lower, medians)))
    jitters: list[float | None] = [None] * n
    if echoes > 1:
        total: Iterator[float] = map(abs, map(operator.sub, sweeps[1], sweeps[0]))
        for k in range(2, echoes):
            total = map(operator.add, total, map(abs, map(operator.sub, sweeps[k], sweeps[k - 1])))
        jitters = list(map(float(echoes - 1).__rtruediv__, total))
    # Positional, in field order (address, sent, received, loss_ratio, rtt_min_s,
    # rtt_median_s, rtt_max_s, jitter_s, rtts_s, failure, started_at).
    return list(
        map(
            PingResult,
            rnd.targets,
            repeat(echoes),
            repeat(echoes),
            repeat(0.0),
            map(operator.itemgetter(0), ordered),
            medians,
            map(operator.itemgetter(-1), ordered),
            jitters,
            rtts,
            repeat(None),
            repeat(started_at),
        )
    )


def _results_by_target(rnd: _Round, started_at: datetime) -> list[PingResult]:
    """``_results`` target by target: any mix of answered, lost, refused and failed echoes."""
    n = rnd.n
    echoes = rnd.echoes
    rtt_table = rnd.rtt_ns
    send_table = rnd.send_ns
    all_sent = rnd.cursor == rnd.total
    # Runs once per target per round over 10,000 targets: C-level builtins, not generator
    # expressions. zip(*sweeps) hands out each target's states (one per echo) as a tuple.
    per_target = zip(*[rtt_table[k * n : (k + 1) * n] for k in range(echoes)], strict=True)
    to_seconds = _NS_PER_S.__rtruediv__  # state -> state / _NS_PER_S
    results: list[PingResult] = []
    append = results.append
    for index, (address, states) in enumerate(zip(rnd.targets, per_target, strict=True)):
        sent = echoes if all_sent else echoes - send_table[index::n].count(0)
        if min(states) >= 0:
            rtts = tuple(map(to_seconds, states))
        else:
            rtts = tuple([state / _NS_PER_S for state in states if state >= 0])
        received = len(rtts)
        if received:
            ordered = sorted(rtts)
            middle = received >> 1
            if received & 1:
                median = ordered[middle]
            else:
                median = (ordered[middle - 1] + ordered[middle]) / 2
            jitter = (
                sum(map(abs, map(operator.sub, rtts[1:], rtts))) / (received - 1)
                if received > 1
                else None
            )
            # Positional: a third cheaper than keywords, in field order (address, sent,
            # received, loss_ratio, rtt_min_s, rtt_median_s, rtt_max_s, jitter_s, rtts_s,
            # failure, started_at).
            append(
                PingResult(
                    address,
                    sent,
                    received,
                    (sent - received) / sent,
                    ordered[0],
                    median,
                    ordered[-1],
                    jitter,
                    rtts,
                    None,
                    started_at,
                )
            )
            continue
        if _UNREACHABLE in states:
            failure = PingFailure.UNREACHABLE
        elif _TIME_EXCEEDED in states:
            failure = PingFailure.TIME_EXCEEDED
        elif _SEND_FAILED in states:
            failure = PingFailure.SEND_ERROR
        else:
            failure = PingFailure.NO_REPLY
        append(_no_reply(address, sent, failure, started_at))
    return results


def _no_reply(address: str, sent: int, failure: PingFailure, started_at: datetime) -> PingResult:
    """The result of a target that answered no echo."""
    return PingResult(
        address=address,
        sent=sent,
        received=0,
        loss_ratio=1.0,
        rtt_min_s=None,
        rtt_median_s=None,
        rtt_max_s=None,
        jitter_s=None,
        rtts_s=(),
        failure=failure,
        started_at=started_at,
    )


def open_icmp_socket(
    family: int, *, raw: bool, source: str | None = None, interface: str | None = None
) -> socket.socket:
    """One non-blocking ICMP socket with kernel receive timestamps and large buffers.

    ``interface`` binds it to a device (SO_BINDTODEVICE), ``source`` to a local address.
    """
    proto = socket.IPPROTO_ICMP if family == socket.AF_INET else socket.IPPROTO_ICMPV6
    sock = socket.socket(family, socket.SOCK_RAW if raw else socket.SOCK_DGRAM, proto)
    try:
        if interface is not None:
            sock.setsockopt(socket.SOL_SOCKET, socket.SO_BINDTODEVICE, interface.encode())
        if source is not None:
            sock.bind((source, 0))
        sock.setblocking(False)
        sock.setsockopt(socket.SOL_SOCKET, pkt.SO_TIMESTAMPNS, 1)
        # Replies queue in the kernel while the loop is busy; their timestamps stay true as
        # long as they are not dropped, so the receive buffer is sized for a long stall.
        pkt.set_buffer(
            sock, socket.SO_RCVBUF, _RECV_BUFFER_BYTES, force=pkt.SO_RCVBUFFORCE if raw else None
        )
        pkt.set_buffer(
            sock, socket.SO_SNDBUF, _SEND_BUFFER_BYTES, force=_SO_SNDBUFFORCE if raw else None
        )
        if raw:
            if family == socket.AF_INET:
                allowed = (pkt.ECHO_REPLY_V4, pkt.DEST_UNREACH_V4, pkt.TIME_EXCEEDED_V4)
            else:
                allowed = (pkt.ECHO_REPLY_V6, pkt.DEST_UNREACH_V6, pkt.TIME_EXCEEDED_V6)
            pkt.set_receive_filter(sock, family, allowed)
        elif family == socket.AF_INET:
            sock.setsockopt(socket.IPPROTO_IP, pkt.IP_RECVERR, 1)
        else:
            sock.setsockopt(socket.IPPROTO_IPV6, pkt.IPV6_RECVERR, 1)
    except BaseException:
        sock.close()
        raise
    return sock


def _unavailable_message(modes: list[bool], failures: list[str]) -> str:
    """An actionable explanation of why no ICMP socket could be opened."""
    try:
        with open("/proc/sys/net/ipv4/ping_group_range", encoding="ascii") as handle:
            group_range = " ".join(handle.read().split())
    except OSError:
        group_range = "unknown"
    gid = os.getegid()
    fixes = []
    if True in modes:
        fixes.append(
            "run as root or give the interpreter CAP_NET_RAW "
            "(setcap cap_net_raw+ep on the python binary, or AmbientCapabilities=CAP_NET_RAW "
            "in the systemd unit)"
        )
    if False in modes:
        fixes.append(
            f"allow unprivileged ICMP for group {gid}: "
            f"sysctl -w net.ipv4.ping_group_range='0 2147483647' (now: {group_range})"
        )
    return f"cannot open an ICMP socket ({'; '.join(failures)}). To fix: " + ", or ".join(fixes)


async def ping_once(
    address: str, *, count: int = 5, interval_s: float = 0.2, timeout_s: float = 2.0
) -> PingResult:
    """Ping one address (or name) ``count`` times, for the ``netwatch probe`` diagnostic."""
    started_at = datetime.now(UTC)
    target = address
    try:
        socket.inet_pton(socket.AF_INET6 if ":" in address else socket.AF_INET, address)
    except OSError:
        try:
            target = (await async_resolve(address))[0]
        except (NameLookupError, IndexError):
            return _no_reply(address, 0, PingFailure.RESOLVE_ERROR, started_at)
    async with await IcmpPinger.open() as pinger:
        (result,) = await pinger.round(
            [target], echoes=count, spacing_s=interval_s, timeout_s=timeout_s
        )
    return result


def format_ping_table(results: Sequence[PingResult]) -> str:
    """A readable fping/mtr-like table of results, one line per target."""
    width = max([len("ADDRESS"), *(len(r.address) for r in results)])
    header = (
        f"{'ADDRESS':<{width}}  {'SENT':>4} {'RECV':>4} {'LOSS':>6}  "
        f"{'MIN ms':>8} {'MEDIAN ms':>9} {'MAX ms':>8} {'JITTER ms':>9}  NOTE"
    )
    lines = [header]
    for r in results:
        note = r.failure.value if r.failure is not None else ""
        lines.append(
            f"{r.address:<{width}}  {r.sent:>4} {r.received:>4} {r.loss_ratio:>6.1%}  "
            f"{_ms(r.rtt_min_s):>8} {_ms(r.rtt_median_s):>9} {_ms(r.rtt_max_s):>8} "
            f"{_ms(r.jitter_s):>9}  {note}".rstrip()
        )
    return "\n".join(lines)


def _ms(value_s: float | None) -> str:
    """Seconds as milliseconds with microsecond resolution, or '-'."""
    return "-" if value_s is None else f"{value_s * 1000:.3f}"
