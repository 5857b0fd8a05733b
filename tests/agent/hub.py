"""A real centre-side nats-server for the agent box's tests: a leafnode listener with one user
per agent (user = agent id, password = bcrypt hash of the secret, permissions limited to the
agent's commune, design of issue 11) and the stream AGENTS. Restartable on the same ports and
store, so a test can take the centre away and bring it back."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path

import bcrypt

from netwatch.bus.server import find_nats_server
from tests.servers import reserved_port

AGENTS_STREAM = "AGENTS"
CENTRE_USER = '      { user: "centre", password: "centre" }'  # the test's own client


@dataclass(frozen=True)
class AgentUser:
    agent: str
    commune: str
    secret: str


def _user(u: AgentUser, swap: bool) -> str:
    hashed = bcrypt.hashpw(u.secret.encode(), bcrypt.gensalt(rounds=4)).decode()
    mine = json.dumps(f"nw.agent.v1.{u.commune}.>")
    inbox = json.dumps(f"_INBOX_{u.commune}.>")
    pub, sub = (inbox, mine) if swap else (mine, inbox)
    return (
        f"      {{ user: {json.dumps(u.agent)}, password: {json.dumps(hashed)},"
        f" permissions: {{ publish: {{ allow: [{pub}] }}, subscribe: {{ allow: [{sub}] }} }} }}"
    )


@dataclass
class Hub:
    """The test's centre; start()/stop() as often as the test likes."""

    root: Path
    users: list[AgentUser]
    swap_permissions: bool = False  # the wrong direction, to prove the test would notice
    tls: tuple[Path, Path] | None = None  # the leafnode listener's certificate and key
    tls_first: bool = False  # TLS before INFO, as behind a TLS-terminating proxy
    client_port: int = field(default_factory=reserved_port)
    leaf_port: int = field(default_factory=reserved_port)
    proc: subprocess.Popen[bytes] | None = None

    @property
    def url(self) -> str:
        """The centre's own client URL (full rights)."""
        return f"nats://centre:centre@127.0.0.1:{self.client_port}"

    @property
    def leaf_url(self) -> str:
        scheme = "tls" if self.tls else "nats-leaf"
        return f"{scheme}://127.0.0.1:{self.leaf_port}"

    def config(self) -> str:
        d = self.root
        tls = (
            f"tls {{ cert_file: {json.dumps(str(self.tls[0]))},"
            f" key_file: {json.dumps(str(self.tls[1]))}"
            f"{', handshake_first: true' if self.tls_first else ''} }}"
            if self.tls
            else ""
        )
        users = ",\n".join([CENTRE_USER] + [_user(u, self.swap_permissions) for u in self.users])
        return f"""
server_name: "hub"
listen: "127.0.0.1:{self.client_port}"
http: "127.0.0.1:-1"
ports_file_dir: {json.dumps(str(d))}
log_file: {json.dumps(str(d / "hub.log"))}
debug: false
jetstream {{ store_dir: {json.dumps(str(d))} }}
authorization {{
  users: [
{users}
  ]
}}
leafnodes {{
  listen: "127.0.0.1:{self.leaf_port}"
  {tls}
}}
"""

    def start(self) -> None:
        assert self.proc is None
        self.root.mkdir(parents=True, exist_ok=True)
        conf = self.root / "hub.conf"
        conf.write_text(self.config())
        self.proc = subprocess.Popen(
            [str(find_nats_server()), "-c", str(conf)],
            stdin=subprocess.DEVNULL,
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
        )
        ports = self.root / f"nats-server_{self.proc.pid}.ports"
        deadline = time.monotonic() + 20
        while not ports.exists():
            assert self.proc.poll() is None, (self.root / "hub.log").read_text()
            assert time.monotonic() < deadline, "hub did not start"
            time.sleep(0.02)

    def stop(self) -> None:
        if self.proc is None:
            return
        self.proc.send_signal(signal.SIGTERM)
        try:
            self.proc.wait(10)
        except subprocess.TimeoutExpired:
            self.proc.kill()
            self.proc.wait()
        self.proc = None

    def log(self) -> str:
        try:
            return (self.root / "hub.log").read_text()
        except OSError:
            return ""


@contextmanager
def running_hub(root: Path, users: list[AgentUser], **kwargs: object) -> Iterator[Hub]:
    hub = Hub(root, users, **kwargs)  # type: ignore[arg-type]
    hub.start()
    try:
        yield hub
    finally:
        hub.stop()
        assert hub.proc is None
        os.sync()
