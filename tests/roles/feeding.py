"""Rounds published as a probe worker would, and a bus to publish them on (role tests)."""

from __future__ import annotations

import time
from collections.abc import AsyncIterator
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path

import nats
import pytest
from nats.js import JetStreamContext

from netwatch.bus import wire
from netwatch.bus.server import NatsServer, NatsServerOptions, running_nats_server
from netwatch.bus.streams import ObservationPublisher, ensure_buckets, ensure_stream
from netwatch.inventory import load_inventory
from netwatch.observations import IcmpObservation, RoundReport
from netwatch.plan import Plan, compile_plan
from probes.icmp import PingResult


@dataclass
class Feed:
    """Publishes rounds as a probe worker would, counting what it sent."""

    publisher: ObservationPublisher
    plan: Plan
    rounds: int = 0
    observations: int = 0
    first_round_ms: int = field(default_factory=lambda: int(time.time() * 1000))

    async def round(self, *, up: bool) -> None:
        now = datetime.now(UTC)
        received, rtt = (5, 0.002) if up else (0, None)
        result = PingResult(
            "127.0.0.2", 5, received, 0.0 if up else 1.0, rtt, rtt, rtt,
            0.0 if up else None, (rtt,) * 5 if rtt else (), None, now,
        )  # fmt: skip
        batch = [IcmpObservation(t, result) for t in self.plan.icmp]
        # A round's id is its slot (unique per round); rounds here come faster than 1 per ms.
        round_id = self.first_round_ms + self.rounds
        sent = await self.publisher.publish_round("icmp", batch, round_id=round_id)
        report = RoundReport("icmp", now, now, 0.0, 0.01, len(batch), 0)
        reported = await self.publisher.publish_report(report, round_id=round_id)
        assert sent.duplicates == reported.duplicates == 0
        self.rounds += 1
        self.observations += len(batch)

    @classmethod
    def of(cls, js: JetStreamContext, config: Path, environ: dict[str, str] | None = None) -> Feed:
        """A feed of the plan of `config` (its secrets from `environ`), publishing as shard 0."""
        plan = compile_plan(load_inventory(config, environ=environ))
        return cls(ObservationPublisher(js, wire.PlanIndex.from_plan(plan), shard=0), plan)


@pytest.fixture
async def bus(tmp_path: Path) -> AsyncIterator[tuple[NatsServer, JetStreamContext]]:
    async with running_nats_server(NatsServerOptions(data_dir=tmp_path / "bus")) as server:
        nc = await nats.connect(server.url, allow_reconnect=False)
        try:
            js = nc.jetstream()
            await ensure_stream(js)
            await ensure_buckets(js)
            yield server, js
        finally:
            await nc.close()
