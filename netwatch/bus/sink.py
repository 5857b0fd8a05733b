"""An observation sink that publishes a probe worker's rounds on the bus without ever making
probing wait for it.

``observe()`` and ``round_done()`` only put the round in a bounded buffer (no I/O, no await);
one publisher task drains it through :class:`ObservationPublisher`. While the bus is down the
buffer keeps the newest ``keep_rounds`` rounds of each kind (and the newest ``keep_fast`` fast
rounds): the oldest is dropped and counted, and the outage is logged once, when it starts, and
once more when the bus is back. A round that failed half-way is published again whole: its
messages carry the same ids, so the stream drops what it already had (docs/bus.md).

Round ids (the ``round`` field, the first part of every message id) are **epoch-aligned**: the
round's scheduled start floored to a multiple of the kind's interval since the Unix epoch, in
milliseconds. Every shard's round of the same slot gets the same id, whatever its start jitter.
Fast rounds have no slot: their id is the time they are handed over, in milliseconds, made
strictly increasing within the process so that two never share a message id.
"""

from __future__ import annotations

import asyncio
import itertools
import logging
import time
from collections import deque
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta

import nats.errors

from netwatch.bus.streams import ObservationPublisher, PublishError
from netwatch.observations import (
    IcmpObservation,
    Kind,
    Observation,
    RoundReport,
    SnmpObservation,
)

__all__ = ["BusSink", "FastBusSink", "SinkCounters", "aligned_round_id"]

log = logging.getLogger("netwatch.bus.sink")


_EPOCH = datetime(1970, 1, 1, tzinfo=UTC)
_MS = timedelta(milliseconds=1)


def aligned_round_id(scheduled_at: datetime, interval_s: float) -> int:
    """The round id of a slot: its scheduled start in Unix ms, floored to the interval."""
    ms = (scheduled_at - _EPOCH) // _MS
    step = max(1, round(interval_s * 1000))
    return int(ms // step * step)


def kind_of(obs: Observation) -> Kind:
    """The probe kind of an observation."""
    if isinstance(obs, IcmpObservation):
        return "icmp"
    if isinstance(obs, SnmpObservation):
        return "snmp"
    return "http"


@dataclass(frozen=True, slots=True)
class _Round:
    seq: int  # hand-over order: the oldest is published first
    kind: Kind
    fast: bool
    round_id: int
    observations: Sequence[Observation]
    report: RoundReport | None


@dataclass(slots=True)
class SinkCounters:
    """What the sink did, per kind (read by the worker's /metrics)."""

    published_rounds: dict[tuple[Kind, bool], int] = field(default_factory=dict)
    published_messages: dict[Kind, int] = field(default_factory=dict)
    dropped_rounds: dict[tuple[Kind, bool], int] = field(default_factory=dict)
    publish_errors: int = 0
    outages: int = 0


class BusSink:
    """An ObservationSink (full rounds) that publishes through a bounded buffer.

    ``fast`` is the sink for the fast confirmation rounds (the engine's ``fast_sinks``).
    ``run()`` is the publisher task; ``drain()`` waits until the buffer is empty.
    """

    def __init__(
        self,
        intervals: Mapping[Kind, float],
        *,
        keep_rounds: int = 4,
        keep_fast: int = 64,
        retry_s: float = 1.0,
        connected: Callable[[], bool] | None = None,
    ) -> None:
        self._intervals = dict(intervals)
        self._keep = {False: keep_rounds, True: keep_fast}
        self._retry_s = retry_s
        self._connected = connected or (lambda: True)
        self._queues: dict[tuple[Kind, bool], deque[_Round]] = {}
        self._pending: dict[Kind, list[Observation]] = {}
        self._seq = itertools.count()
        self._last_fast_id = 0
        self._wake = asyncio.Event()
        self._idle = asyncio.Event()
        self._idle.set()
        self._down_since: float | None = None
        self._dropped_in_outage = 0
        self.counters = SinkCounters()
        self.fast = FastBusSink(self)

    # -- the engine's side: never blocks --------------------------------------------------

    def observe(self, batch: Sequence[Observation]) -> None:
        """Hold a round's observations until its report (the engine sends both in a row)."""
        for obs in batch:
            self._pending.setdefault(kind_of(obs), []).append(obs)

    def round_done(self, report: RoundReport) -> None:
        """Queue the round (its observations and its report) for publishing."""
        observations = self._pending.pop(report.kind, [])
        interval = self._intervals.get(report.kind, 1.0)
        round_id = aligned_round_id(report.scheduled_at, interval)
        self._put(_Round(next(self._seq), report.kind, False, round_id, observations, report))

    def observe_fast(self, batch: Sequence[Observation]) -> None:
        """Queue a fast round (or an out-of-round router poll) for the ``.fast`` subjects."""
        by_kind: dict[Kind, list[Observation]] = {}
        for obs in batch:
            by_kind.setdefault(kind_of(obs), []).append(obs)
        for kind, observations in by_kind.items():
            self._last_fast_id = max(int(time.time() * 1000), self._last_fast_id + 1)
            self._put(_Round(next(self._seq), kind, True, self._last_fast_id, observations, None))

    def _put(self, item: _Round, *, front: bool = False) -> None:
        key = (item.kind, item.fast)
        queue = self._queues.setdefault(key, deque())
        if len(queue) >= self._keep[item.fast]:
            if front:  # the round that failed is the oldest: it is the one to go
                self._dropped(key)
                return
            queue.popleft()
            self._dropped(key)
        if front:
            queue.appendleft(item)
        else:
            queue.append(item)
        self._idle.clear()
        self._wake.set()

    def _dropped(self, key: tuple[Kind, bool]) -> None:
        drops = self.counters.dropped_rounds
        drops[key] = drops.get(key, 0) + 1
        self._dropped_in_outage += 1

    @property
    def queued(self) -> int:
        """Rounds waiting to be published."""
        return sum(len(q) for q in self._queues.values())

    # -- the publisher task ---------------------------------------------------------------

    def _oldest(self) -> _Round | None:
        heads = [q for q in self._queues.values() if q]
        if not heads:
            return None
        return min(heads, key=lambda q: q[0].seq).popleft()

    async def run(self, publisher: Callable[[], ObservationPublisher | None]) -> None:
        """Publish queued rounds, oldest first, forever (cancel to stop). ``publisher`` gives
        the current publisher, or None while there is no connection yet."""
        while True:
            item = self._oldest()
            if item is None:
                self._idle.set()
                self._wake.clear()
                await self._wake.wait()
                continue
            pub = publisher()
            try:
                if pub is None or not self._connected():
                    raise ConnectionError("not connected to the bus")
                await self._publish(pub, item)
            except asyncio.CancelledError:
                self._put(item, front=True)
                raise
            except (PublishError, nats.errors.Error, ConnectionError, TimeoutError) as exc:
                self._put(item, front=True)
                self._outage(exc)
                await asyncio.sleep(self._retry_s)
                continue
            self._recovered()

    async def _publish(self, pub: ObservationPublisher, item: _Round) -> None:
        messages = 0
        if item.observations:
            result = await pub.publish_round(
                item.kind, item.observations, round_id=item.round_id, fast=item.fast
            )
            messages += result.messages
        if item.report is not None:
            messages += (await pub.publish_report(item.report, round_id=item.round_id)).messages
        c = self.counters
        key = (item.kind, item.fast)
        c.published_rounds[key] = c.published_rounds.get(key, 0) + 1
        c.published_messages[item.kind] = c.published_messages.get(item.kind, 0) + messages

    def _outage(self, exc: BaseException) -> None:
        self.counters.publish_errors += 1
        if self._down_since is None:
            self._down_since = time.monotonic()
            self._dropped_in_outage = 0
            self.counters.outages += 1
            log.warning(
                "bus unreachable, buffering the newest %d rounds per kind: %s",
                self._keep[False],
                exc,
            )

    def _recovered(self) -> None:
        if self._down_since is not None:
            log.warning(
                "bus reachable again after %.0f s; rounds dropped meanwhile: %d",
                time.monotonic() - self._down_since,
                self._dropped_in_outage,
            )
            self._down_since = None

    async def drain(self) -> None:
        """Wait until every queued round is published (bound it with a timeout)."""
        await self._idle.wait()


class FastBusSink:
    """The fast-round face of a BusSink: an ObservationSink for the engine's ``fast_sinks``."""

    def __init__(self, sink: BusSink) -> None:
        self._sink = sink

    def observe(self, batch: Sequence[Observation]) -> None:
        """Queue a fast round."""
        self._sink.observe_fast(batch)

    def round_done(self, report: RoundReport) -> None:
        """Fast rounds have no report."""
        del report
