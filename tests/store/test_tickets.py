"""Tickets: idempotent creation, atomic with their outbox, lifecycle and log."""

from __future__ import annotations

import asyncio
from datetime import UTC, datetime, timedelta

import pytest
import sqlalchemy as sa

from alerts.subject import SubjectKey
from netwatch.store import (
    CreateOutcome,
    NewEvent,
    NewOutboxItem,
    NewTicket,
    Store,
    TicketState,
    UpdateOutcome,
    create_engine,
)
from netwatch.store.models import OutboxRow, TicketEventRow, TicketRow

T0 = datetime(2026, 6, 3, 3, 0, tzinfo=UTC)


def _ticket(ticket_id: str = "link:24848/vnpt-tslcd@20260603T0300Z") -> NewTicket:
    return NewTicket(
        id=ticket_id,
        incident_key=SubjectKey.parse("link:24848/vnpt-tslcd"),
        kind="link_fault",
        route="isp",
        isp="vnpt",
        opened_at=T0,
        evidence={"state": "down", "loss_ratio": 1.0, "rtt_median_s": None, "rounds": [1, 2]},
    )


def _opened(at: datetime = T0) -> NewEvent:
    return NewEvent(at=at, actor="netwatch", kind="opened", text="Mất kết nối / link down")


def _mails(ticket_id: str, what: str = "opened") -> list[NewOutboxItem]:
    return [
        NewOutboxItem(
            channel="email",
            recipient="noc@vnpt.example",
            payload={"subject": "Sự cố", "ticket": ticket_id},
            dedup_key=f"{ticket_id}:{what}:email:noc@vnpt.example",
        ),
        NewOutboxItem(
            channel="webhook",
            recipient="https://hooks.example/nw",
            payload={"ticket": ticket_id},
            dedup_key=f"{ticket_id}:{what}:webhook",
        ),
    ]


async def _count(store: Store, entity: type[object]) -> int:
    async with store.engine.connect() as conn:
        return int(
            (await conn.execute(sa.select(sa.func.count()).select_from(entity))).scalar_one()
        )


async def test_create_writes_ticket_event_and_outbox(store: Store) -> None:
    new = _ticket()
    created = await store.create_ticket(new, _opened(), _mails(new.id))
    assert created.outcome is CreateOutcome.CREATED
    ticket = created.ticket
    assert ticket.state is TicketState.OPEN
    assert ticket.evidence == new.evidence
    assert ticket.opened_at == T0
    assert ticket.last_notified_at == T0
    events = await store.ticket_events(new.id)
    assert [(e.kind, e.actor) for e in events] == [("opened", "netwatch")]
    outbox = await store.outbox_items(new.id)
    assert [o.channel for o in outbox] == ["email", "webhook"]
    assert all(o.next_attempt_at == T0 and o.attempts == 0 for o in outbox)


async def test_create_twice_is_one_ticket(store: Store) -> None:
    new = _ticket()
    first = await store.create_ticket(new, _opened(), _mails(new.id))
    again = await store.create_ticket(new, _opened(T0 + timedelta(minutes=1)), _mails(new.id))
    assert again.outcome is CreateOutcome.EXISTS
    assert again.ticket == first.ticket
    assert await _count(store, TicketRow) == 1
    assert await _count(store, TicketEventRow) == 1
    assert await _count(store, OutboxRow) == 2


async def test_concurrent_creation_from_two_instances_is_one_ticket(
    store: Store, db_url: str
) -> None:
    others = [Store(create_engine(db_url)) for _ in range(3)]
    try:
        new = _ticket()
        results = await asyncio.gather(
            *(s.create_ticket(new, _opened(), _mails(new.id)) for s in [store, *others])
        )
    finally:
        for s in others:
            await s.close()
    assert sorted(r.outcome.value for r in results) == ["created", "exists", "exists", "exists"]
    assert {r.ticket.id for r in results} == {new.id}
    assert await _count(store, TicketRow) == 1
    assert await _count(store, TicketEventRow) == 1
    assert await _count(store, OutboxRow) == 2


async def test_second_ticket_for_an_unresolved_incident_is_refused(store: Store) -> None:
    first = await store.create_ticket(_ticket("a"), _opened())
    # A new leader that dated the same episode differently derives another id.
    other = await store.create_ticket(_ticket("b"), _opened(), _mails("b"))
    assert other.outcome is CreateOutcome.INCIDENT_OPEN
    assert other.ticket.id == first.ticket.id
    assert await _count(store, TicketRow) == 1
    assert await _count(store, OutboxRow) == 0
    # Once resolved, the next episode gets its own ticket.
    await store.set_ticket_state("a", TicketState.RESOLVED, NewEvent(T0, "netwatch", "resolved"))
    assert (await store.create_ticket(_ticket("b"), _opened())).outcome is CreateOutcome.CREATED


async def test_failure_in_the_middle_leaves_neither_ticket_nor_outbox(store: Store) -> None:
    new = _ticket()
    # The second notification refers to a ticket that does not exist: the foreign key fails
    # after the ticket, its event and the first notification were written.
    broken = [*_mails(new.id)[:1], NewOutboxItem("email", "x@y", {}, "k", ticket_id="nope")]
    with pytest.raises(sa.exc.IntegrityError):
        await store.create_ticket(new, _opened(), broken)
    # A payload that cannot be JSON fails the same way.
    with pytest.raises(sa.exc.StatementError):
        await store.create_ticket(
            new,
            _opened(),
            [NewOutboxItem("email", "x@y", {"bad": object()}, "k2")],  # type: ignore[dict-item]
        )
    assert await store.get_ticket(new.id) is None
    assert await _count(store, TicketRow) == 0
    assert await _count(store, TicketEventRow) == 0
    assert await _count(store, OutboxRow) == 0
    # And the same creation goes through afterwards.
    assert (await store.create_ticket(new, _opened(), _mails(new.id))).outcome is (
        CreateOutcome.CREATED
    )


async def test_lifecycle_with_events(store: Store) -> None:
    tid = (await store.create_ticket(_ticket(), _opened(), _mails(_ticket().id))).ticket.id
    t1, t2, t3, t4 = (T0 + timedelta(minutes=m) for m in (5, 10, 60, 70))

    ack = await store.set_ticket_state(
        tid, TicketState.ACKNOWLEDGED, NewEvent(t1, "isp:vnpt", "acknowledged", "Đã nhận")
    )
    assert ack.outcome is UpdateOutcome.CHANGED
    assert ack.ticket is not None
    assert ack.ticket.acknowledged_at == t1
    again = await store.set_ticket_state(
        tid, TicketState.ACKNOWLEDGED, NewEvent(t2, "isp:vnpt", "acknowledged")
    )
    assert again.outcome is UpdateOutcome.UNCHANGED

    note = await store.append_event(tid, NewEvent(t2, "isp:vnpt", "note", "Đang xử lý cáp quang"))
    assert note.outcome is UpdateOutcome.CHANGED

    resolved = await store.set_ticket_state(
        tid,
        TicketState.RESOLVED,
        NewEvent(t3, "netwatch", "resolved", "auto"),
        _mails(tid, "resolved"),
    )
    assert resolved.ticket is not None
    assert resolved.ticket.state is TicketState.RESOLVED
    assert resolved.ticket.resolved_at == t3
    assert resolved.ticket.last_notified_at == t3
    late_ack = await store.set_ticket_state(
        tid, TicketState.ACKNOWLEDGED, NewEvent(t3, "isp:vnpt", "acknowledged")
    )
    assert late_ack.outcome is UpdateOutcome.NOT_ALLOWED

    reopened = await store.set_ticket_state(
        tid, TicketState.OPEN, NewEvent(t4, "netwatch", "reopened")
    )
    assert reopened.ticket is not None
    assert reopened.ticket.state is TicketState.OPEN
    assert reopened.ticket.acknowledged_at is None
    assert reopened.ticket.resolved_at is None

    events = await store.ticket_events(tid)
    assert [e.kind for e in events] == ["opened", "acknowledged", "note", "resolved", "reopened"]
    assert events[2].text == "Đang xử lý cáp quang"
    assert len(await store.outbox_items(tid)) == 4
    assert [t.id for t in await store.list_tickets([TicketState.OPEN])] == [tid]
    assert (
        await store.unresolved_ticket(SubjectKey.parse("link:24848/vnpt-tslcd"))
    ) == reopened.ticket


async def test_reopen_refused_while_another_ticket_holds_the_incident(store: Store) -> None:
    await store.create_ticket(_ticket("a"), _opened())
    await store.set_ticket_state("a", TicketState.RESOLVED, NewEvent(T0, "netwatch", "resolved"))
    await store.create_ticket(_ticket("b"), _opened())
    reopen = await store.set_ticket_state(
        "a", TicketState.OPEN, NewEvent(T0, "netwatch", "reopened")
    )
    assert reopen.outcome is UpdateOutcome.INCIDENT_OPEN
    assert reopen.ticket is not None
    assert reopen.ticket.state is TicketState.RESOLVED
    assert [e.kind for e in await store.ticket_events("a")] == ["opened", "resolved"]


async def test_escalation_only_goes_up(store: Store) -> None:
    tid = (await store.create_ticket(_ticket(), _opened())).ticket.id
    at = T0 + timedelta(minutes=30)
    up = await store.escalate(tid, 2, NewEvent(at, "netwatch", "escalated"), _mails(tid, "l2"))
    assert up.ticket is not None
    assert up.ticket.escalation_level == 2
    assert up.ticket.last_notified_at == at
    same = await store.escalate(tid, 2, NewEvent(at, "netwatch", "escalated"), _mails(tid, "l2"))
    assert same.outcome is UpdateOutcome.UNCHANGED
    assert len(await store.outbox_items(tid)) == 2


async def test_unknown_ticket(store: Store) -> None:
    event = NewEvent(T0, "isp:vnpt", "note")
    assert (await store.set_ticket_state("x", TicketState.RESOLVED, event)).outcome is (
        UpdateOutcome.NOT_FOUND
    )
    assert (await store.append_event("x", event)).outcome is UpdateOutcome.NOT_FOUND
    assert (await store.escalate("x", 2, event)).outcome is UpdateOutcome.NOT_FOUND
    assert await store.get_ticket("x") is None
