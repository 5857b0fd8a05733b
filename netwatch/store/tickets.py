"""Tickets: the alerts/ state machine's steps, one transaction each, and what the web reads."""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from datetime import datetime
from typing import Any

import sqlalchemy as sa
from sqlalchemy.dialects import postgresql, sqlite
from sqlalchemy.exc import IntegrityError
from sqlalchemy.ext.asyncio import AsyncConnection
from sqlalchemy.sql.dml import ReturningInsert

from alerts.model import Route
from alerts.subject import SubjectKey
from alerts.tickets import EventKind, Ticket, TicketEvent
from netwatch.store.base import _chunks, _fields, _json_object, _value
from netwatch.store.codec import actor_from_text, completed, evidence_from_json, recovery_from_json
from netwatch.store.models import TicketEventRow, TicketLinkRow, TicketRow
from netwatch.store.outbox import OutboxRepository, _outbox_rows
from netwatch.store.types import (
    UNNUMBERED,
    EventRecord,
    IssuedLink,
    NewOutboxItem,
    StoredEvent,
    StoredTicket,
    TicketRecord,
    TicketStatus,
    TicketStepOutcome,
    TicketStepResult,
)

# The ticket columns apply_ticket_changes replaces (and compares, to leave equal rows alone).
TICKET_COLUMNS = (
    "incident_key",
    "kind",
    "route",
    "isp",
    "state",
    "opened_at",
    "acknowledged_at",
    "resolved_at",
    "evidence",
    "escalation_level",
    "last_notified_at",
    "book",
)


class TicketsRepository(OutboxRepository):
    """Tickets and their logs (written with their outbox rows in one transaction)."""

    async def get_ticket(self, ticket_id: str) -> StoredTicket | None:
        """One ticket by id."""
        async with self._read() as session:
            row = await session.get(TicketRow, ticket_id)
            return _to_ticket(row) if row is not None else None

    async def list_tickets(
        self,
        states: Iterable[TicketStatus] | None = None,
        opened_since: datetime | None = None,
        limit: int | None = 500,
    ) -> list[StoredTicket]:
        """Tickets, newest first, optionally by state and opening time (limit None: all)."""
        query = sa.select(TicketRow).order_by(TicketRow.opened_at.desc(), TicketRow.id)
        if states is not None:
            query = query.where(TicketRow.state.in_([s.value for s in states]))
        if opened_since is not None:
            query = query.where(TicketRow.opened_at >= opened_since)
        async with self._read() as session:
            return [_to_ticket(r) for r in await session.scalars(query.limit(limit))]

    async def tickets_opened(self, start: datetime, end: datetime) -> list[StoredTicket]:
        """Every ticket opened in [start, end), oldest first (the monthly reports': no limit)."""
        query = (
            sa.select(TicketRow)
            .where(TicketRow.opened_at >= start, TicketRow.opened_at < end)
            .order_by(TicketRow.opened_at, TicketRow.id)
        )
        async with self._read() as session:
            return [_to_ticket(r) for r in await session.scalars(query)]

    async def ticket_events(self, ticket_id: str) -> list[StoredEvent]:
        """A ticket's log, oldest first."""
        async with self._read() as session:
            rows = await session.scalars(
                sa.select(TicketEventRow)
                .where(TicketEventRow.ticket_id == ticket_id)
                .order_by(TicketEventRow.at, TicketEventRow.id)
            )
            return [_to_event(r) for r in rows]

    async def apply_ticket_changes(
        self,
        tickets: Sequence[TicketRecord],
        events: Sequence[EventRecord],
        outbox: Sequence[NewOutboxItem],
        now: datetime,
        links: Sequence[IssuedLink] = (),
    ) -> TicketStepResult:
        """Persist one state-machine step in one transaction; a replay writes nothing.

        Tickets are upserted by id (a ticket given more than once is written once, as its last
        record; one already stored exactly so is left alone), then events are inserted keyed by
        (ticket_id, seq) and outbox items by dedup_key, both ignoring rows that exist. Tickets
        whose last record is resolved are written before the others, each group in the given
        order, so resolving an episode and opening the next one for the same incident key in
        one call passes the one-unresolved-ticket-per-incident index whatever the order.
        `now` stamps updated_at of written tickets and the outbox rows' creation. `links` are
        the signed ISP links the outbox rows carry, recorded (once, by id) with them so that
        provincial IT can list and revoke a link before anyone opened it.

        A ticket that would still be a second unresolved one for its incident key writes
        nothing and returns INCIDENT_OPEN; bad input (an event or outbox item naming an unknown
        ticket, a value JSON cannot hold) raises, also writing nothing.
        """
        last: dict[str, TicketRecord] = {}
        for record in tickets:
            last[record.id] = record
        resolved = [r for r in last.values() if r.state is TicketStatus.RESOLVED]
        unresolved = [r for r in last.values() if r.state is not TicketStatus.RESOLVED]
        in_tickets = False
        try:
            async with self._write() as session:
                # One multi-row statement per group (executemany with RETURNING): a mass
                # outage's step has thousands of rows; rows left alone return nothing.
                conn = await session.connection()
                in_tickets = True
                written = 0
                for group in (resolved, unresolved):
                    written += await _count_returned(
                        conn, self._upsert_tickets(), _ticket_rows(group, now)
                    )
                in_tickets = False
                inserted = await _count_returned(conn, self._insert_events(), _event_rows(events))
                queued = await _count_returned(
                    conn, self._insert_outbox(), _outbox_rows(outbox, now)
                )
                if links:
                    await conn.execute(self._insert_links(), _link_rows(links))
        except IntegrityError:
            if not in_tickets:
                raise
            # Only the partial unique index can refuse an upsert by id (the state CHECK takes
            # enum values only); the transaction is rolled back, so nothing of the call stays.
            holder = await self._incident_conflict(resolved, unresolved)
            return TicketStepResult(TicketStepOutcome.INCIDENT_OPEN, conflict_ticket_id=holder)
        return TicketStepResult(
            TicketStepOutcome.APPLIED,
            tickets_written=written,
            tickets_unchanged=len(last) - written,
            events_inserted=inserted,
            events_existing=len(events) - inserted,
            outbox_enqueued=queued,
            outbox_duplicates=len(outbox) - queued,
        )

    def _upsert_tickets(self) -> ReturningInsert[str]:
        insert = self._insert(TicketRow)
        excluded = insert.excluded
        columns = TicketRow.__table__.c
        # Update only when a column differs: a replay then neither writes nor moves updated_at,
        # and RETURNING yields a row exactly when something was inserted or changed.
        return insert.on_conflict_do_update(
            index_elements=[TicketRow.id],
            set_={name: excluded[name] for name in (*TICKET_COLUMNS, "updated_at")},
            where=sa.or_(*(columns[n].is_distinct_from(excluded[n]) for n in TICKET_COLUMNS)),
        ).returning(TicketRow.id)

    async def _incident_conflict(
        self, resolved: Sequence[TicketRecord], unresolved: Sequence[TicketRecord]
    ) -> str | None:
        """The first unresolved ticket of a refused call whose incident key was taken."""
        keys = sorted({r.incident_key.encoded for r in unresolved})
        holders: dict[str, set[str]] = {}
        async with self._read() as session:
            for chunk in _chunks(keys):
                rows = await session.execute(
                    sa.select(TicketRow.incident_key, TicketRow.id).where(
                        TicketRow.incident_key.in_(chunk),
                        TicketRow.state != TicketStatus.RESOLVED.value,
                    )
                )
                for key, holder in rows:
                    holders.setdefault(key, set()).add(holder)
        resolving = {r.id for r in resolved}
        seen: set[str] = set()
        for record in unresolved:
            key = record.incident_key.encoded
            others = holders.get(key, set()) - resolving - {record.id}
            if others or key in seen:
                return record.id
            seen.add(key)
        return None  # the holder was resolved meanwhile

    def _insert_events(self) -> ReturningInsert[int]:
        return (
            self._insert(TicketEventRow)
            .on_conflict_do_nothing(index_elements=[TicketEventRow.ticket_id, TicketEventRow.seq])
            .returning(TicketEventRow.id)
        )

    def _insert_links(self) -> sqlite.Insert | postgresql.Insert:
        return self._insert(TicketLinkRow).on_conflict_do_nothing(index_elements=[TicketLinkRow.id])

    async def ticket_books(self, resolved_since: datetime) -> list[TicketRecord]:
        """Every unresolved ticket and those resolved at or after `resolved_since`, by opening.

        What the state machine needs after a restart (the reopen window reaches back to
        `resolved_since`); a ticket written by the older per-change methods has book ``{}``.
        """
        query = (
            sa.select(TicketRow)
            .where(
                sa.or_(
                    TicketRow.state != TicketStatus.RESOLVED.value,
                    TicketRow.resolved_at >= resolved_since,
                )
            )
            .order_by(TicketRow.opened_at, TicketRow.id)
        )
        async with self._read() as session:
            return [_to_ticket_record(r) for r in await session.scalars(query)]


async def _count_returned(
    conn: AsyncConnection, statement: ReturningInsert[Any], rows: list[dict[str, Any]]
) -> int:
    if not rows:
        return 0
    return len((await conn.execute(statement, rows)).all())


def _ticket_rows(records: Sequence[TicketRecord], now: datetime) -> list[dict[str, Any]]:
    return [
        {
            **_fields(r),
            "incident_key": r.incident_key.encoded,
            "state": r.state.value,
            "evidence": dict(r.evidence),
            "book": dict(r.book),
            "updated_at": now,
        }
        for r in records
    ]


def _link_rows(links: Sequence[IssuedLink]) -> list[dict[str, Any]]:
    unique = {link.id: link for link in links}  # a notice's link is one for all its rows
    return [
        {
            "id": link.id,
            "ticket_id": link.ticket_id,
            "expires_at": link.expires_at,
            "issued_at": link.issued_at,
            "first_used_at": None,
            "revoked_at": None,
            "revoked_by": None,
        }
        for link in unique.values()
    ]


def _event_rows(events: Sequence[EventRecord]) -> list[dict[str, Any]]:
    return [_fields(e) for e in events]


def _to_ticket(row: TicketRow) -> StoredTicket:
    back_since, closes_at = recovery_from_json(row.evidence)
    columns = Ticket(
        id=row.id,
        key=SubjectKey.parse(row.incident_key),
        episode_start=row.opened_at,
        route=Route(row.route),
        isp=row.isp,
        status=TicketStatus(row.state),
        evidence=evidence_from_json(row.evidence, first_bad_at=row.opened_at, kind=row.kind),
        opened_at=row.opened_at,
        escalation_from=row.opened_at,
        last_notified_at=row.last_notified_at or row.opened_at,
        level=row.escalation_level,
        acknowledged_at=row.acknowledged_at,
        resolved_at=row.resolved_at,
        ok_since=back_since,
    )
    return StoredTicket(
        ticket=completed(columns, row.book),
        updated_at=row.updated_at,
        escalation_level=row.escalation_level,
        back_since=back_since,
        closes_at=closes_at,
    )


def _to_event(row: TicketEventRow) -> StoredEvent:
    event = TicketEvent(
        seq=row.seq if row.seq is not None else UNNUMBERED,
        at=row.at,
        actor=actor_from_text(row.actor),
        kind=EventKind(row.kind),
        text=row.text,
    )
    return StoredEvent(id=row.id, ticket_id=row.ticket_id, event=event)


def _to_ticket_record(row: TicketRow) -> TicketRecord:
    return _value(
        TicketRecord,
        row,
        incident_key=SubjectKey.parse(row.incident_key),
        state=TicketStatus(row.state),
        evidence=_json_object(row.evidence),
        book=_json_object(row.book),
    )
