"""Integration fixtures: the store's private PostgreSQL cluster, for runs on both databases."""

from __future__ import annotations

import asyncio
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import pytest
import sqlalchemy as sa

from netwatch.lab import Lab
from tests.conftest import PgCluster
from tests.integration.scenarios import LAB_COMMUNES, Twin
from tests.lab.fixtures import built_lab
from tests.servers import reserved_port


@contextmanager
def pg_database(cluster: PgCluster, prefix: str = "nw_it") -> Iterator[str]:
    """A fresh, empty database in the cluster; its URL; dropped (connections and all) after."""
    name = f"{prefix}_{next(cluster.databases)}"

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


@pytest.fixture(params=["sqlite", "postgresql"])
def database_url(request: pytest.FixtureRequest) -> Iterator[str | None]:
    """None (NetWatch's embedded SQLite under its data dir), or a fresh PostgreSQL database."""
    if request.param == "sqlite":
        yield None
        return
    with pg_database(request.getfixturevalue("pg_cluster")) as url:
        yield url


@pytest.fixture
def twins(tmp_path: Path, pg_cluster: PgCluster) -> Iterator[list[Twin]]:
    """A SQLite twin and a PostgreSQL twin, SMTP servers up; all torn down after the test."""
    with pg_database(pg_cluster, "nw_scenario") as url:
        pair = [
            # Reserved, not port 0: a twin's SMTP server comes back on the same port.
            Twin("sqlite", tmp_path / "sqlite", None, reserved_port()),
            Twin("postgresql", tmp_path / "postgresql", url, reserved_port()),
        ]
        try:
            for twin in pair:
                twin.data_dir.mkdir()
                twin.smtp_up()
            yield pair
        finally:
            for twin in pair:
                twin.smtp_down()


@pytest.fixture(scope="module")
def scenario_lab(
    request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[Lab]:
    """The scenario lab of a module, on the module's own LAB_INDEX (they run in parallel)."""
    index: int = request.module.LAB_INDEX
    yield from built_lab(index, LAB_COMMUNES, tmp_path_factory.mktemp(f"scenario-lab{index}"))


@pytest.fixture
def lab(scenario_lab: Lab) -> Iterator[Lab]:
    """The module's scenario lab with every fault undone after the test."""
    try:
        yield scenario_lab
    finally:
        result = scenario_lab.restore()
        assert result.ok, result
