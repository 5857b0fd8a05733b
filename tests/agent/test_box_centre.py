"""The box against the real centre: `netwatch run --agent-listen` (its hub, credentials,
AGENTS stream, config responder and core) and `netwatch agent` as processes. The agent gets its
commune's config from the inventory, its rounds reach the core's sinks once and in order, also
across a stop of the whole centre."""

from __future__ import annotations

import asyncio
import json
import os
import signal
import subprocess
import sys
from pathlib import Path

import nats
import pytest
from prometheus_client.parser import text_string_to_metric_families

from netwatch.agent.wire import decode_round
from tests.agent.centre import write_inventory
from tests.agent.test_box_cli import FAKE_MEASURE_MAIN
from tests.inventory.test_loader import ENV
from tests.roles.procs import get, netwatch, spawned
from tests.servers import reserved_port
from tests.waiting import async_wait_until

pytestmark = pytest.mark.timeout(240)


def metric(base: str, name: str) -> float:
    status, body = get(base, "/metrics")
    if status != 200:
        return -1.0
    for family in text_string_to_metric_families(body):
        for sample in family.samples:
            if sample.name == name:
                return float(sample.value)
    return -1.0


async def metric_at_least(base: str, name: str, value: float) -> float:
    async def reached() -> list[float] | None:
        got = await asyncio.to_thread(metric, base, name)
        return [got] if got >= value else None

    result = await async_wait_until(reached, timeout_s=90, interval_s=0.2, message=name)
    return result[0]


def centre_bus(data: Path) -> tuple[str, str]:
    """The centre's nats-server URL and its clients' token."""
    [ports] = data.glob("nats/nats-server_*.ports")
    url = json.loads(ports.read_text())["nats"][0]
    return url, (data / "nats" / "token").read_text().strip()


def add_key(inventory: Path, data: Path, env: dict[str, str]) -> str:
    """`netwatch agent-key add 24848`: the secret, printed once."""
    return subprocess.run(
        netwatch("agent-key", "add", "24848", "--config", str(inventory), "--data-dir", str(data)),
        capture_output=True, text=True, check=True, env={**os.environ, **env},
    ).stdout.strip()  # fmt: skip


def start_agent(box: Path, log: Path) -> subprocess.Popen[bytes]:
    with log.open("wb") as out:  # the child keeps its own descriptor
        return subprocess.Popen(
            [sys.executable, "-c", FAKE_MEASURE_MAIN, str(box / "agent.toml")],
            env={**os.environ, "PYTHONPATH": str(Path(__file__).resolve().parents[2])},
            stdout=out,
            stderr=subprocess.STDOUT,
        )


async def agents_stream_seqs(data: Path) -> list[int]:
    """The rounds of commune 24848 in the centre's AGENTS stream, in stream order."""
    url, token = centre_bus(data)
    nc = await nats.connect(url, user="netwatch", password=token, allow_reconnect=False)
    try:
        js = nc.jetstream()
        info = await js.stream_info("AGENTS")
        seqs = []
        for n in (
            range(info.state.first_seq, info.state.last_seq + 1) if info.state.messages else []
        ):
            msg = await js.get_msg("AGENTS", n)
            if msg.subject == "nw.agent.v1.24848.obs" and msg.data:
                seqs.append(decode_round(msg.data).seq)
        return seqs
    finally:
        await nc.close()


async def test_agent_against_the_real_centre_through_its_outage(tmp_path: Path) -> None:
    inventory = write_inventory(tmp_path)
    inventory.write_text(inventory.read_text().replace("interval_s: 30", "interval_s: 5"))
    data = tmp_path / "data"
    port, core, agents = reserved_port(), reserved_port(), reserved_port()
    argv = netwatch(
        "run", "--config", str(inventory), "--listen", f"127.0.0.1:{port}", "--data-dir",
        str(data), "--probe-workers", "0", "--snmp-workers", "0", "--web-workers", "1",
        "--core-listen", f"127.0.0.1:{core}", "--agent-listen", f"127.0.0.1:{agents}",
    )  # fmt: skip
    base = f"http://127.0.0.1:{core}"
    env = {**ENV, "NETWATCH_DATABASE_URL": ""}
    box = tmp_path / "box"
    box.mkdir()
    agent: subprocess.Popen[bytes] | None = None
    try:
        with spawned(argv, tmp_path / "centre-1.log", env):
            await metric_at_least(base, "netwatch_agent_keys_active", 0)
            secret = add_key(inventory, data, env)
            (box / "secret").write_text(secret + "\n")
            (box / "agent.toml").write_text(
                'commune = "24848"\nagent = "24848-agent"\nsecret_file = "secret"\n'
                f'centre = ["nats-leaf://127.0.0.1:{agents}"]\ndata_dir = "data"\n'
            )
            agent = start_agent(box, tmp_path / "agent.log")
            await metric_at_least(base, "netwatch_agent_rounds_applied_total", 2)
            await metric_at_least(base, "netwatch_agent_heartbeats_total", 1)
        # The whole centre stopped; the agent measures on (rounds every 5 s).
        before = _next_seq(box)
        await async_wait_until(lambda: _next_seq(box) >= before + 3, timeout_s=60)
        with spawned(argv, tmp_path / "centre-2.log", env):
            measured = _next_seq(box) - 1
            await metric_at_least(base, "netwatch_agent_rounds_applied_total", 1)

            async def home() -> list[int] | None:
                seqs = await agents_stream_seqs(data)
                return seqs if seqs and seqs[-1] >= measured else None

            seqs = await async_wait_until(home, timeout_s=60, message="backlog at the centre")
    finally:
        if agent is not None:
            agent.send_signal(signal.SIGTERM)
            assert agent.wait(30) == 0
    assert seqs == list(range(1, seqs[-1] + 1)), seqs  # once, in order, none lost
    log = (tmp_path / "agent.log").read_text()
    assert "config from the centre revision=" in log
    assert "dropped" not in log


def _next_seq(box: Path) -> int:
    try:
        text = (box / "data" / "state.json").read_text()
    except FileNotFoundError:
        return 0
    return int(text.split('"next_seq": ')[1].split(",")[0])
