"""`netwatch agent --config FILE`: the commune box's process (docs/agent.md).

Registered by netwatch.cli; `netwatch agent ...` builds a parser of this command alone, so the
box's process never imports the centre's commands (their modules cost RSS, issue 10).
"""

from __future__ import annotations

import argparse
import asyncio
import logging
import sys
from collections.abc import Callable, Coroutine
from pathlib import Path
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from netwatch.agent.settings import AgentSettings


def register(sub: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    """Add `netwatch agent` to the command line."""
    agent = sub.add_parser(
        "agent",
        help="run the commune agent on the commune box (measures inside, buffers, forwards)",
    )
    agent.add_argument(
        "--config",
        type=Path,
        default=Path("/etc/netwatch-agent/agent.toml"),
        help="the agent's settings (TOML; default: /etc/netwatch-agent/agent.toml)",
    )
    agent.add_argument("--check", action="store_true", help="check the settings file and exit")
    agent.set_defaults(handler=run)


def load_runtime() -> Callable[[AgentSettings], Coroutine[None, None, None]]:
    """Import the agent's runtime the light way and return ``run_agent``.

    netwatch.bus comes first: it imports nats-py with aiohttp hidden (nats imports it only for
    WebSocket URLs, which the box never uses), ~11 MB less RSS (tests/agent/test_box_cli.py).
    """
    import netwatch.bus  # noqa: F401
    from netwatch.agent.box import run_agent

    return run_agent


def run(args: argparse.Namespace) -> int:
    """Check the settings, then run the agent until SIGTERM or Ctrl-C."""
    from netwatch.agent.settings import SettingsError, load_settings

    try:
        settings = load_settings(args.config)
    except SettingsError as exc:
        print(f"netwatch agent: {exc}", file=sys.stderr)
        return 2
    if args.check:
        print(
            f"{args.config}: OK (commune {settings.commune}, agent {settings.agent},"
            f" centre {', '.join(settings.centre)}, data in {settings.data_dir})"
        )
        return 0
    logging.basicConfig(
        level=settings.log_level.upper(),
        format="%(asctime)s %(levelname)s %(name)s %(message)s",
        stream=sys.stderr,
    )
    run_agent = load_runtime()
    from netwatch.agent.box import AgentBusyError
    from netwatch.bus.server import NatsServerError

    # Not asyncio.run: on the way out it waits for every task to finish cancelling, and a
    # measurement that ignores cancellation would keep the agent from stopping. The box's own
    # nats-server is stopped by run_agent before it returns; what is left is dropped.
    loop = asyncio.new_event_loop()
    try:
        loop.run_until_complete(run_agent(settings))
    except AgentBusyError as exc:
        logging.getLogger("netwatch.agent").error("%s", exc)
        return 1
    except NatsServerError as exc:
        logging.getLogger("netwatch.agent").error("the box's nats-server failed: %s", exc)
        return 1
    except ImportError as exc:
        logging.getLogger("netwatch.agent").error("cannot load the measurement: %s", exc)
        return 1
    finally:
        loop.close()
    return 0
