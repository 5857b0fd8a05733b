"""Alembic environment: runs on the connection netwatch.store.migrate hands it.

Standalone use (e.g. `alembic revision --autogenerate`) reads NETWATCH_DATABASE_URL instead.
"""

from __future__ import annotations

import asyncio
import os
from typing import Literal

import sqlalchemy as sa
from alembic import context
from alembic.autogenerate.api import AutogenContext

from netwatch.store.engine import create_engine
from netwatch.store.models import Base, UtcDateTime

TARGET_METADATA = Base.metadata


def _render_item(type_: str, obj: object, autogen_context: AutogenContext) -> str | Literal[False]:
    # New revisions must not import the models: render the store's UTC type as what it is.
    if type_ == "type" and isinstance(obj, UtcDateTime):
        return "sa.DateTime(timezone=True)"
    return False


def _run(connection: sa.Connection) -> None:
    context.configure(
        connection=connection,
        target_metadata=TARGET_METADATA,
        render_item=_render_item,
        # SQLite cannot ALTER most things: batch mode rebuilds the table instead.
        render_as_batch=connection.dialect.name == "sqlite",
        compare_type=True,
    )
    with context.begin_transaction():
        context.run_migrations()


async def _run_standalone(url: str) -> None:
    engine = create_engine(url)
    try:
        async with engine.begin() as conn:
            await conn.run_sync(_run)
    finally:
        await engine.dispose()


def main() -> None:
    """Entry point Alembic calls."""
    connection = context.config.attributes.get("connection")
    if connection is not None:
        _run(connection)
        return
    url = os.environ.get("NETWATCH_DATABASE_URL")
    if not url:
        raise RuntimeError("set NETWATCH_DATABASE_URL to run Alembic standalone")
    asyncio.run(_run_standalone(url))


main()
