"""Migrations: empty → head on both backends, in step with the models."""

from __future__ import annotations

import asyncio

import sqlalchemy as sa
from alembic.autogenerate import compare_metadata
from alembic.runtime.migration import MigrationContext
from sqlalchemy.ext.asyncio import AsyncEngine

from netwatch.store import create_engine, current_revision, head_revision, upgrade
from netwatch.store.migrate import downgrade
from netwatch.store.models import Base

TABLES = {
    "admin_sessions",
    "agent_credentials",
    "api_tokens",
    "auth_buckets",
    "auth_failure_totals",
    "link_rollups",
    "link_utilization",
    "maintenance_windows",
    "outbox",
    "state_history",
    "subject_states",
    "ticket_events",
    "ticket_internal_notes",
    "ticket_links",
    "tickets",
    "users",
}


async def _tables(engine: AsyncEngine) -> set[str]:
    async with engine.connect() as conn:
        return set(await conn.run_sync(lambda c: sa.inspect(c).get_table_names()))


async def test_upgrade_from_empty_to_head(engine: AsyncEngine) -> None:
    assert await current_revision(engine) is None
    await upgrade(engine)
    assert await current_revision(engine) == head_revision()
    assert await _tables(engine) == TABLES | {"alembic_version"}
    # Running it again (every start does) changes nothing.
    await upgrade(engine)
    assert await current_revision(engine) == head_revision()


async def test_migrations_match_the_models(engine: AsyncEngine) -> None:
    await upgrade(engine)
    async with engine.connect() as conn:
        diffs = await conn.run_sync(
            lambda c: compare_metadata(
                MigrationContext.configure(c, opts={"compare_type": True}), Base.metadata
            )
        )
    assert diffs == []


async def test_downgrade_to_base_and_back(engine: AsyncEngine) -> None:
    await upgrade(engine)
    await downgrade(engine, "base")
    assert await _tables(engine) == {"alembic_version"}
    await upgrade(engine)
    assert await _tables(engine) == TABLES | {"alembic_version"}


async def test_two_instances_migrating_at_once(db_url: str) -> None:
    engines = [create_engine(db_url), create_engine(db_url)]
    try:
        await asyncio.gather(*(upgrade(e) for e in engines))
        assert await current_revision(engines[0]) == head_revision()
    finally:
        for e in engines:
            await e.dispose()
