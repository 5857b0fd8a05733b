"""NetWatch (probing off) under a real uvicorn configured by netwatch.web.edge, on loopback."""

from __future__ import annotations

import asyncio
import concurrent.futures
import socket
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path

import uvicorn

from netwatch.inventory import Inventory
from netwatch.store import open_store
from netwatch.web.edge import EdgeOptions, server_config
from tests.servers import listening_socket
from tests.waiting import wait_until
from tests.web.conftest import netwatch_app

# Far longer than any answer takes; a server that waits for a body never sent hits it.
ANSWER_BOUND_S = 20.0


@dataclass(frozen=True)
class Edge:
    """A NetWatch served by uvicorn with the edge's settings."""

    port: int
    data_dir: Path

    @property
    def base(self) -> str:
        """Its base URL."""
        return f"http://127.0.0.1:{self.port}"

    def connect(self) -> socket.socket:
        """A fresh TCP connection to it."""
        return socket.create_connection(("127.0.0.1", self.port), timeout=ANSWER_BOUND_S)

    def token(self, scopes: tuple[str, ...] = ("write",)) -> str:
        """A new API token with these scopes."""

        async def create() -> str:
            store = await open_store(None, data_dir=self.data_dir, migrate=False)
            try:
                issued = await store.create_token("edge", scopes, datetime.now(UTC))
                return issued.token
            finally:
                await store.close()

        # On a thread of its own: the caller's may run an event loop (Playwright's sync API).
        with concurrent.futures.ThreadPoolExecutor(1) as pool:
            return pool.submit(asyncio.run, create()).result()


@contextmanager
def serving(
    tmp_path: Path, inventory: Inventory, options: EdgeOptions, http: str = "httptools"
) -> Iterator[Edge]:
    """NetWatch (probing off) under uvicorn configured by netwatch.web.edge.server_config."""
    data_dir = tmp_path / "data"
    data_dir.mkdir(exist_ok=True)
    app = netwatch_app(tmp_path, inventory, data_dir)
    sock = listening_socket()
    server = uvicorn.Server(server_config(app, options, http=http, log_level="warning"))
    thread = threading.Thread(target=server.run, kwargs={"sockets": [sock]}, daemon=True)
    thread.start()
    try:
        wait_until(lambda: server.started or not thread.is_alive(), 30, 0.05, "uvicorn serving")
        assert server.started, "uvicorn did not start"
        yield Edge(sock.getsockname()[1], data_dir)
    finally:
        server.should_exit = True
        thread.join(timeout=30)
        sock.close()
        assert not thread.is_alive(), "NetWatch did not shut down"
