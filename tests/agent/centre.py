"""What the centre's agent tests share: a small inventory with agents (two communes with one,
one without) and its file."""

from __future__ import annotations

import asyncio
import contextlib
import json
import textwrap
from collections.abc import AsyncIterator
from pathlib import Path

from netwatch.bus.server import find_nats_server, parent_death_signal

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


# -- a real leaf nats-server standing in for an agent box ---------------------------------------


def _leaf_conf(folder: Path, hub_leaf_url: str, agent: str, secret: str) -> Path:
    folder.mkdir(parents=True, exist_ok=True)
    hostport = hub_leaf_url.removeprefix("nats-leaf://")
    conf = folder / "leaf.conf"
    conf.write_text(
        "\n".join(
            [
                f"server_name: {json.dumps(agent)}",
                'listen: "127.0.0.1:-1"',
                f"ports_file_dir: {json.dumps(str(folder))}",
                f"log_file: {json.dumps(str(folder / 'leaf.log'))}",
                f"jetstream {{ store_dir: {json.dumps(str(folder))}, domain: agent }}",
                "leafnodes { reconnect: 1, remotes: [ { url: "
                + json.dumps(f"nats-leaf://{agent}:{secret}@{hostport}")
                + " } ] }",
                "",
            ]
        ),
        encoding="utf-8",
    )
    return conf


@contextlib.asynccontextmanager
async def running_leaf(
    folder: Path, hub_leaf_url: str, agent: str, secret: str
) -> AsyncIterator[str]:
    """A nats-server as the box runs it: JetStream (domain ``agent``), a leaf node of the hub
    logging in as `agent` with `secret`; yields its client URL; stopped (and reaped) after."""
    conf = _leaf_conf(folder, hub_leaf_url, agent, secret)
    proc = await asyncio.create_subprocess_exec(
        find_nats_server(),
        "-c",
        str(conf),
        stdin=asyncio.subprocess.DEVNULL,
        stdout=asyncio.subprocess.DEVNULL,
        stderr=asyncio.subprocess.DEVNULL,
        preexec_fn=parent_death_signal(),
    )
    try:
        ports = folder / f"nats-server_{proc.pid}.ports"
        for _ in range(500):
            if ports.exists():
                with contextlib.suppress(ValueError):
                    url = json.loads(ports.read_text())["nats"][0]
                    break
            await asyncio.sleep(0.02)
        else:
            raise AssertionError("the leaf nats-server did not start")
        yield url
    finally:
        if proc.returncode is None:
            proc.terminate()
        await proc.wait()


async def raw_leaf_publish(hub_leaf_url: str, agent: str, secret: str, subject: str) -> bytes:
    """What a tampered box could send: the leafnode protocol by hand, logging in as `agent` and
    sending one message on `subject` whatever the hub's permissions; returns what the hub said."""
    host, _, port = hub_leaf_url.removeprefix("nats-leaf://").rpartition(":")
    reader, writer = await asyncio.open_connection(host, int(port))
    try:
        await reader.readline()  # INFO
        hello = json.dumps({"user": agent, "pass": secret, "name": "tampered", "headers": True})
        writer.write(f"CONNECT {hello}\r\nPING\r\nLMSG {subject} 2\r\nhi\r\nPING\r\n".encode())
        await writer.drain()
        said = b""
        with contextlib.suppress(TimeoutError, ConnectionError):
            while chunk := await asyncio.wait_for(reader.read(4096), 3.0):
                said += chunk
        return said
    finally:
        writer.close()
        with contextlib.suppress(OSError):
            await writer.wait_closed()
