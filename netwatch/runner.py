"""`netwatch run`: the long-running service."""

from __future__ import annotations

import argparse


def register(sub: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    """Add the `run` subcommand."""
    run = sub.add_parser("run", help="run NetWatch: probes, metrics, API and status page")
    run.add_argument("--config", required=True, help="config file or folder")
    run.add_argument("--listen", default="127.0.0.1:8080", help="address:port of the web server")
    run.add_argument("--data-dir", default="data", help="where the embedded database lives")
    run.set_defaults(handler=_run)


def _run(args: argparse.Namespace) -> int:
    raise SystemExit("netwatch run: not built yet")
