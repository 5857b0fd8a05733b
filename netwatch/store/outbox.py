"""The persisted outbox: notifications enqueued once, claimed with a lease, marked."""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime, timedelta
from typing import Any

import sqlalchemy as sa
from sqlalchemy.ext.asyncio import AsyncSession
from sqlalchemy.sql.dml import ReturningInsert

from netwatch.store.base import StoreBase, _aware, _json_object, _value
from netwatch.store.models import OutboxRow
from netwatch.store.types import (
    DeliveryOutcome,
    EnqueueOutcome,
    NewOutboxItem,
    OutboxBacklog,
    OutboxItem,
)

MAX_ERROR_CHARS = 2000
DEFAULT_LEASE_S = 300.0


class OutboxRepository(StoreBase):
    """The outbox: enqueue (deduplicated), claim, mark sent or failed, backlog."""

    async def enqueue_many(
        self, items: Sequence[NewOutboxItem], now: datetime
    ) -> list[EnqueueOutcome]:
        """Add notifications in one transaction, skipping dedup keys already there."""
        async with self._write() as session:
            return await self._enqueue_in(session, items, now, None)

    async def _enqueue_in(
        self,
        session: AsyncSession,
        items: Sequence[NewOutboxItem],
        now: datetime,
        ticket_id: str | None,
    ) -> list[EnqueueOutcome]:
        outcomes = []
        for row in _outbox_rows(items, now, ticket_id):
            inserted = await session.scalar(self._insert_outbox().values(row))
            outcomes.append(
                EnqueueOutcome.ENQUEUED if inserted is not None else EnqueueOutcome.DUPLICATE
            )
        return outcomes

    def _insert_outbox(self) -> ReturningInsert[int]:
        return (
            self._insert(OutboxRow)
            .on_conflict_do_nothing(index_elements=[OutboxRow.dedup_key])
            .returning(OutboxRow.id)
        )

    async def claim_due(
        self, now: datetime, limit: int, lease_s: float = DEFAULT_LEASE_S
    ) -> list[OutboxItem]:
        """Take up to `limit` due items for delivery, oldest due first.

        A claim counts an attempt and pushes next_attempt_at by the lease, so a concurrent
        claimer (PostgreSQL: FOR UPDATE SKIP LOCKED; SQLite: one writer at a time) never gets
        the same item, and a claimer that dies leaves it due again once the lease ends.
        """
        async with self._write() as session:
            rows = list(
                await session.scalars(
                    sa.select(OutboxRow)
                    .where(OutboxRow.sent_at.is_(None), OutboxRow.next_attempt_at <= now)
                    .order_by(OutboxRow.next_attempt_at, OutboxRow.id)
                    .limit(limit)
                    .with_for_update(skip_locked=True)
                )
            )
            lease_until = now + timedelta(seconds=lease_s)
            for row in rows:
                row.next_attempt_at = lease_until
                row.attempts += 1
            return [_to_outbox(r) for r in rows]

    async def mark_sent(self, item_id: int, at: datetime) -> DeliveryOutcome:
        """Record a delivery; a second mark is a no-op."""
        return await self._mark(item_id, sent_at=at, next_attempt_at=None)

    async def mark_failed(
        self, item_id: int, error: str, next_attempt_at: datetime | None
    ) -> DeliveryOutcome:
        """Record a failed attempt and when to retry (None: give up)."""
        return await self._mark(
            item_id, last_error=error[:MAX_ERROR_CHARS], next_attempt_at=next_attempt_at
        )

    async def _mark(self, item_id: int, **columns: object) -> DeliveryOutcome:
        """Set columns of an item not sent yet (one that is sent stays as it is)."""
        async with self._write() as session:
            row = await session.get(OutboxRow, item_id, with_for_update=True)
            if row is None:
                return DeliveryOutcome.NOT_FOUND
            if row.sent_at is not None:
                return DeliveryOutcome.ALREADY_SENT
            for name, value in columns.items():
                setattr(row, name, value)
            return DeliveryOutcome.RECORDED

    async def shift_pending(self, by: timedelta) -> int:
        """Move every pending item's next attempt (a lease, a backoff, a `not_before`) by `by`.

        After the wall clock jumped (netwatch/steadyclock.py): those times were computed as
        "now + a duration", so they move with the clock and the durations are kept; a forward
        jump neither ends a lease early (re-sending an item in flight) nor makes every backoff
        due at once, a backward one holds nothing back. Returns how many items moved.
        """
        async with self._write() as session:
            rows = list(
                await session.scalars(
                    sa.select(OutboxRow)
                    .where(OutboxRow.sent_at.is_(None), OutboxRow.next_attempt_at.is_not(None))
                    .with_for_update()
                )
            )
            for row in rows:
                assert row.next_attempt_at is not None  # selected so
                row.next_attempt_at = row.next_attempt_at + by
            return len(rows)

    async def clamp_pending(self, latest: datetime) -> int:
        """Bring every pending item due after `latest` to `latest`; returns how many.

        At start-up, after the clock went back while NetWatch was stopped: no lease or backoff
        NetWatch sets is that long, so such a time is the old clock's and would hold the item
        back by as long as the clock went back.
        """
        async with self._write() as session:
            rows = list(
                await session.scalars(
                    sa.select(OutboxRow)
                    .where(OutboxRow.sent_at.is_(None), OutboxRow.next_attempt_at > latest)
                    .with_for_update()
                )
            )
            for row in rows:
                row.next_attempt_at = latest
            return len(rows)

    async def get_outbox_item(self, item_id: int) -> OutboxItem | None:
        """One outbox item by id."""
        async with self._read() as session:
            row = await session.get(OutboxRow, item_id)
            return _to_outbox(row) if row is not None else None

    async def outbox_keys_present(self, keys: Sequence[str]) -> set[str]:
        """Which of these dedup keys the outbox already holds (sent, pending or given up): a
        job that enqueues once per period asks before doing the work of a message."""
        if not keys:
            return set()
        async with self._read() as session:
            found = await session.scalars(
                sa.select(OutboxRow.dedup_key).where(OutboxRow.dedup_key.in_(list(keys)))
            )
            return set(found)

    async def outbox_items(self, ticket_id: str | None = None) -> list[OutboxItem]:
        """Outbox items (of one ticket), oldest first."""
        query = sa.select(OutboxRow).order_by(OutboxRow.id)
        if ticket_id is not None:
            query = query.where(OutboxRow.ticket_id == ticket_id)
        async with self._read() as session:
            return [_to_outbox(r) for r in await session.scalars(query)]

    async def outbox_backlog(self, now: datetime) -> OutboxBacklog:
        """Counts for metrics: pending, due now, given up, and the oldest pending item's age."""
        unsent = OutboxRow.sent_at.is_(None)
        pending = OutboxRow.next_attempt_at.is_not(None)
        async with self._read() as session:
            row = (
                await session.execute(
                    sa.select(
                        sa.func.count().filter(unsent, pending),
                        sa.func.count().filter(unsent, OutboxRow.next_attempt_at <= now),
                        sa.func.count().filter(unsent, OutboxRow.next_attempt_at.is_(None)),
                        sa.func.min(OutboxRow.created_at).filter(unsent, pending),
                    )
                )
            ).one()
        return OutboxBacklog(
            pending=row[0], due=row[1], given_up=row[2], oldest_pending_at=_aware(row[3])
        )


def _outbox_rows(
    items: Sequence[NewOutboxItem], now: datetime, ticket_id: str | None = None
) -> list[dict[str, Any]]:
    return [
        {
            "ticket_id": item.ticket_id or ticket_id,
            "channel": item.channel,
            "recipient": item.recipient,
            "payload": dict(item.payload),
            "dedup_key": item.dedup_key,
            "created_at": now,
            "next_attempt_at": item.not_before or now,
            "attempts": 0,
            "last_error": None,
            "sent_at": None,
        }
        for item in items
    ]


def _to_outbox(row: OutboxRow) -> OutboxItem:
    return _value(OutboxItem, row, payload=_json_object(row.payload))
