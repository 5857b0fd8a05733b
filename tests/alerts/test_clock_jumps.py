"""Wall-clock jumps neither fire escalations nor re-send leased items (issue 15, finding 17).

A fake clock we own (wall and monotonic apart) drives the real alerting loop's clock, the
ticket book and a real SQLite store: the wall clock jumps a day forward or back while the
monotonic clock moves seconds. Escalations must come after the same real (monotonic) delay as
without the jump, items in flight must not be claimed again, and backoffs keep their length.
Across a restart the gap since the last heartbeat counts only up to RESTART_GAP_COUNTED.
"""

from __future__ import annotations

from collections.abc import AsyncIterator
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest

from alerts.model import Incident, IncidentKind, Route
from alerts.subject import SubjectKey
from alerts.tickets import Escalate, OpenTicket, Remind
from netwatch.alerting import OUTBOX_CLAMP, RESTART_GAP_COUNTED, Alerting, StoreOutbox
from netwatch.health import HealthMonitor
from netwatch.inventory import Inventory, load_inventory
from netwatch.steadyclock import SteadyClock
from netwatch.store import Store, open_store
from netwatch.store.types import NewOutboxItem
from tests.clocks import TwoClocks

CONFIG = """
isps:
  vnpt:
    name: VNPT Lâm Đồng
    contacts:
      - {level: 1, name: NOC VNPT Lâm Đồng, email: noc@vnpt.example, escalate_after_min: 0}
      - {level: 2, name: Trưởng ca NOC, email: truongca@vnpt.example, escalate_after_min: 30}
communes:
  - code: 24848
    links:
      - {id: vnpt-tslcd, isp: vnpt, circuit: LDG-TSLCD-0001, bandwidth_mbps: 100, path: tslcd,
         address: 127.0.0.1}
"""
LINK = "24848/vnpt-tslcd"
T0 = datetime(2026, 12, 5, 15, 0, tzinfo=UTC)  # 22:00 in Asia/Ho_Chi_Minh
DAY = timedelta(days=1)


@pytest.fixture
def inventory(tmp_path: Path) -> Inventory:
    path = tmp_path / "netwatch.yaml"
    path.write_text(CONFIG, encoding="utf-8")
    return load_inventory(path)


@pytest.fixture
async def store(tmp_path: Path) -> AsyncIterator[Store]:
    store = await open_store(None, data_dir=tmp_path)
    try:
        yield store
    finally:
        await store.close()


def _health(inventory: Inventory) -> HealthMonitor:
    health = HealthMonitor(inventory)
    health.incidents = (
        Incident(
            key=SubjectKey.parse(f"link:{LINK}"),
            kind=IncidentKind.LINK_FAULT,
            state="down",
            since=T0 - timedelta(minutes=2),
            route=Route.ISP,
            isp="vnpt",
            links=(LINK,),
            detail="no_echo",
        ),
    )
    return health


def _alerting(inventory: Inventory, store: Store, clock: TwoClocks) -> Alerting:
    steady = SteadyClock(wall=clock.wall, monotonic=clock.mono)
    return Alerting(inventory, store, _health(inventory), clock=steady)


async def _tick(service: Alerting) -> list[type]:
    """One tick of the loop: its clock read (a jump moves the timers), then an evaluation."""
    return [type(a) for a in await service.evaluate(await service.now())]


@pytest.mark.parametrize("jump", [DAY, -DAY, timedelta(minutes=45)], ids=["+1d", "-1d", "+45m"])
async def test_escalation_follows_real_time_across_a_wall_clock_jump(
    inventory: Inventory, store: Store, jump: timedelta
) -> None:
    clock = TwoClocks(T0)
    service = _alerting(inventory, store, clock)
    assert await _tick(service) == [OpenTicket]
    clock.advance(10 * 60)
    assert await _tick(service) == []
    clock.jump(jump)
    clock.advance(5)
    assert await _tick(service) == []  # forward: not 30 min unacknowledged, not escalated
    [stored] = await store.list_tickets()
    assert stored.ticket.escalation_from == T0 + jump  # moved in the store too: restarts agree
    assert stored.ticket.opened_at == T0  # history stays as it was written
    clock.advance(19 * 60)
    assert await _tick(service) == []
    clock.advance(60)  # 30 min after opening, by the monotonic clock
    assert await _tick(service) == [Escalate]  # backward: not held back by a day either
    clock.advance(59 * 60)
    assert Remind not in await _tick(service)


async def test_a_leased_item_is_not_sent_again_when_the_wall_clock_jumps(store: Store) -> None:
    clock = TwoClocks(T0)
    outbox = StoreOutbox(store, lease_s=300, monotonic=clock.mono)
    item = NewOutboxItem("email", "noc@vnpt.example", {}, "lease-test")
    await store.enqueue_many([item], T0)
    [claimed] = await outbox.claim_due(T0, 10)
    clock.advance(2)  # still sending...
    clock.jump(DAY)
    assert await outbox.claim_due(clock.wall(), 10) == []  # the store's lease looks over
    await outbox.mark_sent(claimed.id, clock.wall())
    clock.advance(300)  # the lease ran out by the monotonic clock: nothing left to claim
    assert await outbox.claim_due(clock.wall(), 10) == []
    sent = await store.get_outbox_item(claimed.id)
    assert sent is not None
    assert sent.sent_at is not None


async def test_a_jump_moves_outbox_leases_and_backoffs_with_the_clock(
    inventory: Inventory, store: Store
) -> None:
    clock = TwoClocks(T0)
    service = _alerting(inventory, store, clock)
    await service.now()
    items = [NewOutboxItem("email", "noc@vnpt.example", {}, f"k{i}") for i in range(2)]
    await store.enqueue_many(items, T0)
    leased, failing = await store.claim_due(T0, 10, lease_s=300)  # another worker's lease
    await store.mark_failed(failing.id, "refused", T0 + timedelta(seconds=600))  # a backoff
    clock.advance(5)
    clock.jump(DAY)
    await service.now()  # the loop's tick notices the jump
    assert await store.claim_due(clock.wall(), 10) == []  # no lease ended, no backoff over
    clock.advance(300)
    [again] = await store.claim_due(clock.wall(), 10)  # the dead worker's lease, as long as set
    assert again.id == leased.id
    await store.mark_sent(again.id, clock.wall())
    clock.advance(300)
    [retried] = await store.claim_due(clock.wall(), 10)  # the backoff, as long as set
    assert retried.id == failing.id


@pytest.mark.parametrize(
    "gap", [DAY, -DAY, timedelta(minutes=5)], ids=["stopped-1d", "clock-back-1d", "quick-restart"]
)
async def test_a_restart_counts_at_most_a_bounded_gap(
    inventory: Inventory, store: Store, gap: timedelta
) -> None:
    clock = TwoClocks(T0)
    first = _alerting(inventory, store, clock)
    assert await _tick(first) == [OpenTicket]
    await store.enqueue_many([NewOutboxItem("email", "noc@vnpt.example", {}, "k")], T0)
    await store.claim_due(T0, 10, lease_s=300)  # in flight when NetWatch stopped
    clock.advance(5 * 60)
    await store.heartbeat(clock.wall())
    clock.jump(gap)  # down for the gap, or the clock went back while stopped
    second = _alerting(inventory, store, clock)
    await second.restore(await second.now())
    [ticket] = second.book.tickets.values()
    if gap > RESTART_GAP_COUNTED:  # down a day: 10 of its minutes count
        assert ticket.escalation_from == T0 + gap - RESTART_GAP_COUNTED
    elif gap < timedelta(0):  # the clock went back: the timer starts again now
        assert ticket.escalation_from == clock.wall()
    else:  # a quick restart counts whole
        assert ticket.escalation_from == T0
    # The lease of the item in flight ends at most an hour from now (not a day later).
    assert await store.claim_due(clock.wall() + OUTBOX_CLAMP, 10) != []
    due = ticket.escalation_from + timedelta(minutes=30)  # when level 2 is due now
    if due > clock.wall():
        clock.advance((due - clock.wall()).total_seconds() - 1)
        assert await _tick(second) == []  # not before...
        clock.advance(1)
    assert await _tick(second) == [Escalate]  # ... and one level, no burst


async def test_a_backward_jump_then_a_restart_does_not_count_the_jump_twice(
    inventory: Inventory, store: Store
) -> None:
    clock = TwoClocks(T0)
    first = _alerting(inventory, store, clock)
    assert await _tick(first) == [OpenTicket]
    clock.advance(60)
    await store.heartbeat(clock.wall())
    clock.advance(4 * 60)
    clock.jump(-DAY)
    assert await _tick(first) == []  # timers moved back a day, in the store too
    await store.heartbeat(clock.wall())  # the store keeps the later (old clock's) heartbeat
    clock.advance(60)
    second = _alerting(inventory, store, clock)
    await second.restore(await second.now())
    [ticket] = second.book.tickets.values()
    assert ticket.escalation_from == T0 - DAY  # as the first run left it: 6 min counted
    clock.advance(24 * 60 - 1)
    assert await _tick(second) == []
    clock.advance(1)
    assert await _tick(second) == [Escalate]
