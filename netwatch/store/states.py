"""States and history of the judged subjects, and availability from them."""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime

import sqlalchemy as sa
from sqlalchemy.ext.asyncio import AsyncSession

from netwatch.store.base import StoreBase, _aware, _chunks, _overlapping, _value
from netwatch.store.models import StateHistoryRow, SubjectStateRow
from netwatch.store.types import (
    DEGRADED_STATES,
    HEARTBEAT_SUBJECT,
    UNAVAILABLE_STATES,
    UNKNOWN_STATE,
    Availability,
    StateChange,
    StateInterval,
    SubjectState,
    TransitionOutcome,
    TransitionRecord,
)


class StatesRepository(StoreBase):
    """Subject states: transitions, heartbeat, history, availability."""

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

    async def first_state_at(self) -> datetime | None:
        """When this database's first state was recorded: since when NetWatch has watched
        (None: never)."""
        async with self._read() as session:
            first = await session.scalar(sa.select(sa.func.min(StateHistoryRow.since)))
        return _aware(first) if first is not None else None

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
        by_subject = await self.histories(start, end, subjects)
        return {
            subject: _availability(subject, start, end, now, intervals)
            for subject, intervals in by_subject.items()
        }

    async def histories(
        self, start: datetime, end: datetime, subjects: Sequence[str] | None = None
    ) -> dict[str, list[StateInterval]]:
        """The intervals overlapping [start, end) of every subject with history then (or of
        `subjects`, each present, maybe empty), oldest first, unclipped; one read for all."""
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
        return by_subject


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


def _to_subject_state(row: SubjectStateRow) -> SubjectState:
    return _value(SubjectState, row)


def _subject_state(row: SubjectStateRow | None) -> SubjectState | None:
    return _to_subject_state(row) if row is not None else None


def _to_interval(row: StateHistoryRow) -> StateInterval:
    return _value(StateInterval, row)
