"""Reads the public status pages need: a commune's tickets, their notes and when they were sent.

Kept apart from repository.py (which the alerting side owns); the same Store engine, read-only
transactions, frozen values out.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime

import sqlalchemy as sa
from sqlalchemy.ext.asyncio import async_sessionmaker

from alerts.subject import SubjectKey
from netwatch.store.base import _aware, _chunks
from netwatch.store.models import OutboxRow, TicketEventRow, TicketRow
from netwatch.store.repository import Store
from netwatch.store.tickets import _to_event, _to_ticket
from netwatch.store.types import StoredEvent, StoredTicket, TicketStatus


@dataclass(frozen=True, slots=True)
class Notified:
    """A ticket's notifications: how many were queued, when the first one was delivered."""

    queued: int
    first_sent_at: datetime | None


class StatusReads:
    """Read-only queries for the status pages."""

    def __init__(self, store: Store) -> None:
        self._engine = store.engine.execution_options(netwatch_read_only=True)
        self._sessions = async_sessionmaker(self._engine, expire_on_commit=False)

    async def tickets_for(
        self, incident_keys: Sequence[SubjectKey], since: datetime, limit: int = 200
    ) -> list[StoredTicket]:
        """Tickets of these incidents opened since `since` or still unresolved, newest first."""
        keys = sorted({k.encoded for k in incident_keys})
        out: dict[str, StoredTicket] = {}
        recent_or_open = sa.or_(
            TicketRow.opened_at >= since, TicketRow.state != TicketStatus.RESOLVED.value
        )
        async with self._sessions() as session, session.begin():
            for chunk in _chunks(keys):
                query = (
                    sa.select(TicketRow)
                    .where(TicketRow.incident_key.in_(chunk), recent_or_open)
                    .order_by(TicketRow.opened_at.desc())
                    .limit(limit)
                )
                for row in await session.scalars(query):
                    out[row.id] = _to_ticket(row)
        return sorted(out.values(), key=lambda t: (t.ticket.opened_at, t.ticket.id), reverse=True)[
            :limit
        ]

    async def events_of(
        self, ticket_ids: Sequence[str], kinds: Sequence[str] | None = None
    ) -> dict[str, list[StoredEvent]]:
        """The events of these tickets (of `kinds` when given), oldest first, by ticket."""
        ids = sorted(set(ticket_ids))
        out: dict[str, list[StoredEvent]] = {t: [] for t in ids}
        async with self._sessions() as session, session.begin():
            for chunk in _chunks(ids):
                query = (
                    sa.select(TicketEventRow)
                    .where(TicketEventRow.ticket_id.in_(chunk))
                    .order_by(TicketEventRow.at, TicketEventRow.id)
                )
                if kinds is not None:
                    query = query.where(TicketEventRow.kind.in_(list(kinds)))
                for row in await session.scalars(query):
                    out[row.ticket_id].append(_to_event(row))
        return out

    async def notifications(self, ticket_ids: Sequence[str]) -> dict[str, Notified]:
        """Per ticket with notifications: how many were queued, when the first was delivered."""
        ids = sorted(set(ticket_ids))
        out: dict[str, Notified] = {}
        async with self._engine.connect() as conn, conn.begin():
            for chunk in _chunks(ids):
                query = (
                    sa.select(OutboxRow.ticket_id, sa.func.count(), sa.func.min(OutboxRow.sent_at))
                    .where(OutboxRow.ticket_id.in_(chunk))
                    .group_by(OutboxRow.ticket_id)
                )
                for ticket_id, queued, sent_at in await conn.execute(query):
                    if ticket_id is not None:
                        # An aggregate bypasses the column type: SQLite hands back naive text.
                        out[ticket_id] = Notified(int(queued), _aware(sent_at))
        return out
