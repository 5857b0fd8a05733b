"""`netwatch agent --config FILE` as a real process: it runs against a real hub, stays under its
memory budget, and SIGTERM, Ctrl-C or even SIGKILL leave nothing running."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
from collections.abc import AsyncIterator, Iterator
from contextlib import contextmanager
from pathlib import Path

import pytest

from tests.agent.boxes import AGENT, COMMUNE, SECRET, USER, Centre, agent_config
from tests.agent.hub import Hub, running_hub
from tests.waiting import async_wait_until

pytestmark = pytest.mark.timeout(150)

# The agent's command line with the measurement replaced by a trivial one: nothing of the test
# suite is imported in the agent's process, so its RSS is the agent's own.
FAKE_MEASURE_MAIN = """
import sys
from dataclasses import replace
from netwatch.agent.command import load_runtime
load_runtime()  # as `netwatch agent` imports: nats without aiohttp
import netwatch.agent.box as box
from netwatch.agent.model import InsideRound, Ping, DevicePing

import asyncio, os

async def measure(config, seq, at):
    if seq == int(os.environ.get("HANG_AT_SEQ", "0")):  # hangs, deaf to cancellation
        while True:
            try:
                await asyncio.sleep(3600)
            except asyncio.CancelledError:
                pass
    ping = Ping(config.lan_gateway or "192.168.1.1", 3, 3, 0.001, 0.002, None)
    return InsideRound(config.commune, config.agent, seq, at, config.revision, ping, (), (),
                       tuple(DevicePing(d.name, replace(ping, target=d.address))
                             for d in config.devices))

box.default_measure = lambda: measure
from netwatch.cli import main
sys.exit(main(["agent", "--config", sys.argv[1]]))
"""


def rss_kb(pid: int) -> int:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1])
    raise AssertionError(f"no VmRSS for {pid}")


def alive(pid: int) -> bool:
    try:
        stat = Path(f"/proc/{pid}/stat").read_text()
    except FileNotFoundError:
        return False
    return stat.rsplit(")", 1)[1].split()[0] != "Z"


def write_settings(tmp_path: Path, hub: Hub) -> Path:
    (tmp_path / "secret").write_text(SECRET + "\n")
    path = tmp_path / "agent.toml"
    path.write_text(
        f'commune = "{COMMUNE}"\nagent = "{AGENT}"\nsecret_file = "secret"\n'
        f'centre = ["{hub.leaf_url}"]\ndata_dir = "box"\nconfig_refresh_s = 1\n'
    )
    return path


@contextmanager
def agent_process(config: Path, hang_at_seq: int = 0) -> Iterator[subprocess.Popen[bytes]]:
    env = dict(
        os.environ,
        PYTHONPATH=str(Path(__file__).resolve().parents[2]),
        HANG_AT_SEQ=str(hang_at_seq),
    )
    proc = subprocess.Popen(
        [sys.executable, "-c", FAKE_MEASURE_MAIN, str(config)],
        env=env,
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
    )
    try:
        yield proc
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait()
        assert proc.stdout is not None
        proc.stdout.close()


def leaf_pid(data_dir: Path) -> int | None:
    ports = list((data_dir / "nats").glob("nats-server_*.ports"))
    for p in ports:
        pid = int(p.stem.rsplit("_", 1)[1])
        if alive(pid):
            return pid
    return None


@pytest.fixture
async def centre(tmp_path: Path) -> AsyncIterator[Centre]:
    with running_hub(tmp_path / "hub", [USER]) as hub:
        c = Centre(hub)
        await c.connect()
        c.serve(agent_config("rev-a", interval_s=0.2, devices=4))
        try:
            yield c
        finally:
            await c.close()


@pytest.mark.parametrize(
    ("sig", "hang_at_seq"), [(signal.SIGTERM, 0), (signal.SIGINT, 0), (signal.SIGTERM, 12)]
)
async def test_agent_runs_small_and_stops_with_its_nats_server(
    tmp_path: Path, centre: Centre, sig: signal.Signals, hang_at_seq: int
) -> None:
    # hang_at_seq: the measurement of that round hangs for ever and ignores cancellation; the
    # agent still stops on the signal (and takes its nats-server along).
    config = write_settings(tmp_path, centre.hub)
    with agent_process(config, hang_at_seq) as proc:
        await async_wait_until(
            lambda: len(centre.heartbeats) >= 3 or proc.poll() is not None,
            timeout_s=60,
            message="agent heartbeats",
        )
        assert proc.poll() is None, proc.stdout.read().decode() if proc.stdout else ""
        wanted = hang_at_seq - 1 if hang_at_seq else 25
        await async_wait_until(
            lambda: _count_at_least(centre, wanted), timeout_s=60, message="rounds at the hub"
        )
        if hang_at_seq:  # seq is taken (persisted) before the round: this one is measuring
            await async_wait_until(
                lambda: f'"next_seq": {hang_at_seq + 1},' in _state(tmp_path), timeout_s=20
            )
        leaf = leaf_pid(tmp_path / "box")
        assert leaf is not None
        agent_kb, leaf_kb = rss_kb(proc.pid), rss_kb(leaf)
        print(f"RSS agent={agent_kb / 1024:.1f} MB nats-server={leaf_kb / 1024:.1f} MB")
        assert agent_kb < 60 * 1024
        proc.send_signal(sig)
        assert proc.wait(30) == 0
        output = proc.stdout.read().decode() if proc.stdout else ""
        assert "leaf nats-server stopped" in output
        assert not alive(leaf), "the box's nats-server outlived the agent"
    seqs = await centre.seqs()
    assert seqs == list(range(1, len(seqs) + 1))


def _state(tmp_path: Path) -> str:
    try:
        return (tmp_path / "box" / "state.json").read_text()
    except FileNotFoundError:
        return ""


async def _count_at_least(centre: Centre, n: int) -> bool:
    return len(await centre.seqs()) >= n


async def test_a_killed_agent_takes_its_nats_server_along_and_loses_nothing(
    tmp_path: Path, centre: Centre
) -> None:
    # SIGKILL while the centre is away and rounds are buffered: the leaf goes with the agent;
    # started again, seq goes on and every round reaches the centre once and in order.
    config = write_settings(tmp_path, centre.hub)
    with agent_process(config) as proc:
        leaf = await async_wait_until(
            lambda: leaf_pid(tmp_path / "box"), timeout_s=60, message="leaf started"
        )
        await async_wait_until(lambda: _count_at_least(centre, 3), timeout_s=60)
        await centre.close()
        centre.hub.stop()
        await async_wait_until(lambda: '"next_seq": 15,' in _state(tmp_path), timeout_s=30)
        proc.kill()
        proc.wait(10)
        await async_wait_until(lambda: not alive(leaf), timeout_s=20, message="leaf gone")
    killed_at = int(_state(tmp_path).split('"next_seq": ')[1].split(",")[0])
    centre.hub.start()
    await centre.connect()
    with agent_process(config):
        await async_wait_until(
            lambda: _count_at_least(centre, killed_at + 5), timeout_s=60, message="all home"
        )
    seqs = await centre.seqs()
    # A seq taken by the killed round may be missing (never measured); nothing else is, and
    # nothing is there twice or out of order.
    assert seqs == sorted(set(seqs))
    assert set(range(1, seqs[-1] + 1)) - set(seqs) <= {killed_at - 1}


def test_check_and_bad_settings(tmp_path: Path) -> None:
    env = dict(os.environ, PYTHONPATH=str(Path(__file__).resolve().parents[2]))
    (tmp_path / "agent.toml").write_text('commune = "24848"\n')
    bad = subprocess.run(
        [sys.executable, "-m", "netwatch.cli", "agent", "--config", str(tmp_path / "agent.toml")],
        env=env,
        capture_output=True,
        text=True,
        check=False,
    )
    assert bad.returncode == 2
    assert "agent.toml: agent: missing" in bad.stderr
    hub = Hub(tmp_path / "hub", [USER])
    good = subprocess.run(
        [
            sys.executable,
            "-m",
            "netwatch.cli",
            "agent",
            "--check",
            "--config",
            str(write_settings(tmp_path, hub)),
        ],
        env=env,
        capture_output=True,
        text=True,
        check=False,
    )
    assert good.returncode == 0, good.stderr
    assert "OK (commune 24848" in good.stdout


def test_the_agent_process_imports_nothing_of_the_centre() -> None:
    from tests.test_imports import loaded_after_code

    code = (
        "from netwatch.cli import parse_args\n"
        "args = parse_args(['agent', '--config', 'x.toml'])\n"
        "from netwatch.agent.command import load_runtime\n"
        "load_runtime()\n"
    )
    heavy = [
        "aiohttp",
        "pydantic",
        "fastapi",
        "sqlalchemy",
        "yaml",
        "netwatch.inventory",
        "netwatch.runtime",
        "netwatch.lab",
        "netwatch.mailbox",
        "netwatch.probe_cli",
    ]
    assert loaded_after_code(code, heavy) == []
