"""JetStream as NetWatch uses it: the stream and buckets (set up idempotently), a publisher of
observation batches with message ids, and a durable pull consumer that hands out decoded
batches and acknowledges each only once it was processed.

Delivery is at least once; the two halves of "exactly once" are here too:

* **Writer side**: every message has a deterministic ``Nats-Msg-Id`` (wire.msg_id), and a
  publish whose acknowledgement did not come is retried with the same id, so the stream's
  duplicate window (longer than two rounds) drops the copy.
* **Reader side**: a message is acknowledged (and the ack confirmed by the server) only after
  the caller processed it. A reader that crashed between processing and acknowledging gets the
  message again; one that records the stream sequence of what it processed along with its own
  state passes that as ``after_seq`` and such messages are acknowledged and skipped.

Limits are chosen for a national deployment (docs/bus.md): measured 3.5 MB of stream per
minute of national rounds, so 4 hours (~850 MB) fit under the 1 GiB cap.
"""

from __future__ import annotations

import asyncio
import logging
from collections import deque
from collections.abc import AsyncIterator, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime

import nats.errors
import nats.js.errors
from nats.aio.msg import Msg
from nats.js import JetStreamContext, api

from netwatch.bus import wire
from netwatch.bus.cancel import raise_if_cancelled
from netwatch.bus.setup import (
    LEADER_BUCKET,
    OBSERVATIONS,
    STATE_BUCKET,
    Buckets,
    StreamLimits,
    ensure_buckets,
    ensure_stream,
)
from netwatch.observations import Kind, Observation, RoundReport

__all__ = [
    "LEADER_BUCKET",
    "OBSERVATIONS",
    "STATE_BUCKET",
    "Buckets",
    "Delivery",
    "ObservationConsumer",
    "ObservationPublisher",
    "PublishError",
    "PublishResult",
    "StreamLimits",
    "ensure_buckets",
    "ensure_stream",
]

log = logging.getLogger("netwatch.bus")


class PublishError(RuntimeError):
    """JetStream did not acknowledge a message after every retry."""


@dataclass(frozen=True, slots=True)
class PublishResult:
    """What one publish call did."""

    messages: int
    duplicates: int  # messages the stream already had (a retry's second copy)
    last_seq: int  # the stream sequence of the last message acknowledged (0: none sent)


@dataclass(slots=True)
class ObservationPublisher:
    """Publishes a shard's rounds: one message per province and kind, split when large."""

    js: JetStreamContext
    index: wire.PlanIndex
    shard: int
    plan: str = ""  # the plan digest carried in every envelope
    max_rows: int = 1000  # rows per message: ~130 KB of ICMP, ~300 KB of SNMP
    max_bytes: int = 1024**2  # the server's max_payload: a larger payload is split further
    ack_timeout_s: float = 5.0
    attempts: int = 5
    retry_base_s: float = 0.2

    async def publish_round(
        self, kind: Kind, observations: Sequence[Observation], *, round_id: int, fast: bool = False
    ) -> PublishResult:
        """Publish one round's observations of one kind; returns once all are stored."""
        sent_at = datetime.now(UTC)
        jobs: list[tuple[str, bytes, str]] = []
        groups = wire.group_by_subject(observations, self.index, kind, fast=fast)
        for subject, rows in groups.items():
            for first in range(0, len(rows), self.max_rows):
                chunk = rows[first : first + self.max_rows]
                jobs += self._encode(subject, kind, chunk, first, round_id, fast, sent_at)
        acks = await asyncio.gather(*(self._publish(s, p, m) for s, p, m in jobs))
        return _result(acks)

    def _encode(
        self,
        subject: str,
        kind: Kind,
        rows: Sequence[Observation],
        first: int,
        round_id: int,
        fast: bool,
        sent_at: datetime,
    ) -> list[tuple[str, bytes, str]]:
        payload = wire.encode_observations(
            kind,
            rows,
            round_id=round_id,
            shard=self.shard,
            sent_at=sent_at,
            fast=fast,
            plan=self.plan,
        )
        if len(payload) > self.max_bytes and len(rows) > 1:
            half = len(rows) // 2
            return self._encode(
                subject, kind, rows[:half], first, round_id, fast, sent_at
            ) + self._encode(subject, kind, rows[half:], first + half, round_id, fast, sent_at)
        return [(subject, payload, wire.msg_id(round_id, self.shard, subject, first))]

    async def publish_report(self, report: RoundReport, *, round_id: int) -> PublishResult:
        """Publish the report of this shard's round (after its observations)."""
        subject = wire.report_subject(report.kind)
        payload = wire.encode_report(
            report, round_id=round_id, shard=self.shard, sent_at=datetime.now(UTC), plan=self.plan
        )
        ack = await self._publish(subject, payload, wire.msg_id(round_id, self.shard, subject))
        return _result([ack])

    async def _publish(self, subject: str, payload: bytes, msg_id: str) -> api.PubAck:
        headers = {"Nats-Msg-Id": msg_id}
        delay = self.retry_base_s
        for attempt in range(1, self.attempts + 1):
            try:
                return await self.js.publish(
                    subject,
                    payload,
                    timeout=self.ack_timeout_s,
                    stream=OBSERVATIONS,
                    headers=headers,
                )
            except (
                nats.errors.TimeoutError,
                nats.errors.NoRespondersError,
                nats.js.errors.NoStreamResponseError,  # no stream (yet) or JetStream restarting
            ) as exc:
                # No ack: the message may or may not be stored; the same id makes a retry safe.
                if attempt == self.attempts:
                    raise PublishError(
                        f"no ack for {msg_id} after {attempt} attempts: {exc!r}"
                    ) from exc
                log.info("publish retried msg_id=%s attempt=%d error=%r", msg_id, attempt, exc)
                await asyncio.sleep(delay)
                delay = min(delay * 2, 5.0)
        raise AssertionError("unreachable")  # pragma: no cover


def _result(acks: Sequence[api.PubAck]) -> PublishResult:
    return PublishResult(
        messages=len(acks),
        duplicates=sum(1 for a in acks if a.duplicate),
        last_seq=max((a.seq for a in acks), default=0),
    )


@dataclass(frozen=True, slots=True)
class Delivery:
    """One decoded message from the stream; ``ack()`` once it is processed."""

    batch: wire.Batch
    subject: str
    stream_seq: int  # the message's position in the stream: record it with what it changed
    redelivered: bool  # delivered before and not acknowledged (a reader died mid-way)
    _msg: Msg = field(repr=False)

    async def ack(self, timeout_s: float = 5.0) -> None:
        """Acknowledge, and wait for the server to confirm it (a lost ack means a repeat)."""
        await self._msg.ack_sync(timeout=timeout_s)


@dataclass(slots=True)
class ObservationConsumer:
    """A durable pull consumer of the observation stream, in stream order.

    Its position lives in the server under ``durable``: a reader restarted with the same name
    continues after the last acknowledged message, in stream order even across a reader's
    death (``max_ack_pending``); two readers with one name would share the work, so the core
    runs one at a time: the leader's. Undecodable messages are counted in
    ``rejected``, logged, and terminated (never redelivered); they never stop the reader.
    """

    js: JetStreamContext
    index: wire.PlanIndex
    durable: str
    filter_subject: str = f"{wire.OBS_PREFIX}.>"
    after_seq: int = 0  # messages at or below this stream sequence were processed already
    fetch_timeout_s: float = 1.0
    # An unacknowledged message is redelivered after this long: what a reader that died
    # holding messages costs its successor. Below the leader lease (10 s), so a standby taking
    # over finds them redelivered; far above the time to process one batch.
    ack_wait_s: float = 8.0
    # One message in flight: the server hands out nothing new while one is unacknowledged, so
    # a message redelivered after a reader's death still comes before every later one (health
    # judges in order). Costs a fetch and an ack round trip per message: ~100 per national
    # round, well under a millisecond each on one machine.
    max_ack_pending: int = 1
    # Where a new consumer starts: None, the stream's first message (a core: it must judge
    # every round); a time, the first message stored at or after it (a web worker warms its
    # health up on the last minutes only, docs/bus.md).
    start_time: datetime | None = None
    # A consumer nobody fetched from for this long is removed by the server (web workers come
    # and go; a dead one leaves nothing behind). None: kept until deleted (the cores').
    inactive_threshold_s: float | None = None
    rejected: int = 0
    skipped: int = 0
    _sub: JetStreamContext.PullSubscription | None = None
    _fetched: deque[Msg] = field(default_factory=deque)

    async def open(self) -> None:
        """Create (or find) the durable consumer and bind to it."""
        by_time = self.start_time is not None
        config = api.ConsumerConfig(
            durable_name=self.durable,
            deliver_policy=api.DeliverPolicy.BY_START_TIME if by_time else api.DeliverPolicy.ALL,
            opt_start_time=self.start_time,
            ack_policy=api.AckPolicy.EXPLICIT,
            ack_wait=self.ack_wait_s,
            filter_subject=self.filter_subject,
            max_ack_pending=self.max_ack_pending,
            inactive_threshold=self.inactive_threshold_s,
        )
        # Creates it, or updates an existing one's settings; its position is kept either way.
        await self.js.add_consumer(OBSERVATIONS, config)
        self._sub = await self.js.pull_subscribe_bind(durable=self.durable, stream=OBSERVATIONS)

    async def close(self) -> None:
        """Hand back what was fetched but not yet given out (it goes to the next reader at
        once, not after ``ack_wait_s``), then unsubscribe; the durable consumer and its
        position stay on the server."""
        while self._fetched:
            await self._fetched.popleft().nak()
        if self._sub is not None:
            await self._sub.unsubscribe()
            self._sub = None

    async def deliveries(self) -> AsyncIterator[Delivery]:
        """Decoded messages in stream order, forever (cancel or break to stop, then close)."""
        if self._sub is None:
            await self.open()
        assert self._sub is not None
        while True:
            raise_if_cancelled()
            if not self._fetched:
                try:
                    msgs = await self._sub.fetch(self.max_ack_pending, timeout=self.fetch_timeout_s)
                except nats.errors.TimeoutError:
                    continue
                self._fetched.extend(msgs)
            delivery = await self._decode(self._fetched.popleft())
            if delivery is not None:
                yield delivery

    async def _decode(self, msg: Msg) -> Delivery | None:
        meta = msg.metadata
        seq = meta.sequence.stream
        if seq <= self.after_seq:
            self.skipped += 1
            await msg.ack_sync()
            return None
        try:
            batch = wire.decode(msg.data, self.index)
        except wire.WireError as exc:
            self.rejected += 1
            log.warning(
                "observation message rejected subject=%s seq=%d error=%s", msg.subject, seq, exc
            )
            await msg.term()
            return None
        return Delivery(batch, msg.subject, seq, meta.num_delivered > 1, msg)
