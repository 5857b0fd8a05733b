"""`netwatch agent-key`: commune agents' credentials (add, revoke, list; docs/agent-centre.md).

``add CODE`` makes the credential of the agent of commune CODE (the commune must have an
``agent:`` section in the inventory) and prints its secret **once** on stdout; the store keeps
only its bcrypt hash. A running core sees the change within seconds (netwatch.inside.hub: the
hub's users are rendered again and nats-server reloaded; a revoked agent's live connection is
closed).
"""

from __future__ import annotations

import argparse
import asyncio
import os
import sys
from pathlib import Path

from netwatch.bus.hub import AGENT_ID
from netwatch.cli import add_store_arguments


def _agent_of(config: str, code: str) -> tuple[str, str] | str:
    """(commune code, agent id) from the inventory, or the reason there is none."""
    from netwatch.inventory import ConfigError, load_inventory

    try:
        inventory = load_inventory(Path(config), environ=os.environ)
    except ConfigError as exc:
        return str(exc)
    commune = inventory.commune(code)
    if commune is None:
        return f"no commune {code} in {config}"
    if commune.agent is None or commune.agent_id is None:
        return f"commune {code} {commune.name} has no `agent:` section in {config}"
    return commune.code, commune.agent_id


async def _run(args: argparse.Namespace) -> int:
    from datetime import UTC, datetime

    from netwatch.store import RevokeOutcome, open_store
    from netwatch.store.agents import AgentKeyExistsError

    agent_id = ""
    commune = ""
    if args.verb == "add":
        found = _agent_of(args.config, args.code)
        if isinstance(found, str):
            print(f"netwatch agent-key: {found}", file=sys.stderr)
            return 1
        commune, agent_id = found
        agent_id = args.agent or agent_id
        if not AGENT_ID.match(agent_id):
            print(
                f"netwatch agent-key: agent id {agent_id!r}: letters, digits, - and _ only",
                file=sys.stderr,
            )
            return 2
    store = await open_store(args.database_url or None, data_dir=Path(args.data_dir))
    try:
        now = datetime.now(UTC)
        if args.verb == "add":
            try:
                issued = await store.add_agent_key(agent_id, commune, now)
            except AgentKeyExistsError as exc:
                print(f"netwatch agent-key: {exc}", file=sys.stderr)
                return 1
            print(issued.secret)
            print(
                f"agent {agent_id} of commune {commune}: key created; the secret above is shown "
                "only once (put it in the box's config; a running NetWatch lets it in within "
                "seconds)",
                file=sys.stderr,
            )
            return 0
        if args.verb == "list":
            for key in await store.list_agent_keys():
                state = f"revoked {key.revoked_at:%Y-%m-%d %H:%M}" if key.revoked_at else "active"
                print(
                    f"{key.agent}  commune={key.commune}  "
                    f"created={key.created_at:%Y-%m-%d %H:%M}  {state}"
                )
            return 0
        outcome = await store.revoke_agent_key(args.agent, now)
        if outcome is RevokeOutcome.NOT_FOUND:
            print(f"netwatch agent-key: no key of agent {args.agent!r}", file=sys.stderr)
            return 1
        done = "revoked" if outcome is RevokeOutcome.DONE else "was revoked"
        print(f"agent {args.agent} {done}; a running NetWatch refuses it within seconds")
        return 0
    finally:
        await store.close()


def _agent_key(args: argparse.Namespace) -> int:
    return asyncio.run(_run(args))


def register(sub: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    """Add `netwatch agent-key` to the command line."""
    key = sub.add_parser("agent-key", help="commune agents' credentials (secrets stored hashed)")
    key.set_defaults(handler=_agent_key)
    commands = key.add_subparsers(dest="verb", required=True, metavar="ACTION")
    add = commands.add_parser("add", help="make an agent's key and print its secret once")
    add.add_argument("code", help="the commune's official code; it must have an `agent:`")
    add.add_argument("--config", required=True, help="the inventory (file or folder)")
    add.add_argument("--agent", help="the agent's id (default: the inventory's, CODE-agent)")
    commands.add_parser("list", help="list agents' keys (never the secrets)")
    revoke = commands.add_parser("revoke", help="refuse an agent from now on")
    revoke.add_argument("agent", help="the agent's id, as `list` shows it")
    for command in commands.choices.values():
        add_store_arguments(command)
