"""`netwatch run --agent-listen`, the real supervisor and its children: a key added while it
runs lets the box's leaf nats-server in; the box gets its configuration and its round reaches
the core (its /metrics); the key revoked, the box is cut off and the refusal is logged with the
agent id and counted."""

from __future__ import annotations

import asyncio
import os
import re
import signal
import subprocess
from pathlib import Path

import nats
import nats.errors
from prometheus_client.parser import text_string_to_metric_families

from netwatch.agent import wire
from tests.agent.centre import running_leaf, write_inventory
from tests.agent.test_centre_feed import _round
from tests.inventory.test_loader import ENV
from tests.roles.procs import get, netwatch, spawned
from tests.servers import reserved_port


def _metric(base: str, name: str, **labels: str) -> float:
    status, body = get(base, "/metrics")
    if status != 200:
        return -1.0
    for family in text_string_to_metric_families(body):
        for sample in family.samples:
            if sample.name == name and all(sample.labels.get(k) == v for k, v in labels.items()):
                return float(sample.value)
    return -1.0


async def _until_metric(base: str, name: str, at_least: float, **labels: str) -> None:
    for _ in range(600):
        if await asyncio.to_thread(_metric, base, name, **labels) >= at_least:
            return
        await asyncio.sleep(0.1)
    raise AssertionError(f"{name}{labels} never reached {at_least}")


def _core_pid(log: Path) -> int:
    """The core's pid, from the supervisor's last "child started name=core" line."""
    found = re.findall(r"child started name=core pid=(\d+)", log.read_text(errors="replace"))
    return int(found[-1])


def _cli(*args: str) -> str:
    done = subprocess.run(
        netwatch(*args), capture_output=True, text=True, check=True, env={**ENV, "PATH": ""}
    )
    return done.stdout.strip()


async def test_the_supervisor_lets_keyed_agents_in_and_cuts_revoked_ones_off(
    tmp_path: Path,
) -> None:
    config = write_inventory(tmp_path)
    data = tmp_path / "data"
    port, core, agents = reserved_port(), reserved_port(), reserved_port()
    argv = netwatch(
        "run", "--config", str(config), "--listen", f"127.0.0.1:{port}", "--data-dir", str(data),
        "--probe-workers", "0", "--snmp-workers", "0", "--web-workers", "1",
        "--core-listen", f"127.0.0.1:{core}", "--agent-listen", f"127.0.0.1:{agents}",
    )  # fmt: skip
    log = tmp_path / "supervisor.log"
    base = f"http://127.0.0.1:{core}"
    with spawned(argv, log, {**ENV, "NETWATCH_DATABASE_URL": ""}):
        await _until_metric(base, "netwatch_agent_keys_active", 0)
        secret = await asyncio.to_thread(
            _cli, "agent-key", "add", "24848", "--config", str(config), "--data-dir", str(data)
        )
        await _until_metric(base, "netwatch_agent_keys_active", 1)
        hub = f"nats-leaf://127.0.0.1:{agents}"
        async with running_leaf(tmp_path / "box", hub, "24848-agent", secret) as box:
            await _until_metric(base, "netwatch_agent_leafnodes", 1)
            nc = await nats.connect(box, inbox_prefix=b"_INBOX_24848")
            try:
                reply = None
                for _ in range(50):
                    try:
                        reply = await nc.request("nw.agent.v1.24848.cfg", b"", timeout=0.5)
                        break
                    except (nats.errors.NoRespondersError, nats.errors.TimeoutError):
                        await asyncio.sleep(0.1)
                assert reply is not None
                assert wire.decode_config(reply.data).agent == "24848-agent"
                ack = await nc.jetstream().publish(
                    "nw.agent.v1.24848.obs",
                    wire.encode_round(_round("24848", 1)),
                    headers={"Nats-Msg-Id": "24848-agent:1"},
                    timeout=5.0,
                )
                assert ack.stream == "AGENTS"
                await _until_metric(base, "netwatch_agent_rounds_applied_total", 1)
                # The core killed and restarted by the supervisor: rounds sent meanwhile are
                # applied once, in order; round 1 resent after the duplicate window (another
                # message id) is skipped. (The last seqs are saved every 5 s: wait for one.)
                await asyncio.sleep(6.0)
                core_pid = _core_pid(log)
                os.kill(core_pid, signal.SIGKILL)
                for seq, msg_id in ((2, "24848-agent:2"), (3, "24848-agent:3"), (1, "late")):
                    ack = await nc.jetstream().publish(
                        "nw.agent.v1.24848.obs",
                        wire.encode_round(_round("24848", seq)),
                        headers={"Nats-Msg-Id": msg_id},
                        timeout=5.0,
                    )
                    assert not ack.duplicate
                await _until_metric(base, "netwatch_agent_rounds_skipped_total", 1)
                assert _core_pid(log) != core_pid
                assert (
                    await asyncio.to_thread(_metric, base, "netwatch_agent_rounds_applied_total")
                    == 2
                )
                await asyncio.to_thread(
                    _cli, "agent-key", "revoke", "24848-agent", "--data-dir", str(data)
                )
                await _until_metric(base, "netwatch_agent_refusals_total", 1, reason="revoked")
                assert await asyncio.to_thread(_metric, base, "netwatch_agent_leafnodes") == 0
            finally:
                await nc.close()
    text = log.read_text(errors="replace")
    assert "agent refused agent=24848-agent reason=revoked" in text
    assert "agent connected agent=24848-agent commune=24848" in text
