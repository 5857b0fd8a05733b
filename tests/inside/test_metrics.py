"""The commune agents' Prometheus families (netwatch/inside/metrics.py): rounds and heartbeats go
in through the InsideState sink, the scrape is parsed back and checked by promtool."""

from __future__ import annotations

from dataclasses import replace
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
from prometheus_client import CollectorRegistry
from prometheus_client.parser import text_string_to_metric_families

from netwatch.agent.model import DevicePing, PathPing, PortalTiming
from netwatch.inside.config import agent_config
from netwatch.inside.metrics import InsideMetrics
from netwatch.inside.state import InsideState
from netwatch.inventory import Inventory, load_inventory
from netwatch.metrics import MetricsCollector
from netwatch.plan import compile_plan
from tests.inside.rounds import heartbeat, inside_round, ping
from tests.lam_dong import assert_promtool_accepts

T0 = datetime(2026, 12, 6, 2, 0, tzinfo=UTC)
CONFIG = """
province: 68
isps:
  vnpt: {name: VNPT Lâm Đồng}
  viettel: {name: Viettel Lâm Đồng}
portals:
  dvcqg: {name: Cổng Dịch vụ công quốc gia, url: "https://dichvucong.example/"}
agents: {interval_s: 20, echoes: 4}
communes:
  - code: 24848
    links:
      - {id: vnpt-tslcd, isp: vnpt, circuit: C1, bandwidth_mbps: 100, path: tslcd, address: 10.90.10.1}
      - {id: viettel-inet, isp: viettel, circuit: C2, bandwidth_mbps: 50, path: internet, address: 10.90.10.5}
    devices:
      - {name: Kiosk tra cứu, kind: kiosk, address: 192.168.10.20}
      - {name: Máy in một cửa, kind: printer, address: 192.168.10.21}
    agent:
      lan_gateway: 192.168.10.1
      paths:
        - {link: vnpt-tslcd, source: 192.168.10.2, target: 10.90.10.2}
        - {link: viettel-inet, source: 192.168.10.3, target: 10.90.10.6}
  - code: 24820
    links:
      - {id: vnpt-tslcd, isp: vnpt, circuit: C3, bandwidth_mbps: 100, path: tslcd, address: 10.90.11.1}
"""
CODE, NO_AGENT = "24848", "24820"


def _inventory(tmp_path: Path, text: str = CONFIG) -> Inventory:
    path = tmp_path / "netwatch.yaml"
    path.write_text(text, "utf-8")
    return load_inventory(path, environ={})


class Clock:
    def __init__(self) -> None:
        self.now = T0

    def __call__(self) -> datetime:
        return self.now


class Setup:
    def __init__(self, inventory: Inventory) -> None:
        self.inventory = inventory
        self.state = InsideState()
        self.clock = Clock()
        self.metrics = InsideMetrics(self.state, inventory, clock=self.clock)
        self.collector = MetricsCollector(compile_plan(inventory))
        self.registry = CollectorRegistry()
        self.collector.register(self.registry)
        self.metrics.register(self.collector.add_families)
        self.config = agent_config(inventory, CODE)

    def exposition(self) -> bytes:
        return self.collector.exposition(self.registry)

    def samples(self) -> dict[tuple[str, frozenset[tuple[str, str]]], float]:
        text = self.exposition().decode()
        return {
            (s.name, frozenset(s.labels.items())): s.value
            for f in text_string_to_metric_families(text)
            for s in f.samples
        }

    def value(self, name: str, **labels: str) -> float | None:
        found = [
            v
            for (n, ls), v in self.samples().items()
            if n == name and labels.items() <= dict(ls).items()
        ]
        assert len(found) <= 1, (name, labels, found)
        return found[0] if found else None

    def names(self) -> set[str]:
        return {n for n, _ in self.samples()}


@pytest.fixture
def setup(tmp_path: Path) -> Setup:
    return Setup(_inventory(tmp_path))


def test_nothing_before_an_agent_is_heard(setup: Setup) -> None:
    assert not {n for n in setup.names() if n.startswith(("netwatch_agent_", "netwatch_inside_"))}


def test_an_agents_health_and_its_inside_view(setup: Setup) -> None:
    c = setup.config
    received = T0 + timedelta(seconds=1)
    setup.state.inside_round(
        inside_round(
            c, 7, T0, paths={"vnpt-tslcd": 0.012, "viettel-inet": None},
            portals={"vnpt-tslcd": 0.9, "viettel-inet": None}, devices_down=("Máy in một cửa",),
        ),
        received,
    )  # fmt: skip
    beat_at = T0 + timedelta(seconds=5)
    setup.state.heartbeat(
        heartbeat(c, beat_at, last_seq=7, buffered=12, oldest_age_s=240, dropped=3), beat_at
    )
    setup.clock.now = T0 + timedelta(seconds=6)
    agent = {"province": "68", "commune": CODE, "agent": "24848-agent"}
    v = setup.value
    assert v("netwatch_agent_last_seen_timestamp_seconds", **agent) == beat_at.timestamp()
    assert v("netwatch_agent_last_round_timestamp_seconds", **agent) == T0.timestamp()
    assert v("netwatch_agent_buffer_messages", **agent) == 12
    assert v("netwatch_agent_buffer_bytes", **agent) == 4800
    assert v("netwatch_agent_buffer_oldest_age_seconds", **agent) == 240
    assert v("netwatch_agent_dropped_rounds_total", **agent) == 3
    assert v("netwatch_agent_rounds_received_total", **agent) == 1
    assert v("netwatch_agent_rounds_backfilled_total", **agent) == 0
    assert v("netwatch_agent_info", **agent, version="0.20.0") == 1
    assert v("netwatch_agent_config_current", **agent) == 1
    vnpt = {"commune": CODE, "link": "vnpt-tslcd", "isp": "vnpt", "path": "tslcd"}
    viettel = {"commune": CODE, "link": "viettel-inet", "isp": "viettel", "path": "internet"}
    assert v("netwatch_inside_path_up", **vnpt) == 1
    assert v("netwatch_inside_path_rtt_median_seconds", **vnpt) == 0.012
    assert v("netwatch_inside_path_loss_ratio", **vnpt) == 0
    assert v("netwatch_inside_path_up", **viettel) == 0
    assert v("netwatch_inside_path_loss_ratio", **viettel) == 1
    assert v("netwatch_inside_path_rtt_median_seconds", **viettel) is None
    portal = {"portal": "dvcqg"}
    assert v("netwatch_inside_portal_up", **vnpt, **portal) == 1
    assert v("netwatch_inside_portal_up", **viettel, **portal) == 0
    assert v("netwatch_inside_portal_phase_seconds", **vnpt, **portal, phase="total") == 0.9
    assert v("netwatch_inside_portal_phase_seconds", **vnpt, **portal, phase="first_byte") == (
        pytest.approx(0.72)
    )
    # The failing path: its total (the timeout) and the phases it reached, no others.
    assert v("netwatch_inside_portal_phase_seconds", **viettel, **portal, phase="total") == 10
    assert v("netwatch_inside_portal_phase_seconds", **viettel, **portal, phase="tls") is None
    assert v("netwatch_inside_gateway_up", commune=CODE) == 1
    assert v("netwatch_inside_gateway_rtt_median_seconds", commune=CODE) == 0.004
    assert v("netwatch_inside_device_up", device="Kiosk tra cứu", kind="kiosk") == 1
    assert v("netwatch_inside_device_up", device="Máy in một cửa", kind="printer") == 0
    # The commune without an agent has no series at all.
    assert not [k for k in setup.samples() if ("commune", NO_AGENT) in k[1]
                and k[0].startswith(("netwatch_agent_", "netwatch_inside_"))]  # fmt: skip
    assert_promtool_accepts(setup.exposition())


def test_a_silent_agents_last_values_go_but_its_health_stays(setup: Setup) -> None:
    setup.state.inside_round(inside_round(setup.config, 1, T0), T0)
    setup.clock.now = T0 + timedelta(seconds=59)  # within 3 intervals of 20 s
    assert setup.value("netwatch_inside_path_up", link="vnpt-tslcd") == 1
    setup.clock.now = T0 + timedelta(seconds=61)
    assert not {n for n in setup.names() if n.startswith("netwatch_inside_")}
    assert setup.value("netwatch_agent_last_seen_timestamp_seconds") == T0.timestamp()


def test_a_backfilled_round_counts_but_never_shows_as_now(setup: Setup) -> None:
    c = setup.config
    setup.clock.now = T0 + timedelta(hours=2)
    # Rounds from two hours ago, forwarded from the box's buffer once the line came back.
    for seq in range(1, 4):
        setup.state.inside_round(
            inside_round(c, seq, T0 + timedelta(seconds=20 * seq), paths={"vnpt-tslcd": None}),
            setup.clock.now,
        )
    assert setup.value("netwatch_agent_rounds_received_total") == 3
    assert setup.value("netwatch_agent_rounds_backfilled_total") == 3
    assert setup.value("netwatch_inside_path_up", link="vnpt-tslcd") is None


def test_what_the_inventory_does_not_know_has_no_series(setup: Setup) -> None:
    c = setup.config
    base = inside_round(c, 1, T0)
    stray = replace(
        base,
        paths=(*base.paths, PathPing("mystery-link", ping("10.0.0.9"))),
        portals=(
            *base.portals,
            PortalTiming("elsewhere", "vnpt-tslcd", True, 0.1, 0.1, 0.1, 0.1, 0.5, 200, None, None),
        ),
        devices=(*base.devices, DevicePing("Máy lạ", ping("192.168.10.99"))),
    )
    setup.state.inside_round(stray, T0)
    # A commune the inventory does not list (removed by a reload, or a forged code).
    setup.state.inside_round(replace(base, commune="99999"), T0)
    samples = setup.samples()
    labels = {(k, v) for _, ls in samples for k, v in ls}
    assert ("link", "mystery-link") not in labels
    assert ("portal", "elsewhere") not in labels
    assert ("device", "Máy lạ") not in labels
    assert ("commune", "99999") not in labels
    assert setup.value("netwatch_inside_path_up", link="vnpt-tslcd") == 1


def test_config_current_follows_the_inventory_and_the_agent(setup: Setup, tmp_path: Path) -> None:
    c = setup.config
    setup.state.heartbeat(heartbeat(c, T0), T0)
    assert setup.value("netwatch_agent_config_current") == 1
    # The agent reports an older revision: not current.
    setup.state.heartbeat(heartbeat(c, T0, revision="0123456789abcdef"), T0)
    assert setup.value("netwatch_agent_config_current") == 0
    setup.state.heartbeat(heartbeat(c, T0), T0)
    # Provincial IT changes the agent's part of the inventory (a new device): the running
    # configuration is no longer the current one until the agent fetches it.
    changed = CONFIG.replace(
        "      - {name: Máy in một cửa, kind: printer, address: 192.168.10.21}\n",
        "      - {name: Máy in một cửa, kind: printer, address: 192.168.10.21}\n"
        "      - {name: Máy lấy số, kind: queue, address: 192.168.10.22}\n",
    )
    (tmp_path / "changed").mkdir()
    inventory = _inventory(tmp_path / "changed", changed)
    setup.metrics.reload(inventory)
    assert setup.value("netwatch_agent_config_current") == 0
    fresh = agent_config(inventory, CODE)
    assert fresh.revision != c.revision
    assert setup.metrics.expected_revision(CODE) == fresh.revision
    setup.state.heartbeat(heartbeat(fresh, T0), T0)
    assert setup.value("netwatch_agent_config_current") == 1
