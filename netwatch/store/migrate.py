"""Alembic run from code: `netwatch` migrates on start without an alembic.ini in the cwd."""

from __future__ import annotations

import argparse
import asyncio
from collections.abc import Sequence
from pathlib import Path

import sqlalchemy as sa
from alembic import command
from alembic.config import Config
from alembic.runtime.migration import MigrationContext
from alembic.script import ScriptDirectory
from sqlalchemy.ext.asyncio import AsyncEngine

from netwatch.store.engine import create_engine

MIGRATIONS_DIR = Path(__file__).resolve().parent / "migrations"
# pg_advisory_xact_lock key that serialises two instances migrating one database at once.
MIGRATION_LOCK_KEY = 0x6E77_6D69_6772  # "nwmigr"


def alembic_config(connection: sa.Connection | None = None) -> Config:
    """An Alembic Config pointing at the packaged migrations (no ini file)."""
    config = Config()
    config.set_main_option("script_location", str(MIGRATIONS_DIR))
    config.set_main_option("path_separator", "os")
    if connection is not None:
        config.attributes["connection"] = connection
    return config


def head_revision() -> str:
    """The newest revision the packaged migrations know."""
    head = ScriptDirectory.from_config(alembic_config()).get_current_head()
    if head is None:
        raise RuntimeError("no migrations packaged")
    return head


async def current_revision(engine: AsyncEngine) -> str | None:
    """The revision the database is at (None: empty database)."""
    async with engine.connect() as conn:
        return await conn.run_sync(
            lambda sync_conn: MigrationContext.configure(sync_conn).get_current_revision()
        )


async def upgrade(engine: AsyncEngine, revision: str = "head") -> None:
    """Migrate the database to revision, in one transaction (two instances queue up)."""
    async with engine.begin() as conn:
        if conn.dialect.name == "postgresql":
            await conn.execute(
                sa.text("SELECT pg_advisory_xact_lock(:k)"), {"k": MIGRATION_LOCK_KEY}
            )
        await conn.run_sync(_upgrade_sync, revision)


async def downgrade(engine: AsyncEngine, revision: str) -> None:
    """Migrate the database down to revision (for tests and rollbacks)."""
    async with engine.begin() as conn:
        if conn.dialect.name == "postgresql":
            await conn.execute(
                sa.text("SELECT pg_advisory_xact_lock(:k)"), {"k": MIGRATION_LOCK_KEY}
            )
        await conn.run_sync(_downgrade_sync, revision)


def _upgrade_sync(connection: sa.Connection, revision: str) -> None:
    command.upgrade(alembic_config(connection), revision)


def _downgrade_sync(connection: sa.Connection, revision: str) -> None:
    command.downgrade(alembic_config(connection), revision)


async def _revision(url: str, message: str) -> None:
    engine = create_engine(url)
    try:
        async with engine.begin() as conn:
            await conn.run_sync(
                lambda sync_conn: command.revision(
                    alembic_config(sync_conn), message=message, autogenerate=True
                )
            )
    finally:
        await engine.dispose()


def main(argv: Sequence[str] | None = None) -> int:
    """`python -m netwatch.store.migrate upgrade|current|revision URL [-m MSG]` for developers."""
    parser = argparse.ArgumentParser(prog="python -m netwatch.store.migrate")
    parser.add_argument("action", choices=["upgrade", "current", "revision"])
    parser.add_argument("url", help="database URL (revision: a database at head)")
    parser.add_argument("-m", "--message", default="change", help="revision message")
    args = parser.parse_args(argv)

    async def run() -> None:
        if args.action == "revision":
            await _revision(args.url, args.message)
            return
        engine = create_engine(args.url)
        try:
            if args.action == "upgrade":
                await upgrade(engine)
            print(await current_revision(engine))
        finally:
            await engine.dispose()

    asyncio.run(run())
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
