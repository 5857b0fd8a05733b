"""Where the utilization buckets are recorded: the runtime that writes link_rollups (the core,
`--role all`) hears SNMP polls with a LinkUtilization sink and writes link_utilization; a read
replica (a web worker) holds no such sink and writes nothing."""

from __future__ import annotations

from datetime import UTC, datetime
from pathlib import Path

from netwatch.inventory import load_inventory
from netwatch.runtime import RuntimeOptions, open_runtime
from netwatch.store import open_store
from netwatch.store.models import LinkUtilizationRow
from netwatch.store.rollups import Rollups
from netwatch.utilization import LinkUtilization, util_value, utilization_codes
from tests.lam_dong import ENV, EXAMPLE
from tests.store.test_utilization import MBPS, VNPT, poll


async def _stored(data_dir: Path) -> dict[str, list[float | None]]:
    store = await open_store(None, data_dir=data_dir)
    try:
        rows = await Rollups(store, LinkUtilizationRow).load(datetime(2000, 1, 1, tzinfo=UTC))
    finally:
        await store.close()
    return {r.link: [util_value(c) for c in utilization_codes(r.buckets)] for r in rows}


async def test_the_core_records_utilization_and_a_replica_does_not(tmp_path: Path) -> None:
    inventory = load_inventory(EXAMPLE, environ=ENV)
    now = datetime.now(UTC)
    core = RuntimeOptions(probing=False, data_dir=tmp_path, alerting_tick_s=0.2)
    async with open_runtime(inventory, core) as runtime:
        assert isinstance(runtime.utilization, LinkUtilization)
        assert runtime.utilization in runtime.engine.sinks
        job = next(j for j in runtime.plan.snmp if j.commune == "24848")
        for sink in runtime.engine.sinks:  # as the engine hands a round on
            sink.observe([poll(job, now, {VNPT: (10 * MBPS, 45 * MBPS)})])
    # Stopping flushed the open hour.
    stored = await _stored(tmp_path)
    assert list(stored) == [VNPT]
    assert 0.45 in stored[VNPT]

    replica = RuntimeOptions(probing=False, data_dir=tmp_path, replica=True)
    async with open_runtime(inventory, replica) as runtime:
        assert runtime.utilization is None
        assert not any(isinstance(s, LinkUtilization) for s in runtime.engine.sinks)
        job = next(j for j in runtime.plan.snmp if j.commune == "24848")
        for sink in runtime.engine.sinks:
            sink.observe([poll(job, now, {VNPT: (90 * MBPS, 0.0)})])
    assert 0.9 not in (await _stored(tmp_path))[VNPT]
