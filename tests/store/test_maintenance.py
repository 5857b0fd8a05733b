"""Maintenance windows created through the API."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest

from alerts.maintenance import MaintenanceScope, MaintenanceWindow, OneOff, ScopeKind
from netwatch.store import NewMaintenance, RevokeOutcome, Store

START = datetime(2026, 6, 6, 15, tzinfo=UTC)  # 22:00 in Asia/Ho_Chi_Minh


def _window(target: str, hours: int = 2) -> NewMaintenance:
    return NewMaintenance(
        scope="commune",
        target=target,
        starts_at=START,
        ends_at=START + timedelta(hours=hours),
        reason="Nâng cấp thiết bị",
        created_by="token:ops",
    )


async def test_add_list_cancel(store: Store) -> None:
    a = await store.add_maintenance(_window("24848"), START - timedelta(days=1))
    b = await store.add_maintenance(_window("24850", hours=6), START - timedelta(days=1))
    assert a.reason == "Nâng cấp thiết bị"
    assert a.cancelled_at is None
    later = START + timedelta(hours=3)
    assert [w.id for w in await store.maintenance_windows(later, later + timedelta(minutes=1))] == [
        b.id
    ]
    assert await store.cancel_maintenance(b.id, START) is RevokeOutcome.DONE
    assert await store.cancel_maintenance(b.id, START) is RevokeOutcome.ALREADY
    assert await store.cancel_maintenance(12345, START) is RevokeOutcome.NOT_FOUND
    assert [w.id for w in await store.maintenance_windows()] == [a.id]


async def test_window_must_end_after_it_starts(store: Store) -> None:
    with pytest.raises(ValueError, match="end after it starts"):
        await store.add_maintenance(_window("24848", hours=0), START)


async def test_a_stored_window_is_the_one_alerts_evaluates(store: Store) -> None:
    made = NewMaintenance("upstream", "pop-da-lat", START, START + timedelta(hours=2), "POP", "ui")
    stored = await store.add_maintenance(made, START)
    assert stored.window == MaintenanceWindow(
        MaintenanceScope(ScopeKind.UPSTREAM, "pop-da-lat"),
        OneOff(START, START + timedelta(hours=2)),
        "POP",
    )
