"""The NetWatch inventory (docs/configuration.md schema) and secrets file for a built lab."""

from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import yaml

from .snmpd import SnmpSecrets
from .topology import LabPlan

ENV_COMMUNITY = "NETWATCH_SNMP_COMMUNITY"
ENV_AUTH_KEY = "NETWATCH_SNMP_AUTH_KEY"
ENV_PRIV_KEY = "NETWATCH_SNMP_PRIV_KEY"
ENV_LINK_SECRET = "NETWATCH_LINK_SECRET"  # noqa: S105 - the variable's name, not a secret
LAB_MAIL_FROM = "netwatch@lab.example.invalid"
PROVINCIAL_IT_MAIL = "cntt@tinh.example.invalid"


@dataclass(frozen=True, slots=True)
class MailSetup:
    """Where a lab's notifications go (the demo's mail catcher), and where their links point.

    Without it the lab's inventory has no notifications section: tests that mail give their
    NetWatch a notifications section of their own.
    """

    smtp_host: str
    smtp_port: int
    public_url: str  # the NetWatch the signed ticket links open, e.g. http://127.0.0.1:8080


def _mail_sections(mail: MailSetup) -> dict[str, Any]:
    # Plain SMTP on loopback to the catcher: no STARTTLS, no AUTH (nothing leaves the machine).
    return {
        "provincial_it": {
            "name": "Trung tâm Chuyển đổi số tỉnh (lab)",
            "contacts": [{"level": 1, "name": "Phòng CNTT (lab)", "email": PROVINCIAL_IT_MAIL}],
        },
        "notifications": {
            "public_url": mail.public_url,
            "link_secret": {"env": ENV_LINK_SECRET},
            "smtp": {
                "host": mail.smtp_host,
                "port": mail.smtp_port,
                "from_address": LAB_MAIL_FROM,
                "starttls": False,
            },
        },
    }


def inventory(
    plan: LabPlan, secrets: SnmpSecrets, ca_file: Path, mail: MailSetup | None = None
) -> dict[str, Any]:
    """The inventory for what the lab built, as plain data ready for YAML."""
    isps: dict[str, Any] = {}
    for isp in plan.isps:
        short = isp.id.upper() if isp.id == "vnpt" else isp.id.capitalize()
        isps[isp.id] = {
            "name": isp.name,
            "capacity_requests": False,
            "contacts": [
                {
                    "level": 1,
                    "name": f"Trung tâm điều hành {short} (lab)",
                    "email": f"noc@{isp.contact_domain}",
                    "escalate_after_min": 0,
                },
                {
                    "level": 2,
                    "name": "Trưởng ca NOC (lab)",
                    "email": f"truongca@{isp.contact_domain}",
                    "escalate_after_min": 30,
                },
            ],
        }
    communes: list[dict[str, Any]] = []
    for commune in plan.communes:
        entry: dict[str, Any] = {
            "code": commune.code,
            "router": {"address": commune.address, "snmp": commune.snmp_credential},
            "links": [
                {
                    "id": link.id,
                    "isp": link.isp,
                    "circuit": link.circuit,
                    "bandwidth_mbps": link.bandwidth_mbps,
                    "path": link.path,
                    "address": link.router_address,
                    "upstream": link.upstream,
                    "interface": link.router_ifname,
                }
                for link in commune.links
            ],
        }
        box = commune.box
        if box is not None:
            entry["devices"] = [
                {"name": d.name, "kind": d.kind, "address": d.address} for d in box.devices
            ]
            # The agent box on the commune LAN measures each path from its own source address
            # (the router policy-routes it by that link) to the link's upstream address.
            entry["agent"] = {
                "lan_gateway": box.lan_gateway,
                "paths": [
                    {"link": p.link, "source": p.source, "target": p.target} for p in box.paths
                ],
            }
        communes.append(entry)
    data: dict[str, Any] = {
        "reference_targets": [plan.core_address],
        # Short intervals so the demo reacts within a minute; production uses the defaults.
        "intervals": {"icmp_s": 10, "icmp_echoes": 5, "snmp_s": 15, "http_s": 15},
        "agents": {"interval_s": 10, "echoes": 3},
        "isps": isps,
        "snmp_credentials": {
            "lab-v2c": {"version": "2c", "community": {"env": ENV_COMMUNITY}},
            "lab-v3": {
                "version": "3",
                "user": secrets.user,
                "auth_protocol": "sha",
                "auth_key": {"env": ENV_AUTH_KEY},
                "priv_protocol": "aes",
                "priv_key": {"env": ENV_PRIV_KEY},
            },
        },
        "upstreams": {
            u.id: {"name": u.name, "isp": u.isp, "address": u.address} for u in plan.upstreams
        },
        "portals": {
            "dvcqg": {
                "name": "Cổng Dịch vụ công quốc gia",
                "url": plan.portal.url,
                "expect_status": [200],
                "expect_text": "Cổng Dịch vụ công quốc gia",
                "ca_file": str(ca_file.resolve()),
                "dns_resolver": plan.portal.dns_address,
            }
        },
        "communes": communes,
    }
    if mail is not None:
        data.update(_mail_sections(mail))
    return data


def write_inventory(
    path: Path,
    plan: LabPlan,
    secrets: SnmpSecrets,
    ca_file: Path,
    mail: MailSetup | None = None,
) -> Path:
    """Write the inventory YAML to `path`."""
    header = (
        f"# NetWatch inventory for lab {plan.index} ({plan.prefix}), "
        "written by `netwatch lab up`.\n"
        "# Secrets come from the environment: `set -a; . lab.env; set +a` next to this file.\n"
    )
    body = yaml.safe_dump(
        inventory(plan, secrets, ca_file, mail), allow_unicode=True, sort_keys=False, width=100
    )
    path.write_text(header + body, encoding="utf-8")
    return path


def write_env(path: Path, secrets: SnmpSecrets, link_secret: str | None = None) -> Path:
    """Write the secret values as NAME=value lines (mode 0600)."""
    text = (
        f"{ENV_COMMUNITY}={secrets.community}\n"
        f"{ENV_AUTH_KEY}={secrets.auth_key}\n"
        f"{ENV_PRIV_KEY}={secrets.priv_key}\n"
    )
    if link_secret is not None:
        text += f"{ENV_LINK_SECRET}={link_secret}\n"
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    with os.fdopen(fd, "w") as handle:
        handle.write(text)
    return path
