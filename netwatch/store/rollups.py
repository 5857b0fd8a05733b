"""Link rollups in the store: one packed row per link and hour (table link_rollups, rev. 0003;
the utilization buckets' link_utilization, rev. 0008, has the same shape and the same access).

netwatch.history and netwatch.utilization pack and unpack the bytes; this module only moves
rows. Upserts are batched
(one statement per chunk of rows, one transaction per call) so a national instance writes its
~10,000 rows every five minutes in one short transaction.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime

import sqlalchemy as sa
from sqlalchemy.dialects import postgresql, sqlite

from netwatch.store.models import LinkRollupRow, LinkUtilizationRow
from netwatch.store.repository import Store
from netwatch.store.types import Backend

# Rows per INSERT statement: 4 parameters each, well under SQLite's bound-parameter limit.
UPSERT_CHUNK = 2000


@dataclass(frozen=True, slots=True)
class RollupRow:
    """One hour of one link's buckets, packed."""

    link: str  # "24848/vnpt-tslcd"
    hour_start: datetime
    buckets: bytes


PackedTable = type[LinkRollupRow] | type[LinkUtilizationRow]


class Rollups:
    """Typed access to link_rollups (or another table of packed hour rows, link_utilization)
    through a Store's engine."""

    def __init__(self, store: Store, table: PackedTable = LinkRollupRow) -> None:
        self._store = store
        self._table = table
        self._reads = store.engine.execution_options(netwatch_read_only=True)

    async def upsert(self, rows: Sequence[RollupRow], now: datetime) -> int:
        """Write rows, replacing any row of the same link and hour; returns how many."""
        if not rows:
            return 0
        table = self._table
        insert = (
            postgresql.insert(table)
            if self._store.backend is Backend.POSTGRESQL
            else sqlite.insert(table)
        )
        statement = insert.on_conflict_do_update(
            index_elements=["link", "hour_start"],
            set_={"buckets": insert.excluded.buckets, "updated_at": insert.excluded.updated_at},
        )
        # Two rows of the same key in one INSERT ... ON CONFLICT would fail on PostgreSQL.
        latest = {(r.link, r.hour_start): r for r in rows}
        values = [
            {"link": r.link, "hour_start": r.hour_start, "buckets": r.buckets, "updated_at": now}
            for r in latest.values()
        ]
        async with self._store.engine.begin() as conn:
            for i in range(0, len(values), UPSERT_CHUNK):
                await conn.execute(statement, values[i : i + UPSERT_CHUNK])
        return len(values)

    async def load(
        self, since: datetime, links: Sequence[str] | None = None, until: datetime | None = None
    ) -> list[RollupRow]:
        """Rows with since <= hour_start (< until when given; of `links` when given), by link
        and hour."""
        table = self._table
        query = (
            sa.select(table.link, table.hour_start, table.buckets)
            .where(table.hour_start >= since)
            .order_by(table.link, table.hour_start)
        )
        if until is not None:
            query = query.where(table.hour_start < until)
        out: list[RollupRow] = []
        async with self._reads.connect() as conn, conn.begin():
            if links is None:
                result = await conn.execute(query)
                out.extend(RollupRow(r.link, r.hour_start, bytes(r.buckets)) for r in result)
            else:
                wanted = sorted(set(links))
                for i in range(0, len(wanted), 500):
                    chunk = wanted[i : i + 500]
                    result = await conn.execute(query.where(table.link.in_(chunk)))
                    out.extend(RollupRow(r.link, r.hour_start, bytes(r.buckets)) for r in result)
        return out

    async def prune(self, before: datetime) -> int:
        """Delete rows of hours that started before `before`; returns how many."""
        table = self._table
        async with self._store.engine.begin() as conn:
            result = await conn.execute(sa.delete(table).where(table.hour_start < before))
        return int(result.rowcount or 0)

    async def count(self) -> int:
        """How many rows the table holds (for benchmarks and tests)."""
        table = self._table
        async with self._reads.connect() as conn, conn.begin():
            value = await conn.scalar(sa.select(sa.func.count()).select_from(table))
        return int(value or 0)
