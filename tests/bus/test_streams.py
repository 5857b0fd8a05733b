"""JetStream as NetWatch uses it, against a real nats-server: the stream and buckets, the
publisher's message ids, the durable consumer's position, garbage on the stream."""

from __future__ import annotations

import asyncio
from datetime import UTC, datetime
from pathlib import Path

import msgpack
import nats
import pytest
from nats.js import JetStreamContext

from netwatch.bus import wire
from netwatch.bus.cancel import raise_if_cancelled
from netwatch.bus.server import NatsServerOptions, running_nats_server
from netwatch.bus.streams import (
    LEADER_BUCKET,
    OBSERVATIONS,
    STATE_BUCKET,
    Delivery,
    ObservationConsumer,
    ObservationPublisher,
    PublishError,
    StreamLimits,
    ensure_buckets,
    ensure_stream,
)
from netwatch.observations import IcmpObservation
from netwatch.plan import Plan
from tests.bus import national
from tests.servers import reserved_port
from tests.waiting import async_wait_until

ROUND_S = 30_000  # round ids are the slots' start in Unix ms


@pytest.fixture(scope="module")
def plan() -> Plan:
    return national.national_plan(120)  # about 3.5 communes in each of 34 provinces


@pytest.fixture(scope="module")
def index(plan: Plan) -> wire.PlanIndex:
    return wire.PlanIndex.from_plan(plan)


@pytest.fixture
async def stream(js: JetStreamContext) -> JetStreamContext:
    await ensure_stream(js)
    return js


def _round_id(n: int) -> int:
    return 1796434200000 + n * ROUND_S


async def _take(consumer: ObservationConsumer, n: int, *, ack: bool = True) -> list[Delivery]:
    """The next n deliveries (acknowledged unless told), or a failure after 20 s."""
    got: list[Delivery] = []
    async with asyncio.timeout(20):
        async for d in consumer.deliveries():
            if ack:
                await d.ack()
            got.append(d)
            if len(got) == n:
                break
    return got


async def test_setup_is_idempotent_and_applies_new_limits(js: JetStreamContext) -> None:
    first = await ensure_stream(js)
    again = await ensure_stream(js)
    assert first.config.subjects == again.config.subjects == ["nw.obs.v1.>"]
    assert again.config.duplicate_window == 300.0
    changed = await ensure_stream(js, StreamLimits(max_age_s=3600.0))
    assert changed.config.max_age == 3600.0
    await ensure_buckets(js)
    buckets = await ensure_buckets(js, StreamLimits(state_max_bytes=64 * 1024**2))
    info = await js.stream_info(f"KV_{STATE_BUCKET}")
    assert info.config.max_bytes == 64 * 1024**2
    assert buckets.state is not None


async def test_a_round_arrives_whole_and_in_order(
    stream: JetStreamContext, plan: Plan, index: wire.PlanIndex
) -> None:
    pub = ObservationPublisher(stream, index, shard=0, plan="p1", max_rows=5)
    icmp = national.icmp_round(plan)
    sent = []
    for n in range(3):
        sent.append(await pub.publish_round("icmp", icmp, round_id=_round_id(n)))
        await pub.publish_report(national.round_report(len(icmp)), round_id=_round_id(n))
    messages = sum(r.messages for r in sent) + 3
    assert sent[0].messages > 35  # 34 provinces + nation, split at 5 rows
    consumer = ObservationConsumer(stream, index, durable="core")
    got = await _take(consumer, messages)
    assert [d.stream_seq for d in got] == sorted(d.stream_seq for d in got)
    rounds = [d.batch.round_id for d in got]
    assert rounds == sorted(rounds)  # round after round
    reports = [d for d in got if d.batch.report is not None]
    assert [d.subject for d in reports] == ["nw.obs.v1.round.icmp"] * 3
    first_round = [o for d in got if d.batch.round_id == _round_id(0) for o in d.batch.observations]
    assert sorted(o.target.key for o in first_round if isinstance(o, IcmpObservation)) == sorted(
        t.key for t in plan.icmp
    )
    assert all(d.batch.plan == "p1" for d in got)
    await consumer.close()


async def test_a_republished_round_is_deduplicated(
    stream: JetStreamContext, plan: Plan, index: wire.PlanIndex
) -> None:
    pub = ObservationPublisher(stream, index, shard=1)
    snmp = national.snmp_round(plan)
    first = await pub.publish_round("snmp", snmp, round_id=_round_id(0))
    again = await pub.publish_round("snmp", snmp, round_id=_round_id(0))  # a retry after a crash
    assert first.duplicates == 0
    assert again.duplicates == again.messages == first.messages
    info = await stream.stream_info(OBSERVATIONS)
    assert info.state.messages == first.messages
    other_shard = ObservationPublisher(stream, index, shard=2)
    third = await other_shard.publish_round("snmp", snmp, round_id=_round_id(0))
    assert third.duplicates == 0  # another shard's messages are its own


async def _portal_rounds(
    js: JetStreamContext, plan: Plan, index: wire.PlanIndex, rounds: int
) -> ObservationConsumer:
    """Publish rounds of the portals (one message each: all are national) and open the core's
    consumer on them; its unacknowledged messages come back after a second."""
    pub = ObservationPublisher(js, index, shard=0)
    portals = national.http_round(plan)
    for n in range(rounds):
        await pub.publish_round("http", portals, round_id=_round_id(n))
    return ObservationConsumer(js, index, durable="core", ack_wait_s=1.0)


async def test_a_restarted_consumer_continues_after_its_last_ack(
    stream: JetStreamContext, plan: Plan, index: wire.PlanIndex
) -> None:
    consumer = await _portal_rounds(stream, plan, index, 5)
    done = await _take(consumer, 2)
    # The third is processed but the reader dies before its ack: it must come again.
    unacked = await _take(consumer, 1, ack=False)
    await consumer.close()

    restarted = ObservationConsumer(stream, index, durable="core", ack_wait_s=1.0)
    rest = await _take(restarted, 3)
    assert [d.batch.round_id for d in done] == [_round_id(0), _round_id(1)]
    assert [d.batch.round_id for d in rest] == [_round_id(2), _round_id(3), _round_id(4)]
    assert rest[0].stream_seq == unacked[0].stream_seq
    assert rest[0].redelivered
    info = await stream.consumer_info(OBSERVATIONS, "core")
    assert info.num_pending == 0
    assert info.num_ack_pending == 0
    await restarted.close()


async def test_a_reader_that_recorded_its_position_skips_what_it_processed(
    stream: JetStreamContext, plan: Plan, index: wire.PlanIndex
) -> None:
    # The exactly-once half on the reader's side: the core stores the stream sequence with its
    # state; a message processed but not acknowledged before a crash is skipped, not counted.
    consumer = await _portal_rounds(stream, plan, index, 3)
    processed = (await _take(consumer, 1))[0].stream_seq
    (second,) = await _take(consumer, 1, ack=False)  # processed, recorded, ack lost
    await consumer.close()
    restarted = ObservationConsumer(
        stream, index, durable="core", after_seq=second.stream_seq, ack_wait_s=1.0
    )
    (third,) = await _take(restarted, 1)
    assert processed < second.stream_seq < third.stream_seq
    assert third.batch.round_id == _round_id(2)
    assert restarted.skipped == 1
    await restarted.close()


async def test_garbage_on_the_stream_is_counted_and_skipped(
    stream: JetStreamContext, plan: Plan, index: wire.PlanIndex
) -> None:
    await stream.publish("nw.obs.v1.24.icmp", b"\x00not msgpack at all", stream=OBSERVATIONS)
    newer = msgpack.packb({"v": wire.VERSION + 1, "kind": "icmp", "obs": []})
    await stream.publish("nw.obs.v1.24.icmp", newer, stream=OBSERVATIONS)
    pub = ObservationPublisher(stream, index, shard=0)
    await pub.publish_round("http", national.http_round(plan), round_id=_round_id(0))
    consumer = ObservationConsumer(stream, index, durable="core")
    (good,) = await _take(consumer, 1)
    assert good.batch.kind == "http"
    assert consumer.rejected == 2
    info = await stream.consumer_info(OBSERVATIONS, "core")
    assert info.num_ack_pending == 0  # terminated, not waiting for redelivery
    await consumer.close()


async def test_kv_buckets_put_and_get(js: JetStreamContext) -> None:
    buckets = await ensure_buckets(js)
    rev = await buckets.state.put("province.24", b'{"round": 1}')
    entry = await buckets.state.get("province.24")
    assert entry.value == b'{"round": 1}'
    assert entry.revision == rev
    await buckets.state.put("province.24", b'{"round": 2}')
    assert (await buckets.state.get("province.24")).value == b'{"round": 2}'
    # The lease bucket: create only if absent, so exactly one of two cores gets it.
    await buckets.leader.create("core", b"core-a")
    with pytest.raises(Exception, match="wrong last sequence"):
        await buckets.leader.create("core", b"core-b")
    info = await js.stream_info(f"KV_{LEADER_BUCKET}")
    assert info.config.max_age == 10.0


async def test_a_huge_province_is_split_under_the_payload_limit(
    stream: JetStreamContext, plan: Plan, index: wire.PlanIndex
) -> None:
    pub = ObservationPublisher(stream, index, shard=0, max_rows=10_000, max_bytes=64 * 1024)
    result = await pub.publish_round("icmp", national.icmp_round(plan), round_id=_round_id(0))
    consumer = ObservationConsumer(stream, index, durable="core")
    got = await _take(consumer, result.messages)
    assert sum(len(d.batch.observations) for d in got) == len(plan.icmp)
    assert all(d.batch.sent_at <= datetime.now(UTC) for d in got)
    await consumer.close()


async def test_a_publish_nobody_stores_fails_after_its_retries(
    js: JetStreamContext, plan: Plan, index: wire.PlanIndex
) -> None:
    # No stream yet (ensure_stream not called): JetStream has no responder for the subject.
    pub = ObservationPublisher(js, index, shard=0, attempts=2, retry_base_s=0.01)
    with pytest.raises(PublishError, match=r"no ack for \d+:0:nw\.obs\.v1\.nation\.http:0 after 2"):
        await pub.publish_round("http", national.http_round(plan), round_id=_round_id(0))


async def test_the_bus_flows_again_after_the_server_was_down(
    tmp_path: Path, plan: Plan, index: wire.PlanIndex
) -> None:
    # What probe workers and the core live through when nats-server is killed and restarted:
    # the client reconnects by itself, the durable consumer keeps its position (on disk), and a
    # round published in the gap fails loudly, then goes through once, whatever was buffered.
    opts = NatsServerOptions(data_dir=tmp_path, port=reserved_port())
    portals = national.http_round(plan)
    async with running_nats_server(opts) as server:
        nc = await nats.connect(server.url, max_reconnect_attempts=-1, reconnect_time_wait=0.1)
        js = nc.jetstream()
        await ensure_stream(js)
        pub = ObservationPublisher(js, index, shard=0, ack_timeout_s=0.5, attempts=2)
        await pub.publish_round("http", portals, round_id=_round_id(0))
        consumer = ObservationConsumer(js, index, durable="core")
        (first,) = await _take(consumer, 1)
    try:
        with pytest.raises(PublishError):
            await pub.publish_round("http", portals, round_id=_round_id(1))
        async with running_nats_server(opts):
            await async_wait_until(lambda: nc.is_connected, message="client reconnected")
            await pub.publish_round("http", portals, round_id=_round_id(1))  # the same ids
            (second,) = await _take(consumer, 1)
            assert (first.batch.round_id, second.batch.round_id) == (_round_id(0), _round_id(1))
            assert (await js.stream_info(OBSERVATIONS)).state.messages == 2
            await consumer.close()
    finally:
        await nc.close()


async def test_a_cancellation_that_wait_for_returned_through_still_stops_a_loop() -> None:
    """Python 3.11's wait_for returns the result of a future done in the moment its task is
    cancelled (nats-py fetches every message through it): the loop must still stop."""
    done: asyncio.Future[int] = asyncio.get_running_loop().create_future()
    reached: list[object] = []

    async def fetching() -> None:
        reached.append(await asyncio.wait_for(done, 5))
        raise_if_cancelled()
        reached.append("went on")

    task = asyncio.create_task(fetching())
    await asyncio.sleep(0)  # waiting in wait_for now
    done.set_result(1)
    task.cancel()
    with pytest.raises(asyncio.CancelledError):
        await task
    assert "went on" not in reached
