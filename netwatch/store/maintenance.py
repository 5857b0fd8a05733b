"""Maintenance windows made through the API."""

from __future__ import annotations

from datetime import datetime

import sqlalchemy as sa

from netwatch.store.base import StoreBase, _fields, _value
from netwatch.store.models import MaintenanceWindowRow
from netwatch.store.types import NewMaintenance, RevokeOutcome, StoredWindow


class MaintenanceRepository(StoreBase):
    """One-off maintenance windows: add, list the ones overlapping a period, cancel."""

    async def add_maintenance(self, window: NewMaintenance, now: datetime) -> StoredWindow:
        """Store a one-off maintenance window (ends_at must be after starts_at)."""
        if window.ends_at <= window.starts_at:
            raise ValueError("maintenance window must end after it starts")
        row = MaintenanceWindowRow(**_fields(window), created_at=now, cancelled_at=None)
        async with self._write() as session:
            session.add(row)
            await session.flush()
            return _to_window(row)

    async def maintenance_windows(
        self,
        start: datetime | None = None,
        end: datetime | None = None,
        *,
        cancelled: bool = False,
    ) -> list[StoredWindow]:
        """Windows not cancelled that overlap [start, end) (all when not given), by start;
        with `cancelled`, cancelled ones too (a report counts them until their cancellation)."""
        query = sa.select(MaintenanceWindowRow).order_by(
            MaintenanceWindowRow.starts_at, MaintenanceWindowRow.id
        )
        if not cancelled:
            query = query.where(MaintenanceWindowRow.cancelled_at.is_(None))
        if start is not None:
            query = query.where(MaintenanceWindowRow.ends_at > start)
        if end is not None:
            query = query.where(MaintenanceWindowRow.starts_at < end)
        async with self._read() as session:
            return [_to_window(r) for r in await session.scalars(query)]

    async def maintenance_window(self, window_id: int) -> StoredWindow | None:
        """One window (cancelled or not), or None."""
        async with self._read() as session:
            row = await session.get(MaintenanceWindowRow, window_id)
            return _to_window(row) if row is not None else None

    async def cancel_maintenance(self, window_id: int, at: datetime) -> RevokeOutcome:
        """Cancel a window; it stops suppressing from now on."""
        return await self._stamp_once(MaintenanceWindowRow, window_id, "cancelled_at", at)


def _to_window(row: MaintenanceWindowRow) -> StoredWindow:
    return _value(StoredWindow, row)
