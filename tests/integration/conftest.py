"""Integration fixtures: the store's private PostgreSQL cluster, for runs on both databases."""

from __future__ import annotations

import asyncio
from collections.abc import Iterator

import pytest
import sqlalchemy as sa

from tests.conftest import PgCluster


@pytest.fixture(params=["sqlite", "postgresql"])
def database_url(request: pytest.FixtureRequest) -> Iterator[str | None]:
    """None (NetWatch's embedded SQLite under its data dir), or a fresh PostgreSQL database."""
    if request.param == "sqlite":
        yield None
        return
    cluster: PgCluster = request.getfixturevalue("pg_cluster")
    name = f"nw_it_{next(cluster.databases)}"

    async def admin(statement: str) -> None:
        engine = cluster.admin()
        try:
            async with engine.connect() as conn:
                await conn.execute(sa.text(statement))
        finally:
            await engine.dispose()

    asyncio.run(admin(f'CREATE DATABASE "{name}"'))
    try:
        yield cluster.url(name)
    finally:
        asyncio.run(admin(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)'))
