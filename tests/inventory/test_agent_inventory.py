"""The inventory's commune agents (issue 11): what provincial IT writes, and its mistakes."""

from __future__ import annotations

import textwrap
from ipaddress import ip_address
from pathlib import Path

import pytest

from netwatch.inventory import Divisions, load_inventory
from tests.inventory.test_loader import ENV, errors_of, write

BASE = """
isps:
  vnpt:
    name: VNPT
    contacts: [{level: 1, name: NOC, email: noc@vnpt.example}]
  viettel:
    name: Viettel
    contacts: [{level: 1, name: NOC, email: noc@viettel.example}]
portals:
  dvc: {name: Cổng DVC, url: "https://dichvucong.lab.netwatch.vn/"}
agents: {interval_s: 20, echoes: 4}
communes:
  - code: 24848
    contacts: [{level: 1, name: Chủ tịch UBND xã, email: ubnd@xa.example}]
    links:
      - {id: vnpt, isp: vnpt, circuit: C1, bandwidth_mbps: 100, path: tslcd, address: 10.90.10.1}
      - {id: vtl, isp: viettel, circuit: C2, bandwidth_mbps: 50, path: internet, address: 10.90.10.5}
    agent:
      lan_gateway: 10.90.10.129
      paths:
        - {link: vnpt, source: 10.90.10.130, target: 10.90.10.2}
        - {link: vtl, interface: eth1, target: 10.90.10.6}
"""


@pytest.fixture(scope="module")
def divisions() -> Divisions:
    return Divisions()


def test_an_agent_is_read_with_its_paths_contacts_and_defaults(
    tmp_path: Path, divisions: Divisions
) -> None:
    inventory = load_inventory(write(tmp_path, BASE), environ=ENV, divisions=divisions)
    commune = inventory.communes[0]
    assert commune.agent is not None
    assert commune.agent_id == "24848-agent"
    assert commune.agent.lan_gateway == ip_address("10.90.10.129")
    assert [(p.link, p.source, p.interface) for p in commune.agent.paths] == [
        ("vnpt", ip_address("10.90.10.130"), None),
        ("vtl", None, "eth1"),
    ]
    assert commune.agent.portals is None  # every portal
    assert commune.agent.throughput.enabled is False
    assert commune.contacts[0].name == "Chủ tịch UBND xã"
    assert (inventory.agents.interval_s, inventory.agents.echoes) == (20, 4)


def test_a_commune_without_agent_has_no_agent_id(tmp_path: Path, divisions: Divisions) -> None:
    text = textwrap.dedent(BASE).split("    agent:")[0]
    inventory = load_inventory(write(tmp_path, text), environ=ENV, divisions=divisions)
    assert inventory.communes[0].agent is None
    assert inventory.communes[0].agent_id is None


@pytest.mark.parametrize(
    ("change", "message"),
    [
        (("{link: vtl, interface: eth1,", "{link: vnpt, interface: eth1,"), "two agent paths"),
        (("{link: vtl, interface: eth1,", "{link: fpt, interface: eth1,"), "no link 'fpt'"),
        (("{link: vtl, interface: eth1,", "{link: vtl,"), "needs `source:`"),
        (("lan_gateway: 10.90.10.129", "lan_gateway: router"), "IPv4 or IPv6"),
        (
            ("lan_gateway: 10.90.10.129", "lan_gateway: 10.90.10.129\n      portals: [vneid]"),
            "unknown portal 'vneid'; defined: dvc",
        ),
        (
            (
                "lan_gateway: 10.90.10.129",
                "lan_gateway: 10.90.10.129\n      throughput: {enabled: true}",
            ),
            "has no `url:`",
        ),
        (("agents: {interval_s: 20", "agents: {interval_s: 1"), "must be at least 5"),
    ],
)
def test_agent_mistakes_are_positioned_errors(
    tmp_path: Path, divisions: Divisions, change: tuple[str, str], message: str
) -> None:
    text = textwrap.dedent(BASE).replace(*change)
    errors = errors_of(write(tmp_path, text), divisions)
    assert any(message in e for e in errors), errors
    assert all(e.startswith("F:") for e in errors), errors


def test_two_communes_may_not_share_an_agent_id(tmp_path: Path, divisions: Divisions) -> None:
    text = textwrap.dedent(BASE).replace("    agent:\n", "    agent:\n      id: box-1\n")
    text += (
        textwrap.dedent("""
      - code: 28696
        links:
          - {id: vnpt, isp: vnpt, circuit: C3, bandwidth_mbps: 100, path: tslcd, address: 10.90.11.1}
        agent:
          id: box-1
          paths: [{link: vnpt, source: 10.90.11.130, target: 10.90.11.2}]
    """)
        .replace("\n", "\n  ")
        .rstrip()
        + "\n"
    )
    errors = errors_of(write(tmp_path, text), divisions)
    assert any("agent id 'box-1' is used twice" in e for e in errors), errors


def test_each_agent_gets_only_its_communes_part_with_a_content_revision(
    tmp_path: Path, divisions: Divisions
) -> None:
    from netwatch.agent import wire
    from netwatch.inside.config import AgentConfigError, agent_config, agent_configs

    text = (
        textwrap.dedent(BASE)
        + textwrap.dedent("""
      - code: 28696
        links:
          - {id: vnpt, isp: vnpt, circuit: C3, bandwidth_mbps: 100, path: tslcd, address: 10.90.11.1}
        devices: [{name: Kiosk 1, kind: kiosk, address: 10.90.11.140}]
        agent:
          paths: [{link: vnpt, source: 10.90.11.130, target: 10.90.11.2}]
    """)
        .replace("\n", "\n  ")
        .rstrip()
        + "\n"
    )
    inventory = load_inventory(write(tmp_path, text), environ=ENV, divisions=divisions)
    configs = agent_configs(inventory)
    assert set(configs) == {"24848", "28696"}
    first, second = configs["24848"], configs["28696"]
    assert (first.agent, first.interval_s, first.echoes) == ("24848-agent", 20, 4)
    assert [p.link for p in first.paths] == ["vnpt", "vtl"]
    assert [p.id for p in first.portals] == ["dvc"]
    assert first.devices == ()
    assert [(d.name, d.kind, d.address) for d in second.devices] == [
        ("Kiosk 1", "kiosk", "10.90.11.140")
    ]
    assert "10.90.10" not in repr(second)  # nothing of the other commune
    assert wire.decode_config(wire.encode_config(first)) == first
    # the revision follows the content, and only the content
    assert agent_config(inventory, "24848").revision == first.revision
    changed = load_inventory(
        write(tmp_path, text.replace("target: 10.90.10.2", "target: 10.90.10.3")),
        environ=ENV,
        divisions=divisions,
    )
    assert agent_config(changed, "24848").revision != first.revision
    assert agent_config(changed, "28696").revision == second.revision
    with pytest.raises(AgentConfigError, match="no commune 99999"):
        agent_config(inventory, "99999")
