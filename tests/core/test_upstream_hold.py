"""An upstream node being confirmed down holds the links that went down with it (rule 2 of
alerts/rootcause.py), through the health monitor that feeds root cause: the links' rounds may
confirm them a fast round before the node's do (a lab run ticketed a link 0.7 s before its POP),
and a node that comes back unconfirmed releases them at once, without waiting for a transition."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest

from alerts.model import IncidentKind
from netwatch.health import HealthMonitor
from netwatch.inventory import load_inventory
from netwatch.observations import IcmpObservation
from netwatch.plan import IcmpTarget, Plan, compile_plan
from probes.icmp import PingResult

CONFIG = """
isps:
  vnpt: {name: VNPT, contacts: [{level: 1, name: NOC, email: noc@vnpt.example}]}
upstreams:
  pop-1: {name: POP 1, isp: vnpt, address: 10.91.0.1}
reference_targets: [10.91.250.1]
communes:
  - code: 24848
    links:
      - {id: a, isp: vnpt, circuit: A, bandwidth_mbps: 10, path: tslcd, address: 10.91.9.1,
         upstream: pop-1}
  - code: 24853
    links:
      - {id: b, isp: vnpt, circuit: B, bandwidth_mbps: 10, path: tslcd, address: 10.91.10.1,
         upstream: pop-1}
"""
T0 = datetime(2026, 12, 4, 8, 0, tzinfo=UTC)


@pytest.fixture
def setup(tmp_path: Path) -> tuple[HealthMonitor, Plan]:
    path = tmp_path / "netwatch.yaml"
    path.write_text(CONFIG, encoding="utf-8")
    inventory = load_inventory(path, environ={})
    return HealthMonitor(inventory), compile_plan(inventory)


def _round(target: IcmpTarget, i: int, answered: int) -> IcmpObservation:
    rtt = 0.01 if answered else None
    rtts = (0.01,) * answered
    result = PingResult(
        target.address, 5, answered, 1 - answered / 5, rtt, rtt, rtt, None, rtts, None,
        T0 + timedelta(seconds=2 * i),
    )  # fmt: skip
    return IcmpObservation(target, result)


def _targets(plan: Plan) -> tuple[IcmpTarget, list[IcmpTarget]]:
    """The POP and the lines; the reference target answers in every round fed by them."""
    [node] = [t for t in plan.icmp if t.role == "upstream"]
    return node, [t for t in plan.icmp if t.link is not None]


def _references(plan: Plan, i: int, answered: int) -> list[IcmpObservation]:
    return [_round(t, i, answered) for t in plan.icmp if t.role == "reference"]


def _answered(health: HealthMonitor, plan: Plan) -> tuple[IcmpTarget, list[IcmpTarget]]:
    """Three rounds where everything answers (rounds 0 to 2); the POP and the lines."""
    node, links = _targets(plan)
    for i in range(3):
        health.observe([*_references(plan, i, 5), *(_round(t, i, 5) for t in (node, *links))])
    return node, links


def _kinds(health: HealthMonitor) -> list[tuple[IncidentKind, str]]:
    return [(i.kind, i.key.encoded) for i in health.incidents]


def test_links_confirmed_a_round_before_their_node_wait_for_it(
    setup: tuple[HealthMonitor, Plan],
) -> None:
    health, plan = setup
    node, links = _answered(health, plan)
    # The POP dies during round 3: the links' echoes come later in it than the node's, they
    # lose three of five while the node had all five answered.
    health.observe(
        [*_references(plan, 3, 5), _round(node, 3, 5), *(_round(t, 3, 2) for t in links)]
    )
    seen = []
    for i in range(4, 7):
        health.observe([*_references(plan, i, 5), *(_round(t, i, 0) for t in (node, *links))])
        seen.append(_kinds(health))
    outage = [(IncidentKind.UPSTREAM_OUTAGE, "upstream:pop-1")]
    # Links confirmed at i = 5 (rounds 3, 4, 5), the node at i = 6: nothing in between.
    assert seen == [[], [], outage]
    assert health.link_status("24848", "a").state.value == "down"  # type: ignore[union-attr]


def test_a_node_back_unconfirmed_releases_its_links_at_once(
    setup: tuple[HealthMonitor, Plan],
) -> None:
    health, plan = setup
    node, links = _answered(health, plan)
    told: list[int] = []
    health.on_change.append(lambda: told.append(len(health.incidents)))
    for i in range(3, 6):  # the lines die; the node loses two rounds' echoes, one short
        health.observe(
            [
                *_references(plan, i, 5),
                _round(node, i, 5 if i == 3 else 0),
                *(_round(t, i, 0) for t in links),
            ]
        )
    assert _kinds(health) == []  # held: the node's next round decides
    told.clear()
    # The node answers again: no transition anywhere, yet the links are their own faults now.
    health.observe([*_references(plan, 6, 5), _round(node, 6, 5)])
    assert _kinds(health) == [
        (IncidentKind.LINK_FAULT, "link:24848/a"),
        (IncidentKind.LINK_FAULT, "link:24853/b"),
    ]
    assert told == [2]  # alerting woken


def test_a_line_down_long_before_its_node_blinks_keeps_its_incident(
    setup: tuple[HealthMonitor, Plan],
) -> None:
    health, plan = setup
    node, links = _targets(plan)
    for i in range(8):  # line a is cut, its node and line b are fine
        health.observe(
            [
                *_references(plan, i, 5),
                _round(node, i, 5),
                _round(links[0], i, 0),
                _round(links[1], i, 5),
            ]
        )
    assert _kinds(health) == [(IncidentKind.LINK_FAULT, "link:24848/a")]
    health.observe(
        [
            *_references(plan, 8, 5),
            _round(node, 8, 0),
            _round(links[0], 8, 0),
            _round(links[1], 8, 5),
        ]
    )
    assert _kinds(health) == [(IncidentKind.LINK_FAULT, "link:24848/a")]


def test_a_reference_back_unconfirmed_releases_the_lines_held_for_it(
    setup: tuple[HealthMonitor, Plan],
) -> None:
    health, plan = setup
    node, links = _answered(health, plan)
    # Line a is cut; NetWatch's own line blinks: its reference loses two rounds, one short.
    for i in range(3, 6):
        health.observe(
            [*_references(plan, i, 5 if i == 3 else 0), _round(node, i, 5),
             _round(links[0], i, 0), _round(links[1], i, 5)]
        )  # fmt: skip
    assert _kinds(health) == []  # the reference's next round decides
    health.observe(_references(plan, 6, 5))
    assert _kinds(health) == [(IncidentKind.LINK_FAULT, "link:24848/a")]
