"""The box's own nats-server: a leaf node of the centre's, with JetStream holding the buffer.

The agent's Python process talks only to this server, on loopback. The server keeps the rounds
on disk (stream AGENT_BUFFER, JetStream domain ``agent``, under ``<data_dir>/nats``) and holds
the one outbound connection to the centre: a leafnode remote with the agent's id and secret,
tried on each of the centre's URLs in turn and re-dialled for as long as it takes. Nothing on
the box listens beyond loopback.

* The configuration (``<data_dir>/nats/nats-server.conf``, mode 0600: it holds the secret and
  the local clients' token) is rewritten at every start.
* Client and monitor ports are picked by the server (``-1``) and read back from its ports file;
  ready means ``/healthz`` answers 200 (JetStream is up).
* Stopping is SIGTERM, SIGKILL after a timeout. The child gets SIGTERM from the kernel if the
  agent dies (``PR_SET_PDEATHSIG``), so a killed agent leaves nothing running; the child runs
  in a session of its own so that a Ctrl-C reaches the agent, which then stops it in order.

The same approach as the centre's embedded server (netwatch/bus/server.py), written apart so
that the box does not depend on the centre's server options.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import logging
import os
import secrets
from collections.abc import AsyncIterator
from dataclasses import dataclass
from pathlib import Path
from typing import Final
from urllib.parse import quote, urlsplit, urlunsplit

from netwatch.agent.settings import AgentSettings
from netwatch.bus.server import find_nats_server, spawned_nats_server

__all__ = ["JS_DOMAIN", "LeafServer", "render_leaf_config", "running_leaf"]

log = logging.getLogger("netwatch.agent.leaf")

JS_DOMAIN: Final = "agent"
_START_TIMEOUT_S: Final = 30.0
_STOP_TIMEOUT_S: Final = 10.0
_MEMORY_STORE: Final = 8 * 1024 * 1024
_STORE_MARGIN: Final = 64 * 1024 * 1024  # JetStream's own files beside the buffer


@dataclass(frozen=True, slots=True)
class LeafServer:
    """The running leaf: how the agent reaches it."""

    url: str  # nats://127.0.0.1:PORT
    token: str  # local clients present it
    monitor_url: str
    pid: int
    nats_dir: Path
    process: asyncio.subprocess.Process

    async def exited(self) -> int:
        """Wait until the server exits on its own: the agent must not run on without it."""
        return await self.process.wait()


def _quote(value: str | Path) -> str:
    return json.dumps(str(value))


def _with_credentials(url: str, user: str, password: str) -> str:
    parts = urlsplit(url)
    netloc = f"{quote(user, safe='')}:{quote(password, safe='')}@{parts.hostname}:{parts.port}"
    return urlunsplit((parts.scheme, netloc, "", "", ""))


def render_leaf_config(settings: AgentSettings, nats_dir: Path, token: str) -> str:
    """The leaf server's configuration for these settings."""
    urls = ", ".join(
        _quote(_with_credentials(u, settings.agent, settings.secret)) for u in settings.centre
    )
    tls_options = [
        *([f"ca_file: {_quote(settings.ca_file)}"] if settings.ca_file else []),
        *(["handshake_first: true"] if settings.tls_handshake_first else []),
    ]
    tls = [f"      tls {{ {', '.join(tls_options)} }}"] if tls_options else []
    return "\n".join(
        [
            "# Written by netwatch/agent/leaf.py at every start: edits are lost.",
            f"server_name: {_quote('nwa-' + settings.agent)}",
            'listen: "127.0.0.1:-1"',
            'http: "127.0.0.1:-1"',
            f"ports_file_dir: {_quote(nats_dir)}",
            f"log_file: {_quote(nats_dir / 'nats-server.log')}",
            "logfile_size_limit: 5MB",
            "logfile_max_num: 3",
            f"authorization {{ token: {_quote(token)} }}",
            "jetstream {",
            f"  store_dir: {_quote(nats_dir)}",
            f"  domain: {JS_DOMAIN}",
            f"  max_file_store: {settings.buffer_max_bytes + _STORE_MARGIN}",
            f"  max_memory_store: {_MEMORY_STORE}",
            # fsync every write: a power cut (the commune's usual outage) must not take the
            # last minutes of rounds with it; one round per interval makes this cheap.
            "  sync_interval: always",
            "}",
            "leafnodes {",
            "  remotes: [",
            "    {",
            f"      urls: [{urls}]",
            *tls,
            "    }",
            "  ]",
            "}",
            "",
        ]
    )


@contextlib.asynccontextmanager
async def running_leaf(settings: AgentSettings) -> AsyncIterator[LeafServer]:
    """Start the leaf server, yield once its JetStream is ready, stop it on exit."""
    binary = settings.nats_server or find_nats_server()
    nats_dir = settings.data_dir / "nats"
    nats_dir.mkdir(parents=True, exist_ok=True, mode=0o700)
    token = secrets.token_urlsafe(24)
    env = dict(os.environ)
    env.setdefault("GOMEMLIMIT", "40MiB")  # a small box: the Go heap collects before it grows
    async with spawned_nats_server(
        binary,
        nats_dir,
        render_leaf_config(settings, nats_dir, token),
        start_timeout_s=_START_TIMEOUT_S,
        stop_timeout_s=_STOP_TIMEOUT_S,
        env=env,
        what="leaf nats-server",
    ) as spawned:
        server = LeafServer(
            spawned.url, token, spawned.monitor_url, spawned.proc.pid, nats_dir, spawned.proc
        )
        log.info("leaf nats-server ready url=%s pid=%d", server.url, server.pid)
        yield server
