"""The core's feed of agents' rounds (AgentFeed), against a real nats-server: every round to
every inside sink once, in seq order per agent, also across a restart of the core (clean or
not) and when a box resends a round after the stream's duplicate window; a round whose payload
names another commune than its subject is refused; heartbeats reach the sinks; a web worker's
feed starts from the newest round of each commune."""

from __future__ import annotations

import asyncio
from collections.abc import Callable
from dataclasses import dataclass, field, replace
from datetime import UTC, datetime

from nats.aio.client import Client
from nats.js import JetStreamContext

from netwatch.agent import wire
from netwatch.agent.model import AgentHeartbeat, InsideRound, Ping
from netwatch.bus.setup import ensure_agent_stream, ensure_buckets
from netwatch.inside.feed import AgentFeed
from netwatch.inside.state import InsideState
from tests.waiting import stops_after_a_lost_cancellation

DURABLE = "agents-core-test"


@dataclass
class Recorder:
    rounds: list[tuple[str, int]] = field(default_factory=list)
    beats: list[str] = field(default_factory=list)

    def inside_round(self, round_: InsideRound, received_at: datetime) -> None:
        self.rounds.append((round_.agent, round_.seq))

    def heartbeat(self, beat: AgentHeartbeat, received_at: datetime) -> None:
        self.beats.append(beat.agent)


def _round(commune: str, seq: int) -> InsideRound:
    return InsideRound(
        commune=commune,
        agent=f"{commune}-agent",
        seq=seq,
        at=datetime.now(UTC),
        config_revision="r1",
        gateway=Ping("10.110.10.129", 4, 4, 0.001, 0.002, None),
        paths=(),
        portals=(),
        devices=(),
    )


async def _publish(js: JetStreamContext, round_: InsideRound, msg_id: str | None = None) -> bool:
    """As the box's forwarder does; True when stored (False: a duplicate in the window)."""
    ack = await js.publish(
        f"nw.agent.v1.{round_.commune}.obs",
        wire.encode_round(round_),
        headers={"Nats-Msg-Id": msg_id or f"{round_.agent}:{round_.seq}"},
    )
    return not ack.duplicate


async def _until(check: Callable[[], bool], timeout_s: float = 10.0) -> None:
    deadline = asyncio.get_running_loop().time() + timeout_s
    while not check():
        assert asyncio.get_running_loop().time() < deadline, "not in time"
        await asyncio.sleep(0.02)


async def test_rounds_reach_the_sinks_once_and_in_order_across_restarts(
    nc: Client, js: JetStreamContext
) -> None:
    await ensure_agent_stream(js)
    buckets = await ensure_buckets(js)
    rec = Recorder()
    state = InsideState()
    feed = AgentFeed(nc, [state, rec], durable=DURABLE, seq_store=buckets.state)
    await feed.start()
    for seq in (1, 2, 3):
        assert await _publish(js, _round("24848", seq))
        assert await _publish(js, _round("24846", seq))
    assert not await _publish(js, _round("24848", 3))  # resent within the window: one copy
    await _until(lambda: len(rec.rounds) == 6)
    await feed.stop()  # a clean stop saves the last seq per agent
    # Published while the core is down, then the core comes back under the same name.
    for seq in (4, 5):
        await _publish(js, _round("24848", seq))
    # A round resent after the duplicate window (new message id): stored again, never applied.
    assert await _publish(js, _round("24848", 2), msg_id="24848-agent:2:late")
    feed = AgentFeed(nc, [rec], durable=DURABLE, seq_store=buckets.state)
    await feed.start()
    await _publish(js, _round("24848", 6))
    await _until(lambda: ("24848-agent", 6) in rec.rounds)
    assert feed.duplicates == 1
    # A core that dies without saving: the durable consumer still resumes after its last ack.
    for task in feed._tasks:
        task.cancel()
    await asyncio.gather(*feed._tasks, return_exceptions=True)
    await _publish(js, _round("24846", 4))
    feed = AgentFeed(nc, [rec], durable=DURABLE, seq_store=buckets.state)
    await feed.start()
    await _until(lambda: ("24846-agent", 4) in rec.rounds)
    await asyncio.sleep(0.3)
    await feed.stop()
    mine = [seq for agent, seq in rec.rounds if agent == "24848-agent"]
    theirs = [seq for agent, seq in rec.rounds if agent == "24846-agent"]
    assert mine == [1, 2, 3, 4, 5, 6]
    assert theirs == [1, 2, 3, 4]
    view = state.get("24848")
    assert view is not None
    assert view.last_round is not None
    assert view.last_round.seq == 3  # this sink was the first core's only


async def test_a_round_for_another_commune_than_its_subject_is_refused(
    nc: Client, js: JetStreamContext
) -> None:
    await ensure_agent_stream(js)
    rec = Recorder()
    feed = AgentFeed(nc, [rec], durable=DURABLE)
    await feed.start()
    try:
        forged = replace(_round("24846", 1), commune="24846")
        await js.publish("nw.agent.v1.24848.obs", wire.encode_round(forged))
        await js.publish("nw.agent.v1.24848.obs", b"not msgpack at all")
        await _publish(js, _round("24848", 1))
        await _until(lambda: rec.rounds == [("24848-agent", 1)])
        assert feed.rejected == {"commune_mismatch": 1, "undecodable": 1}
    finally:
        await feed.stop()


async def test_heartbeats_and_a_web_workers_feed(nc: Client, js: JetStreamContext) -> None:
    await ensure_agent_stream(js)
    for seq in (1, 2, 3):
        await _publish(js, _round("24848", seq))
    await _publish(js, _round("24846", 7))
    rec = Recorder()
    state = InsideState()
    web = AgentFeed(nc, [state, rec])
    await web.start()
    try:
        # The newest round of each commune at once, then live ones.
        await _until(lambda: sorted(rec.rounds) == [("24846-agent", 7), ("24848-agent", 3)])
        await _publish(js, _round("24848", 4))
        await _until(lambda: ("24848-agent", 4) in rec.rounds)
        beat = AgentHeartbeat(
            commune="24848",
            agent="24848-agent",
            version="0.1.0",
            at=datetime.now(UTC),
            config_revision="r1",
            last_seq=4,
            buffer_messages=0,
            buffer_bytes=0,
            buffer_oldest_at=None,
            dropped_total=0,
            uptime_s=10.0,
        )
        await nc.publish("nw.agent.v1.24848.hb", wire.encode_heartbeat(beat))
        await nc.publish("nw.agent.v1.24846.hb", wire.encode_heartbeat(beat))  # not its commune
        await _until(lambda: rec.beats == ["24848-agent"])
        view = state.get("24848")
        assert view is not None
        assert view.heartbeat is not None
        assert view.last_round is not None
        assert view.last_round.seq == 4
        await asyncio.sleep(0.2)
        assert rec.beats == ["24848-agent"]
        assert web.rejected == {"commune_mismatch": 1}
    finally:
        await web.stop()


async def test_a_cancellation_lost_on_the_way_still_stops_the_core_feed(
    nc: Client, js: JetStreamContext
) -> None:
    await ensure_agent_stream(js)
    buckets = await ensure_buckets(js)
    feed = AgentFeed(nc, [Recorder()], durable=DURABLE, seq_store=buckets.state)
    assert await stops_after_a_lost_cancellation(feed._run_core)  # what start() runs in the core
