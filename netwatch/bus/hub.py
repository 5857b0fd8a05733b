"""The hub's door for commune agents: nats-server users rendered from the agents' credentials.

With ``netwatch run --agent-listen HOST:PORT`` the private nats-server opens a **leafnode**
listener: every agent box runs its own nats-server as a leaf node of this one
(docs/agent-centre.md). nats-server's ``leafnodes { authorization { users } }`` takes no
permissions, so agents are ordinary users of the server's ``authorization`` block that may only
connect as leaf nodes (``allowed_connection_types``), each with its own permissions:

* publish only ``nw.agent.v1.<its commune>.>`` (rounds, heartbeats, config requests);
* receive only ``_INBOX_<its commune>.>`` (PubAcks and config answers: the box's client uses
  that inbox prefix).

For a leafnode user these permissions read as for a client: publish is what the leaf may send
into the hub, subscribe what the hub sends down to it (tests/agent/test_centre_hub.py proves
it both ways with a real leaf; swapped, every message of the agent is refused).

Since a server cannot take a token and users at once, NetWatch's own processes then connect as
user ``netwatch`` with the run's token as password (``NETWATCH_NATS_USER``, netwatch.bus.auth),
only as clients; and a system account's user ``sys`` (same token) lets the core follow the
server's connect / disconnect / authentication-error advisories and close a revoked agent's
live connection (a reload does not re-check leafnode connections: measured).
"""

from __future__ import annotations

import json
import os
import re
from collections.abc import Iterable
from dataclasses import dataclass
from pathlib import Path
from typing import Final

__all__ = [
    "AGENT_HUB_ENV",
    "AGENT_ID",
    "NETWATCH_USER",
    "SYSTEM_ACCOUNT",
    "SYSTEM_USER",
    "USERS_FILE",
    "AgentUser",
    "inbox_prefix",
    "render_users",
    "write_users",
]

AGENT_HUB_ENV: Final = "NETWATCH_AGENT_HUB"
"""Set by the supervisor for the core when the hub listens for agents (``--agent-listen``): the
nats-server's directory (its users file, pid file); the core keeps the agents' users there."""
NETWATCH_USER: Final = "netwatch"
SYSTEM_USER: Final = "sys"
SYSTEM_ACCOUNT: Final = "SYS"
USERS_FILE: Final = "agents.conf"  # in the server's directory, included by its configuration

AGENT_ID: Final = re.compile(r"^[A-Za-z0-9][A-Za-z0-9_-]{0,63}$")
_COMMUNE: Final = re.compile(r"^[0-9]{1,16}$")
_BCRYPT: Final = re.compile(r"^\$2[aby]\$[0-9]{2}\$[./A-Za-z0-9]{53}$")


@dataclass(frozen=True, slots=True)
class AgentUser:
    """One agent as the hub knows it: who, for which commune, its secret's bcrypt hash."""

    agent: str
    commune: str
    secret_bcrypt: str

    def problem(self) -> str | None:
        """Why this user cannot be written into the server's configuration (None: it can)."""
        if not AGENT_ID.match(self.agent):
            return f"agent id {self.agent!r} is not [A-Za-z0-9_-]"
        if not _COMMUNE.match(self.commune):
            return f"commune {self.commune!r} is not a code"
        if not _BCRYPT.match(self.secret_bcrypt):
            return "the secret's hash is not bcrypt"
        return None


def inbox_prefix(commune: str) -> str:
    """The inbox prefix an agent's client uses: the only subjects it receives."""
    return f"_INBOX_{commune}"


def _q(value: str) -> str:
    return json.dumps(value)


def render_users(token: str, agents: Iterable[AgentUser]) -> str:
    """The ``users = [...]`` the server's authorization includes: NetWatch's own client user,
    then one leafnode-only user per agent (agents with a problem are left out)."""
    lines = [
        "# Written by NetWatch (netwatch/bus/hub.py) from the agents' credentials: edits are lost.",
        "users = [",
        f"  {{user: {_q(NETWATCH_USER)}, password: {_q(token)},"
        ' allowed_connection_types: ["STANDARD"]}',
    ]
    for a in sorted(agents, key=lambda a: a.agent):
        if a.problem() is not None:
            continue
        lines.append(
            f"  {{user: {_q(a.agent)}, password: {_q(a.secret_bcrypt)},"
            ' allowed_connection_types: ["LEAFNODE"],'
            f" permissions: {{publish: {{allow: [{_q(f'nw.agent.v1.{a.commune}.>')}]}},"
            f" subscribe: {{allow: [{_q(inbox_prefix(a.commune) + '.>')}]}}}}}}"
        )
    lines += ["]", ""]
    return "\n".join(lines)


def write_users(path: Path, text: str) -> bool:
    """Write the users file atomically (mode 0600: it holds the token); False when it already
    says exactly that."""
    try:
        if path.read_text(encoding="utf-8") == text:
            return False
    except OSError:
        pass
    tmp = path.with_name(path.name + ".tmp")
    fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    with os.fdopen(fd, "w", encoding="utf-8") as out:
        out.write(text)
    os.replace(tmp, path)
    return True
