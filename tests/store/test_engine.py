"""Engine setup: URLs people write, SQLite pragmas, UTC-only timestamps."""

from __future__ import annotations

import asyncio
from datetime import UTC, datetime, timedelta, timezone
from pathlib import Path

import pytest
import sqlalchemy as sa

from netwatch.store import Store, create_engine, normalize_url, open_store
from netwatch.store.types import Backend, StateChange, TransitionRecord


async def _record(
    store: Store, subject: str, state: str, since: datetime, detail: str = ""
) -> TransitionRecord:
    """One transition, through the batch writer."""
    (record,) = await store.record_transitions([StateChange(subject, state, since, detail)])
    return record


def test_normalize_url_picks_async_drivers() -> None:
    assert normalize_url("postgresql://u:p@db/netwatch") == "postgresql+asyncpg://u:p@db/netwatch"
    assert normalize_url("postgres://db/nw").startswith("postgresql+asyncpg://")
    assert normalize_url("sqlite:////var/lib/nw.db") == "sqlite+aiosqlite:////var/lib/nw.db"
    with pytest.raises(ValueError, match="unsupported database URL scheme"):
        normalize_url("mysql://db/nw")


async def test_embedded_default_is_a_wal_sqlite_file(tmp_path: Path) -> None:
    store = await open_store(None, tmp_path / "data")
    try:
        assert store.backend is Backend.SQLITE
        assert (tmp_path / "data" / "netwatch.sqlite3").exists()
        async with store.engine.connect() as conn:
            assert (await conn.exec_driver_sql("PRAGMA journal_mode")).scalar() == "wal"
            assert (await conn.exec_driver_sql("PRAGMA foreign_keys")).scalar() == 1
            assert (await conn.exec_driver_sql("PRAGMA busy_timeout")).scalar() == 10_000
    finally:
        await store.close()


def test_create_engine_needs_url_or_data_dir() -> None:
    with pytest.raises(ValueError, match="URL or a data directory"):
        create_engine(None, None)


async def test_timestamps_come_back_aware_utc(store: Store) -> None:
    ict = timezone(timedelta(hours=7))
    await _record(store, "l1", "down", datetime(2026, 6, 1, 7, 0, tzinfo=ict))
    state = await store.current_state("l1")
    assert state is not None
    assert state.since == datetime(2026, 6, 1, 0, 0, tzinfo=UTC)
    assert state.since.tzinfo is UTC


async def test_naive_timestamps_are_refused(store: Store) -> None:
    with pytest.raises(sa.exc.StatementError, match="naive datetime"):
        await _record(store, "l1", "down", datetime(2026, 6, 1))  # noqa: DTZ001


async def test_reads_do_not_wait_for_a_writer(store: Store) -> None:
    await _record(store, "l1", "ok", datetime(2026, 6, 1, tzinfo=UTC))
    async with store.engine.begin() as writer:
        # An open write transaction (SQLite: holds the write lock)...
        await writer.execute(sa.text("UPDATE subject_states SET detail = 'busy'"))
        # ...does not stop readers, who see the last committed state.
        (state,) = await asyncio.wait_for(store.current_states(), timeout=5)
        assert state.detail == ""
