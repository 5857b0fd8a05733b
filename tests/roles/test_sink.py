"""BusSink against a real nats-server: rounds go out under epoch-aligned ids, fast rounds on the
``.fast`` subjects, and without a bus the newest rounds wait while the oldest are dropped."""

from __future__ import annotations

import asyncio
import dataclasses
from collections.abc import AsyncIterator
from datetime import UTC, datetime, timedelta

import pytest
from nats.js import JetStreamContext

from netwatch.bus import wire
from netwatch.bus.sink import BusSink, aligned_round_id
from netwatch.bus.streams import (
    Delivery,
    ObservationConsumer,
    ObservationPublisher,
    ensure_stream,
)
from netwatch.observations import RoundReport
from netwatch.plan import Plan
from tests.bus import national

INTERVALS = {"icmp": 30.0, "snmp": 60.0, "http": 60.0}


@pytest.fixture(scope="module")
def plan() -> Plan:
    return national.national_plan(60)


@pytest.fixture
async def publisher(js: JetStreamContext, plan: Plan) -> ObservationPublisher:
    await ensure_stream(js)
    return ObservationPublisher(js, wire.PlanIndex.from_plan(plan), shard=1)


@pytest.fixture
async def consumer(js: JetStreamContext, plan: Plan) -> AsyncIterator[ObservationConsumer]:
    c = ObservationConsumer(js, wire.PlanIndex.from_plan(plan), "test-sink")
    await c.open()
    try:
        yield c
    finally:
        await c.close()


async def _take(consumer: ObservationConsumer, n: int) -> list[Delivery]:
    got: list[Delivery] = []
    async with asyncio.timeout(20):
        async for d in consumer.deliveries():
            await d.ack()
            got.append(d)
            if len(got) == n:
                break
    return got


def _report(at: datetime, targets: int) -> RoundReport:
    return dataclasses.replace(national.round_report(targets, at), scheduled_at=at)


def test_round_ids_are_the_slot_floored_to_the_interval() -> None:
    base = datetime(2026, 12, 5, 1, 30, tzinfo=UTC)  # a multiple of 30 s
    ms = int(base.timestamp() * 1000)
    assert aligned_round_id(base, 30.0) == ms
    assert aligned_round_id(base + timedelta(seconds=29.9), 30.0) == ms
    assert aligned_round_id(base + timedelta(seconds=30), 30.0) == ms + 30_000
    assert aligned_round_id(base + timedelta(seconds=1.5), 2.0) == ms


async def test_rounds_and_fast_rounds_reach_their_subjects(
    plan: Plan, publisher: ObservationPublisher, consumer: ObservationConsumer
) -> None:
    sink = BusSink(INTERVALS)
    task = asyncio.create_task(sink.run(lambda: publisher))
    try:
        at = national.ROUND_AT + timedelta(seconds=7)  # a shard's jitter inside the slot
        icmp = national.icmp_round(plan, at)
        sink.observe(icmp)
        sink.round_done(_report(at, len(icmp)))
        suspects = icmp[:3]
        sink.fast.observe(suspects)
        sink.fast.observe(suspects)
        await asyncio.wait_for(sink.drain(), 20)
    finally:
        task.cancel()
        await asyncio.gather(task, return_exceptions=True)
    c = sink.counters
    assert c.published_rounds == {("icmp", False): 1, ("icmp", True): 2}
    assert c.dropped_rounds == {}
    assert c.publish_errors == 0
    # Every province's message, the round report, then the two fast rounds.
    provinces = {wire.observation_subject(p, "icmp") for p in _provinces(plan)}
    got = await _take(consumer, len(provinces) + 3)
    full = [d for d in got if d.batch.observations and not d.batch.fast]
    assert {d.subject for d in full} == provinces
    slot = aligned_round_id(national.ROUND_AT, 30.0)
    assert {d.batch.round_id for d in full} == {slot}
    assert sorted(o.target.key for d in full for o in d.batch.observations) == sorted(  # type: ignore[union-attr]
        t.key for t in plan.icmp
    )
    reports = [d for d in got if d.batch.report is not None]
    assert [d.subject for d in reports] == [wire.report_subject("icmp")]
    assert reports[0].batch.round_id == slot
    fast = [d for d in got if d.batch.fast]
    assert len(fast) == 2
    assert {d.subject for d in fast} == {wire.observation_subject("01", "icmp", fast=True)}
    assert fast[0].batch.round_id < fast[1].batch.round_id  # two fast rounds, two ids


def _provinces(plan: Plan) -> set[str]:
    return {t.link.province if t.link else wire.NATION for t in plan.icmp if t.role != "device"}


async def test_without_a_bus_the_newest_rounds_wait_and_the_oldest_are_dropped(
    plan: Plan, publisher: ObservationPublisher, consumer: ObservationConsumer
) -> None:
    sink = BusSink(INTERVALS, keep_rounds=2, retry_s=0.05)
    available: list[ObservationPublisher] = []
    task = asyncio.create_task(sink.run(lambda: available[0] if available else None))
    try:
        ids = []
        for n in range(5):
            at = national.ROUND_AT + timedelta(seconds=30 * n)
            ids.append(aligned_round_id(at, 30.0))
            sink.observe([])  # a round of no observations still has its report
            sink.round_done(_report(at, 0))
            await asyncio.sleep(0.1)  # the publisher tries, and fails: no connection
        assert sink.counters.dropped_rounds == {("icmp", False): 3}
        assert sink.counters.publish_errors >= 1
        assert sink.queued == 2
        available.append(publisher)  # the bus is back
        await asyncio.wait_for(sink.drain(), 20)
    finally:
        task.cancel()
        await asyncio.gather(task, return_exceptions=True)
    got = await _take(consumer, 2)
    assert [d.batch.round_id for d in got] == ids[3:]  # the newest two, oldest first
    assert sink.counters.published_rounds == {("icmp", False): 2}
