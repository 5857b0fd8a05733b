"""Leadership: one leader per PostgreSQL; the other takes over when it leaves or dies."""

from __future__ import annotations

import sqlalchemy as sa
from sqlalchemy.ext.asyncio import AsyncEngine

from netwatch.store import LeaderStatus, Store, create_engine, leader_lock
from netwatch.store.leader import LEADER_LOCK_KEY
from tests.waiting import async_wait_until


async def test_second_instance_leads_only_after_the_first_releases(
    store: Store, db_url: str
) -> None:
    other = create_engine(db_url)
    try:
        async with leader_lock(store.engine) as first:
            assert first.is_leader
            async with leader_lock(other) as second:
                if store.engine.dialect.name == "sqlite":
                    # One instance per SQLite file: always leader.
                    assert second.is_leader
                    return
                assert second.status is LeaderStatus.FOLLOWER
                assert not (await second.refresh()).is_leader
                assert (await first.refresh()).is_leader
                await first.release()
                check = await second.refresh()
                assert check.is_leader
                assert check.changed
    finally:
        await other.dispose()


_HOLDERS = (
    " FROM pg_locks WHERE locktype = 'advisory' AND granted"
    " AND classid::bigint = :hi AND objid::bigint = :lo AND objsubid = 1"
)


async def _kill_lock_holder(engine: AsyncEngine) -> None:
    # A bigint advisory key shows in pg_locks as two unsigned 32-bit halves.
    key = {"hi": (LEADER_LOCK_KEY >> 32) & 0xFFFF_FFFF, "lo": LEADER_LOCK_KEY & 0xFFFF_FFFF}
    async with engine.connect() as conn:
        killed = await conn.scalar(
            sa.text("SELECT count(pg_terminate_backend(pid))" + _HOLDERS), key
        )
        assert killed == 1

        # pg_terminate_backend only signals: the backend (and its lock) goes a moment later.
        async def released() -> bool:
            return not await conn.scalar(sa.text("SELECT count(*)" + _HOLDERS), key)

        await async_wait_until(released, 10, 0.02, "the terminated backend's lock released")


async def test_takeover_when_the_leader_dies(store: Store, db_url: str) -> None:
    if store.engine.dialect.name == "sqlite":
        async with leader_lock(store.engine) as only:
            assert only.is_leader
            assert (await only.refresh()).is_leader
        return
    leader_engine, follower_engine = create_engine(db_url), create_engine(db_url)
    try:
        async with leader_lock(leader_engine) as leader, leader_lock(follower_engine) as follower:
            assert leader.is_leader
            assert not follower.is_leader
            # The leader's session vanishes (process killed, network cut): PostgreSQL frees the lock.
            await _kill_lock_holder(store.engine)
            assert (await follower.refresh()).is_leader
            lost = await leader.refresh()
            assert not lost.is_leader
            assert lost.changed
            assert lost.status is LeaderStatus.DISCONNECTED
            # Coming back, the old leader is a follower now.
            assert (await leader.refresh()).status is LeaderStatus.FOLLOWER
    finally:
        await leader_engine.dispose()
        await follower_engine.dispose()
