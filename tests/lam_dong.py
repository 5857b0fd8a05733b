"""The shipped example config (config/examples/lam-dong.yaml) as the tests load it, and what
they say about its first commune's VNPT line."""

from __future__ import annotations

import subprocess
from datetime import datetime
from pathlib import Path

from alerts.model import IncidentKind
from alerts.tickets import Evidence

EXAMPLE = Path(__file__).resolve().parents[1] / "config" / "examples" / "lam-dong.yaml"
# Placeholder secrets for every variable the example names.
ENV = {
    "NETWATCH_SNMP_COMMUNITY": "c",
    "NETWATCH_SNMP_AUTH_KEY": "authkey-123",
    "NETWATCH_SNMP_PRIV_KEY": "privkey-123",
    "NETWATCH_LINK_SECRET": "lam-dong-afa5a0fa6ee25d5d12125b938f682271",
    "NETWATCH_SMTP_PASSWORD": "p",
    "NETWATCH_WEBHOOK_SECRET": "w",
    "NETWATCH_TELEGRAM_TOKEN": "t",
}
# The Prometheus labels of Xã Lạc Dương's VNPT line (link 24848/vnpt-tslcd).
LAC_DUONG_VNPT = {
    "province": "68",
    "commune": "24848",
    "commune_name": "Xã Lạc Dương",
    "link": "vnpt-tslcd",
    "isp": "vnpt",
    "path": "tslcd",
}


def lac_duong_down(since: datetime) -> Evidence:
    """The evidence of a ticket for Xã Lạc Dương's VNPT line, down since `since` (no figures)."""
    return Evidence(
        kind=IncidentKind.LINK_FAULT,
        state="down",
        worst_state="down",
        detail="",
        links=("24848/vnpt-tslcd",),
        first_bad_at=since,
        bad_since=since,
    )


def assert_promtool_accepts(exposition: bytes) -> None:
    """`promtool check metrics` finds nothing to say about this /metrics body."""
    run = subprocess.run(
        ["promtool", "check", "metrics"], input=exposition, capture_output=True, check=False
    )
    assert run.returncode == 0, run.stdout.decode() + run.stderr.decode()
    assert run.stdout.decode() + run.stderr.decode() == ""
