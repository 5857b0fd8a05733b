"""`netwatch run`: the long-running service.

Without `--role`, the supervisor (netwatch.roles.supervisor): a private nats-server, the probe
workers, the alerting core and the web workers, each a child process. `--role all` is the
single process of before (probes, alerting and web on one event loop: small setups and tests);
`--role core` is one alerting core, `--role web` one web worker (a read replica serving the
pages), `--role probe` one probe worker, on a bus given with `--nats` (docs/architecture.md).
"""

from __future__ import annotations

import argparse
import logging
import os
import signal
import sys
from collections.abc import Callable
from pathlib import Path

from netwatch.cli import add_store_arguments
from netwatch.web.edgeargs import add_edge_arguments


def register(sub: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    """Add the `run` subcommand."""
    run = sub.add_parser("run", help="run NetWatch: probes, metrics, API and status page")
    run.add_argument("--config", required=True, help="config file or folder")
    run.add_argument("--listen", default="127.0.0.1:8080", help="address:port of the web server")
    run.add_argument("--log-level", default="info", choices=["debug", "info", "warning", "error"])
    run.add_argument(
        "--role",
        choices=sorted(ROLES),
        help="run one part only (default: supervise them all on this machine)",
    )
    run.add_argument("--nats", help="NATS server URL(s), comma-separated (with --role)")
    run.add_argument(
        "--bus-replicas",
        type=_replicas,
        default=os.environ.get("NETWATCH_BUS_REPLICAS") or None,
        help="with --role: copies of the stream and buckets, set at start (3 on a 3-node NATS "
        "cluster; default $NETWATCH_BUS_REPLICAS, else as they are, 1 when created)",
    )
    add_store_arguments(run)
    add_edge_arguments(run)
    _add_core_arguments(run)
    _add_probe_arguments(run)
    _add_supervisor_arguments(run)
    run.set_defaults(handler=_run)


def _replicas(text: str) -> int:
    value = int(text)
    if not 1 <= value <= 5:  # JetStream's own bounds
        raise argparse.ArgumentTypeError(f"replicas go from 1 to 5, got {value}")
    return value


def _port(text: str) -> int:
    value = int(text)
    if not 0 <= value <= 65535:
        raise argparse.ArgumentTypeError(f"a port goes from 0 to 65535, got {value}")
    return value


def _add_probe_arguments(run: argparse.ArgumentParser) -> None:
    probe = run.add_argument_group("--role probe (docs/bus.md)")
    probe.add_argument("--shard", default="0/1", help="this worker's shard I/N")
    probe.add_argument(
        "--kinds", default="icmp,http", help="icmp,http | snmp | all (default icmp,http)"
    )
    probe.add_argument("--metrics-listen", help="ADDRESS:PORT of its own /metrics (default: none)")


def _add_core_arguments(run: argparse.ArgumentParser) -> None:
    run.add_argument(
        "--name",
        help="--role core: this core's name, stable across its restarts (its bus consumer and "
        "lease holder; default: HOST-PORT of --listen); --role web: its consumer's name",
    )
    run.add_argument(
        "--core-url",
        help="--role web: http://ADDRESS:PORT of an alerting core; /metrics and /healthz/leader "
        "are then the core's (default: the web worker's own)",
    )


def _add_supervisor_arguments(run: argparse.ArgumentParser) -> None:
    run.add_argument(
        "--probe-workers",
        type=int,
        default=os.cpu_count() or 1,
        help="supervisor: ICMP+HTTP probe worker processes (default: one per CPU; 0: none)",
    )
    run.add_argument(
        "--snmp-workers",
        type=int,
        default=1,
        help="supervisor: SNMP probe worker processes (default: 1; 0: none)",
    )
    run.add_argument(
        "--metrics-port-base",
        type=_port,
        default=9101,
        help="supervisor: probe-I serves its /metrics on the --listen address at this port + I, "
        "snmp-J at this port + --probe-workers + J (default: 9101; 0: none)",
    )
    run.add_argument(
        "--web-workers",
        type=int,
        default=default_web_workers(),
        help="supervisor: web worker processes sharing --listen (default: 2 on 2+ CPUs, else 1; "
        "0: the core serves the web on --listen, as before)",
    )
    run.add_argument(
        "--core-listen",
        help="supervisor: ADDRESS:PORT of the alerting core's own web (/metrics, "
        "/healthz/leader, the API; default: a free loopback port)",
    )
    run.add_argument(
        "--agent-listen",
        help="supervisor: HOST:PORT of the hub's leafnode listener for commune agents "
        "(docs/agent-centre.md; default: none, no agent can connect)",
    )
    # The supervisor binds the core's port itself and hands the listening socket down: the port
    # cannot be taken by anyone else between runs, and a restarted core serves the same one.
    run.add_argument("--listen-fd", type=int, help=argparse.SUPPRESS)


def default_web_workers() -> int:
    """Two web workers on a machine with two CPUs or more, else one."""
    return 2 if (os.cpu_count() or 1) >= 2 else 1


def _logging(args: argparse.Namespace) -> None:
    logging.basicConfig(
        level=args.log_level.upper(), format="%(asctime)s %(levelname)s %(name)s %(message)s"
    )


def _run(args: argparse.Namespace) -> int:
    host, _, port = args.listen.rpartition(":")
    if not host or not port.isdigit():
        print(f"netwatch run: --listen wants ADDRESS:PORT, got {args.listen!r}", file=sys.stderr)
        return 2
    args.listen_host, args.listen_port = host.strip("[]"), int(port)
    _logging(args)
    # SIGHUP reloads the configuration once NetWatch runs (each role installs its handler);
    # until then it is ignored rather than fatal: a reload passed on by the supervisor, or a
    # `systemctl reload`, during start-up must not kill the process.
    signal.signal(signal.SIGHUP, signal.SIG_IGN)
    role = ROLES[args.role] if args.role else _run_supervisor
    return role(args)


def _run_all(args: argparse.Namespace) -> int:
    """`--role all`: everything in this one process, probing with its own engine."""
    import uvicorn

    from netwatch.inventory import ConfigError
    from netwatch.web.app import create_app
    from netwatch.web.edge import edge_options, server_config
    from netwatch.web.reload import enable_reload

    try:
        app = create_app(
            args.config, data_dir=Path(args.data_dir), database_url=args.database_url or None
        )
    except ConfigError as exc:
        print(exc, file=sys.stderr)
        return 1
    enable_reload(app, args.config, sighup=True)  # SIGHUP and POST /api/v1/config/reload
    config = server_config(
        app,
        edge_options(args),
        host=args.listen_host,
        port=args.listen_port,
        log_level=args.log_level,
    )
    server = uvicorn.Server(config)
    server.run()
    return 0 if server.started else 1


def _run_probe(args: argparse.Namespace) -> int:
    """`--role probe`: one probe worker; 2 with a message for a bad role argument."""
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
        bus_replicas=args.bus_replicas,
    )
    return probe.run(args.config, options)


def _run_core(args: argparse.Namespace) -> int:
    from netwatch.roles.core import run_core

    return run_core(args)


def _run_web(args: argparse.Namespace) -> int:
    from netwatch.roles.web import run_web

    return run_web(args)


def _run_supervisor(args: argparse.Namespace) -> int:
    from netwatch.roles.supervisor import run_supervisor

    return run_supervisor(args)


ROLES: dict[str, Callable[[argparse.Namespace], int]] = {
    "all": _run_all,
    "core": _run_core,
    "probe": _run_probe,
    "web": _run_web,
}
