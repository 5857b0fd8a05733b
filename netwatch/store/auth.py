"""Server-side admin sessions and revocable ISP links (revisions 0004, 0005).

A session is a random id in the browser's cookie; the store keeps only its SHA-256, so a copy
of the database opens no session. Logout deletes the row: a replayed cookie names nothing.
Expired rows are pruned whenever a session is opened.

A signed ISP link is recorded when a notice carries it (with the notice's outbox rows,
netwatch.store.tickets) and stamped on its first use, by an id derived from its signature
(netwatch.signing.link_id); revoking that id refuses that one link, not the ticket's others.
Links issued before revision 0005 are recorded on their first use.

Internal notes are kept beside the ticket, not in its log: the public status page shows the
log's notes, never these.

Failed authentications (revision 0006): a token bucket per key (client address, token id) and a
total per kind, shared by every process on this database, so W web workers allow what one does.
A failure is one upsert per key, computed in SQL (refill, cap, spend), so two processes failing
at once both count; buckets full again are pruned as failures come.
"""

from __future__ import annotations

import hashlib
import secrets
from collections.abc import Sequence
from datetime import datetime, timedelta

import sqlalchemy as sa

from netwatch.store.base import StoreBase, _value
from netwatch.store.models import (
    AdminSessionRow,
    AuthBucketRow,
    AuthFailureTotalRow,
    TicketInternalNoteRow,
    TicketLinkRow,
)
from netwatch.store.types import AdminSession, InternalNote, RevokeOutcome, TicketLink

SESSION_ID_BYTES = 32


def session_hash(session_id: str) -> str:
    """What the store keeps of a session id."""
    return hashlib.sha256(session_id.encode()).hexdigest()


KEY_CHARS = 120  # an auth bucket's key is cut to this (the column's width)


class AuthRepository(StoreBase):
    """Admin sessions (open, look up, end) and ISP links (record, revoke, list)."""

    async def open_session(
        self, token_id: str | None, now: datetime, ttl: timedelta, *, user_name: str | None = None
    ) -> tuple[str, AdminSession]:
        """A new session for the token (or the person, `user_name`): the id for the cookie
        (shown once) and the session."""
        session_id = secrets.token_urlsafe(SESSION_ID_BYTES)
        row = AdminSessionRow(
            id_sha256=session_hash(session_id),
            token_id=token_id,
            user_name=user_name,
            csrf=secrets.token_hex(16),
            created_at=now,
            expires_at=now + ttl,
        )
        async with self._write() as session:
            await session.execute(
                sa.delete(AdminSessionRow).where(AdminSessionRow.expires_at <= now)
            )
            session.add(row)
        return session_id, _value(AdminSession, row)

    async def get_session(self, session_id: str, now: datetime) -> AdminSession | None:
        """The live session with this id; None when unknown, ended or expired."""
        async with self._read() as session:
            row = await session.get(AdminSessionRow, session_hash(session_id))
            if row is None or row.expires_at <= now:
                return None
            return _value(AdminSession, row)

    async def end_session(self, session_id: str) -> bool:
        """Delete the session (logout); whether there was one."""
        async with self._write() as session:
            result = await session.execute(
                sa.delete(AdminSessionRow).where(
                    AdminSessionRow.id_sha256 == session_hash(session_id)
                )
            )
            return bool(getattr(result, "rowcount", 0))

    async def record_link(
        self, link_id: str, ticket_id: str, expires_at: datetime, now: datetime
    ) -> TicketLink:
        """The link's record, its first use stamped: a link issued in a notice (revision 0005)
        gets its first_used_at now; one issued before 0005 is recorded now."""
        async with self._read() as session:
            row = await session.get(TicketLinkRow, link_id)
            if row is not None and row.first_used_at is not None:
                return _value(TicketLink, row)
        values = {
            "id": link_id,
            "ticket_id": ticket_id,
            "expires_at": expires_at,
            "issued_at": None,
            "first_used_at": now,
            "revoked_at": None,
            "revoked_by": None,
        }
        async with self._write() as session:
            await session.execute(
                self._insert(TicketLinkRow).values(values).on_conflict_do_nothing()
            )
            await session.execute(
                sa.update(TicketLinkRow)
                .where(TicketLinkRow.id == link_id, TicketLinkRow.first_used_at.is_(None))
                .values(first_used_at=now)
            )
            row = await session.get(TicketLinkRow, link_id, populate_existing=True)
            assert row is not None  # just inserted, or there already
            return _value(TicketLink, row)

    async def ticket_link(self, link_id: str) -> TicketLink | None:
        """One link's record, or None (never issued in a notice since 0005, never opened)."""
        async with self._read() as session:
            row = await session.get(TicketLinkRow, link_id)
            return _value(TicketLink, row) if row is not None else None

    async def revoke_link(self, link_id: str, by: str, now: datetime) -> RevokeOutcome:
        """Refuse one link from now on."""
        async with self._write() as session:
            row = await session.get(TicketLinkRow, link_id, with_for_update=True)
            if row is None:
                return RevokeOutcome.NOT_FOUND
            if row.revoked_at is not None:
                return RevokeOutcome.ALREADY
            row.revoked_at, row.revoked_by = now, by[:100]
            return RevokeOutcome.DONE

    async def ticket_links(self, ticket_id: str) -> list[TicketLink]:
        """The ticket's links, issued or first used first (a link is issued before its use)."""
        async with self._read() as session:
            rows = await session.scalars(
                sa.select(TicketLinkRow)
                .where(TicketLinkRow.ticket_id == ticket_id)
                .order_by(
                    sa.func.coalesce(TicketLinkRow.issued_at, TicketLinkRow.first_used_at),
                    TicketLinkRow.id,
                )
            )
            return [_value(TicketLink, r) for r in rows]

    async def add_internal_note(
        self, ticket_id: str, actor_kind: str, actor_name: str, text: str, at: datetime
    ) -> InternalNote:
        """Keep a note for the ISP and provincial IT only."""
        row = TicketInternalNoteRow(
            ticket_id=ticket_id,
            at=at,
            actor_kind=actor_kind,
            actor_name=actor_name[:200],
            text=text,
        )
        async with self._write() as session:
            session.add(row)
        return _value(InternalNote, row)

    async def internal_notes(self, ticket_id: str) -> list[InternalNote]:
        """The ticket's internal notes, oldest first."""
        async with self._read() as session:
            rows = await session.scalars(
                sa.select(TicketInternalNoteRow)
                .where(TicketInternalNoteRow.ticket_id == ticket_id)
                .order_by(TicketInternalNoteRow.at, TicketInternalNoteRow.id)
            )
            return [_value(InternalNote, r) for r in rows]

    async def auth_buckets(self, keys: Sequence[str]) -> dict[str, tuple[float, float]]:
        """The buckets of these keys that exist: key -> (tokens left, counted at, unix s)."""
        async with self._read() as session:
            rows = await session.execute(
                sa.select(AuthBucketRow.key, AuthBucketRow.tokens, AuthBucketRow.at_s).where(
                    AuthBucketRow.key.in_([k[:KEY_CHARS] for k in keys])
                )
            )
            return {key: (tokens, at_s) for key, tokens, at_s in rows}

    async def spend_auth_buckets(
        self, keys: Sequence[str], kind: str, now_s: float, burst: float, rate_per_s: float
    ) -> None:
        """One failure: each key's bucket refilled to now (at most `burst`) less one, and the
        kind's total plus one, in one transaction; buckets full again by now are dropped."""
        table = AuthBucketRow.__table__
        refilled = table.c.tokens + (now_s - table.c.at_s) * rate_per_s
        capped = sa.case((refilled > burst, burst), else_=refilled)
        async with self._write() as session:
            for key in dict.fromkeys(k[:KEY_CHARS] for k in keys):
                insert = self._insert(AuthBucketRow).values(key=key, tokens=burst - 1, at_s=now_s)
                await session.execute(
                    insert.on_conflict_do_update(
                        index_elements=[AuthBucketRow.key],
                        set_={"tokens": capped - 1, "at_s": now_s},
                    )
                )
            total = self._insert(AuthFailureTotalRow).values(kind=kind[:32], total=1)
            await session.execute(
                total.on_conflict_do_update(
                    index_elements=[AuthFailureTotalRow.kind],
                    set_={"total": AuthFailureTotalRow.__table__.c.total + 1},
                )
            )
            await session.execute(sa.delete(AuthBucketRow).where(refilled >= burst))

    async def auth_failure_totals(self) -> dict[str, int]:
        """Failed authentications ever counted, per kind."""
        async with self._read() as session:
            rows = await session.execute(
                sa.select(AuthFailureTotalRow.kind, AuthFailureTotalRow.total)
            )
            return {kind: int(total) for kind, total in rows}
