"""What agents report, from the bus to the runtime's inside sinks (docs/agent-centre.md).

**The core** (`AgentFeed`, durable consumer ``agents-<core name>`` on stream AGENTS): every
round is decoded (netwatch.agent.wire) and handed to every ``runtime.inside_sinks`` entry (the
list itself: a sink added later hears too), once, in the agent's seq order:

* one message in flight (``max_ack_pending`` 1, as the observation feed): a round redelivered
  after a crash still comes before every later one;
* applied, then acknowledged (the ack confirmed by the server): a core restarted under the same
  name continues after its last acknowledged round;
* **dedupe by (agent, seq)**: JetStream drops a round resent within its duplicate window (1 h);
  a round resent later (its PubAck lost, then a long outage) has a seq at or below the last
  applied for that agent and is acknowledged and skipped. The last seq per agent is kept in the
  ``nw_state`` bucket (key ``agents.seq.<durable>``, every few seconds and at stop) so that
  this holds across a restart too;
* a round whose payload names another commune than its subject is refused (the hub checks the
  subject against the agent's key, the payload is the agent's word): counted, logged.

Heartbeats (``nw.agent.v1.*.hb``, live, never stored) come by a plain subscription: every core
and every web worker hears each one and hands it to its sinks.

**Web workers** (`AgentFeed(web=True)`) need the same ``InsideState`` for the pages: each reads
the stream through its own ephemeral consumer starting with the **last round per subject**
(``DeliverPolicy.LAST_PER_SUBJECT``: the newest round of each commune, at once) and then live,
without acks; it goes away with the worker. Chosen over a KV bucket the core would write: the
stream already holds the rounds, so no second copy and no write per round by the core, and the
pages stay current while the core is down (as the observation pages do).
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import Iterable, Sequence
from datetime import UTC, datetime
from typing import Final

import msgpack
import nats.errors
import nats.js.errors
from nats.aio.client import Client as NatsClient
from nats.aio.msg import Msg
from nats.js import JetStreamContext, api
from nats.js.kv import KeyValue
from prometheus_client.core import (
    CounterMetricFamily,
    GaugeMetricFamily,
    HistogramMetricFamily,
    Metric,
)
from prometheus_client.registry import Collector

from netwatch.agent import wire
from netwatch.agent.model import SUBJECT_PREFIX, InsideRound
from netwatch.bus.cancel import raise_if_cancelled
from netwatch.bus.setup import AGENT_SUBJECTS, AGENTS
from netwatch.inside.state import InsideSink

__all__ = ["AgentFeed", "FeedMetrics"]

log = logging.getLogger("netwatch.inside.feed")

HEARTBEAT_SUBJECTS: Final = f"{SUBJECT_PREFIX}.*.hb"
# Round delays (seconds): live rounds take well under a second, backfill minutes to days.
DELAY_BUCKETS: Final = (0.05, 0.1, 0.25, 0.5, 1.0, 2.0, 5.0, 10.0, 30.0, 60.0, 300.0, 3600.0)
_SAVE_EVERY_S: Final = 5.0


def _commune_of(subject: str) -> str:
    parts = subject.split(".")
    return parts[3] if len(parts) == 5 else ""


class AgentFeed:
    """Rounds and heartbeats of every agent to the inside sinks (see the module's text)."""

    def __init__(
        self,
        nc: NatsClient,
        sinks: Sequence[InsideSink],
        *,
        durable: str | None = None,  # the core's consumer; None: a web worker's ephemeral one
        seq_store: KeyValue | None = None,  # where the core keeps its last seq per agent
        fetch_timeout_s: float = 1.0,
        ack_wait_s: float = 8.0,
    ) -> None:
        self._nc = nc
        self._js: JetStreamContext = nc.jetstream()
        self._sinks = sinks
        self.durable = durable
        self._kv = seq_store
        self._fetch_timeout_s = fetch_timeout_s
        self._ack_wait_s = ack_wait_s
        self.last_seq: dict[str, int] = {}  # agent -> last round applied
        self._saved: dict[str, int] = {}
        self.applied = 0
        self.duplicates = 0
        self.heartbeats = 0
        self.rejected: dict[str, int] = {}
        self.failed = 0
        # From a round's start on the box to its arrival here (live rounds and backfill alike):
        # the sum and count since start, and the largest of this and the last minute.
        self.delay_sum_s = 0.0
        self.delay_count = 0
        self.delay_buckets = [0] * len(DELAY_BUCKETS)  # counts at or below each bound
        self._delay_max = (0.0, 0.0)  # (the last minute's, this minute's)
        self._delay_minute = 0
        self._tasks: list[asyncio.Task[None]] = []

    # -- start and stop ----------------------------------------------------------------------

    async def start(self) -> None:
        """Subscribe to heartbeats, load the last seqs (core), start reading rounds."""
        await self._load()
        await self._nc.subscribe(HEARTBEAT_SUBJECTS, cb=self._on_heartbeat)
        run = self._run_core() if self.durable is not None else self._run_web()
        self._tasks.append(asyncio.create_task(run, name="netwatch-agent-feed"))
        if self._kv is not None:
            self._tasks.append(asyncio.create_task(self._keep_saving(), name="netwatch-agent-seq"))

    async def stop(self) -> None:
        """Stop reading; the core saves its last seqs."""
        tasks, self._tasks = self._tasks, []
        for task in tasks:
            task.cancel()
        await asyncio.gather(*tasks, return_exceptions=True)
        with contextlib.suppress(Exception):
            await asyncio.wait_for(self._save(), 2.0)

    # -- the dedupe map across restarts -------------------------------------------------------

    @property
    def _key(self) -> str:
        return f"agents.seq.{self.durable}"

    async def _load(self) -> None:
        if self._kv is None:
            return
        try:
            entry = await self._kv.get(self._key)
        except nats.js.errors.KeyNotFoundError:
            return
        try:
            data = msgpack.unpackb(entry.value or b"\x80", raw=False)
            self.last_seq = {str(k): int(v) for k, v in dict(data).items()}
        except (ValueError, TypeError, msgpack.UnpackException) as exc:
            log.warning("agents' last seqs unreadable, starting afresh: %r", exc)
        self._saved = dict(self.last_seq)

    async def _save(self) -> None:
        if self._kv is None or self.last_seq == self._saved:
            return
        snapshot = dict(self.last_seq)
        await self._kv.put(self._key, bytes(msgpack.packb(snapshot)))
        self._saved = snapshot

    async def _keep_saving(self) -> None:
        while True:
            await asyncio.sleep(_SAVE_EVERY_S)
            try:
                await self._save()
            except (nats.errors.Error, nats.js.errors.Error, TimeoutError) as exc:
                raise_if_cancelled()
                log.warning("agents' last seqs not saved: %r", exc)

    # -- rounds ----------------------------------------------------------------------------

    def apply(self, subject: str, payload: bytes, received_at: datetime) -> bool:
        """Decode one round and hand it to every sink unless it was applied before; False when
        it was not applied (a duplicate, or refused)."""
        try:
            round_ = wire.decode_round(payload)
        except wire.AgentWireError as exc:
            self._reject("undecodable", subject, str(exc))
            return False
        if round_.commune != _commune_of(subject):
            self._reject("commune_mismatch", subject, f"payload commune {round_.commune}")
            return False
        if round_.seq <= self.last_seq.get(round_.agent, 0):
            self.duplicates += 1
            return False
        self._hand(round_, received_at)
        self.last_seq[round_.agent] = round_.seq
        self.applied += 1
        self._delay((received_at - round_.at).total_seconds(), received_at)
        return True

    def _delay(self, delay_s: float, now: datetime) -> None:
        self.delay_sum_s += delay_s
        self.delay_count += 1
        for i, bound in enumerate(DELAY_BUCKETS):
            if delay_s <= bound:
                self.delay_buckets[i] += 1
        minute = int(now.timestamp() // 60)
        last, this = self._delay_max
        if minute != self._delay_minute:
            last, this = (this if minute == self._delay_minute + 1 else 0.0), 0.0
            self._delay_minute = minute
        self._delay_max = (last, max(this, delay_s))

    @property
    def delay_max_s(self) -> float:
        """The largest delay of a round applied this minute or the last."""
        return max(self._delay_max)

    def _hand(self, round_: InsideRound, received_at: datetime) -> None:
        for sink in list(self._sinks):
            try:
                sink.inside_round(round_, received_at)
            except Exception:  # one sink's bug must not cost the others the round
                self.failed += 1
                log.exception("inside sink failed agent=%s seq=%d", round_.agent, round_.seq)

    def _reject(self, why: str, subject: str, detail: str) -> None:
        self.rejected[why] = self.rejected.get(why, 0) + 1
        log.warning("agent message refused reason=%s subject=%s: %s", why, subject, detail)

    async def _run_core(self) -> None:
        assert self.durable is not None
        config = api.ConsumerConfig(
            durable_name=self.durable,
            deliver_policy=api.DeliverPolicy.ALL,
            ack_policy=api.AckPolicy.EXPLICIT,
            ack_wait=self._ack_wait_s,
            filter_subject=AGENT_SUBJECTS,
            max_ack_pending=1,
        )
        delay = 0.5
        while True:
            try:
                await self._js.add_consumer(AGENTS, config)
                sub = await self._js.pull_subscribe_bind(durable=self.durable, stream=AGENTS)
                try:
                    while True:
                        raise_if_cancelled()
                        try:
                            msgs = await sub.fetch(1, timeout=self._fetch_timeout_s)
                        except nats.errors.TimeoutError:
                            continue
                        for msg in msgs:
                            self.apply(msg.subject, msg.data, datetime.now(UTC))
                            await msg.ack_sync()
                            delay = 0.5
                finally:
                    with contextlib.suppress(Exception):
                        await sub.unsubscribe()
            except asyncio.CancelledError:
                raise
            except (nats.errors.Error, nats.js.errors.Error, TimeoutError) as exc:
                log.warning("agent feed interrupted error=%r; again in %.1f s", exc, delay)
            except Exception:
                log.exception("agent feed failed; again in %.1f s", delay)
            await asyncio.sleep(delay)
            delay = min(delay * 2, 10.0)

    async def _run_web(self) -> None:
        done = asyncio.Event()

        async def on_round(msg: Msg) -> None:
            self.apply(msg.subject, msg.data, datetime.now(UTC))

        sub = await self._js.subscribe(
            AGENT_SUBJECTS,
            stream=AGENTS,
            cb=on_round,
            ordered_consumer=True,
            deliver_policy=api.DeliverPolicy.LAST_PER_SUBJECT,
        )
        try:
            await done.wait()
        finally:
            with contextlib.suppress(Exception):
                await sub.unsubscribe()

    # -- heartbeats --------------------------------------------------------------------------

    async def _on_heartbeat(self, msg: Msg) -> None:
        try:
            beat = wire.decode_heartbeat(msg.data)
        except wire.AgentWireError as exc:
            self._reject("undecodable", msg.subject, str(exc))
            return
        if beat.commune != _commune_of(msg.subject):
            self._reject("commune_mismatch", msg.subject, f"payload commune {beat.commune}")
            return
        self.heartbeats += 1
        now = datetime.now(UTC)
        for sink in list(self._sinks):
            try:
                sink.heartbeat(beat, now)
            except Exception:
                self.failed += 1
                log.exception("inside sink failed on a heartbeat agent=%s", beat.agent)


class FeedMetrics(Collector):
    """The agent feed's series (the core's /metrics)."""

    def __init__(self, feed: AgentFeed) -> None:
        self._feed = feed

    def collect(self) -> Iterable[Metric]:
        f = self._feed
        for name, doc, value in (
            ("agent_rounds_applied", "Agent rounds handed to the inside sinks", f.applied),
            ("agent_rounds_skipped", "Agent rounds applied before (resent): skipped", f.duplicates),
            ("agent_heartbeats", "Agent heartbeats handed to the inside sinks", f.heartbeats),
            ("agent_sink_failures", "Inside sink calls that raised (see the log)", f.failed),
        ):
            yield CounterMetricFamily(f"netwatch_{name}", doc, value=value)
        yield HistogramMetricFamily(
            "netwatch_agent_round_delay_seconds",
            "From an agent round's start on the box to the core applying it",
            buckets=[
                *((f"{b:g}", n) for b, n in zip(DELAY_BUCKETS, f.delay_buckets, strict=True)),
                ("+Inf", f.delay_count),
            ],
            sum_value=f.delay_sum_s,
        )
        yield GaugeMetricFamily(
            "netwatch_agent_round_delay_max_seconds",
            "The largest round delay of this minute and the last",
            value=f.delay_max_s,
        )
        rejected = CounterMetricFamily(
            "netwatch_agent_messages_rejected",
            "Agent messages refused by the feed, by reason",
            labels=["reason"],
        )
        for reason, n in sorted(f.rejected.items()):
            rejected.add_metric([reason], n)
        yield rejected
