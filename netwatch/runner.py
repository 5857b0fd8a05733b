"""`netwatch run`: the long-running service."""

from __future__ import annotations

import argparse
import logging
import sys
from pathlib import Path

from netwatch.cli import add_store_arguments
from netwatch.inventory import ConfigError


def register(sub: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    """Add the `run` subcommand."""
    run = sub.add_parser("run", help="run NetWatch: probes, metrics, API and status page")
    run.add_argument("--config", required=True, help="config file or folder")
    run.add_argument("--listen", default="127.0.0.1:8080", help="address:port of the web server")
    run.add_argument("--log-level", default="info", choices=["debug", "info", "warning", "error"])
    add_store_arguments(run)
    run.set_defaults(handler=_run)


def _run(args: argparse.Namespace) -> int:
    import uvicorn

    from netwatch.web.app import create_app

    logging.basicConfig(
        level=args.log_level.upper(), format="%(asctime)s %(levelname)s %(name)s %(message)s"
    )
    host, _, port = args.listen.rpartition(":")
    if not host or not port.isdigit():
        print(f"netwatch run: --listen wants ADDRESS:PORT, got {args.listen!r}", file=sys.stderr)
        return 2
    try:
        app = create_app(
            args.config, data_dir=Path(args.data_dir), database_url=args.database_url or None
        )
    except ConfigError as exc:
        print(exc, file=sys.stderr)
        return 1
    uvicorn.run(app, host=host.strip("[]"), port=int(port), log_level=args.log_level)
    return 0
