"""Commune agents for the Prometheus proof: their `agent:` sections in the proof's inventory,
and two reporters of a round and a heartbeat of each agent every second (the rounds shaped by
the agent's real configuration, ``agent_config``): ``reporting`` feeds a NetWatch running in
this process through ``runtime.inside_sinks`` on its event loop, as the bus feed does;
``bus_reporting`` sends them as a box does, to ``netwatch run --agent-listen``: a key from
``netwatch agent-key add``, a leaf nats-server logging in with it, each round into the hub's
stream AGENTS (message id ``agent:seq``) and each heartbeat live."""

from __future__ import annotations

import asyncio
import contextlib
import subprocess
import threading
import urllib.request
from collections.abc import Iterator
from contextlib import AsyncExitStack, contextmanager
from dataclasses import replace
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import nats
import nats.errors
from fastapi import FastAPI

from netwatch.agent import wire
from netwatch.agent.model import (
    AgentConfig,
    AgentHeartbeat,
    InsideRound,
    heartbeat_subject,
    obs_subject,
)
from netwatch.inside.config import agent_config
from netwatch.inventory import Inventory
from netwatch.runtime import Runtime
from tests.agent.centre import running_leaf
from tests.inside.rounds import heartbeat, inside_round
from tests.roles.procs import netwatch

PATH_RTT_S = 0.006  # what each agent measures over each of its paths
PATH_LOSS = 0.25  # of 4 echoes, 1 lost, on every path
PORTAL_TOTAL_S = 0.8  # every portal over every path
BUFFERED, OLDEST_S, DROPPED = 5, 120.0, 2
VERSION = "0.20.0-lab"
LOOP_PATH = "/_test/agents-loop"


def add_agents(data: dict[str, Any], count: int) -> list[str]:
    """Give the first `count` communes of the inventory data an agent (one path per link, a
    LAN gateway, two front-office devices), unless they have one; their codes."""
    codes = []
    for n, commune in enumerate(data["communes"][:count]):
        commune.setdefault(
            "devices",
            [
                {"name": "Kiosk tra cứu", "kind": "kiosk", "address": f"172.31.{n}.20"},
                {"name": "Máy in một cửa", "kind": "printer", "address": f"172.31.{n}.21"},
            ],
        )
        commune.setdefault(
            "agent",
            {
                "lan_gateway": f"172.31.{n}.1",
                "paths": [
                    {
                        "link": link["id"],
                        "source": f"172.31.{n}.{10 + i}",
                        "target": f"172.30.{n}.{10 + i}",
                    }
                    for i, link in enumerate(commune["links"])
                ],
            },
        )
        codes.append(str(commune["code"]).zfill(5))
    return codes


def capture_loop(app: FastAPI) -> list[asyncio.AbstractEventLoop]:
    """A route that records the app's event loop when asked (before the app is served)."""
    loops: list[asyncio.AbstractEventLoop] = []

    async def capture() -> dict[str, str]:
        loops.append(asyncio.get_running_loop())
        return {}

    app.add_api_route(LOOP_PATH, capture, include_in_schema=False)
    return loops


def _one(config: AgentConfig, seq: int, now: datetime) -> tuple[InsideRound, AgentHeartbeat]:
    links = [p.link for p in config.paths]
    round_ = inside_round(
        config,
        seq,
        now,
        paths=dict.fromkeys(links, PATH_RTT_S),
        portals=dict.fromkeys(links, PORTAL_TOTAL_S),
        devices_down=("Máy in một cửa",),
    )
    lossy = tuple(replace(p, ping=replace(p.ping, received=3)) for p in round_.paths)
    beat = heartbeat(
        config, now, last_seq=seq, buffered=BUFFERED, oldest_age_s=OLDEST_S, dropped=DROPPED,
        version=VERSION,
    )  # fmt: skip
    return replace(round_, paths=lossy), beat


@contextmanager
def reporting(
    app: FastAPI, base: str, loops: list[asyncio.AbstractEventLoop], inventory: Inventory,
    codes: list[str],
) -> Iterator[None]:  # fmt: skip
    """Every second, each agent's round (4 echoes per path, 1 lost) and heartbeat, fed to the
    running app's inside sinks; stopped (and joined) on the way out."""
    with urllib.request.urlopen(base + LOOP_PATH, timeout=10) as response:
        response.read()
    loop = loops[0]
    runtime: Runtime = app.state.runtime
    configs = [agent_config(inventory, code) for code in codes]
    stop = threading.Event()

    def feed(seq: int) -> None:
        now = datetime.now(UTC)
        messages = [_one(config, seq, now) for config in configs]

        async def deliver() -> None:
            for round_, beat in messages:
                for sink in runtime.inside_sinks:
                    sink.inside_round(round_, now)
                    sink.heartbeat(beat, now)

        asyncio.run_coroutine_threadsafe(deliver(), loop).result(10)

    def run() -> None:
        seq = 0
        while not stop.is_set():
            seq += 1
            feed(seq)
            stop.wait(1.0)

    thread = threading.Thread(target=run, name="agents-reporting", daemon=True)
    thread.start()
    try:
        yield
    finally:
        stop.set()
        thread.join(timeout=15)
        assert not thread.is_alive(), "the agents' reporter did not stop"


@contextmanager
def bus_reporting(
    config: Path, env: dict[str, str], data_dir: Path, hub_leaf_url: str, inventory: Inventory,
    codes: list[str], folder: Path,
) -> Iterator[None]:  # fmt: skip
    """Every second, each agent's round and heartbeat, sent through a leaf nats-server of its
    own logged in with a key the CLI made; stopped (leaves too) on the way out."""
    secrets = {
        code: subprocess.run(
            netwatch("agent-key", "add", code, "--config", str(config), "--data-dir", str(data_dir)),
            capture_output=True, text=True, check=True, env=env,
        ).stdout.strip()
        for code in codes
    }  # fmt: skip
    configs = [agent_config(inventory, code) for code in codes]
    stop = threading.Event()
    failed: list[BaseException] = []

    async def send() -> None:
        async with AsyncExitStack() as stack:
            boxes = []
            for config_ in configs:
                url = await stack.enter_async_context(
                    running_leaf(
                        folder / config_.agent, hub_leaf_url, config_.agent,
                        secrets[config_.commune],
                    )
                )  # fmt: skip
                nc = await nats.connect(url, inbox_prefix=f"_INBOX_{config_.commune}".encode())
                stack.push_async_callback(nc.close)
                boxes.append((config_, nc))
            seq = 0
            while not stop.is_set():
                seq += 1
                now = datetime.now(UTC)
                for config_, nc in boxes:
                    round_, beat = _one(config_, seq, now)
                    # Until the leaf is in, a round finds no stream: that seq is skipped, as a
                    # box would retry it (the pages only want the newest).
                    with contextlib.suppress(nats.errors.Error, TimeoutError):
                        await nc.jetstream().publish(
                            obs_subject(config_.commune), wire.encode_round(round_),
                            headers={"Nats-Msg-Id": f"{config_.agent}:{seq}"}, timeout=2.0,
                        )  # fmt: skip
                    await nc.publish(
                        heartbeat_subject(config_.commune), wire.encode_heartbeat(beat)
                    )
                await asyncio.to_thread(stop.wait, 1.0)

    def run() -> None:
        try:
            asyncio.run(send())
        except BaseException as exc:  # reported by the main thread
            failed.append(exc)

    thread = threading.Thread(target=run, name="agents-bus-reporting", daemon=True)
    thread.start()
    try:
        yield
    finally:
        stop.set()
        thread.join(timeout=30)
        assert not thread.is_alive(), "the agents' reporter did not stop"
        assert not failed, failed
