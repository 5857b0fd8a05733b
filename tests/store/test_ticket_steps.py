"""Ticket steps: one state-machine step per transaction, replays are no-ops; migration 0002."""

from __future__ import annotations

import asyncio
from dataclasses import replace
from datetime import UTC, datetime, timedelta
from typing import TypeAlias

import pytest
import sqlalchemy as sa
from sqlalchemy.ext.asyncio import AsyncEngine

from alerts.model import Measurements
from alerts.subject import SubjectKey
from netwatch.store import (
    EventRecord,
    NewOutboxItem,
    Store,
    TicketRecord,
    TicketStatus,
    TicketStepOutcome,
    TicketStepResult,
    create_engine,
    current_revision,
    head_revision,
    upgrade,
)
from netwatch.store.codec import evidence_json
from netwatch.store.migrate import downgrade
from netwatch.store.models import OutboxRow, TicketEventRow, TicketRow
from tests.lam_dong import lac_duong_down

T0 = datetime(2026, 6, 3, 3, 0, tzinfo=UTC)
KEY = "link:24848/vnpt-tslcd"
EVIDENCE = replace(
    lac_duong_down(T0), first=Measurements(loss_ratio=1.0), worst=Measurements(loss_ratio=1.0)
)
# apply_ticket_changes' arguments but `now`.
Step: TypeAlias = tuple[list[TicketRecord], list[EventRecord], list[NewOutboxItem]]


def _record(
    ticket_id: str = "NW-20260603-aaaaaaaaaa",
    state: TicketStatus = TicketStatus.OPEN,
    key: str = KEY,
    opened_at: datetime = T0,
    level: int = 1,
    resolved_at: datetime | None = None,
) -> TicketRecord:
    return TicketRecord(
        id=ticket_id,
        incident_key=SubjectKey.parse(key),
        kind="link_fault",
        route="isp",
        isp="vnpt",
        state=state,
        opened_at=opened_at,
        acknowledged_at=None,
        resolved_at=resolved_at,
        evidence=evidence_json(EVIDENCE),
        escalation_level=level,
        last_notified_at=opened_at,
        book={
            "id": ticket_id,
            "key": key,
            "status": state.value,
            "level": level,
            "log": [{"seq": 0, "kind": "opened", "text": "Mất kết nối"}],
        },
    )


def _resolved(record: TicketRecord, at: datetime) -> TicketRecord:
    book = {**record.book, "status": "resolved"}
    return replace(record, state=TicketStatus.RESOLVED, resolved_at=at, book=book)


def _event(ticket_id: str, seq: int, kind: str = "opened", at: datetime = T0) -> EventRecord:
    return EventRecord(ticket_id, seq, at, "system", kind, f"{kind} #{seq}")


def _mail(ticket_id: str, what: str = "opened") -> NewOutboxItem:
    return NewOutboxItem(
        channel="email",
        recipient="noc@vnpt.example",
        payload={"subject": "Sự cố", "ticket": ticket_id},
        dedup_key=f"{ticket_id}:{what}:email:noc@vnpt.example",
        ticket_id=ticket_id,
    )


async def _counts(engine: AsyncEngine) -> tuple[int, int, int]:
    counts = []
    async with engine.connect() as conn:
        for table in (TicketRow, TicketEventRow, OutboxRow):
            count = await conn.execute(sa.select(sa.func.count()).select_from(table))
            counts.append(int(count.scalar_one()))
    return counts[0], counts[1], counts[2]


async def test_first_apply_writes_everything(store: Store) -> None:
    rec = _record()
    result = await store.apply_ticket_changes(
        [rec], [_event(rec.id, 0)], [_mail(rec.id), _mail(rec.id, "opened-l1")], T0
    )
    assert result == TicketStepResult(
        TicketStepOutcome.APPLIED,
        tickets_written=1,
        events_inserted=1,
        outbox_enqueued=2,
    )
    assert result.changed
    stored = await store.get_ticket(rec.id)
    assert stored is not None
    assert (stored.ticket.status, stored.updated_at, stored.ticket.evidence) == (
        TicketStatus.OPEN,
        T0,
        EVIDENCE,  # what rec.evidence says, read back typed
    )
    assert await store.ticket_books(T0) == [rec]
    events = await store.ticket_events(rec.id)
    assert [(e.seq, e.event.kind.value, e.event.text) for e in events] == [
        (0, "opened", "opened #0")
    ]
    assert [o.dedup_key for o in await store.outbox_items(rec.id)] == [
        _mail(rec.id).dedup_key,
        _mail(rec.id, "opened-l1").dedup_key,
    ]


async def test_replaying_the_same_call_is_a_no_op(store: Store) -> None:
    rec = _record()
    args = ([rec], [_event(rec.id, 0), _event(rec.id, 1, "escalated")], [_mail(rec.id)])
    await store.apply_ticket_changes(*args, T0)
    before = await _counts(store.engine)
    # Same call again, also later (a restart replaying the step it had committed).
    for now in (T0, T0 + timedelta(minutes=5)):
        again = await store.apply_ticket_changes(*args, now)
        assert again == TicketStepResult(
            TicketStepOutcome.APPLIED,
            tickets_unchanged=1,
            events_existing=2,
            outbox_duplicates=1,
        )
        assert not again.changed
    assert await _counts(store.engine) == before
    stored = await store.get_ticket(rec.id)
    assert stored is not None
    assert stored.updated_at == T0


async def test_a_changed_ticket_is_updated_in_every_column(store: Store) -> None:
    rec = _record()
    await store.apply_ticket_changes([rec], [_event(rec.id, 0)], [], T0)
    t1 = T0 + timedelta(minutes=30)
    acked = replace(
        rec,
        state=TicketStatus.ACKNOWLEDGED,
        acknowledged_at=t1,
        isp=None,
        evidence={"state": "lossy"},
        escalation_level=2,
        last_notified_at=t1,
        book={**rec.book, "status": "acknowledged"},
    )
    result = await store.apply_ticket_changes(
        [acked], [_event(rec.id, 0), _event(rec.id, 1, "acknowledged", t1)], [], t1
    )
    assert (result.tickets_written, result.events_inserted, result.events_existing) == (1, 1, 1)
    assert await store.ticket_books(T0) == [acked]
    stored = await store.get_ticket(rec.id)
    assert stored is not None
    assert (stored.updated_at, stored.ticket.acknowledged_at, stored.ticket.isp) == (t1, t1, None)
    assert [e.seq for e in await store.ticket_events(rec.id)] == [0, 1]


async def test_resolve_then_open_the_next_episode_in_one_call(store: Store) -> None:
    old = _record("NW-old")
    await store.apply_ticket_changes([old], [_event(old.id, 0)], [_mail(old.id)], T0)
    t1 = T0 + timedelta(hours=3)
    new = _record("NW-new", opened_at=t1)
    step = (
        [_resolved(old, t1), new],
        [_event(old.id, 1, "auto_resolved", t1), _event(new.id, 0, "opened", t1)],
        [_mail(old.id, "resolved"), _mail(new.id)],
    )
    result = await store.apply_ticket_changes(*step, t1)
    assert result.outcome is TicketStepOutcome.APPLIED
    assert (result.tickets_written, result.events_inserted, result.outbox_enqueued) == (2, 2, 2)
    open_now = [TicketStatus.OPEN, TicketStatus.ACKNOWLEDGED]
    unresolved = [
        t.ticket
        for t in await store.list_tickets(open_now)
        if t.ticket.key == SubjectKey.parse(KEY)
    ]
    assert len(unresolved) == 1
    assert unresolved[0].id == new.id
    replay = await store.apply_ticket_changes(*step, t1)
    assert not replay.changed


async def test_open_listed_before_the_resolve_still_passes(store: Store) -> None:
    # Tickets whose last record is resolved are written first, whatever the given order.
    old = _record("NW-old")
    await store.apply_ticket_changes([old], [], [], T0)
    t1 = T0 + timedelta(hours=3)
    new = _record("NW-new", opened_at=t1)
    result = await store.apply_ticket_changes([new, _resolved(old, t1)], [], [], t1)
    assert (result.outcome, result.tickets_written) == (TicketStepOutcome.APPLIED, 2)
    assert [(r.id, r.state) for r in await store.ticket_books(T0)] == [
        (old.id, TicketStatus.RESOLVED),
        (new.id, TicketStatus.OPEN),
    ]


async def test_a_ticket_given_twice_is_written_once_as_its_last_record(store: Store) -> None:
    rec = _record()
    later = replace(rec, escalation_level=2, book={**rec.book, "level": 2})
    step: Step = ([rec, later], [_event(rec.id, 0), _event(rec.id, 1, "escalated")], [])
    first = await store.apply_ticket_changes(*step, T0)
    assert (first.tickets_written, first.tickets_unchanged) == (1, 0)
    assert await store.ticket_books(T0) == [later]
    assert not (await store.apply_ticket_changes(*step, T0)).changed


async def test_a_second_unresolved_ticket_for_an_incident_writes_nothing(store: Store) -> None:
    first = _record("NW-first")
    await store.apply_ticket_changes([first], [_event(first.id, 0)], [], T0)
    before = await _counts(store.engine)
    other = _record("NW-other", opened_at=T0 + timedelta(minutes=1))
    untouched = _record("NW-elsewhere", key="link:99999/viettel-tslcd")
    result = await store.apply_ticket_changes(
        [untouched, other],
        [_event(untouched.id, 0), _event(other.id, 0)],
        [_mail(untouched.id), _mail(other.id)],
        T0,
    )
    assert result == TicketStepResult(
        TicketStepOutcome.INCIDENT_OPEN, conflict_ticket_id="NW-other"
    )
    assert await _counts(store.engine) == before
    assert await store.get_ticket(untouched.id) is None


async def test_two_unresolved_tickets_for_one_incident_in_one_call_are_refused(
    store: Store,
) -> None:
    first, second = _record("NW-a"), _record("NW-b", opened_at=T0 + timedelta(minutes=1))
    result = await store.apply_ticket_changes([first, second], [], [], T0)
    assert (result.outcome, result.conflict_ticket_id) == (TicketStepOutcome.INCIDENT_OPEN, "NW-b")
    assert await _counts(store.engine) == (0, 0, 0)


async def test_a_large_step_goes_in_batches(store: Store) -> None:
    # More rows than one multi-row INSERT batch holds (insertmanyvalues pages by 1000).
    count = 550
    records = [_record(f"NW-{i:04d}", key=f"link:{i}") for i in range(count)]
    events = [_event(r.id, 0) for r in records]
    mails = [_mail(r.id, what) for r in records for what in ("l1", "l2")]
    result = await store.apply_ticket_changes(records, events, mails, T0)
    assert (result.tickets_written, result.events_inserted, result.outbox_enqueued) == (
        count,
        count,
        2 * count,
    )
    replay = await store.apply_ticket_changes(records, events, mails, T0)
    assert (replay.tickets_unchanged, replay.events_existing, replay.outbox_duplicates) == (
        count,
        count,
        2 * count,
    )
    assert not replay.changed
    assert await store.ticket_books(T0) == records


async def test_a_bad_event_or_payload_leaves_nothing_of_the_call(store: Store) -> None:
    rec = _record()
    await store.apply_ticket_changes([rec], [_event(rec.id, 0)], [_mail(rec.id)], T0)
    before = await _counts(store.engine)
    t1 = T0 + timedelta(hours=1)
    changed = _resolved(rec, t1)
    new = _record("NW-other", key="link:99999/viettel-tslcd", opened_at=t1)
    good_events = [_event(rec.id, 1, "auto_resolved", t1), _event(new.id, 0, "opened", t1)]
    good_mail = [_mail(rec.id, "resolved"), _mail(new.id)]
    # An event of a ticket that does not exist, after the tickets and a good event went in.
    with pytest.raises(sa.exc.IntegrityError):
        await store.apply_ticket_changes(
            [changed, new], [*good_events, _event("NW-nope", 0)], good_mail, t1
        )
    # An outbox item naming an unknown ticket, after everything else.
    bad_fk = NewOutboxItem("email", "x@y", {}, "k1", ticket_id="NW-nope")
    with pytest.raises(sa.exc.IntegrityError):
        await store.apply_ticket_changes([changed, new], good_events, [*good_mail, bad_fk], t1)
    # A payload JSON cannot hold.
    bad_json = NewOutboxItem("email", "x@y", {"bad": object()}, "k2")  # type: ignore[dict-item]
    with pytest.raises(sa.exc.StatementError):
        await store.apply_ticket_changes([changed, new], good_events, [*good_mail, bad_json], t1)
    assert await _counts(store.engine) == before
    assert await store.ticket_books(T0) == [rec]
    # The same step goes through once the input is right.
    ok = await store.apply_ticket_changes([changed, new], good_events, good_mail, t1)
    assert (ok.tickets_written, ok.events_inserted, ok.outbox_enqueued) == (2, 2, 2)


async def test_ticket_books_are_the_unresolved_and_the_recently_resolved(store: Store) -> None:
    window_start = T0 + timedelta(days=1)
    old = _resolved(_record("NW-1", key="upstream:k1"), window_start - timedelta(seconds=1))
    edge = _resolved(_record("NW-2", key="upstream:k2"), window_start)
    recent = _resolved(_record("NW-3", key="upstream:k3"), window_start + timedelta(hours=1))
    open_ = _record("NW-4", key="upstream:k4")
    acked = replace(
        _record("NW-5", key="upstream:k5"), state=TicketStatus.ACKNOWLEDGED, acknowledged_at=T0
    )
    await store.apply_ticket_changes([old, edge, recent, open_, acked], [], [], T0)
    # A ticket written by an older version (no book) comes back with an empty book.
    await _legacy_ticket(store, "NW-6", "upstream:k6", T0 + timedelta(minutes=1))
    books = await store.ticket_books(window_start)
    assert [b.id for b in books] == ["NW-2", "NW-3", "NW-4", "NW-5", "NW-6"]
    assert books[:4] == [edge, recent, open_, acked]
    assert books[4].book == {}


async def _legacy_ticket(store: Store, ticket_id: str, key: str, opened_at: datetime) -> None:
    """A ticket and its first event as the per-change writers of older versions left them."""
    async with store.engine.begin() as conn:
        await conn.execute(
            sa.insert(TicketRow).values(
                id=ticket_id,
                incident_key=key,
                kind="link_fault",
                route="isp",
                isp=None,
                state="open",
                opened_at=opened_at,
                evidence={},
                escalation_level=1,
                updated_at=opened_at,
            )
        )
        await conn.execute(
            sa.insert(TicketEventRow).values(
                ticket_id=ticket_id, at=opened_at, actor="netwatch", kind="opened", text=""
            )
        )


async def test_older_rows_keep_working_beside_steps(store: Store) -> None:
    await _legacy_ticket(store, "NW-legacy", KEY, T0)
    async with store.engine.begin() as conn:
        await conn.execute(
            sa.insert(TicketEventRow).values(
                ticket_id="NW-legacy", at=T0, actor="isp:vnpt", kind="note", text="Đang xử lý"
            )
        )
    # Their events have no seq, so the machine's numbers never collide with them.
    result = await store.apply_ticket_changes(
        [], [_event("NW-legacy", 0, "note"), _event("NW-legacy", 1, "note")], [], T0
    )
    assert result.events_inserted == 2
    assert [e.seq for e in await store.ticket_events("NW-legacy")] == [None, None, 0, 1]


async def test_concurrent_replays_write_once(store: Store, db_url: str) -> None:
    rec = _record()
    step = ([rec], [_event(rec.id, 0), _event(rec.id, 1, "escalated")], [_mail(rec.id)])
    others = [Store(create_engine(db_url)) for _ in range(2)]
    try:
        results = await asyncio.gather(
            *(s.apply_ticket_changes(*step, T0) for s in [store, *others])
        )
    finally:
        for s in others:
            await s.close()
    assert sum(r.tickets_written for r in results) == 1
    assert sum(r.events_inserted for r in results) == 2
    assert sum(r.outbox_enqueued for r in results) == 1
    assert await _counts(store.engine) == (1, 2, 1)


# --- migration 0002 ---------------------------------------------------------------------------


async def _columns(engine: AsyncEngine, table: str) -> set[str]:
    async with engine.connect() as conn:
        return {
            c["name"] for c in await conn.run_sync(lambda sync: sa.inspect(sync).get_columns(table))
        }


async def test_0002_upgrades_and_downgrades_with_rows_in_place(engine: AsyncEngine) -> None:
    await upgrade(engine, "0001")
    # Rows as revision 0001 wrote them (no book, no seq).
    async with engine.begin() as conn:
        await conn.execute(
            sa.insert(TicketRow).values(
                id="NW-before",
                incident_key=KEY,
                kind="link_fault",
                route="isp",
                isp="vnpt",
                state="open",
                opened_at=T0,
                evidence={"state": "down"},
                escalation_level=1,
                updated_at=T0,
            )
        )
        for kind in ("opened", "note"):
            await conn.execute(
                sa.insert(TicketEventRow).values(
                    ticket_id="NW-before", at=T0, actor="netwatch", kind=kind, text=""
                )
            )

    await upgrade(engine, "0002")
    assert await current_revision(engine) == "0002"
    store = Store(engine)
    (before,) = await store.ticket_books(T0)
    assert (before.id, before.book) == ("NW-before", {})
    assert [e.seq for e in await store.ticket_events("NW-before")] == [None, None]
    t1 = T0 + timedelta(hours=1)
    rec = _record("NW-before")
    step = await store.apply_ticket_changes(
        [_resolved(rec, t1)], [_event(rec.id, 0, "auto_resolved", t1)], [_mail(rec.id)], t1
    )
    assert (step.tickets_written, step.events_inserted) == (1, 1)

    await downgrade(engine, "0001")
    assert await current_revision(engine) == "0001"
    assert "book" not in await _columns(engine, "tickets")
    assert "seq" not in await _columns(engine, "ticket_events")
    # Nothing cascaded away with the dropped columns.
    assert await _counts(engine) == (1, 3, 1)

    await downgrade(engine, "base")
    assert await current_revision(engine) is None
    async with engine.connect() as conn:
        tables = set(await conn.run_sync(lambda sync: sa.inspect(sync).get_table_names()))
    assert tables == {"alembic_version"}
    await upgrade(engine)  # and up again to the newest revision, 0002 included
    assert await current_revision(engine) == head_revision()
    assert {"book"} <= await _columns(engine, "tickets")
