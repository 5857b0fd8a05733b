"""What every part of the store shares: the engine, its sessions, chunked IN queries."""

from __future__ import annotations

import dataclasses
from collections.abc import AsyncIterator, Iterable, Mapping, Sequence
from contextlib import asynccontextmanager
from datetime import UTC, datetime
from typing import TYPE_CHECKING, Any, TypeVar

import sqlalchemy as sa
from sqlalchemy.dialects import postgresql, sqlite
from sqlalchemy.ext.asyncio import AsyncEngine, AsyncSession, async_sessionmaker

from netwatch.store.engine import backend_of, bounded
from netwatch.store.models import StateHistoryRow
from netwatch.store.types import Backend, JsonObject, RevokeOutcome

if TYPE_CHECKING:
    from _typeshed import DataclassInstance

V = TypeVar("V", bound="DataclassInstance")
# Subjects per IN (...) query: well under SQLite's bound-parameter limit.
CHUNK = 500


def _chunks(items: Sequence[str]) -> Iterable[Sequence[str]]:
    for i in range(0, len(items), CHUNK):
        yield items[i : i + CHUNK]


def _aware(value: object) -> datetime | None:
    # In case an aggregate bypasses the column type (SQLite then hands back naive or text).
    if value is None:
        return None
    if isinstance(value, str):
        value = datetime.fromisoformat(value)
    if not isinstance(value, datetime):
        raise TypeError(f"not a datetime: {value!r}")
    return value.replace(tzinfo=UTC) if value.tzinfo is None else value.astimezone(UTC)


def _json_object(value: Mapping[str, Any]) -> JsonObject:
    return dict(value)


def _value(cls: type[V], row: object, **given: Any) -> V:
    """A frozen store value from an ORM row: every field is the row's attribute of the same
    name, but those ``given`` (the ones the row keeps encoded)."""
    names = (f.name for f in dataclasses.fields(cls))
    return cls(**{n: getattr(row, n) for n in names if n not in given}, **given)


def _fields(value: DataclassInstance) -> dict[str, Any]:
    """A frozen value's fields by name: the columns of the row it becomes."""
    return {f.name: getattr(value, f.name) for f in dataclasses.fields(value)}


def _overlapping(start: datetime, end: datetime) -> tuple[sa.ColumnElement[bool], ...]:
    return (
        StateHistoryRow.since < end,
        sa.or_(StateHistoryRow.until.is_(None), StateHistoryRow.until > start),
    )


class StoreBase:
    """The engine and its sessions; every public method of the parts is one transaction."""

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
        async with bounded("write"), self._sessions() as session, session.begin():
            yield session

    @asynccontextmanager
    async def _read(self) -> AsyncIterator[AsyncSession]:
        async with bounded("read"), self._read_sessions() as session, session.begin():
            yield session

    async def _stamp_once(
        self, entity: type[Any], key: object, column: str, at: datetime
    ) -> RevokeOutcome:
        """Set a row's moment column (revoked, cancelled) unless it is set: done once."""
        async with self._write() as session:
            row = await session.get(entity, key, with_for_update=True)
            if row is None:
                return RevokeOutcome.NOT_FOUND
            if getattr(row, column) is not None:
                return RevokeOutcome.ALREADY
            setattr(row, column, at)
            return RevokeOutcome.DONE

    def _insert(self, entity: type[Any]) -> sqlite.Insert | postgresql.Insert:
        if self.backend is Backend.POSTGRESQL:
            return postgresql.insert(entity)
        return sqlite.insert(entity)
