"""The store's operations: states and history, tickets, outbox, tokens, maintenance windows.

Every public method is one transaction and returns frozen dataclasses from
netwatch.store.types; ORM objects never leave this module.
"""

from __future__ import annotations

import hashlib
import hmac
import secrets
from collections.abc import AsyncIterator, Iterable, Mapping, Sequence
from contextlib import asynccontextmanager
from datetime import UTC, datetime, timedelta
from typing import Any

import sqlalchemy as sa
from sqlalchemy.dialects import postgresql, sqlite
from sqlalchemy.exc import IntegrityError
from sqlalchemy.ext.asyncio import (
    AsyncConnection,
    AsyncEngine,
    AsyncSession,
    async_sessionmaker,
)
from sqlalchemy.sql.dml import ReturningInsert

from alerts.subject import SubjectKey
from netwatch.store.codec import evidence_from_json, recovery_from_json
from netwatch.store.engine import backend_of
from netwatch.store.models import (
    ApiTokenRow,
    MaintenanceWindowRow,
    OutboxRow,
    StateHistoryRow,
    SubjectStateRow,
    TicketEventRow,
    TicketRow,
)
from netwatch.store.types import (
    DEGRADED_STATES,
    HEARTBEAT_SUBJECT,
    UNAVAILABLE_STATES,
    UNKNOWN_STATE,
    ApiToken,
    Availability,
    Backend,
    DeliveryOutcome,
    EnqueueOutcome,
    EventRecord,
    IssuedToken,
    JsonObject,
    MaintenanceWindow,
    NewMaintenance,
    NewOutboxItem,
    OutboxBacklog,
    OutboxItem,
    RevokeOutcome,
    StateChange,
    StateInterval,
    SubjectState,
    Ticket,
    TicketEvent,
    TicketRecord,
    TicketStatus,
    TicketStepOutcome,
    TicketStepResult,
    TokenCheck,
    TokenReason,
    TransitionOutcome,
    TransitionRecord,
)

TOKEN_PREFIX = "nw_"  # noqa: S105 - a marker that makes leaked tokens greppable
TOKEN_ID_HEX = 16
# Subjects per IN (...) query: well under SQLite's bound-parameter limit.
CHUNK = 500
MAX_ERROR_CHARS = 2000
DEFAULT_LEASE_S = 300.0
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


def _chunks(items: Sequence[str]) -> Iterable[Sequence[str]]:
    for i in range(0, len(items), CHUNK):
        yield items[i : i + CHUNK]


def _token_hash(token: str) -> str:
    return hashlib.sha256(token.encode()).hexdigest()


class Store:
    """Typed access to the NetWatch database (SQLite or PostgreSQL) through one AsyncEngine."""

    def __init__(self, engine: AsyncEngine) -> None:
        self.engine = engine
        self.backend = backend_of(engine)
        self._sessions = async_sessionmaker(engine, expire_on_commit=False)
        # SQLite: read-only work begins a plain (deferred) transaction that never waits.
        self._read_sessions = async_sessionmaker(
            engine.execution_options(netwatch_read_only=True), expire_on_commit=False
        )

    async def close(self) -> None:
        """Dispose the engine's connections."""
        await self.engine.dispose()

    @asynccontextmanager
    async def _write(self) -> AsyncIterator[AsyncSession]:
        async with self._sessions() as session, session.begin():
            yield session

    @asynccontextmanager
    async def _read(self) -> AsyncIterator[AsyncSession]:
        async with self._read_sessions() as session, session.begin():
            yield session

    def _insert(self, entity: type[Any]) -> sqlite.Insert | postgresql.Insert:
        if self.backend is Backend.POSTGRESQL:
            return postgresql.insert(entity)
        return sqlite.insert(entity)

    # --- subject states and history ---------------------------------------------------------

    async def record_transitions(self, changes: Sequence[StateChange]) -> list[TransitionRecord]:
        """Record many transitions in one transaction (a start-up may bring thousands)."""
        if not changes:
            return []
        subjects = sorted({c.subject for c in changes})
        async with self._write() as session:
            open_rows: dict[str, StateHistoryRow] = {}
            current_rows: dict[str, SubjectStateRow] = {}
            for chunk in _chunks(subjects):
                for h in await session.scalars(
                    sa.select(StateHistoryRow)
                    .where(StateHistoryRow.subject.in_(chunk), StateHistoryRow.until.is_(None))
                    .with_for_update()
                ):
                    open_rows[h.subject] = h
                for c in await session.scalars(
                    sa.select(SubjectStateRow)
                    .where(SubjectStateRow.subject.in_(chunk))
                    .with_for_update()
                ):
                    current_rows[c.subject] = c
            return [
                self._apply_change(session, change, open_rows, current_rows) for change in changes
            ]

    @staticmethod
    def _apply_change(
        session: AsyncSession,
        change: StateChange,
        open_rows: dict[str, StateHistoryRow],
        current_rows: dict[str, SubjectStateRow],
    ) -> TransitionRecord:
        open_row = open_rows.get(change.subject)
        current = current_rows.get(change.subject)
        if open_row is not None and change.since < open_row.since:
            return TransitionRecord(TransitionOutcome.STALE, _subject_state(current))
        if open_row is not None and open_row.state == change.state:
            open_row.detail = change.detail
            if current is not None:
                current.detail = change.detail
                current.updated_at = max(current.updated_at, change.since)
            return TransitionRecord(TransitionOutcome.UNCHANGED, _subject_state(current))
        if open_row is not None:
            open_row.until = change.since
        new_open = StateHistoryRow(
            subject=change.subject,
            state=change.state,
            detail=change.detail,
            since=change.since,
            until=None,
        )
        session.add(new_open)
        open_rows[change.subject] = new_open
        if current is None:
            current = SubjectStateRow(
                subject=change.subject,
                state=change.state,
                detail=change.detail,
                since=change.since,
                updated_at=change.since,
            )
            session.add(current)
            current_rows[change.subject] = current
        else:
            current.state = change.state
            current.detail = change.detail
            current.since = change.since
            current.updated_at = change.since
        return TransitionRecord(TransitionOutcome.RECORDED, _subject_state(current))

    async def heartbeat(self, at: datetime) -> None:
        """Note that NetWatch is alive and judging at `at` (once a minute is plenty).

        After a crash, the next start marks every state unknown from the last heartbeat: the
        time NetWatch was down counts as unknown in availability reports, not as the last state.
        Kept as a row of its own in subject_states, never in the state history.
        """
        async with self._write() as session:
            row = await session.get(SubjectStateRow, HEARTBEAT_SUBJECT)
            if row is None:
                session.add(
                    SubjectStateRow(
                        subject=HEARTBEAT_SUBJECT, state="alive", detail="", since=at, updated_at=at
                    )
                )
            else:
                row.updated_at = max(row.updated_at, at)

    async def last_heartbeat(self) -> datetime | None:
        """When NetWatch last said it was alive (None: never)."""
        async with self._read() as session:
            row = await session.get(SubjectStateRow, HEARTBEAT_SUBJECT)
            return row.updated_at if row is not None else None

    async def mark_all_unknown(self, at: datetime) -> int:
        """Record `unknown` from `at` for every subject with a known state (clean shutdown,
        or start-up after a crash with the last time NetWatch was known alive); returns how many.
        A state that began after `at` (judged after the last heartbeat) turns unknown when it
        began instead: nothing recorded is rewritten.
        """
        async with self._read() as session:
            rows = (
                await session.execute(
                    sa.select(SubjectStateRow.subject, SubjectStateRow.since).where(
                        SubjectStateRow.state != UNKNOWN_STATE,
                        SubjectStateRow.subject != HEARTBEAT_SUBJECT,
                    )
                )
            ).all()
        records = await self.record_transitions(
            [StateChange(subject, UNKNOWN_STATE, max(at, since)) for subject, since in rows]
        )
        return sum(r.outcome is TransitionOutcome.RECORDED for r in records)

    async def current_states(self) -> list[SubjectState]:
        """The current state of every subject, by subject."""
        async with self._read() as session:
            rows = await session.scalars(
                sa.select(SubjectStateRow)
                .where(SubjectStateRow.subject != HEARTBEAT_SUBJECT)
                .order_by(SubjectStateRow.subject)
            )
            return [_to_subject_state(r) for r in rows]

    async def current_state(self, subject: str) -> SubjectState | None:
        """The current state of one subject."""
        async with self._read() as session:
            return _subject_state(await session.get(SubjectStateRow, subject))

    async def history(self, subject: str, start: datetime, end: datetime) -> list[StateInterval]:
        """The intervals of a subject that overlap [start, end), oldest first, unclipped."""
        async with self._read() as session:
            rows = await session.scalars(
                sa.select(StateHistoryRow)
                .where(StateHistoryRow.subject == subject, *_overlapping(start, end))
                .order_by(StateHistoryRow.since, StateHistoryRow.id)
            )
            return [_to_interval(r) for r in rows]

    async def availability(
        self, subject: str, start: datetime, end: datetime, now: datetime
    ) -> Availability:
        """How the subject spent [start, end) (see Availability for how states count)."""
        report = await self.availability_report(start, end, now, subjects=[subject])
        return report.get(subject) or _availability(subject, start, end, now, [])

    async def availability_report(
        self,
        start: datetime,
        end: datetime,
        now: datetime,
        subjects: Sequence[str] | None = None,
    ) -> dict[str, Availability]:
        """Availability of every subject with history in [start, end) (or of `subjects`)."""
        if end <= start:
            raise ValueError("availability period must have end > start")
        query = (
            sa.select(StateHistoryRow)
            .where(*_overlapping(start, end))
            .order_by(StateHistoryRow.subject, StateHistoryRow.since, StateHistoryRow.id)
        )
        by_subject: dict[str, list[StateInterval]] = {s: [] for s in subjects or ()}
        async with self._read() as session:
            if subjects is None:
                for row in await session.scalars(query):
                    by_subject.setdefault(row.subject, []).append(_to_interval(row))
            else:
                for chunk in _chunks(sorted(set(subjects))):
                    rows = await session.scalars(query.where(StateHistoryRow.subject.in_(chunk)))
                    for row in rows:
                        by_subject[row.subject].append(_to_interval(row))
        return {
            subject: _availability(subject, start, end, now, intervals)
            for subject, intervals in by_subject.items()
        }

    # --- tickets ----------------------------------------------------------------------------

    async def get_ticket(self, ticket_id: str) -> Ticket | None:
        """One ticket by id."""
        async with self._read() as session:
            row = await session.get(TicketRow, ticket_id)
            return _to_ticket(row) if row is not None else None

    async def list_tickets(
        self,
        states: Iterable[TicketStatus] | None = None,
        opened_since: datetime | None = None,
        limit: int = 500,
    ) -> list[Ticket]:
        """Tickets, newest first, optionally by state and opening time."""
        query = sa.select(TicketRow).order_by(TicketRow.opened_at.desc(), TicketRow.id)
        if states is not None:
            query = query.where(TicketRow.state.in_([s.value for s in states]))
        if opened_since is not None:
            query = query.where(TicketRow.opened_at >= opened_since)
        async with self._read() as session:
            return [_to_ticket(r) for r in await session.scalars(query.limit(limit))]

    async def ticket_events(self, ticket_id: str) -> list[TicketEvent]:
        """A ticket's log, oldest first."""
        async with self._read() as session:
            rows = await session.scalars(
                sa.select(TicketEventRow)
                .where(TicketEventRow.ticket_id == ticket_id)
                .order_by(TicketEventRow.at, TicketEventRow.id)
            )
            return [_to_event(r) for r in rows]

    # --- ticket steps (the alerts/ state machine) -------------------------------------------

    async def apply_ticket_changes(
        self,
        tickets: Sequence[TicketRecord],
        events: Sequence[EventRecord],
        outbox: Sequence[NewOutboxItem],
        now: datetime,
    ) -> TicketStepResult:
        """Persist one state-machine step in one transaction; a replay writes nothing.

        Tickets are upserted by id (a ticket given more than once is written once, as its last
        record; one already stored exactly so is left alone), then events are inserted keyed by
        (ticket_id, seq) and outbox items by dedup_key, both ignoring rows that exist. Tickets
        whose last record is resolved are written before the others, each group in the given
        order, so resolving an episode and opening the next one for the same incident key in
        one call passes the one-unresolved-ticket-per-incident index whatever the order.
        `now` stamps updated_at of written tickets and the outbox rows' creation.

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

    def _insert_outbox(self) -> ReturningInsert[int]:
        return (
            self._insert(OutboxRow)
            .on_conflict_do_nothing(index_elements=[OutboxRow.dedup_key])
            .returning(OutboxRow.id)
        )

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

    # --- outbox -----------------------------------------------------------------------------

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
        for item in items:
            inserted = await session.scalar(
                self._insert(OutboxRow)
                .values(
                    ticket_id=item.ticket_id or ticket_id,
                    channel=item.channel,
                    recipient=item.recipient,
                    payload=dict(item.payload),
                    dedup_key=item.dedup_key,
                    created_at=now,
                    next_attempt_at=item.not_before or now,
                    attempts=0,
                    last_error=None,
                    sent_at=None,
                )
                .on_conflict_do_nothing(index_elements=[OutboxRow.dedup_key])
                .returning(OutboxRow.id)
            )
            outcomes.append(
                EnqueueOutcome.ENQUEUED if inserted is not None else EnqueueOutcome.DUPLICATE
            )
        return outcomes

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
        async with self._write() as session:
            row = await session.get(OutboxRow, item_id, with_for_update=True)
            if row is None:
                return DeliveryOutcome.NOT_FOUND
            if row.sent_at is not None:
                return DeliveryOutcome.ALREADY_SENT
            row.sent_at = at
            row.next_attempt_at = None
            return DeliveryOutcome.RECORDED

    async def mark_failed(
        self, item_id: int, error: str, next_attempt_at: datetime | None
    ) -> DeliveryOutcome:
        """Record a failed attempt and when to retry (None: give up)."""
        async with self._write() as session:
            row = await session.get(OutboxRow, item_id, with_for_update=True)
            if row is None:
                return DeliveryOutcome.NOT_FOUND
            if row.sent_at is not None:
                return DeliveryOutcome.ALREADY_SENT
            row.last_error = error[:MAX_ERROR_CHARS]
            row.next_attempt_at = next_attempt_at
            return DeliveryOutcome.RECORDED

    async def get_outbox_item(self, item_id: int) -> OutboxItem | None:
        """One outbox item by id."""
        async with self._read() as session:
            row = await session.get(OutboxRow, item_id)
            return _to_outbox(row) if row is not None else None

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

    # --- API tokens -------------------------------------------------------------------------

    async def create_token(self, name: str, scopes: Sequence[str], now: datetime) -> IssuedToken:
        """Make a token; the plain token is in the result only, the store keeps its SHA-256."""
        token_id = secrets.token_hex(TOKEN_ID_HEX // 2)
        token = f"{TOKEN_PREFIX}{token_id}_{secrets.token_urlsafe(32)}"
        row = ApiTokenRow(
            id=token_id,
            name=name,
            token_sha256=_token_hash(token),
            scopes=sorted(set(scopes)),
            created_at=now,
            revoked_at=None,
        )
        async with self._write() as session:
            session.add(row)
        return IssuedToken(token=token, info=_to_token(row))

    async def verify_token(self, token: str, scope: str | None = None) -> TokenCheck:
        """Check a presented token (hashes compared in constant time) and, if given, a scope."""
        sep = len(TOKEN_PREFIX) + TOKEN_ID_HEX
        if not (token.startswith(TOKEN_PREFIX) and len(token) > sep + 1 and token[sep] == "_"):
            return TokenCheck(TokenReason.MALFORMED, None)
        presented = _token_hash(token)
        async with self._read() as session:
            row = await session.get(ApiTokenRow, token[len(TOKEN_PREFIX) : sep])
        if row is None:
            return TokenCheck(TokenReason.UNKNOWN, None)
        info = _to_token(row)
        if not hmac.compare_digest(presented, row.token_sha256):
            return TokenCheck(TokenReason.MISMATCH, None)
        if row.revoked_at is not None:
            return TokenCheck(TokenReason.REVOKED, info)
        if scope is not None and scope not in row.scopes:
            return TokenCheck(TokenReason.MISSING_SCOPE, info)
        return TokenCheck(TokenReason.OK, info)

    async def revoke_token(self, token_id: str, at: datetime) -> RevokeOutcome:
        """Revoke a token by its id; it stays listed, refused from now on."""
        async with self._write() as session:
            row = await session.get(ApiTokenRow, token_id, with_for_update=True)
            if row is None:
                return RevokeOutcome.NOT_FOUND
            if row.revoked_at is not None:
                return RevokeOutcome.ALREADY
            row.revoked_at = at
            return RevokeOutcome.DONE

    async def list_tokens(self) -> list[ApiToken]:
        """All tokens (public part only), oldest first."""
        async with self._read() as session:
            rows = await session.scalars(
                sa.select(ApiTokenRow).order_by(ApiTokenRow.created_at, ApiTokenRow.id)
            )
            return [_to_token(r) for r in rows]

    # --- maintenance windows ----------------------------------------------------------------

    async def add_maintenance(self, window: NewMaintenance, now: datetime) -> MaintenanceWindow:
        """Store a one-off maintenance window (ends_at must be after starts_at)."""
        if window.ends_at <= window.starts_at:
            raise ValueError("maintenance window must end after it starts")
        row = MaintenanceWindowRow(
            scope=window.scope,
            target=window.target,
            starts_at=window.starts_at,
            ends_at=window.ends_at,
            reason=window.reason,
            created_by=window.created_by,
            created_at=now,
            cancelled_at=None,
        )
        async with self._write() as session:
            session.add(row)
            await session.flush()
            return _to_window(row)

    async def maintenance_windows(
        self, start: datetime | None = None, end: datetime | None = None
    ) -> list[MaintenanceWindow]:
        """Windows not cancelled that overlap [start, end) (all when not given), by start."""
        query = (
            sa.select(MaintenanceWindowRow)
            .where(MaintenanceWindowRow.cancelled_at.is_(None))
            .order_by(MaintenanceWindowRow.starts_at, MaintenanceWindowRow.id)
        )
        if start is not None:
            query = query.where(MaintenanceWindowRow.ends_at > start)
        if end is not None:
            query = query.where(MaintenanceWindowRow.starts_at < end)
        async with self._read() as session:
            return [_to_window(r) for r in await session.scalars(query)]

    async def cancel_maintenance(self, window_id: int, at: datetime) -> RevokeOutcome:
        """Cancel a window; it stops suppressing from now on."""
        async with self._write() as session:
            row = await session.get(MaintenanceWindowRow, window_id, with_for_update=True)
            if row is None:
                return RevokeOutcome.NOT_FOUND
            if row.cancelled_at is not None:
                return RevokeOutcome.ALREADY
            row.cancelled_at = at
            return RevokeOutcome.DONE


# --- conversions and pure helpers ---------------------------------------------------------------


def _overlapping(start: datetime, end: datetime) -> tuple[sa.ColumnElement[bool], ...]:
    return (
        StateHistoryRow.since < end,
        sa.or_(StateHistoryRow.until.is_(None), StateHistoryRow.until > start),
    )


def _availability(
    subject: str, start: datetime, end: datetime, now: datetime, intervals: Sequence[StateInterval]
) -> Availability:
    """Clip intervals to [start, min(end, now)); what no interval covers is unknown."""
    known_end = min(end, max(now, start))
    seconds: dict[str, float] = {}
    for interval in intervals:
        lo = max(interval.since, start)
        hi = min(interval.until or known_end, known_end)
        if hi > lo:
            seconds[interval.state] = seconds.get(interval.state, 0.0) + (hi - lo).total_seconds()
    unavailable_s = sum(s for state, s in seconds.items() if state in UNAVAILABLE_STATES)
    degraded_s = sum(s for state, s in seconds.items() if state in DEGRADED_STATES)
    ok_s = seconds.get("ok", 0.0)
    known_s = ok_s + degraded_s + unavailable_s
    # Everything else (explicit "unknown", gaps, after now, states not classified) is unknown.
    unknown_s = max(0.0, (end - start).total_seconds() - known_s)
    return Availability(
        subject=subject,
        start=start,
        end=end,
        ok_s=ok_s,
        degraded_s=degraded_s,
        unavailable_s=unavailable_s,
        unknown_s=unknown_s,
        seconds_by_state=seconds,
    )


def _aware(value: object) -> datetime | None:
    # In case an aggregate bypasses the column type (SQLite then hands back naive or text).
    if value is None:
        return None
    if isinstance(value, str):
        value = datetime.fromisoformat(value)
    if not isinstance(value, datetime):
        raise TypeError(f"not a datetime: {value!r}")
    return value.replace(tzinfo=UTC) if value.tzinfo is None else value.astimezone(UTC)


def _to_subject_state(row: SubjectStateRow) -> SubjectState:
    return SubjectState(
        subject=row.subject,
        state=row.state,
        detail=row.detail,
        since=row.since,
        updated_at=row.updated_at,
    )


def _subject_state(row: SubjectStateRow | None) -> SubjectState | None:
    return _to_subject_state(row) if row is not None else None


def _to_interval(row: StateHistoryRow) -> StateInterval:
    return StateInterval(
        subject=row.subject, state=row.state, detail=row.detail, since=row.since, until=row.until
    )


async def _count_returned(
    conn: AsyncConnection, statement: ReturningInsert[Any], rows: list[dict[str, Any]]
) -> int:
    if not rows:
        return 0
    return len((await conn.execute(statement, rows)).all())


def _ticket_rows(records: Sequence[TicketRecord], now: datetime) -> list[dict[str, Any]]:
    return [
        {
            "id": r.id,
            "incident_key": r.incident_key.encoded,
            "kind": r.kind,
            "route": r.route,
            "isp": r.isp,
            "state": r.state.value,
            "opened_at": r.opened_at,
            "acknowledged_at": r.acknowledged_at,
            "resolved_at": r.resolved_at,
            "evidence": dict(r.evidence),
            "escalation_level": r.escalation_level,
            "last_notified_at": r.last_notified_at,
            "book": dict(r.book),
            "updated_at": now,
        }
        for r in records
    ]


def _event_rows(events: Sequence[EventRecord]) -> list[dict[str, Any]]:
    return [
        {
            "ticket_id": e.ticket_id,
            "seq": e.seq,
            "at": e.at,
            "actor": e.actor,
            "kind": e.kind,
            "text": e.text,
        }
        for e in events
    ]


def _outbox_rows(items: Sequence[NewOutboxItem], now: datetime) -> list[dict[str, Any]]:
    return [
        {
            "ticket_id": item.ticket_id,
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


def _json_object(value: Mapping[str, Any]) -> JsonObject:
    return dict(value)


def _to_ticket(row: TicketRow) -> Ticket:
    ok_since, closes_at = recovery_from_json(row.evidence)
    return Ticket(
        id=row.id,
        incident_key=SubjectKey.parse(row.incident_key),
        kind=row.kind,
        route=row.route,
        isp=row.isp,
        state=TicketStatus(row.state),
        opened_at=row.opened_at,
        acknowledged_at=row.acknowledged_at,
        resolved_at=row.resolved_at,
        evidence=evidence_from_json(row.evidence, first_bad_at=row.opened_at, kind=row.kind),
        escalation_level=row.escalation_level,
        last_notified_at=row.last_notified_at,
        updated_at=row.updated_at,
        ok_since=ok_since,
        closes_at=closes_at,
    )


def _to_event(row: TicketEventRow) -> TicketEvent:
    return TicketEvent(
        id=row.id,
        ticket_id=row.ticket_id,
        at=row.at,
        actor=row.actor,
        kind=row.kind,
        text=row.text,
        seq=row.seq,
    )


def _to_ticket_record(row: TicketRow) -> TicketRecord:
    return TicketRecord(
        id=row.id,
        incident_key=SubjectKey.parse(row.incident_key),
        kind=row.kind,
        route=row.route,
        isp=row.isp,
        state=TicketStatus(row.state),
        opened_at=row.opened_at,
        acknowledged_at=row.acknowledged_at,
        resolved_at=row.resolved_at,
        evidence=_json_object(row.evidence),
        escalation_level=row.escalation_level,
        last_notified_at=row.last_notified_at,
        book=_json_object(row.book),
    )


def _to_outbox(row: OutboxRow) -> OutboxItem:
    return OutboxItem(
        id=row.id,
        ticket_id=row.ticket_id,
        channel=row.channel,
        recipient=row.recipient,
        payload=_json_object(row.payload),
        dedup_key=row.dedup_key,
        created_at=row.created_at,
        next_attempt_at=row.next_attempt_at,
        attempts=row.attempts,
        last_error=row.last_error,
        sent_at=row.sent_at,
    )


def _to_token(row: ApiTokenRow) -> ApiToken:
    return ApiToken(
        id=row.id,
        name=row.name,
        scopes=tuple(row.scopes),
        created_at=row.created_at,
        revoked_at=row.revoked_at,
    )


def _to_window(row: MaintenanceWindowRow) -> MaintenanceWindow:
    return MaintenanceWindow(
        id=row.id,
        scope=row.scope,
        target=row.target,
        starts_at=row.starts_at,
        ends_at=row.ends_at,
        reason=row.reason,
        created_by=row.created_by,
        created_at=row.created_at,
        cancelled_at=row.cancelled_at,
    )
