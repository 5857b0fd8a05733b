"""Database fixtures: every store test runs on SQLite and on a private, throwaway PostgreSQL."""

from __future__ import annotations

from collections.abc import AsyncIterator
from pathlib import Path

import pytest
import sqlalchemy as sa
from sqlalchemy.ext.asyncio import AsyncEngine

from netwatch.store import Store, create_engine, upgrade
from tests.conftest import BACKENDS, PgCluster


@pytest.fixture(params=BACKENDS)
async def db_url(request: pytest.FixtureRequest, tmp_path: Path) -> AsyncIterator[str]:
    """URL of an empty database: a SQLite file, or a fresh PostgreSQL database."""
    if request.param == "sqlite":
        yield f"sqlite+aiosqlite:///{tmp_path / 'netwatch.sqlite3'}"
        return
    cluster: PgCluster = request.getfixturevalue("pg_cluster")
    name = f"nw_test_{next(cluster.databases)}"
    admin = cluster.admin()
    try:
        async with admin.connect() as conn:
            await conn.execute(sa.text(f'CREATE DATABASE "{name}"'))
        yield cluster.url(name)
        async with admin.connect() as conn:
            await conn.execute(sa.text(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)'))
    finally:
        await admin.dispose()


@pytest.fixture
async def engine(db_url: str) -> AsyncIterator[AsyncEngine]:
    """An engine on the empty database."""
    eng = create_engine(db_url)
    try:
        yield eng
    finally:
        await eng.dispose()


@pytest.fixture
async def store(engine: AsyncEngine) -> Store:
    """A Store on a database migrated to head."""
    await upgrade(engine)
    return Store(engine)
