"""The engine's rounds: drift-free, never stacked, stopped cleanly."""

from __future__ import annotations

import asyncio
import os
from collections.abc import Sequence
from pathlib import Path

import pytest

from netwatch.engine import Engine, EngineOptions, _bounded
from netwatch.inventory import load_inventory
from netwatch.observations import IcmpObservation, Observation, RoundReport
from netwatch.plan import Plan, compile_plan
from probes.icmp import IcmpPinger

CONFIG = """
intervals: {icmp_s: 1, icmp_echoes: 2}
isps:
  vnpt: {name: VNPT, contacts: [{level: 1, name: NOC, email: noc@vnpt.example}]}
communes:
  - code: 24848
    links:
      - {id: a, isp: vnpt, circuit: A, bandwidth_mbps: 10, path: tslcd, address: 127.0.0.1}
      - {id: b, isp: vnpt, circuit: B, bandwidth_mbps: 10, path: internet, address: 127.0.0.2}
"""


class Recorder:
    """A sink that keeps what it is given."""

    def __init__(self) -> None:
        self.batches: list[Sequence[Observation]] = []
        self.reports: list[RoundReport] = []
        self._changed = asyncio.Event()

    def observe(self, batch: Sequence[Observation]) -> None:
        self.batches.append(batch)

    def round_done(self, report: RoundReport) -> None:
        self.reports.append(report)
        self._changed.set()

    async def wait_for_rounds(self, count: int) -> None:
        async with asyncio.timeout(60):
            while len(self.reports) < count:
                self._changed.clear()
                await self._changed.wait()


@pytest.fixture
def plan(tmp_path: Path) -> Plan:
    path = tmp_path / "netwatch.yaml"
    path.write_text(CONFIG, encoding="utf-8")
    return compile_plan(load_inventory(path, environ={}))


def netwatch_tasks() -> list[asyncio.Task[object]]:
    return [t for t in asyncio.all_tasks() if t.get_name().startswith("netwatch-")]


@pytest.mark.privileged
@pytest.mark.skipif(os.geteuid() != 0, reason="raw ICMP needs root; CI runs as root")
async def test_rounds_feed_every_sink_and_stop_cleanly(plan: Plan) -> None:
    first, second = Recorder(), Recorder()
    options = EngineOptions(icmp_spacing_s=0.05, icmp_timeout_s=0.5, start_jitter_s=0.0)
    async with await IcmpPinger.open() as pinger:
        engine = Engine(plan, pinger, None, None, [first, second], options)
        engine.start()
        assert [t.get_name() for t in netwatch_tasks()] == ["netwatch-icmp-rounds"]
        await first.wait_for_rounds(2)
        await engine.stop()
        assert netwatch_tasks() == []
    assert first.batches == second.batches
    for batch in first.batches:
        assert [o.target.key.encoded for o in batch if isinstance(o, IcmpObservation)] == [
            "link:24848/a",
            "link:24848/b",
        ]
        assert all(isinstance(o, IcmpObservation) and o.result.received == 2 for o in batch)
    assert [r.kind for r in first.reports] == ["icmp"] * len(first.reports)
    assert all(r.targets == 2 and r.skipped_rounds == 0 for r in first.reports)


async def test_a_round_that_overruns_skips_slots_instead_of_stacking(plan: Plan) -> None:
    sink = Recorder()
    engine = Engine(plan, None, None, None, [sink])
    running = 0
    most_at_once = 0

    async def slow_round() -> list[Observation]:
        nonlocal running, most_at_once
        running += 1
        most_at_once = max(most_at_once, running)
        await asyncio.sleep(0.5)  # 2.5 intervals
        running -= 1
        return []

    loop = asyncio.create_task(engine._loop("snmp", 0.2, 0.0, slow_round, 1), name="netwatch-t")
    await sink.wait_for_rounds(3)
    loop.cancel()
    with pytest.raises(asyncio.CancelledError):
        await loop
    assert most_at_once == 1
    assert all(r.skipped_rounds >= 1 for r in sink.reports)
    assert all(r.lag_s >= 0 for r in sink.reports)


async def test_a_failing_portal_is_confirmed_by_fast_probes_before_its_next_round(
    tmp_path: Path,
) -> None:
    from netwatch.health import HealthMonitor
    from probes.http import HttpProber
    from tests.servers import reserved_port

    closed = reserved_port()  # held by this test process: nothing listens, every connect fails
    path = tmp_path / "netwatch.yaml"
    path.write_text(
        "intervals: {http_s: 60}\n"
        "confirmation: {interval_s: 0.5}\n"
        "portals:\n"
        f"  dvcqg: {{name: Cổng Dịch vụ công quốc gia, url: 'https://127.0.0.1:{closed}/'}}\n",
        encoding="utf-8",
    )
    inventory = load_inventory(path, environ={})
    plan = compile_plan(inventory)
    health = HealthMonitor(inventory)
    changed = asyncio.Event()
    health.on_change.append(changed.set)  # the incidents changed: the portal's, here
    rounds = Recorder()
    async with HttpProber() as http:
        http.prepare([job.check for job in plan.portals])
        engine = Engine(
            plan, None, None, http, [rounds, health], EngineOptions(start_jitter_s=0), judge=health
        )
        engine.start()
        try:
            async with asyncio.timeout(30):
                await changed.wait()
            status = health.portal_status("dvcqg")
            assert status is not None
            assert (status.state.value, status.detail) == ("failing", "connect")
            # One scheduled round (60 s apart) saw it; the fast probes confirmed it.
            assert [r.kind for r in rounds.reports] == ["http"]
            assert [i.key.encoded for i in health.incidents] == ["portal:dvcqg"]
        finally:
            await engine.stop()
        assert netwatch_tasks() == []


async def test_bounded_rounds_keep_the_jobs_order_with_at_most_limit_at_once() -> None:
    running, peak = 0, 0

    async def run(job: int) -> int:
        nonlocal running, peak
        running += 1
        peak = max(peak, running)
        await asyncio.sleep(0)  # let every other job start that may
        running -= 1
        return job * 10

    assert await _bounded(range(7), 3, run) == [0, 10, 20, 30, 40, 50, 60]
    assert peak == 3
