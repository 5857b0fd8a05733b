"""Engine setup: an embedded SQLite file by default, PostgreSQL when a URL says so."""

from __future__ import annotations

import logging
import sqlite3
import time
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import sqlalchemy as sa
from sqlalchemy import event
from sqlalchemy import exc as sa_exc
from sqlalchemy.engine import make_url
from sqlalchemy.ext.asyncio import AsyncEngine, create_async_engine

from netwatch.store.types import Backend

log = logging.getLogger("netwatch.store")
SQLITE_FILE_NAME = "netwatch.sqlite3"
# How long a SQLite writer waits for another one before "database is locked".
SQLITE_BUSY_TIMEOUT_MS = 10_000


@dataclass(frozen=True, slots=True)
class DbTimeouts:
    """How long a PostgreSQL call may take before it fails rather than hangs (SQLite, a local
    file, has its busy timeout above). A PostgreSQL that is down answers at once (refused); one
    that is black-holed (a dead route, a frozen VM, a full disk) answers never, and without these
    every write waited for it, alerting's lock with it (issue 15, finding 12).
    """

    connect_s: float = 10.0  # a new connection: TCP, TLS, start-up, authentication
    # The server cancels a statement running (or waiting for a lock) longer than this.
    # Generous: a national availability report or rollup must not be cut short.
    statement_s: float | None = 30.0
    # The client gives up on an answer: the only bound when the server cannot be reached at all.
    # Longer than statement_s, so a slow statement is the server's clear "canceling statement".
    command_s: float | None = 40.0
    pool_s: float = 10.0  # waiting for a free connection of the pool


class StoreTimeoutError(TimeoutError):
    """A database call that did not complete within the timeouts: the database is unreachable,
    stopped answering, or a statement ran (or waited for a lock) too long. Its transaction was
    rolled back, or (an answer lost after COMMIT) its outcome is unknown: every NetWatch write
    is idempotent, so trying again later is safe."""


_QUERY_CANCELED = "57014"  # PostgreSQL's SQLSTATE for a statement its statement_timeout ended


@asynccontextmanager
async def bounded(operation: str) -> AsyncIterator[None]:
    """Turn the ways a timeout surfaces (the driver's, the pool's, the server's cancel) into one
    StoreTimeoutError, logged once with what to check."""
    try:
        yield
    except StoreTimeoutError:
        raise
    except (TimeoutError, sa_exc.TimeoutError, sa_exc.DBAPIError) as exc:
        if isinstance(exc, sa_exc.DBAPIError) and (
            getattr(exc.orig, "sqlstate", None) != _QUERY_CANCELED
        ):
            raise
        what = (
            "the server's statement timeout"
            if isinstance(exc, sa_exc.DBAPIError)
            else ("no answer in time" if isinstance(exc, TimeoutError) else "no free connection")
        )
        log.error(
            "store.timeout operation=%s cause=%s: the database did not complete the call in "
            "time; is PostgreSQL reachable and answering? (the caller retries or refuses)",
            operation,
            what,
        )
        raise StoreTimeoutError(f"database {operation} timed out: {what}") from exc


DEFAULT_TIMEOUTS = DbTimeouts()
# Migrations may wait for another instance's migration (an advisory lock) and rewrite tables:
# no statement or answer limit, only the connection's.
MIGRATION_TIMEOUTS = DbTimeouts(statement_s=None, command_s=None)


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


def create_engine(
    url: str | None = None,
    data_dir: Path | None = None,
    timeouts: DbTimeouts = DEFAULT_TIMEOUTS,
) -> AsyncEngine:
    """An AsyncEngine for url, or for the SQLite file under data_dir (created) when url is None;
    PostgreSQL calls are bounded by `timeouts`."""
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
    connect_args: dict[str, Any] = {
        "timeout": timeouts.connect_s,
        "command_timeout": timeouts.command_s,
    }
    if timeouts.statement_s is not None:
        connect_args["server_settings"] = {
            "statement_timeout": str(int(timeouts.statement_s * 1000))
        }
    # pre_ping: a PostgreSQL restart must cost one retry, not a crash.
    return create_async_engine(
        url,
        pool_pre_ping=True,
        pool_size=5,
        max_overflow=5,
        pool_timeout=timeouts.pool_s,
        connect_args=connect_args,
    )


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
