"""Engine setup: an embedded SQLite file by default, PostgreSQL when a URL says so."""

from __future__ import annotations

import sqlite3
import time
from pathlib import Path
from typing import Any

import sqlalchemy as sa
from sqlalchemy import event
from sqlalchemy.engine import make_url
from sqlalchemy.ext.asyncio import AsyncEngine, create_async_engine

from netwatch.store.types import Backend

SQLITE_FILE_NAME = "netwatch.sqlite3"
# How long a SQLite writer waits for another one before "database is locked".
SQLITE_BUSY_TIMEOUT_MS = 10_000


def sqlite_url(data_dir: Path) -> str:
    """The URL of the embedded database file under data_dir."""
    return f"sqlite+aiosqlite:///{(data_dir / SQLITE_FILE_NAME).resolve()}"


def normalize_url(url: str) -> str:
    """Pick the async driver for URLs people write ("postgresql://", "sqlite:///")."""
    parsed = make_url(url)
    backend = parsed.get_backend_name()
    if backend in ("postgresql", "postgres"):
        parsed = parsed.set(drivername="postgresql+asyncpg")
    elif backend == "sqlite":
        parsed = parsed.set(drivername="sqlite+aiosqlite")
    else:
        raise ValueError(f"unsupported database URL scheme: {parsed.drivername!r}")
    return parsed.render_as_string(hide_password=False)


def backend_of(engine: AsyncEngine) -> Backend:
    """Which backend an engine talks to."""
    return Backend.POSTGRESQL if engine.dialect.name == "postgresql" else Backend.SQLITE


def _enable_wal(cursor: Any) -> None:
    # Switching a fresh file to WAL needs an exclusive lock, and SQLite may answer SQLITE_BUSY at
    # once (without its busy handler) when another process opens the same new file at the same
    # moment: two instances starting together. Retry briefly; this runs in the driver's thread.
    deadline = time.monotonic() + SQLITE_BUSY_TIMEOUT_MS / 1000
    while True:
        try:
            cursor.execute("PRAGMA journal_mode=WAL")
            return
        except sqlite3.OperationalError as exc:
            if "locked" not in str(exc) or time.monotonic() > deadline:
                raise
            time.sleep(0.05)


def create_engine(url: str | None = None, data_dir: Path | None = None) -> AsyncEngine:
    """An AsyncEngine for url, or for the SQLite file under data_dir (created) when url is None."""
    if url is None:
        if data_dir is None:
            raise ValueError("create_engine needs a database URL or a data directory")
        data_dir.mkdir(parents=True, exist_ok=True)
        url = sqlite_url(data_dir)
    url = normalize_url(url)
    if make_url(url).get_backend_name() == "sqlite":
        engine = create_async_engine(url)
        _configure_sqlite(engine)
        return engine
    # pre_ping: a PostgreSQL restart must cost one retry, not a crash.
    return create_async_engine(url, pool_pre_ping=True, pool_size=5, max_overflow=5)


def _configure_sqlite(engine: AsyncEngine) -> None:
    """WAL, foreign keys, busy timeout, and BEGIN IMMEDIATE for every transaction."""

    @event.listens_for(engine.sync_engine, "connect")
    def _on_connect(dbapi_connection: Any, _record: Any) -> None:
        # Let SQLAlchemy, not the driver, emit BEGIN (see _on_begin).
        dbapi_connection.isolation_level = None
        cursor = dbapi_connection.cursor()
        try:
            # The busy timeout first, so the pragmas below wait for a lock instead of failing.
            cursor.execute(f"PRAGMA busy_timeout={SQLITE_BUSY_TIMEOUT_MS}")
            _enable_wal(cursor)
            cursor.execute("PRAGMA foreign_keys=ON")
            # FULL: a ticket is on disk before its notification leaves, even on power loss.
            cursor.execute("PRAGMA synchronous=FULL")
        finally:
            cursor.close()

    @event.listens_for(engine.sync_engine, "begin")
    def _on_begin(conn: sa.Connection) -> None:
        # A deferred transaction that reads and then writes fails at once with SQLITE_BUSY
        # when another writer got in between (the busy timeout does not apply to the lock
        # upgrade); taking the write lock up front makes writers queue instead. Read-only work
        # asks for a plain BEGIN, which never waits in WAL mode.
        if conn.get_execution_options().get("netwatch_read_only"):
            conn.exec_driver_sql("BEGIN")
        else:
            conn.exec_driver_sql("BEGIN IMMEDIATE")
