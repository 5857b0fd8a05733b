"""Maintenance windows made through the API, as the alerting loop applies them: an upstream
node's window covers its whole subtree, as the status page shows it (issue 14, item 2)."""

from __future__ import annotations

from collections.abc import AsyncIterator
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest

from alerts.model import Incident, IncidentKind, Route
from alerts.subject import SubjectKey
from alerts.tickets import OpenTicket, Suppressed
from netwatch.alerting import Alerting
from netwatch.health import HealthMonitor
from netwatch.inventory import load_inventory
from netwatch.store import NewMaintenance, Store, open_store

# Đà Lạt's POP feeds Lạc Dương's, which the commune's line hangs off.
CONFIG = """
isps:
  vnpt: {name: VNPT Lâm Đồng}
upstreams:
  pop-da-lat: {name: POP VNPT Đà Lạt, isp: vnpt}
  pop-lac-duong: {name: POP VNPT Lạc Dương, isp: vnpt, parent: pop-da-lat}
  pop-bao-loc: {name: POP VNPT Bảo Lộc, isp: vnpt}
communes:
  - code: 24848
    links:
      - {id: vnpt-tslcd, isp: vnpt, circuit: LDG-TSLCD-0001, bandwidth_mbps: 100, path: tslcd,
         address: 127.0.0.1, upstream: pop-lac-duong}
"""
LINK = "24848/vnpt-tslcd"
NOW = datetime(2026, 12, 5, 15, 0, tzinfo=UTC)  # 22:00 in Asia/Ho_Chi_Minh


@pytest.fixture
async def alerting(tmp_path: Path) -> AsyncIterator[tuple[Alerting, Store]]:
    path = tmp_path / "netwatch.yaml"
    path.write_text(CONFIG, encoding="utf-8")
    inventory = load_inventory(path)
    store = await open_store(None, data_dir=tmp_path)
    health = HealthMonitor(inventory)
    health.incidents = (
        Incident(
            key=SubjectKey.parse(f"link:{LINK}"),
            kind=IncidentKind.LINK_FAULT,
            state="down",
            since=NOW - timedelta(minutes=2),
            route=Route.ISP,
            isp="vnpt",
            links=(LINK,),
            detail="no_echo",
        ),
    )
    try:
        yield Alerting(inventory, store, health), store
    finally:
        await store.close()


async def _window_on(store: Store, node: str) -> None:
    window = NewMaintenance(
        scope="upstream",
        target=node,
        starts_at=NOW - timedelta(minutes=30),
        ends_at=NOW + timedelta(hours=2),
        reason="Nâng cấp thiết bị POP",
        created_by="token:ops",
    )
    await store.add_maintenance(window, NOW - timedelta(hours=1))


@pytest.mark.parametrize("node", ["pop-lac-duong", "pop-da-lat"])
async def test_an_upstream_window_suppresses_tickets_behind_the_node_and_below_it(
    alerting: tuple[Alerting, Store], node: str
) -> None:
    service, store = alerting
    await _window_on(store, node)  # the link's own POP, or the POP above it
    actions = await service.evaluate(NOW)
    assert [type(a) for a in actions] == [Suppressed]
    assert await store.list_tickets() == []


async def test_a_window_on_another_node_suppresses_nothing(
    alerting: tuple[Alerting, Store],
) -> None:
    service, store = alerting
    await _window_on(store, "pop-bao-loc")
    actions = await service.evaluate(NOW)
    assert [type(a) for a in actions] == [OpenTicket]
    assert [t.ticket.key.encoded for t in await store.list_tickets()] == [f"link:{LINK}"]
