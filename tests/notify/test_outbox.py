"""Outbox worker semantics with our own ports (store, clock, channel): restarts, leases, limits."""

from __future__ import annotations

import asyncio
import logging
import random
from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import datetime

import pytest

from netwatch.notify.channels import Delivered, Failed, FailureReason, SendOutcome
from netwatch.notify.messages import ChannelKind, NoticeEvent, dedup_key, outbox_payload
from netwatch.notify.outbox import OutboxWorker, RetryPolicy
from netwatch.store.types import OutboxItem

from .conftest import ManualClock, MemoryOutbox, make_notice


@dataclass
class ScriptedChannel:
    """A channel port double: returns scripted outcomes and records what it was given."""

    outcomes: list[SendOutcome] = field(default_factory=list)
    sent: list[tuple[str, str]] = field(default_factory=list)
    crash: bool = False
    changed: asyncio.Event = field(default_factory=asyncio.Event)

    async def count_reached(self, count: int) -> None:
        while len(self.sent) < count:
            self.changed.clear()
            await self.changed.wait()

    @property
    def kind(self) -> ChannelKind:
        return ChannelKind.WEBHOOK

    async def send(
        self, recipient: str, payload: Mapping[str, object], delivery_id: str
    ) -> SendOutcome:
        if self.crash:
            raise RuntimeError("bug in a channel")
        outcome = self.outcomes.pop(0) if self.outcomes else Delivered("ok")
        if isinstance(outcome, Delivered):
            self.sent.append((recipient, delivery_id))
            self.changed.set()
        return outcome


def enqueue_events(
    store: MemoryOutbox, clock: ManualClock, count: int, channel: str = "hook"
) -> None:
    for event_id in range(1, count + 1):
        notice = make_notice(NoticeEvent.UPDATED, event_id)
        store.enqueue(
            channel,
            "noc",
            outbox_payload(ChannelKind.WEBHOOK, notice),
            dedup_key(notice, channel, "noc"),
            clock.now(),
        )


async def test_restart_never_resends_what_was_marked_sent(clock: ManualClock) -> None:
    store = MemoryOutbox()
    enqueue_events(store, clock, 3)
    before = ScriptedChannel(
        outcomes=[Delivered(), Failed(FailureReason.SERVER_ERROR, True), Delivered()]
    )
    report = await OutboxWorker(store, {"hook": before}, clock, rng=random.Random(1)).deliver_due()
    assert (report.delivered, report.retrying) == (2, 1)

    # A new process: new worker, new channel, same store.
    after = ScriptedChannel()
    worker = OutboxWorker(store, {"hook": after}, clock, rng=random.Random(2))
    for _ in range(4):
        clock.advance(3600)
        await worker.deliver_due()
    assert [key for _, key in after.sent] == ["NW-2026-000042/2/hook/noc"]
    assert all(row.sent_at is not None for row in store.rows.values())


async def test_crash_after_claim_resends_once_after_the_lease(clock: ManualClock) -> None:
    """At-least-once: a worker that died holding a claim does not lose the item."""
    store = MemoryOutbox(lease_s=300)
    enqueue_events(store, clock, 1)
    claimed = await store.claim_due(clock.now(), 10)  # the dead worker's claim, never finished
    assert len(claimed) == 1

    channel = ScriptedChannel()
    worker = OutboxWorker(store, {"hook": channel}, clock)
    assert (await worker.deliver_due()).claimed == 0  # still leased: no double send
    clock.advance(301)
    assert (await worker.deliver_due()).delivered == 1
    assert channel.sent == [("noc", claimed[0].dedup_key)]  # same delivery id as the lost try


async def test_permanent_failures_and_unknown_channels_give_up(clock: ManualClock) -> None:
    store = MemoryOutbox()
    enqueue_events(store, clock, 1, channel="hook")
    enqueue_events(store, clock, 1, channel="removed-from-config")
    channel = ScriptedChannel(outcomes=[Failed(FailureReason.REJECTED, False, "HTTP 404")])
    report = await OutboxWorker(store, {"hook": channel}, clock).deliver_due()
    assert (report.claimed, report.gave_up) == (2, 2)
    assert store.rows[1].gave_up
    assert store.rows[1].schedule[-1][1] is None
    assert store.rows[1].errors == ["rejected: HTTP 404"]
    assert store.rows[2].errors == ["unknown_channel: no channel 'removed-from-config'"]


async def test_max_attempts_gives_up(clock: ManualClock) -> None:
    store = MemoryOutbox()
    enqueue_events(store, clock, 1)
    channel = ScriptedChannel(outcomes=[Failed(FailureReason.TIMEOUT, True)] * 3)
    policy = RetryPolicy(base_delay_s=1, max_delay_s=1, max_attempts=3)
    worker = OutboxWorker(store, {"hook": channel}, clock, policy=policy)
    reports = []
    for _ in range(3):
        reports.append(await worker.deliver_due())
        clock.advance(2)
    assert [r.retrying for r in reports] == [1, 1, 0]
    assert reports[-1].gave_up == 1
    assert store.rows[1].attempts == 3


async def test_a_crashing_channel_keeps_the_message(
    clock: ManualClock, caplog: pytest.LogCaptureFixture
) -> None:
    store = MemoryOutbox()
    enqueue_events(store, clock, 1)
    channel = ScriptedChannel(crash=True)
    worker = OutboxWorker(store, {"hook": channel}, clock)
    assert (await worker.deliver_due()).retrying == 1
    assert store.rows[1].errors == ["unexpected: RuntimeError"]
    assert "notify.channel_crashed" in caplog.text
    channel.crash = False
    clock.advance(3600)
    assert (await worker.deliver_due()).delivered == 1


async def test_a_slow_channel_times_out_and_is_retried(clock: ManualClock) -> None:
    class Hanging(ScriptedChannel):
        async def send(
            self, recipient: str, payload: Mapping[str, object], delivery_id: str
        ) -> SendOutcome:
            await asyncio.Event().wait()
            raise AssertionError("unreachable")

    store = MemoryOutbox()
    enqueue_events(store, clock, 1)
    worker = OutboxWorker(store, {"hook": Hanging()}, clock, send_timeout_s=0.05)
    assert (await worker.deliver_due()).retrying == 1
    assert store.rows[1].errors[0].startswith("timeout")


async def test_failures_warn_once_per_outage(
    clock: ManualClock, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.INFO)
    store = MemoryOutbox()
    enqueue_events(store, clock, 5)
    channel = ScriptedChannel(outcomes=[Failed(FailureReason.CONNECTION_REFUSED, True)] * 10)
    worker = OutboxWorker(
        store, {"hook": channel}, clock, policy=RetryPolicy(base_delay_s=1, max_delay_s=1)
    )
    await worker.deliver_due()
    clock.advance(2)
    await worker.deliver_due()
    channel.outcomes.clear()
    clock.advance(2)
    assert (await worker.deliver_due()).delivered == 5
    warnings = [r.getMessage() for r in caplog.records if r.levelname == "WARNING"]
    assert warnings == ["notify.channel_failing channel=hook reason=connection_refused detail="]
    assert "notify.channel_recovered channel=hook" in caplog.text


async def test_run_loop_delivers_on_wake_and_stops(clock: ManualClock) -> None:
    store = MemoryOutbox()
    channel = ScriptedChannel()
    worker = OutboxWorker(store, {"hook": channel}, clock, batch_size=2)
    stop = asyncio.Event()
    task = asyncio.create_task(worker.run(stop, poll_interval_s=30))
    await asyncio.sleep(0)
    enqueue_events(store, clock, 5)
    worker.wake()
    async with asyncio.timeout(10):  # batches of 2: the loop goes on while batches are full
        await channel.count_reached(5)
    stop.set()
    async with asyncio.timeout(10):
        await task
    assert len(channel.sent) == 5


def test_retry_policy_grows_caps_and_validates() -> None:
    policy = RetryPolicy(base_delay_s=10, factor=2, max_delay_s=300, jitter_ratio=0.5)
    assert [policy.nominal_delay_s(n) for n in (1, 2, 3, 4, 5, 6, 1000)] == [
        10,
        20,
        40,
        80,
        160,
        300,
        300,
    ]
    rng = random.Random(5)
    delays = [policy.delay_s(3, rng, None) for _ in range(200)]
    assert all(20 <= d <= 40 for d in delays)
    assert max(delays) - min(delays) > 5  # jitter spreads retries
    with pytest.raises(ValueError, match="base_delay_s"):
        RetryPolicy(base_delay_s=0)
    with pytest.raises(ValueError, match="jitter_ratio"):
        RetryPolicy(jitter_ratio=1.0)


async def test_store_failing_to_record_a_delivery_resends_after_the_lease(
    clock: ManualClock, caplog: pytest.LogCaptureFixture
) -> None:
    """The crash window of at-least-once: delivered, then the store lost the mark."""

    class FlakyStore(MemoryOutbox):
        broken = True

        async def mark_sent(self, item_id: int, at: datetime) -> None:
            if self.broken:
                raise ConnectionError("database went away")
            await super().mark_sent(item_id, at)

    store = FlakyStore(lease_s=300)
    enqueue_events(store, clock, 1)
    channel = ScriptedChannel()
    worker = OutboxWorker(store, {"hook": channel}, clock)
    assert (await worker.deliver_due()).store_errors == 1
    assert "notify.record_failed" in caplog.text
    store.broken = False
    clock.advance(60)
    assert (await worker.deliver_due()).claimed == 0  # leased: not resent at once
    clock.advance(300)
    assert (await worker.deliver_due()).delivered == 1
    # Sent twice with the same delivery id: the receiver can drop the second.
    assert [key for _, key in channel.sent] == ["NW-2026-000042/1/hook/noc"] * 2


async def test_a_store_outage_logs_one_traceback_then_summaries_then_recovery(
    clock: ManualClock, caplog: pytest.LogCaptureFixture, monkeypatch: pytest.MonkeyPatch
) -> None:
    """During a database outage the loop retries every pass; the log got a traceback each
    time (the soak counted dozens a minute). Now: one traceback, a line a minute, a recovery."""

    class DownStore(MemoryOutbox):
        down = True
        passes = 0
        changed = asyncio.Event()

        async def claim_due(self, now: datetime, limit: int) -> list[OutboxItem]:
            DownStore.passes += 1
            DownStore.changed.set()
            if DownStore.down:
                raise ConnectionError("database gone")
            return await super().claim_due(now, limit)

    monkeypatch.setattr("netwatch.notify.outbox.PASS_FAILURE_SUMMARY_S", 0.0)
    store = DownStore()
    worker = OutboxWorker(store, {"hook": ScriptedChannel()}, clock)
    stop = asyncio.Event()

    async def passes(count: int) -> None:
        while DownStore.passes < count:
            DownStore.changed.clear()
            worker.wake()
            await DownStore.changed.wait()

    with caplog.at_level(logging.WARNING, "netwatch.notify.outbox"):
        task = asyncio.create_task(worker.run(stop, poll_interval_s=30))
        async with asyncio.timeout(10):
            await passes(4)
            DownStore.down = False
            await passes(6)
        stop.set()
        async with asyncio.timeout(10):
            await task
    tracebacks = [r for r in caplog.records if r.exc_info]
    assert len(tracebacks) == 1
    assert tracebacks[0].getMessage() == "notify.outbox_pass_failed"
    still = [r for r in caplog.records if "outbox_pass_still_failing" in r.getMessage()]
    assert len(still) >= 2
    assert "ConnectionError: database gone" in still[0].getMessage()
    assert any("notify.outbox_pass_recovered" in r.getMessage() for r in caplog.records)
