"""What the centre's agent tests share: a small inventory with agents (two communes with one,
one without) and its file."""

from __future__ import annotations

import textwrap
from pathlib import Path

INVENTORY = """
isps:
  vnpt:
    name: VNPT
    contacts: [{level: 1, name: NOC, email: noc@vnpt.example}]
portals:
  dvc: {name: Cổng DVC, url: "https://dichvucong.lab.netwatch.vn/"}
agents: {interval_s: 30, echoes: 4}
communes:
  - code: 24848
    links:
      - {id: vnpt, isp: vnpt, circuit: C1, bandwidth_mbps: 100, path: tslcd, address: 10.110.10.1}
    agent:
      lan_gateway: 10.110.10.129
      paths:
        - {link: vnpt, source: 10.110.10.130, target: 10.110.10.2}
  - code: 24846
    links:
      - {id: vnpt, isp: vnpt, circuit: C2, bandwidth_mbps: 100, path: tslcd, address: 10.110.11.1}
    agent:
      lan_gateway: 10.110.11.129
      paths:
        - {link: vnpt, source: 10.110.11.130, target: 10.110.11.2}
  - code: 24841
    links:
      - {id: vnpt, isp: vnpt, circuit: C3, bandwidth_mbps: 100, path: tslcd, address: 10.110.12.1}
"""
WITH_AGENT = ("24848", "24846")
WITHOUT_AGENT = "24841"


def write_inventory(folder: Path, text: str = INVENTORY) -> Path:
    """The inventory as a file in `folder`."""
    path = folder / "netwatch.yaml"
    path.write_text(textwrap.dedent(text).lstrip("\n"), encoding="utf-8")
    return path
