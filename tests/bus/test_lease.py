"""The leader lease on a real nats-server: one holder, renewals, takeover after expiry."""

from __future__ import annotations

from nats.js import JetStreamContext

from netwatch.bus.lease import Lease
from netwatch.bus.streams import StreamLimits, ensure_buckets
from tests.waiting import async_wait_until


async def test_one_holder_at_a_time_and_a_takeover_after_expiry(js: JetStreamContext) -> None:
    buckets = await ensure_buckets(js, StreamLimits(leader_ttl_s=1.0))
    a = Lease(buckets.leader, "core@a:1")
    b = Lease(buckets.leader, "core@b:2")
    assert await a.try_acquire()
    assert not await b.try_acquire()
    assert await a.holder_now() == "core@a:1"
    first = a.revision
    assert await a.renew()
    assert a.revision is not None
    assert first is not None
    assert a.revision > first
    # a stops renewing (killed): the server expires the key, b takes over.
    await async_wait_until(b.try_acquire, timeout_s=15, interval_s=0.1, message="b took over")
    assert await b.holder_now() == "core@b:2"
    assert b.revision is not None
    assert b.revision > a.revision  # a fencing token: the newer leader's is larger
    assert not await a.renew()  # the deposed leader finds out at its next renewal
    assert not a.held


async def test_a_released_lease_is_free_at_once(js: JetStreamContext) -> None:
    buckets = await ensure_buckets(js)  # 10 s TTL: a takeover now can only come from release
    a = Lease(buckets.leader, "core@a:1")
    b = Lease(buckets.leader, "core@b:2")
    assert await a.try_acquire()
    await a.release()
    assert await a.holder_now() is None
    assert await b.try_acquire()
    assert await b.holder_now() == "core@b:2"
