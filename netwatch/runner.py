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
    add_role_arguments(run)
    run.set_defaults(handler=_run)


def add_role_arguments(run: argparse.ArgumentParser) -> None:
    """--role and what a role takes (issue 10; docs/bus.md). Without --role, `run` is as it was."""
    roles = run.add_argument_group("process roles (docs/bus.md)")
    roles.add_argument("--role", choices=["probe"], help="run one role of a split NetWatch")
    roles.add_argument("--nats", help="bus server URL(s), comma-separated (nats://host:4222)")
    roles.add_argument("--shard", default="0/1", help="probe role: this worker's shard I/N")
    roles.add_argument(
        "--kinds",
        default="icmp,http",
        help="probe role: icmp,http | snmp | all (default icmp,http)",
    )
    roles.add_argument(
        "--metrics-listen", help="probe role: ADDRESS:PORT of its own /metrics (default: none)"
    )


def run_role(args: argparse.Namespace) -> int:
    """Start the role `args.role`; 2 with a message for a bad role argument."""
    from netwatch.roles import probe

    try:
        if not args.nats:
            raise ValueError(f"--role {args.role} needs --nats URL")
        shard, shards = probe.parse_shard(args.shard)
        kinds = probe.parse_kinds(args.kinds)
        listen = probe.parse_listen(args.metrics_listen) if args.metrics_listen else None
    except ValueError as exc:
        print(f"netwatch run: {exc}", file=sys.stderr)
        return 2
    options = probe.ProbeOptions(
        nats=tuple(u.strip() for u in args.nats.split(",") if u.strip()),
        shard=shard,
        shards=shards,
        kinds=kinds,
        metrics_listen=listen,
    )
    return probe.run(args.config, options)


def _run(args: argparse.Namespace) -> int:
    logging.basicConfig(
        level=args.log_level.upper(), format="%(asctime)s %(levelname)s %(name)s %(message)s"
    )
    if args.role is not None:
        return run_role(args)
    import uvicorn

    from netwatch.web.app import create_app

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
