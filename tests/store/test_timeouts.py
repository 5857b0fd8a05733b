"""A black-holed PostgreSQL (issue 15, finding 12): connections open, nothing answers. Store
calls fail within the timeouts with a clear logged error instead of hanging, alerting's tick
comes back once PostgreSQL answers again, and a manual change that waits for alerting's lock
gives up with a 503. The database is a real PostgreSQL behind our own proxy (tests/store/
blackhole.py); only the proxy's forwarding is switched off."""

from __future__ import annotations

import asyncio
import logging
from collections.abc import AsyncIterator
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path

import pytest
import sqlalchemy as sa
from sqlalchemy.ext.asyncio import create_async_engine

from alerts.tickets import Actor, ActorKind
from netwatch.alerting import Alerting, AlertingBusy
from netwatch.health import HealthMonitor
from netwatch.inventory import load_inventory
from netwatch.store import DbTimeouts, Store, StoreTimeoutError, open_store
from tests.conftest import PgCluster
from tests.store.blackhole import BlackHole, black_hole
from tests.waiting import async_wait_until

pytestmark = pytest.mark.timeout(180)

# Short, so the test does not wait long; what they bound is the point, not how long.
SHORT = DbTimeouts(connect_s=2.0, statement_s=2.0, command_s=3.0, pool_s=2.0)
# No statement or answer limit: what every store call had before.
UNBOUNDED = DbTimeouts(connect_s=60.0, statement_s=None, command_s=None, pool_s=60.0)
HANG_S = 60.0  # a call still running after this is taken as hanging
CONFIG = """
isps:
  vnpt: {name: VNPT Lâm Đồng}
communes:
  - code: 24848
    links:
      - {id: vnpt-tslcd, isp: vnpt, circuit: LDG-TSLCD-0001, bandwidth_mbps: 100, path: tslcd,
         address: 127.0.0.1}
"""


@dataclass
class Behind:
    """A store on a fresh database reached through the black hole."""

    store: Store
    hole: BlackHole
    direct_url: str  # the same database, not through the hole


@pytest.fixture
async def database(pg_cluster: PgCluster) -> AsyncIterator[str]:
    name = f"nw_hole_{next(pg_cluster.databases)}"
    admin = pg_cluster.admin()
    try:
        async with admin.connect() as conn:
            await conn.execute(sa.text(f'CREATE DATABASE "{name}"'))
        yield name
        async with admin.connect() as conn:
            await conn.execute(sa.text(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)'))
    finally:
        await admin.dispose()


async def _behind(cluster: PgCluster, database: str, timeouts: DbTimeouts) -> AsyncIterator[Behind]:
    async with black_hole(cluster.socket_dir, cluster.port) as hole:
        url = f"postgresql+asyncpg://postgres@127.0.0.1:{hole.port}/{database}"
        store = await open_store(url, timeouts=timeouts)
        try:
            yield Behind(store, hole, cluster.url(database))
        finally:
            hole.release()
            await store.close()


@pytest.fixture
async def short(pg_cluster: PgCluster, database: str) -> AsyncIterator[Behind]:
    async for behind in _behind(pg_cluster, database, SHORT):
        yield behind


@pytest.fixture
async def unbounded(pg_cluster: PgCluster, database: str) -> AsyncIterator[Behind]:
    async for behind in _behind(pg_cluster, database, UNBOUNDED):
        yield behind


async def test_a_write_fails_within_the_timeouts_and_works_again_after(
    short: Behind, caplog: pytest.LogCaptureFixture
) -> None:
    now = datetime.now(UTC)
    await short.store.heartbeat(now)
    short.hole.swallow()
    for _ in range(2):  # on the pooled connection, then on a new one (that never starts up)
        with pytest.raises(StoreTimeoutError, match="write timed out"):
            async with asyncio.timeout(HANG_S):
                await short.store.heartbeat(now)
    assert "store.timeout operation=write cause=no answer in time" in caplog.text
    short.hole.release()
    await short.store.heartbeat(now)  # the pool throws the dead connections away
    assert await short.store.last_heartbeat() == now


async def test_a_statement_waiting_for_a_lock_is_cancelled_by_the_server(
    short: Behind, caplog: pytest.LogCaptureFixture
) -> None:
    """The server's statement_timeout: a write stuck behind another session's lock."""
    holder = create_async_engine(short.direct_url)
    try:
        async with holder.begin() as conn:
            await conn.execute(sa.text("LOCK TABLE subject_states IN ACCESS EXCLUSIVE MODE"))
            with pytest.raises(StoreTimeoutError):
                async with asyncio.timeout(HANG_S):
                    await short.store.heartbeat(datetime.now(UTC))
    finally:
        await holder.dispose()
    assert "cause=the server's statement timeout" in caplog.text
    await short.store.heartbeat(datetime.now(UTC))


def _alerting(tmp_path: Path, store: Store, manual_wait_s: float = 10.0) -> Alerting:
    path = tmp_path / "netwatch.yaml"
    path.write_text(CONFIG, encoding="utf-8")
    inventory = load_inventory(path)
    return Alerting(
        inventory, store, HealthMonitor(inventory), tick_s=0.05, manual_wait_s=manual_wait_s
    )


async def test_alerting_ticks_fail_while_postgresql_is_black_holed_and_come_back(
    short: Behind, tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.INFO)
    alerting = _alerting(tmp_path, short.store)
    await alerting.start(datetime.now(UTC))
    stop = asyncio.Event()
    loop = asyncio.create_task(alerting.run(stop))
    try:
        await async_wait_until(lambda: alerting.last_tick_at, timeout_s=30, message="a tick")
        short.hole.swallow()
        await async_wait_until(
            lambda: "ticket evaluation failed" in caplog.text,
            timeout_s=HANG_S,
            message="a tick failing on the black-holed database",
        )
        assert "store.timeout operation=" in caplog.text  # a read or the heartbeat's write
        assert not loop.done()
        short.hole.release()
        released = datetime.now(UTC)
        await async_wait_until(
            lambda: alerting.last_tick_at and alerting.last_tick_at > released,
            timeout_s=HANG_S,
            message="ticks again after PostgreSQL answers",
        )
    finally:
        stop.set()
        await asyncio.wait_for(loop, HANG_S)


async def test_a_manual_change_waiting_for_a_stuck_evaluation_gets_a_503(
    unbounded: Behind, tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    """Without the store's timeouts an evaluation stuck in the database holds alerting's lock
    for as long as the database is gone; a manual change gives up after its own bound."""
    alerting = _alerting(tmp_path, unbounded.store, manual_wait_s=0.2)
    await alerting.start(datetime.now(UTC))
    unbounded.hole.swallow()
    evaluation = asyncio.create_task(alerting.evaluate(datetime.now(UTC)))
    await async_wait_until(alerting._lock.locked, timeout_s=10, message="evaluation holds the lock")
    engineer = Actor(ActorKind.ISP, "Nguyễn Văn Đức")
    with pytest.raises(AlertingBusy) as refused:
        async with asyncio.timeout(HANG_S):
            await alerting.acknowledge("NW-20261205-0000000000", engineer, datetime.now(UTC))
    assert refused.value.status_code == 503
    assert refused.value.headers == {"Retry-After": "60"}
    assert "manual change refused: the ticket book stayed busy" in caplog.text
    assert not evaluation.done()  # still stuck: nothing but the bound ended the wait
    unbounded.hole.release()
    assert await asyncio.wait_for(evaluation, HANG_S) == ()
