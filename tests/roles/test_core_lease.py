"""The core's leadership on the bus lease (LeaseLeader), against a real nats-server."""

from __future__ import annotations

import nats
from nats.js import JetStreamContext

from netwatch.bus.lease import Lease
from netwatch.bus.server import NatsServer
from netwatch.bus.streams import StreamLimits, ensure_buckets
from netwatch.roles.core import LeaseLeader
from netwatch.roles.web import LeaseWatch
from netwatch.store.leader import LeaderCheck, LeaderStatus
from tests.waiting import async_wait_until, stops_after_a_lost_cancellation

TTL_S = 1.0


async def test_one_leads_and_the_standby_takes_over_a_released_lease(js: JetStreamContext) -> None:
    buckets = await ensure_buckets(js, StreamLimits(leader_ttl_s=TTL_S))
    a = LeaseLeader(Lease(buckets.leader, "core@a:1"), TTL_S)
    b = LeaseLeader(Lease(buckets.leader, "core@b:2"), TTL_S)
    woken: list[bool] = []
    b.on_change.append(lambda: woken.append(True))
    try:
        assert await a.refresh() == LeaderCheck(LeaderStatus.LEADER, True)
        assert await b.refresh() == LeaderCheck(LeaderStatus.FOLLOWER, False)
        assert await a.refresh() == LeaderCheck(LeaderStatus.LEADER, False)
        await a.release()
        # b's own task takes the lease and wakes alerting; its next refresh says it changed
        # (found by the failover test: alerting must restore the book on taking over).
        await async_wait_until(lambda: b.is_leader, timeout_s=5, message="b took the lease")
        assert woken
        assert await b.refresh() == LeaderCheck(LeaderStatus.LEADER, True)
        assert b.revision is not None
    finally:
        await a.release()
        await b.release()


async def test_a_leader_that_cannot_renew_stops_at_once(
    js: JetStreamContext, nats_server: NatsServer
) -> None:
    await ensure_buckets(js, StreamLimits(leader_ttl_s=TTL_S))
    own = await nats.connect(nats_server.url, allow_reconnect=False)
    leader = LeaseLeader(Lease(await own.jetstream().key_value("nw_leader"), "core@a:1"), TTL_S)
    try:
        assert (await leader.refresh()).is_leader
        await own.close()  # the bus is gone for this core
        await async_wait_until(
            lambda: not leader.is_leader, timeout_s=TTL_S, message="stepped down"
        )
        check = await leader.refresh()
        assert not check.is_leader
        assert check.changed
    finally:
        await leader.release()


async def test_a_lease_not_renewed_in_time_is_not_trusted(js: JetStreamContext) -> None:
    buckets = await ensure_buckets(js)  # 10 s TTL: renewals every 3.3 s
    now = [0.0]
    leader = LeaseLeader(Lease(buckets.leader, "core@a:1"), 10.0, clock=lambda: now[0])
    try:
        assert (await leader.refresh()).is_leader
        now[0] = 6.0  # (a frozen loop, a stalled bus call: no renewal for 6 s)
        assert leader.is_leader
        now[0] = 7.0  # past 2/3 of the TTL: the server may hand the lease to another soon
        assert not leader.is_leader
        check = await leader.refresh()
        assert (check.status, check.changed) == (LeaderStatus.DISCONNECTED, True)
    finally:
        await leader.release()


async def test_the_lease_keepers_stop_although_a_cancellation_was_lost(
    js: JetStreamContext,
) -> None:
    """The core's keeper renews through wait_for, the web worker's watch reads through it: a
    stop lost there (Python 3.11) must not keep either loop, nor its process, alive."""
    buckets = await ensure_buckets(js, StreamLimits(leader_ttl_s=TTL_S))
    leader = LeaseLeader(Lease(buckets.leader, "core@a:1"), TTL_S)
    assert await stops_after_a_lost_cancellation(leader._keep)  # what start() runs
    assert await stops_after_a_lost_cancellation(LeaseWatch(buckets.leader).run)
