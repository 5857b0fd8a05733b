"""The core's feed from the bus (BusFeed), against a real nats-server: full rounds to every sink,
fast rounds to the fast sinks, reports to round_done; what was applied is never applied again,
and a sink that fails loses one batch, not the stream."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path

import pytest
from nats.js import JetStreamContext

from netwatch.bus import wire
from netwatch.bus.streams import OBSERVATIONS, ObservationPublisher, ensure_stream
from netwatch.inventory import load_inventory
from netwatch.observations import IcmpObservation, Observation, RoundReport
from netwatch.plan import Plan, compile_plan
from netwatch.roles.core import BusFeed
from probes.icmp import PingResult
from tests.roles.procs import write_config
from tests.waiting import async_wait_until, stops_after_a_lost_cancellation

DURABLE = "core-test"
Running = tuple[BusFeed, "Recorder", "Recorder", list[asyncio.Task[None]]]


@dataclass
class Recorder:
    """A sink that remembers what it was given."""

    observed: list[int] = field(default_factory=list)  # batch sizes
    reports: list[RoundReport] = field(default_factory=list)
    fail_once: bool = False

    def observe(self, batch: Sequence[Observation]) -> None:
        if self.fail_once:
            self.fail_once = False
            raise ValueError("a sink's bug")
        self.observed.append(len(batch))

    def round_done(self, report: RoundReport) -> None:
        self.reports.append(report)


@pytest.fixture
def plan(tmp_path: Path) -> Plan:
    return compile_plan(load_inventory(write_config(tmp_path / "netwatch.yaml", links=2)))


@pytest.fixture
async def publisher(js: JetStreamContext, plan: Plan) -> ObservationPublisher:
    await ensure_stream(js)
    return ObservationPublisher(js, wire.PlanIndex.from_plan(plan), shard=0)


def _round(plan: Plan) -> list[Observation]:
    now = datetime.now(UTC)
    result = PingResult("127.0.0.2", 5, 5, 0.0, 0.001, 0.001, 0.001, 0.0, (0.001,) * 5, None, now)
    return [IcmpObservation(t, result) for t in plan.icmp]


async def _publish(pub: ObservationPublisher, plan: Plan, n: int, *, fast: bool = False) -> None:
    batch = _round(plan)
    await pub.publish_round("icmp", batch, round_id=n, fast=fast)
    if not fast:
        at = datetime.now(UTC)
        await pub.publish_report(RoundReport("icmp", at, at, 0.0, 0.1, len(batch), 0), round_id=n)


@pytest.fixture
async def running(js: JetStreamContext, plan: Plan) -> AsyncIterator[Running]:
    feed = BusFeed(js, wire.PlanIndex.from_plan(plan), DURABLE)
    full, fast = Recorder(), Recorder()
    tasks = [asyncio.create_task(feed.run([full, fast], [fast]))]
    try:
        yield feed, full, fast, tasks
    finally:
        for task in tasks:
            task.cancel()
        await asyncio.gather(*tasks, return_exceptions=True)


async def _applied(feed: BusFeed, messages: int) -> None:
    await async_wait_until(
        lambda: feed.counts.messages >= messages, timeout_s=20, message=f"{messages} applied"
    )


async def test_rounds_fast_rounds_and_reports_reach_their_sinks(
    publisher: ObservationPublisher,
    plan: Plan,
    running: Running,
) -> None:
    feed, full, fast, _ = running
    await _publish(publisher, plan, 1)
    await _publish(publisher, plan, 2, fast=True)
    await _applied(feed, 3)
    assert full.observed == [2]  # the full round only
    assert fast.observed == [2, 2]  # the full round and the fast one
    assert [r.kind for r in full.reports] == [r.kind for r in fast.reports] == ["icmp"]
    assert feed.counts.observations == {("icmp", False): 2, ("icmp", True): 2}
    assert feed.counts.reports == {"icmp": 1}


async def test_what_was_applied_is_skipped_when_delivered_again(
    js: JetStreamContext,
    publisher: ObservationPublisher,
    plan: Plan,
    running: Running,
) -> None:
    feed, full, _, tasks = running
    await _publish(publisher, plan, 1)
    await _applied(feed, 2)
    tasks[0].cancel()
    await asyncio.gather(tasks[0], return_exceptions=True)
    # The consumer's position is lost (deleted; as good as an ack that never arrived): the
    # stream hands everything out again from the start.
    await js.delete_consumer(OBSERVATIONS, DURABLE)
    await _publish(publisher, plan, 2)
    tasks.append(asyncio.create_task(feed.run([full], [])))
    await _applied(feed, 4)
    assert feed.counts.skipped == 2
    assert full.observed == [2, 2]  # each round once
    assert len(full.reports) == 2


async def test_a_failing_sink_loses_one_batch_not_the_stream(
    publisher: ObservationPublisher,
    plan: Plan,
    running: Running,
) -> None:
    feed, full, _, _ = running
    full.fail_once = True
    await _publish(publisher, plan, 1)
    await _publish(publisher, plan, 2)
    await _applied(feed, 4)
    assert feed.counts.failed == 1
    assert full.observed == [2]  # the second round went through
    assert len(full.reports) == 2


async def test_a_cancellation_lost_on_the_way_still_stops_the_feed(
    js: JetStreamContext, publisher: ObservationPublisher, plan: Plan
) -> None:
    feed = BusFeed(js, wire.PlanIndex.from_plan(plan), DURABLE)
    assert await stops_after_a_lost_cancellation(lambda: feed.run([Recorder()], []))
