"""Commune agents for the Prometheus proof: their `agent:` sections in the proof's inventory,
and a reporter that feeds the running NetWatch a round and a heartbeat of each agent every
second through ``runtime.inside_sinks`` on the app's event loop, as the bus feed of agent
messages does (the rounds are shaped by the agent's real configuration, ``agent_config``)."""

from __future__ import annotations

import asyncio
import threading
import urllib.request
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import replace
from datetime import UTC, datetime
from typing import Any

from fastapi import FastAPI

from netwatch.agent.model import AgentConfig, AgentHeartbeat, InsideRound
from netwatch.inside.config import agent_config
from netwatch.inventory import Inventory
from netwatch.runtime import Runtime
from tests.inside.rounds import heartbeat, inside_round

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
