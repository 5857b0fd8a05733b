"""What a configuration reload changes (issue 15): the plan diff, the health monitor keeping the
state of what stays and forgetting what left, thresholds applied, the metrics following."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from pathlib import Path

from alerts.subject import SubjectKey
from netwatch.health import HealthMonitor
from netwatch.inventory import Inventory, load_inventory
from netwatch.metrics import MetricsCollector
from netwatch.observations import IcmpObservation
from netwatch.plan import Plan, compile_plan, diff_plans
from probes.icmp import PingResult

BASE = """
isps:
  vnpt: {name: VNPT, contacts: [{level: 1, name: NOC, email: noc@vnpt.example}]}
snmp_credentials:
  lab: {version: "2c", community: {env: NW_COMMUNITY}}
upstreams:
  pop-1: {name: POP 1, isp: vnpt, address: 10.91.0.1}
communes:
  - code: 24848
    router: {address: 10.91.9.1, snmp: lab}
    links:
      - {id: a, isp: vnpt, circuit: A, bandwidth_mbps: 10, path: tslcd, address: 10.91.9.1,
         interface: wan1}
  - code: 24853
    links:
      - {id: b, isp: vnpt, circuit: B, bandwidth_mbps: 10, path: tslcd, address: 10.91.10.1}
"""
# 24853 removed, 24846 added, 24848's router address changed, pop-1 unchanged.
NEXT = """
isps:
  vnpt: {name: VNPT, contacts: [{level: 1, name: NOC, email: noc@vnpt.example}]}
snmp_credentials:
  lab: {version: "2c", community: {env: NW_COMMUNITY}}
upstreams:
  pop-1: {name: POP 1, isp: vnpt, address: 10.91.0.1}
thresholds: {rtt_ms: 5}
communes:
  - code: 24848
    router: {address: 10.91.9.2, snmp: lab}
    links:
      - {id: a, isp: vnpt, circuit: A, bandwidth_mbps: 10, path: tslcd, address: 10.91.9.1,
         interface: wan1}
  - code: 24846
    links:
      - {id: c, isp: vnpt, circuit: C, bandwidth_mbps: 10, path: tslcd, address: 10.91.11.1}
"""
T0 = datetime(2026, 12, 4, 8, 0, tzinfo=UTC)


def _load(tmp_path: Path, text: str, name: str) -> Inventory:
    path = tmp_path / f"{name}.yaml"
    path.write_text(text, encoding="utf-8")
    return load_inventory(path, environ={"NW_COMMUNITY": "public"})


def _key(text: str) -> SubjectKey:
    return SubjectKey.parse(text)


def _round(
    plan: Plan, link: str, at: datetime, received: int, rtt_s: float = 0.001
) -> IcmpObservation:
    target = next(t for t in plan.icmp if t.link is not None and t.link.id == link)
    rtt = rtt_s if received else None
    rtts = (rtt_s,) * received
    result = PingResult(
        target.address, 5, received, 1 - received / 5, rtt, rtt, rtt, 0.0, rtts, None, at
    )
    return IcmpObservation(target, result)


def test_diff_names_added_removed_and_changed_subjects(tmp_path: Path) -> None:
    old = compile_plan(_load(tmp_path, BASE, "old"))
    new = compile_plan(_load(tmp_path, NEXT, "new"))
    diff = diff_plans(old, new)
    assert diff.added == {_key("link:24846/c")}
    assert diff.removed == {_key("link:24853/b")}
    assert diff.changed == {_key("router:24848")}  # its address changed; its link did not
    assert diff_plans(old, old).empty


def test_health_reload_keeps_what_stays_and_forgets_what_left(tmp_path: Path) -> None:
    old_inventory = _load(tmp_path, BASE, "old")
    plan = compile_plan(old_inventory)
    health = HealthMonitor(old_inventory)
    for i in range(5):  # both links down (no echo), judged by hysteresis
        at = T0 + timedelta(seconds=30 * i)
        health.observe([_round(plan, "24848/a", at, 0), _round(plan, "24853/b", at, 0)])
    assert {i.key.encoded for i in health.incidents} == {"link:24848/a", "link:24853/b"}
    health.drain_transitions()
    before = health.links.status("24848/a")

    removed = health.reload(_load(tmp_path, NEXT, "new"), T0 + timedelta(minutes=5))

    assert removed == {_key("link:24853/b")}
    assert health.links.status("24853/b") is None
    assert health.links.status("24848/a") == before  # state, since, hysteresis: kept
    assert {i.key.encoded for i in health.incidents} == {"link:24848/a"}
    # The state history hears that the removed link is not watched any more.
    assert [(t.subject, t.new) for t in health.drain_transitions()] == [("24853/b", "unknown")]
    # A round of the removed link still in flight changes nothing.
    health.observe([_round(plan, "24853/b", T0 + timedelta(minutes=6), 0)])
    assert health.links.status("24853/b") is None


def test_reloaded_thresholds_apply_to_the_next_rounds(tmp_path: Path) -> None:
    old_inventory = _load(tmp_path, BASE, "old")
    plan = compile_plan(old_inventory)
    health = HealthMonitor(old_inventory)
    rtt = 0.020  # 20 ms: fine under 50 ms, slow under the reloaded 5 ms
    for i in range(5):
        health.observe([_round(plan, "24853/b", T0 + timedelta(seconds=30 * i), 5, rtt)])
    assert not health.incidents
    new_inventory = _load(tmp_path, NEXT, "new")
    health.reload(new_inventory, T0 + timedelta(minutes=3))
    new_plan = compile_plan(new_inventory)
    assert health.links.policy("24846/c").rtt_s == 0.005
    for i in range(5):
        at = T0 + timedelta(minutes=4, seconds=30 * i)
        health.observe([_round(new_plan, "24846/c", at, 5, rtt)])
    assert [(i.key.encoded, i.state) for i in health.incidents] == [("link:24846/c", "slow")]


def test_metrics_drop_the_series_of_removed_targets(tmp_path: Path) -> None:
    plan = compile_plan(_load(tmp_path, BASE, "old"))
    collector = MetricsCollector(plan)
    collector.observe([_round(plan, "24848/a", T0, 5), _round(plan, "24853/b", T0, 5)])
    text = b"".join(collector.render_chunks()).decode()
    assert 'commune="24853"' in text
    sent_before = [
        line for line in text.splitlines() if line.startswith("netwatch_link_echoes_sent")
    ]
    new_plan = compile_plan(_load(tmp_path, NEXT, "new"))
    collector.reload(new_plan)
    collector.observe([_round(new_plan, "24846/c", T0, 5)])
    text = b"".join(collector.render_chunks()).decode()
    assert 'commune="24853"' not in text
    assert 'commune="24846"' in text
    # The link that stays keeps its counters.
    kept = [line for line in sent_before if 'commune="24848"' in line]
    assert kept
    assert all(line in text for line in kept)
