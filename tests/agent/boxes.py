"""Helpers of the agent box's tests: the centre's side (AGENTS stream, cfg responder, heartbeat
listener) on a real hub nats-server, a fake measurement, and a Box running in a task."""

from __future__ import annotations

import asyncio
import contextlib
import os
from collections.abc import AsyncIterator
from dataclasses import dataclass, field, replace
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import nats
from nats.aio.client import Client
from nats.aio.msg import Msg
from nats.js.api import StorageType, StreamConfig

from netwatch.agent.box import Box, Measure
from netwatch.agent.model import (
    AgentConfig,
    AgentHeartbeat,
    DeviceConfig,
    DevicePing,
    InsideRound,
    Ping,
    config_subject,
    heartbeat_subject,
)
from netwatch.agent.settings import AgentSettings
from netwatch.agent.wire import decode_heartbeat, decode_round, encode_config
from tests.agent.hub import AGENTS_STREAM, AgentUser, Hub
from tests.waiting import async_wait_until

COMMUNE = "24848"
AGENT = "24848-agent"
SECRET = "s3cret/24848:x@y%"  # characters a URL must escape
USER = AgentUser(AGENT, COMMUNE, SECRET)


def agent_config(revision: str = "rev-a", interval_s: float = 0.2, devices: int = 2) -> AgentConfig:
    return AgentConfig(
        commune=COMMUNE,
        agent=AGENT,
        revision=revision,
        interval_s=interval_s,
        echoes=3,
        lan_gateway="192.168.1.1",
        paths=(),
        portals=(),
        devices=tuple(
            DeviceConfig(f"kiosk-{i}", "kiosk", f"192.168.1.{10 + i}") for i in range(devices)
        ),
    )


@dataclass
class FakeMeasure:
    """Answers every round at once, recording what it was asked (seq, config revision)."""

    calls: list[tuple[int, str]] = field(default_factory=list)

    async def __call__(self, config: AgentConfig, seq: int, at: datetime) -> InsideRound:
        self.calls.append((seq, config.revision))
        ping = Ping("192.168.1.1", 3, 3, 0.001, 0.002, None)
        return InsideRound(
            commune=config.commune,
            agent=config.agent,
            seq=seq,
            at=at,
            config_revision=config.revision,
            gateway=ping,
            paths=(),
            portals=(),
            devices=tuple(
                DevicePing(d.name, replace(ping, target=d.address)) for d in config.devices
            ),
        )

    @property
    def seqs(self) -> list[int]:
        return [s for s, _ in self.calls]


@dataclass
class Centre:
    """The hub's side of one agent: AGENTS stream, cfg responder, heartbeats received."""

    hub: Hub
    answer: bytes | None = None  # None: no cfg responder answers (ignored request)
    requests: int = 0
    heartbeats: list[AgentHeartbeat] = field(default_factory=list)
    nc: Client | None = None

    async def connect(self) -> None:
        self.nc = await nats.connect(self.hub.url, allow_reconnect=False)
        js = self.nc.jetstream()
        with contextlib.suppress(Exception):
            await js.add_stream(
                StreamConfig(
                    name=AGENTS_STREAM,
                    subjects=["nw.agent.v1.*.obs"],
                    storage=StorageType.FILE,
                    duplicate_window=3600,
                    max_age=7 * 86400,
                )
            )
        await self.nc.subscribe(config_subject(COMMUNE), cb=self._cfg)
        await self.nc.subscribe(heartbeat_subject(COMMUNE), cb=self._hb)

    async def _cfg(self, msg: Msg) -> None:
        self.requests += 1
        if self.answer is not None:
            await msg.respond(self.answer)

    async def _hb(self, msg: Msg) -> None:
        self.heartbeats.append(decode_heartbeat(msg.data))

    def serve(self, config: AgentConfig | bytes | None) -> None:
        self.answer = encode_config(config) if isinstance(config, AgentConfig) else config

    async def close(self) -> None:
        if self.nc is not None:
            with contextlib.suppress(Exception):
                await self.nc.close()
            self.nc = None

    async def stored(self) -> list[tuple[str, InsideRound, datetime]]:
        """Every message of AGENTS: (msg id, round, stored at), in stream order."""
        assert self.nc is not None
        js = self.nc.jetstream()
        info = await js.stream_info(AGENTS_STREAM)
        out: list[tuple[str, InsideRound, datetime]] = []
        if not info.state.messages:
            return out
        for seq in range(info.state.first_seq, info.state.last_seq + 1):
            msg = await js.get_msg(AGENTS_STREAM, seq)
            assert msg.data is not None
            assert msg.time is not None
            out.append(
                ((msg.headers or {}).get("Nats-Msg-Id", ""), decode_round(msg.data), msg.time)
            )
        return out

    async def seqs(self) -> list[int]:
        return [r.seq for _, r, _ in await self.stored()]

    def last_beat(self) -> AgentHeartbeat | None:
        return self.heartbeats[-1] if self.heartbeats else None


def settings(tmp_path: Path, hub: Hub, **overrides: Any) -> AgentSettings:
    base = AgentSettings(
        commune=COMMUNE,
        agent=AGENT,
        secret=SECRET,
        centre=(hub.leaf_url,),
        data_dir=tmp_path / "box",
        forward_rate_bps=1_000_000,
        config_refresh_s=1.0,
    )
    return replace(base, **overrides)


@contextlib.asynccontextmanager
async def running_box(s: AgentSettings, measure: Measure, **kwargs: Any) -> AsyncIterator[Box]:
    """A Box in a task; on exit it is stopped and its leaf nats-server checked gone."""
    box = Box(s, measure, heartbeat_s=0.2, config_retry_s=0.3, **kwargs)
    stop = asyncio.Event()
    task = asyncio.create_task(box.run(stop))
    await async_wait_until(
        lambda: box.leaf is not None or task.done(), timeout_s=30, message="leaf up"
    )
    if task.done():
        task.result()
    assert box.leaf is not None
    pid = box.leaf.pid
    try:
        yield box
    finally:
        stop.set()
        await asyncio.wait_for(task, 30)
        assert not _alive(pid), "the leaf nats-server outlived the agent"


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    # a zombie is gone for our purposes
    with contextlib.suppress(OSError):
        return " Z " not in Path(f"/proc/{pid}/stat").read_text()
    return False


def recent(beat: AgentHeartbeat | None, since: datetime) -> AgentHeartbeat | None:
    return beat if beat is not None and beat.at >= since else None


def now() -> datetime:
    return datetime.now(UTC)


SECOND = timedelta(seconds=1)
