"""Leadership between NetWatch instances sharing one PostgreSQL: a session advisory lock.

Both instances probe; only the leader evaluates and alerts. The lock is held by a dedicated
connection: when the leader dies its connection closes, PostgreSQL releases the lock, and the
other instance's next refresh() takes it. On SQLite there is one instance: always leader.

`Leader` is what alerting needs of any leadership: this lock, or the bus lease the `--role core`
processes share (netwatch.roles.core.LeaseLeader; docs/architecture.md says which and why).
"""

from __future__ import annotations

import enum
import hashlib
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager, suppress
from dataclasses import dataclass
from typing import Protocol

import sqlalchemy as sa
from sqlalchemy.exc import DBAPIError
from sqlalchemy.ext.asyncio import AsyncConnection, AsyncEngine

# A fixed 64-bit key derived from a name, so two deployments' keys agree without configuration.
LEADER_LOCK_KEY = int.from_bytes(
    hashlib.sha256(b"netwatch:leader").digest()[:8], "big", signed=True
)


class LeaderStatus(enum.Enum):
    """Where an instance stands."""

    LEADER = "leader"
    FOLLOWER = "follower"  # another instance holds the lock
    DISCONNECTED = "disconnected"  # the lock connection failed: not leader until it is back


@dataclass(frozen=True, slots=True)
class LeaderCheck:
    """The result of one refresh; `changed` says whether leadership changed with it."""

    status: LeaderStatus
    changed: bool

    @property
    def is_leader(self) -> bool:
        """Whether this instance leads now."""
        return self.status is LeaderStatus.LEADER


class Leader(Protocol):
    """Who may lead alerting: refreshed before every evaluation, released on a clean stop."""

    @property
    def is_leader(self) -> bool:
        """Whether this instance led at the last refresh."""
        ...

    async def refresh(self) -> LeaderCheck:
        """Keep (or try to take) the leadership; say where this instance stands now."""
        ...

    async def release(self) -> None:
        """Give leadership up, so another instance takes it without waiting."""
        ...


class LeaderLock:
    """Holds (or waits for) leadership; call refresh() periodically, e.g. every round."""

    def __init__(self, engine: AsyncEngine, key: int = LEADER_LOCK_KEY) -> None:
        self._engine = engine
        self._key = key
        self._conn: AsyncConnection | None = None
        self._status = LeaderStatus.FOLLOWER
        self._always_leader = engine.dialect.name != "postgresql"

    @property
    def status(self) -> LeaderStatus:
        """The status as of the last refresh."""
        return self._status

    @property
    def is_leader(self) -> bool:
        """Whether this instance led at the last refresh."""
        return self._status is LeaderStatus.LEADER

    async def refresh(self) -> LeaderCheck:
        """Leader: check the lock connection is alive. Otherwise: try to take the lock."""
        before = self._status
        if self._always_leader:
            self._status = LeaderStatus.LEADER
        else:
            self._status = await self._refresh_postgresql()
        return LeaderCheck(self._status, self._status is not before)

    async def _refresh_postgresql(self) -> LeaderStatus:
        try:
            if self._conn is None:
                conn = await self._engine.connect()
                # Autocommit: the session lock must not sit "idle in transaction".
                self._conn = await conn.execution_options(isolation_level="AUTOCOMMIT")
            if self._status is LeaderStatus.LEADER:
                await self._conn.execute(sa.text("SELECT 1"))
                return LeaderStatus.LEADER
            got = await self._conn.scalar(
                sa.text("SELECT pg_try_advisory_lock(:k)"), {"k": self._key}
            )
            return LeaderStatus.LEADER if got else LeaderStatus.FOLLOWER
        except (DBAPIError, OSError):
            # The session (and any lock it held) is gone; the other instance may lead now.
            await self._drop_connection()
            return LeaderStatus.DISCONNECTED

    async def release(self) -> None:
        """Give up leadership (and the lock connection)."""
        if self._conn is not None and self._status is LeaderStatus.LEADER:
            with suppress(DBAPIError, OSError):
                await self._conn.execute(sa.text("SELECT pg_advisory_unlock(:k)"), {"k": self._key})
        await self._drop_connection()
        self._status = LeaderStatus.FOLLOWER

    async def _drop_connection(self) -> None:
        conn, self._conn = self._conn, None
        if conn is not None:
            with suppress(DBAPIError, OSError):
                await conn.invalidate()
            with suppress(DBAPIError, OSError):
                await conn.close()


@asynccontextmanager
async def leader_lock(engine: AsyncEngine, key: int = LEADER_LOCK_KEY) -> AsyncIterator[LeaderLock]:
    """`async with leader_lock(engine) as lock:` tries once at entry; releases at exit."""
    lock = LeaderLock(engine, key)
    await lock.refresh()
    try:
        yield lock
    finally:
        await lock.release()
