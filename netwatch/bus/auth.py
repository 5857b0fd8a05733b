"""Who may use the bus: the credentials every NetWatch client presents to nats-server.

A bus that takes anyone's messages lets anyone who reaches it forge observations (and so open
tickets that go to the ISPs) or acknowledge tickets through the command subject. So:

* The supervisor's private server (netwatch.bus.server) requires a **token**, random for each
  run (`new_token`), written to ``<data-dir>/nats/token`` (mode 0600, for operators' tools) and
  given to the children in their environment (``NETWATCH_NATS_TOKEN``), never on a command line
  (``ps`` shows those to every local user).
* On a cluster (distributed mode, docs/architecture.md) the same variable carries the cluster's
  token, or user and password go in the URLs (``nats://user:password@10.0.0.11:4222``), and a
  ``tls://`` URL encrypts the connection, verified against the system's CAs or against
  ``NETWATCH_NATS_CA`` (a CA file) when the nodes use a private CA.
"""

from __future__ import annotations

import os
import secrets
import ssl
from collections.abc import Mapping
from pathlib import Path
from typing import Any

TOKEN_ENV = "NETWATCH_NATS_TOKEN"  # noqa: S105 (the variable's name, not a token)
# Set (to "netwatch") when the server takes users, not a token: the hub with a leafnode listener
# for commune agents (netwatch.bus.hub); the token is then that user's password.
USER_ENV = "NETWATCH_NATS_USER"
CA_ENV = "NETWATCH_NATS_CA"


def new_token() -> str:
    """A fresh bus token (256 bits)."""
    return secrets.token_urlsafe(32)


def write_token(nats_dir: Path, token: str) -> Path:
    """Keep the token beside the server's files, readable by its owner only."""
    path = nats_dir / "token"
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    with os.fdopen(fd, "w", encoding="utf-8") as out:
        out.write(token + "\n")
    os.chmod(path, 0o600)  # also when it existed with wider rights
    return path


def connect_options(environ: Mapping[str, str] | None = None) -> dict[str, Any]:
    """`nats.connect` keyword arguments from the environment: the token, a CA for tls://."""
    env = os.environ if environ is None else environ
    options: dict[str, Any] = {}
    token = env.get(TOKEN_ENV, "").strip()
    user = env.get(USER_ENV, "").strip()
    if token and user:
        options["user"], options["password"] = user, token
    elif token:
        options["token"] = token
    ca = env.get(CA_ENV, "").strip()
    if ca:
        options["tls"] = ssl.create_default_context(cafile=ca)
    return options
