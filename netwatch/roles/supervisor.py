"""`netwatch run --config X` (no `--role`): every NetWatch process on this machine, supervised.

1. A private nats-server (netwatch.bus.server: JetStream under ``<data-dir>/nats``, loopback,
   ports chosen by the server), then the stream and buckets (idempotent).
2. Children, each this same Python running ``-m netwatch.cli run --role ...`` (`child_specs`):
   ICMP+HTTP probe workers (``--kinds icmp,http --shard i/N``, N = ``--probe-workers``, one per
   CPU by default), SNMP workers (``--kinds snmp --shard i/M``, M = ``--snmp-workers``, 1), one
   alerting core (its own web on ``--core-listen``, a free loopback port by default, bound by
   the supervisor and inherited by every start of the core) and web
   workers (``--role web``, N = ``--web-workers``, 2 on 2+ CPUs) sharing ``--listen``
   (SO_REUSEPORT). ``--web-workers 0``: the core serves the web on ``--listen``, as before.
   Each probe worker serves its own /metrics on the --listen address, port
   ``--metrics-port-base`` (9101) + i for probe-i and + N + j for snmp-j (0: none);
   docs/dashboards.md, "Scrape targets".
3. A child that exits is started again after a pause that doubles with each quick exit
   (1 s, 2 s, 4 s ... up to 60 s) and falls back to 1 s once a run lasted 30 s; every exit and
   restart is logged with the child's name, pid and status.
4. SIGINT / SIGTERM: every child gets SIGTERM (SIGKILL after 10 s), then the nats-server stops;
   the exit status is 0. Children run in sessions of their own (a Ctrl-C reaches only the
   supervisor, which stops them in order) and ask the kernel for SIGTERM if the supervisor dies
   (``PR_SET_PDEATHSIG``, as the nats-server does): nothing outlives it, even a SIGKILL.
5. A nats-server that dies stops everything too, with status 1 (for systemd's
   ``Restart=on-failure``): its port was its own choice, children could not follow a new one.

The database URL reaches children through ``NETWATCH_DATABASE_URL``, never their command line
(``ps`` shows command lines to every user).
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import logging
import os
import signal
import socket
import subprocess
import sys
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field, replace
from pathlib import Path

from netwatch.bus.auth import TOKEN_ENV, USER_ENV, new_token, write_token
from netwatch.bus.hub import AGENT_HUB_ENV, NETWATCH_USER
from netwatch.bus.server import (
    NatsServerError,
    NatsServerOptions,
    parent_death_signal,
    running_nats_server,
)
from netwatch.bus.setup import ensure_agent_stream, ensure_buckets, ensure_stream

__all__ = ["Backoff", "ChildSpec", "child_specs", "run_supervisor", "supervise"]

log = logging.getLogger("netwatch.roles.supervisor")

STOP_TIMEOUT_S = 10.0  # SIGTERM, then SIGKILL after this long
SUPERVISOR_PID_ENV = "NETWATCH_SUPERVISOR_PID"


@dataclass(frozen=True, slots=True)
class ChildSpec:
    """One supervised process: its name in logs, its command line, extra environment."""

    name: str  # "core", "probe-0", "snmp-0"
    argv: tuple[str, ...]
    env: tuple[tuple[str, str], ...] = ()
    pass_fds: tuple[int, ...] = ()  # descriptors the child inherits (the core's listening socket)


def _netwatch(*args: str) -> tuple[str, ...]:
    """This very NetWatch: the running interpreter, the CLI module (venv or image alike)."""
    return (sys.executable, "-m", "netwatch.cli", *args)


def _worker_metrics(args: argparse.Namespace) -> Callable[[int], tuple[str, ...]]:
    """The probe workers' own /metrics (docs/dashboards.md, "Scrape targets"): the n-th worker
    (ICMP+HTTP ones first, then SNMP ones) on the --listen address, port --metrics-port-base + n;
    none with a base of 0."""
    base: int = args.metrics_port_base
    host = args.listen.rpartition(":")[0]
    if not base:
        return lambda _n: ()
    return lambda n: ("--metrics-listen", f"{host}:{base + n}")


def child_specs(
    args: argparse.Namespace, nats_url: str, core_socket: socket.socket | None = None
) -> list[ChildSpec]:
    """What the supervisor runs for `netwatch run` with these arguments; with web workers, the
    core serves on `core_socket` (`core_listener`, which `supervise` holds), handed down by
    descriptor (without one: --core-listen as given, nothing bound)."""
    config = str(Path(args.config).resolve())
    common = ("--config", config, "--nats", nats_url, "--log-level", args.log_level)
    edge: tuple[str, ...] = ("--trusted-proxies", getattr(args, "trusted_proxies", "127.0.0.1"))
    if getattr(args, "max_connections", None) is not None:
        edge += ("--max-connections", str(args.max_connections))
    env = (("NETWATCH_DATABASE_URL", args.database_url),) if args.database_url else ()
    probe = ("run", "--role", "probe", *common)
    icmp, snmp = args.probe_workers, args.snmp_workers
    metrics = _worker_metrics(args)
    specs = [
        ChildSpec(
            f"probe-{i}",
            _netwatch(*probe, "--kinds", "icmp,http", "--shard", f"{i}/{icmp}", *metrics(i)),
        )
        for i in range(icmp)
    ]
    specs += [
        ChildSpec(
            f"snmp-{i}",
            _netwatch(*probe, "--kinds", "snmp", "--shard", f"{i}/{snmp}", *metrics(icmp + i)),
        )
        for i in range(snmp)
    ]
    web = args.web_workers
    core_listen: str = args.listen
    inherit: tuple[int, ...] = ()
    if web > 0 and core_socket is not None:
        host, port = core_socket.getsockname()[:2]
        core_listen = f"[{host}]:{port}" if ":" in host else f"{host}:{port}"
        inherit = (core_socket.fileno(),)
    elif web > 0:  # what would run, without binding (inspection, tests)
        core_listen = args.core_listen or "127.0.0.1:0"
    core = _netwatch(
        "run", "--role", "core", *common, *edge, "--listen", core_listen,
        "--data-dir", str(args.data_dir),
        *(("--listen-fd", str(inherit[0])) if inherit else ()),
    )  # fmt: skip
    # The core's name (its durable consumer) as before web workers: from the public port, so
    # that a supervisor started again continues from where its core was.
    public_port = args.listen.rpartition(":")[2]
    core += ("--name", args.name or f"{socket.gethostname()}-{public_port}")
    specs.append(ChildSpec("core", core, env, inherit))
    # Web workers: read replicas sharing --listen (SO_REUSEPORT); /metrics and /healthz/leader
    # there are the core's (docs/architecture.md).
    core_host, _, core_port = core_listen.rpartition(":")
    core_url = f"http://{_url_host(core_host)}:{core_port}"
    for i in range(max(web, 0)):
        argv = _netwatch(
            "run", "--role", "web", *common, *edge, "--listen", args.listen, "--name", str(i),
            "--core-url", core_url, "--data-dir", str(args.data_dir),
        )  # fmt: skip
        specs.append(ChildSpec(f"web-{i}", argv, env))
    return specs


def core_listener(args: argparse.Namespace) -> socket.socket:
    """The core's own web port (--core-listen, else a free loopback port), bound and listening
    in the supervisor for its whole run and inherited by every start of the core: nobody else
    can take it between two starts, and a restarted core serves the same port the web workers
    ask (issue 10 found a free port chosen, closed, then bound by the core: a race)."""
    host, _, port = (args.core_listen or "127.0.0.1:0").rpartition(":")
    try:
        sock = socket.create_server((host.strip("[]"), int(port)), backlog=1024)
    except (OSError, ValueError) as exc:
        raise SystemExit(f"netwatch run: --core-listen {args.core_listen!r}: {exc}") from None
    sock.set_inheritable(True)
    return sock


def _url_host(host: str) -> str:
    """A listen address as a URL's host: a wildcard means this machine, IPv6 in brackets."""
    host = host.strip("[]")
    if host in ("", "0.0.0.0"):
        return "127.0.0.1"
    if host == "::":
        return "[::1]"
    return f"[{host}]" if ":" in host else host


@dataclass(slots=True)
class Backoff:
    """Pauses before restarting a child: doubling with each quick exit, reset by a long run."""

    initial_s: float = 1.0
    cap_s: float = 60.0
    stable_s: float = 30.0  # a run this long was a success: the next pause is initial_s again
    _failures: int = 0

    def after_exit(self, ran_s: float) -> float:
        """The pause before the next start, given how long the last run lasted."""
        if ran_s >= self.stable_s:
            self._failures = 0
        self._failures += 1
        return float(min(self.initial_s * 2 ** (self._failures - 1), self.cap_s))


@dataclass(slots=True)
class _Child:
    spec: ChildSpec
    backoff: Backoff
    proc: asyncio.subprocess.Process | None = None
    starts: int = 0
    clock: Callable[[], float] = field(default=time.monotonic)

    async def start(self) -> asyncio.subprocess.Process:
        # The supervisor's pid: a child asked to reload the configuration (the API) asks the
        # supervisor, which checks the file once and passes SIGHUP to every child.
        env = {**os.environ, **dict(self.spec.env), SUPERVISOR_PID_ENV: str(os.getpid())}
        proc = await asyncio.create_subprocess_exec(
            *self.spec.argv,
            stdin=asyncio.subprocess.DEVNULL,
            env=env,
            pass_fds=self.spec.pass_fds,
            preexec_fn=parent_death_signal(),  # dies with the supervisor, even by SIGKILL
            start_new_session=True,  # a terminal's Ctrl-C reaches the supervisor only
        )
        self.proc = proc
        self.starts += 1
        log.info("child started name=%s pid=%d start=%d", self.spec.name, proc.pid, self.starts)
        return proc

    async def keep(self, stop: asyncio.Event) -> None:
        """Run the child until `stop`, starting it again whenever it exits; then stop it."""
        try:
            while not stop.is_set():
                started = self.clock()
                proc = await self.start()
                exited = asyncio.ensure_future(proc.wait())
                stopping = asyncio.ensure_future(stop.wait())
                await asyncio.wait([exited, stopping], return_when=asyncio.FIRST_COMPLETED)
                stopping.cancel()
                if not exited.done():
                    exited.cancel()
                    break
                pause = self.backoff.after_exit(self.clock() - started)
                log.warning(
                    "child exited name=%s pid=%d status=%s ran_s=%.1f; restart in %.1f s",
                    self.spec.name,
                    proc.pid,
                    proc.returncode,
                    self.clock() - started,
                    pause,
                )
                with contextlib.suppress(TimeoutError):
                    await asyncio.wait_for(stop.wait(), pause)
        finally:
            await self.stop()

    async def stop(self) -> None:
        """SIGTERM, then SIGKILL after STOP_TIMEOUT_S; reaped either way."""
        proc = self.proc
        if proc is None or proc.returncode is not None:
            return
        with contextlib.suppress(ProcessLookupError):
            proc.terminate()
        try:
            await asyncio.wait_for(proc.wait(), STOP_TIMEOUT_S)
        except TimeoutError:
            log.warning(
                "child did not stop in time name=%s pid=%d: killed", self.spec.name, proc.pid
            )
            with contextlib.suppress(ProcessLookupError):
                proc.kill()
            await proc.wait()
        log.info(
            "child stopped name=%s pid=%d status=%s", self.spec.name, proc.pid, proc.returncode
        )


async def _prepare_bus(url: str, token: str, *, as_user: bool = False) -> None:
    """The streams and buckets exist before any child publishes or consumes."""
    import nats  # loaded by netwatch.bus already, without aiohttp (see there)

    login = {"user": NETWATCH_USER, "password": token} if as_user else {"token": token}
    nc = await nats.connect(url, allow_reconnect=False, **login)
    try:
        js = nc.jetstream()
        await ensure_stream(js)
        await ensure_agent_stream(js)
        await ensure_buckets(js)
    finally:
        await nc.close()


async def _until_gone(pid: int, every_s: float = 0.5) -> None:
    """Return once process `pid` (our child, reaped by asyncio when it exits) is gone."""
    while True:
        try:
            os.kill(pid, 0)
        except ProcessLookupError:
            return
        await asyncio.sleep(every_s)


async def supervise(
    args: argparse.Namespace,
    specs: Callable[
        [argparse.Namespace, str, socket.socket | None], Sequence[ChildSpec]
    ] = child_specs,
) -> int:
    """Run the bus and the children until SIGINT or SIGTERM (0), or until the nats-server
    dies (1, after stopping the children)."""
    stop = asyncio.Event()
    status = 0
    loop = asyncio.get_running_loop()
    for signum in (signal.SIGINT, signal.SIGTERM):
        loop.add_signal_handler(signum, stop.set)
    children: list[_Child] = []
    reloads: set[asyncio.Task[None]] = set()

    def on_sighup() -> None:
        task = loop.create_task(_reload(args, children), name="netwatch-reload")
        reloads.add(task)
        task.add_done_callback(reloads.discard)

    loop.add_signal_handler(signal.SIGHUP, on_sighup)
    data_dir = Path(args.data_dir)  # absolute (run_supervisor): children share it
    # Held here for the whole run (closed at the end): every start of the core inherits it.
    core_socket = core_listener(args) if args.web_workers > 0 else None
    try:
        # The private bus takes only its children: a token of this run (netwatch.bus.auth).
        token = new_token()
        agent_listen = getattr(args, "agent_listen", None)
        options = NatsServerOptions(data_dir=data_dir, token=token, agent_listen=agent_listen)
        options.nats_dir.mkdir(parents=True, exist_ok=True)
        write_token(options.nats_dir, token)  # before the server: its readers find it ready
        async with running_nats_server(options) as server:
            await _prepare_bus(server.url, token, as_user=agent_listen is not None)
            # With a hub for agents the server takes users: ours is "netwatch" (the token is
            # its password), and the core keeps the agents' users (netwatch.inside.hub).
            login = ((USER_ENV, NETWATCH_USER),) if agent_listen else ()
            hub = ((AGENT_HUB_ENV, str(options.nats_dir)),) if agent_listen else ()
            specs_now = [
                replace(
                    spec,
                    env=(
                        *spec.env,
                        (TOKEN_ENV, token),
                        *login,
                        *(hub if spec.name == "core" else ()),
                    ),
                )
                for spec in specs(args, server.url, core_socket)
            ]
            if agent_listen:
                log.info("agents' leafnode listener url=%s", server.leafnode_url)
            children.extend(_Child(spec, Backoff()) for spec in specs_now)
            log.info(
                "supervisor started nats=%s children=%s",
                server.url,
                ",".join(c.spec.name for c in children),
            )
            keepers = [
                asyncio.create_task(c.keep(stop), name=f"netwatch-child-{c.spec.name}")
                for c in children
            ]
            bus_gone = asyncio.create_task(_until_gone(server.pid))
            stopping = asyncio.create_task(stop.wait())
            await asyncio.wait([bus_gone, stopping], return_when=asyncio.FIRST_COMPLETED)
            if bus_gone.done():
                # Children would wait for a bus that is not coming back (its port was the
                # server's choice): stop, and let whoever started us (systemd) start us again.
                log.error("nats-server exited pid=%d: stopping every child", server.pid)
                status = 1
                stop.set()
            bus_gone.cancel()
            stopping.cancel()
            log.info("supervisor stopping children=%d", len(children))
            await asyncio.gather(*keepers, return_exceptions=True)
    except NatsServerError as exc:
        log.error("the bus did not start: %s", exc)
        return 1
    finally:
        if core_socket is not None:
            core_socket.close()
        for signum in (signal.SIGINT, signal.SIGTERM, signal.SIGHUP):
            loop.remove_signal_handler(signum)
        for task in reloads:
            task.cancel()
    log.info("supervisor stopped status=%d", status)
    return status


async def _reload(args: argparse.Namespace, children: Sequence[_Child]) -> None:
    """SIGHUP: check the file once (in a process of its own, as at start); if it is good, pass
    SIGHUP to every running child, each of which reloads it (docs/configuration.md); if not,
    log every mistake and pass it to the core alone (which refuses it too, for the metric)."""
    check = await asyncio.create_subprocess_exec(
        *_netwatch("check-config", str(args.config)),
        stdout=subprocess.DEVNULL,
        stderr=subprocess.PIPE,
    )
    _, err = await check.communicate()
    if check.returncode != 0:
        lines = err.decode(errors="replace").splitlines()
        log.error(
            "configuration not reloaded, the running one stays file=%s errors=%d",
            args.config,
            max(len(lines) - 1, 1),
        )
        for line in lines[1:] or lines:
            log.error("configuration error %s", line.strip())
        # The core alone is told: it refuses the file too and says so in the metrics
        # Prometheus scrapes (netwatch_config_reload_success 0); no worker is disturbed.
        children = [c for c in children if c.spec.name == "core"]
    good = check.returncode == 0
    told = []
    for child in children:
        proc = child.proc
        if proc is not None and proc.returncode is None:
            with contextlib.suppress(ProcessLookupError):
                proc.send_signal(signal.SIGHUP)
                told.append(child.spec.name)
    log.warning(
        "configuration %s passed on file=%s children=%s",
        "reload" if good else "refusal",
        args.config,
        ",".join(told),
    )


def run_supervisor(args: argparse.Namespace) -> int:
    """`netwatch run` without --role."""
    # A config error is reported once, here, not by every child in a restart loop; checked in
    # a process of its own so that the supervisor never holds a national inventory's memory.
    check = subprocess.run(
        _netwatch("check-config", str(args.config)), capture_output=True, text=True, check=False
    )
    if check.returncode != 0:
        sys.stderr.write(check.stderr)
        return 1
    args.data_dir = str(Path(args.data_dir).resolve())
    return asyncio.run(supervise(args))
