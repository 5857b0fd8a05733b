"""The lab plan and the files written for NetWatch: pure data, no privileges needed."""

from __future__ import annotations

import ipaddress
from pathlib import Path

import pytest
import yaml

from netwatch.inventory import load_inventory
from netwatch.lab import build_plan
from netwatch.lab.config import MailSetup, inventory, write_env, write_inventory
from netwatch.lab.network import create_lines, namespace_batches, root_lines
from netwatch.lab.snmpd import SnmpSecrets, render_config
from netwatch.lab.topology import DEFAULT_COMMUNE_CODES, plan_from_json, select_communes

SECRETS = SnmpSecrets("community-x", "netwatch", "authkey-x-123", "privkey-x-123")


def test_demo_communes_come_first_with_official_names() -> None:
    wards = select_communes(5)
    assert [w.code for w in wards[:4]] == list(DEFAULT_COMMUNE_CODES)
    assert [w.name for w in wards[:4]] == [
        "Xã Lạc Dương",
        "Xã Tân Phú Đông",
        "Xã Tân Thới",
        "Phường Sông Công",
    ]
    assert wards[0].province_name == "Lâm Đồng"


def test_commune_choice_is_deterministic_and_grows_by_prefix() -> None:
    small = select_communes(10)
    large = select_communes(60)
    assert large[:10] == small
    assert len({w.code for w in large}) == 60
    assert len({w.province_code for w in large}) >= 30


def test_addresses_follow_the_index() -> None:
    plan = build_plan(1, 3)
    assert plan.prefix == "10.89.0.0/16"
    assert plan.core_address == "10.89.0.2"
    assert plan.communes[0].address == "10.89.10.1"
    assert plan.portal.dns_address == "10.89.250.53"
    assert all(ns.startswith("nwl1-") for ns in plan.namespaces)
    assert plan.root_ifname.startswith("nwl1-")
    demo = build_plan(0, 5)
    assert demo.prefix == "10.88.0.0/16"
    assert demo.upstreams[0].address == "10.88.1.1"


def test_fifty_communes_have_unique_addresses_and_short_names() -> None:
    plan = build_plan(167, 50)
    net = ipaddress.IPv4Network(plan.prefix)
    addresses = [plan.root_address, plan.core_address, plan.portal.address, plan.portal.dns_address]
    addresses += [u.address for u in plan.upstreams] + [u.core_address for u in plan.upstreams]
    for commune in plan.communes:
        for link in commune.links:
            addresses += [link.router_address, link.upstream_address]
            assert len(link.upstream_ifname) <= 15
            assert len(link.router_ifname) <= 15
        box = commune.box
        assert box is not None
        addresses += [box.lan_gateway, *box.sources, *(d.address for d in box.devices)]
        names = (box.ifname, box.router_ifname, box.bridge, box.device_ifname)
        assert all(len(name) <= 15 for name in (*names, box.device_router_ifname))
        lan = ipaddress.IPv4Network(commune.lan)
        assert all(ipaddress.IPv4Address(a) in lan for a in (box.lan_gateway, *box.sources))
        assert commune.sink_address not in (*box.sources, box.lan_gateway)
        # One path per link, each toward its own link's upstream address.
        assert [(p.link, p.target) for p in box.paths] == [
            (lk.id, lk.upstream_address) for lk in commune.links
        ]
    assert len(addresses) == len(set(addresses))
    assert all(ipaddress.IPv4Address(a) in net for a in addresses)
    assert len(plan.root_ifname) <= 15
    assert sum(len(c.links) == 2 for c in plan.communes) == 25


def test_bad_index_or_size_is_refused() -> None:
    with pytest.raises(ValueError, match="lab index"):
        build_plan(168, 1)
    with pytest.raises(ValueError, match="communes"):
        build_plan(1, 0)


def test_plan_round_trips_through_json() -> None:
    plan = build_plan(2, 7)
    assert plan_from_json(plan.to_json()) == plan


def test_no_namespace_gets_a_default_route() -> None:
    plan = build_plan(1, 6)
    lines = [line for batch in namespace_batches(plan).values() for line in batch]
    lines += create_lines(plan) + root_lines(plan)
    assert not [line for line in lines if "default" in line or "0.0.0.0/0" in line]
    assert f"route replace blackhole {plan.prefix} metric 4000" in root_lines(plan)


def test_snmpd_config_binds_own_addresses_with_both_versions() -> None:
    commune = build_plan(1, 1).communes[0]
    text = render_config(commune, SECRETS)
    assert "agentAddress udp:10.89.10.1:161,udp:10.89.10.5:161" in text
    assert "rocommunity community-x default" in text
    assert 'createUser netwatch SHA "authkey-x-123" AES "privkey-x-123"' in text
    assert "rouser netwatch authpriv" in text


def test_inventory_follows_the_documented_schema(tmp_path: Path) -> None:
    plan = build_plan(1, 4)
    ca = tmp_path / "ca.pem"
    path = write_inventory(tmp_path / "netwatch.yaml", plan, SECRETS, ca)
    data = yaml.safe_load(path.read_text(encoding="utf-8"))
    assert data == inventory(plan, SECRETS, ca)
    assert set(data) == {
        "reference_targets", "intervals", "agents", "isps", "snmp_credentials", "upstreams",
        "portals", "communes",
    }  # fmt: skip
    assert data["reference_targets"] == ["10.89.0.2"]
    assert data["snmp_credentials"]["lab-v2c"]["community"] == {"env": "NETWATCH_SNMP_COMMUNITY"}
    assert data["snmp_credentials"]["lab-v3"]["priv_key"] == {"env": "NETWATCH_SNMP_PRIV_KEY"}
    assert "community-x" not in path.read_text(encoding="utf-8")
    portal = data["portals"]["dvcqg"]
    assert portal["url"] == "https://dichvucong.lab.netwatch.vn/"
    assert portal["ca_file"] == str(ca.resolve())
    assert portal["dns_resolver"] == "10.89.250.53"
    commune = data["communes"][0]
    assert commune["code"] == 24848
    assert [link["id"] for link in commune["links"]] == ["vnpt-tslcd", "viettel-internet"]
    assert commune["links"][0]["interface"] == "wan1"
    assert commune["links"][1]["path"] == "internet"
    emails = [c["email"] for isp in data["isps"].values() for c in isp["contacts"]]
    assert all(e.endswith(".invalid") for e in emails)


def test_inventory_loads_with_netwatch(tmp_path: Path) -> None:
    plan = build_plan(1, 4)
    ca = tmp_path / "ca.pem"
    ca.write_text("-----BEGIN CERTIFICATE-----\n")
    path = write_inventory(tmp_path / "netwatch.yaml", plan, SECRETS, ca)
    env = write_env(tmp_path / "lab.env", SECRETS)
    environ = dict(line.split("=", 1) for line in env.read_text().splitlines())
    loaded = load_inventory(path, environ=environ)
    assert [int(c.code) for c in loaded.communes] == [c.code for c in plan.communes]
    assert env.stat().st_mode & 0o077 == 0


def test_with_mail_the_inventory_notifies_through_the_catcher(tmp_path: Path) -> None:
    # What `netwatch lab up --smtp --public-url` writes for the demo.
    plan = build_plan(1, 4)
    ca = tmp_path / "ca.pem"
    ca.write_text("-----BEGIN CERTIFICATE-----\n")
    mail = MailSetup("127.0.0.1", 2525, "http://127.0.0.1:8080")
    path = write_inventory(tmp_path / "netwatch.yaml", plan, SECRETS, ca, mail)
    env = write_env(tmp_path / "lab.env", SECRETS, "link-secret-x-abb58670ee95ed5079cdbabbf3962246")
    assert "link-secret-x-abb58670ee95ed5079cdbabbf3962246" not in path.read_text(encoding="utf-8")
    environ = dict(line.split("=", 1) for line in env.read_text().splitlines())
    assert environ["NETWATCH_LINK_SECRET"] == "link-secret-x-abb58670ee95ed5079cdbabbf3962246"
    loaded = load_inventory(path, environ=environ)
    notifications = loaded.notifications
    assert notifications is not None
    assert notifications.public_url == "http://127.0.0.1:8080"
    assert notifications.link_secret.reveal() == "link-secret-x-abb58670ee95ed5079cdbabbf3962246"
    assert notifications.smtp is not None
    smtp = notifications.smtp
    assert (smtp.host, smtp.port, smtp.starttls, smtp.username) == ("127.0.0.1", 2525, False, None)
    emails = [c.email for isp in loaded.isps.values() for c in isp.contacts]
    emails += [c.email for c in loaded.provincial_it.contacts]
    assert len(emails) == 5  # two levels per ISP, and provincial IT
    assert all(e is not None and e.endswith(".invalid") for e in emails)
    assert loaded.warnings() == []


def test_inventory_gives_every_commune_its_agent_and_devices(tmp_path: Path) -> None:
    from netwatch.inside.config import agent_config

    plan = build_plan(1, 2)
    ca = tmp_path / "ca.pem"
    ca.write_text("-----BEGIN CERTIFICATE-----\n")
    path = write_inventory(tmp_path / "netwatch.yaml", plan, SECRETS, ca)
    env = write_env(tmp_path / "lab.env", SECRETS)
    environ = dict(line.split("=", 1) for line in env.read_text().splitlines())
    loaded = load_inventory(path, environ=environ)
    dual = plan.communes[0]
    assert dual.box is not None
    config = agent_config(loaded, f"{dual.code:05d}")
    assert config.lan_gateway == dual.box.lan_gateway == "10.89.10.129"
    assert [(p.link, p.source, p.target) for p in config.paths] == [
        ("vnpt-tslcd", "10.89.10.130", "10.89.10.2"),
        ("viettel-internet", "10.89.10.131", "10.89.10.6"),
    ]
    assert [(d.kind, d.address) for d in config.devices] == [
        ("kiosk", "10.89.10.140"),
        ("printer", "10.89.10.141"),
    ]
    assert [p.id for p in config.portals] == ["dvcqg"]
    assert (config.interval_s, config.echoes) == (10.0, 3)  # the lab's short rhythm
    single = agent_config(loaded, f"{plan.communes[1].code:05d}")
    assert [p.link for p in single.paths] == ["vnpt-tslcd"]
