"""The health monitor's join of ICMP rounds with the router's SNMP view (issue 12, item 3): a lossy
or slow round is judged only against a utilization reading measured mostly after it, over at
least 5 s, so a congested line is never first judged an ISP fault."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest

from alerts.subject import SubjectKey
from netwatch.health import HealthMonitor
from netwatch.inventory import load_inventory
from netwatch.observations import IcmpObservation, InterfaceReading, SnmpObservation
from netwatch.plan import Plan, compile_plan
from probes.icmp import PingResult
from probes.snmp_types import RouterSample

CONFIG = """
isps:
  vnpt: {name: VNPT, contacts: [{level: 1, name: NOC, email: noc@vnpt.example}]}
snmp_credentials:
  lab: {version: "2c", community: {env: NW_COMMUNITY}}
communes:
  - code: 24848
    router: {address: 10.91.9.1, snmp: lab}
    links:
      - {id: a, isp: vnpt, circuit: A, bandwidth_mbps: 10, path: tslcd, address: 10.91.9.1,
         interface: wan1}
"""
T0 = datetime(2026, 12, 4, 8, 0, tzinfo=UTC)
LINK = "24848/a"


@pytest.fixture
def setup(tmp_path: Path) -> tuple[HealthMonitor, Plan]:
    path = tmp_path / "netwatch.yaml"
    path.write_text(CONFIG, encoding="utf-8")
    inventory = load_inventory(path, environ={"NW_COMMUNITY": "public"})
    return HealthMonitor(inventory), compile_plan(inventory)


def _slow_round(plan: Plan, at: datetime) -> IcmpObservation:
    rtt = 0.200  # over the 50 ms threshold, nothing lost
    result = PingResult("10.91.9.1", 5, 5, 0.0, rtt, rtt, rtt, 0.0, (rtt,) * 5, None, at)
    return IcmpObservation(plan.icmp[0], result)


def _reading(plan: Plan, since: datetime, until: datetime, utilization: float) -> SnmpObservation:
    job = plan.snmp[0]
    sample = RouterSample("10.91.9.1", until, 0.0, 1000.0, (), None)
    reading = InterfaceReading(
        SubjectKey.parse(f"link:{LINK}"),
        1,
        True,
        None,
        None,
        utilization,
        0.1,
        None,
        None,
        None,
        None,
        None,
        None,
    )
    return SnmpObservation(job, sample, (reading,), False, since)


def _state(health: HealthMonitor) -> str | None:
    status = health.link_status("24848", "a")
    return status.state.value if status is not None else None


def test_slow_rounds_wait_for_a_reading_taken_while_they_were_slow(
    setup: tuple[HealthMonitor, Plan],
) -> None:
    health, plan = setup
    health.observe([_reading(plan, T0 - timedelta(seconds=120), T0 - timedelta(seconds=60), 0.1)])
    for i in range(3):
        health.observe([_slow_round(plan, T0 + timedelta(seconds=2 * i))])
    assert _state(health) is None  # held: not judged yet
    # The routine poll: its minute mostly before the congestion began. Not good enough.
    health.observe([_reading(plan, T0 - timedelta(seconds=55), T0 + timedelta(seconds=5), 0.2)])
    assert _state(health) is None
    # A poll 2 s after another: noise (agents refresh counters every few seconds).
    health.observe([_reading(plan, T0 + timedelta(seconds=5), T0 + timedelta(seconds=7), 1.5)])
    assert _state(health) is None
    # Taken while the rounds were slow (the confirmation poll, 10 s after the first): the line
    # is full, so they were congestion, never an ISP fault.
    health.observe([_reading(plan, T0 + timedelta(seconds=1), T0 + timedelta(seconds=11), 0.97)])
    assert _state(health) == "congested"
    assert [(t.old, t.new) for t in health.transitions] == [("ok", "congested")]


def test_slow_rounds_on_a_line_that_is_not_full_are_the_isps(
    setup: tuple[HealthMonitor, Plan],
) -> None:
    health, plan = setup
    for i in range(3):
        health.observe([_slow_round(plan, T0 + timedelta(seconds=2 * i))])
    health.observe([_reading(plan, T0, T0 + timedelta(seconds=10), 0.05)])
    assert _state(health) == "slow"
