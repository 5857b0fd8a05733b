"""`netwatch run` without --role, the real CLI as a subprocess: the supervisor starts its own
nats-server, the core and two web workers (sharing --listen), restarts a child that dies, backs
off a child that keeps failing, and leaves nothing running when stopped (SIGINT) or killed
(SIGKILL).

The probe workers are left out here (`--probe-workers 0 --snmp-workers 0`): these tests are about
supervision, which is the same for every child (the probe children's end-to-end test is the
lead's, with the probe role merged)."""

from __future__ import annotations

import os
import re
import signal
import socket
import stat
import subprocess
from collections.abc import Iterator
from pathlib import Path

import pytest

from netwatch.roles.supervisor import Backoff
from tests.roles.procs import (
    alive,
    descendants,
    get,
    kill_all,
    netwatch,
    spawned,
    write_config,
)
from tests.servers import reserved_port
from tests.waiting import wait_until

pytestmark = pytest.mark.timeout(180)


def _cmdline(pid: int) -> str:
    try:
        return Path(f"/proc/{pid}/cmdline").read_bytes().replace(b"\0", b" ").decode()
    except OSError:
        return ""


def _core_pid(supervisor: int) -> int | None:
    cores = [p for p in descendants(supervisor) if "--role core" in _cmdline(p)]
    return cores[0] if len(cores) == 1 else None


def _web_pids(supervisor: int) -> dict[str, int]:
    """The web workers by --name (0, 1, ...)."""
    found = {}
    for pid in descendants(supervisor):
        line = _cmdline(pid)
        if "--role web" in line and (name := re.search(r"--name (\S+)", line)):
            found[name.group(1)] = pid
    return found


class Supervised:
    """A running `netwatch run` and everything seen below it."""

    def __init__(self, proc: subprocess.Popen[bytes], base: str, log: Path) -> None:
        self.proc = proc
        self.base = base
        self.log = log
        self.seen: set[int] = set()

    def look(self) -> set[int]:
        now = descendants(self.proc.pid)
        self.seen |= now
        return now

    def text(self) -> str:
        return self.log.read_text(errors="replace")


def _supervisor(tmp_path: Path, port: int) -> list[str]:
    """`netwatch run` on a one-commune config, SQLite, the core and two web workers."""
    config = write_config(tmp_path / "netwatch.yaml")
    return netwatch(
        "run", "--config", str(config), "--listen", f"127.0.0.1:{port}",
        "--data-dir", str(tmp_path / "data"), "--probe-workers", "0", "--snmp-workers", "0",
        "--web-workers", "2",
    )  # fmt: skip


@pytest.fixture
def supervised(tmp_path: Path) -> Iterator[Supervised]:
    port = reserved_port()
    log = tmp_path / "supervisor.log"
    with spawned(_supervisor(tmp_path, port), log, {"NETWATCH_DATABASE_URL": ""}) as proc:
        run = Supervised(proc, f"http://127.0.0.1:{port}", log)
        try:
            yield run
        finally:
            run.look()
            stray = {p for p in run.seen if alive(p)}
            kill_all(stray)  # a failed test's leftovers; the tests assert there are none


def _serving(run: Supervised) -> None:
    wait_until(
        lambda: run.look() and get(run.base, "/healthz")[0] == 200,
        timeout_s=60,
        interval_s=0.2,
        message="the supervised core serving /healthz",
    )


def test_backoff_doubles_to_its_cap_and_resets_after_a_stable_run() -> None:
    backoff = Backoff(initial_s=1.0, cap_s=8.0, stable_s=30.0)
    assert [backoff.after_exit(0.5) for _ in range(5)] == [1.0, 2.0, 4.0, 8.0, 8.0]
    assert backoff.after_exit(31.0) == 1.0  # it ran long enough: a fresh start
    assert backoff.after_exit(2.0) == 2.0


def test_supervisor_serves_restarts_a_killed_child_and_stops_everything(
    supervised: Supervised,
) -> None:
    run = supervised
    _serving(run)
    first = wait_until(lambda: _core_pid(run.proc.pid), message="one core child")
    assert any("nats-server" in _cmdline(p) for p in run.look())
    os.kill(first, signal.SIGKILL)
    second = wait_until(
        lambda: (pid := _core_pid(run.proc.pid)) and pid != first and pid,
        timeout_s=30,
        message="the core started again",
    )
    _serving(run)
    assert re.search(rf"child exited name=core pid={first} status=-9", run.text())
    assert second != first
    # The public port is the web workers'; /metrics there is the core's (one target).
    webs = wait_until(lambda: len(w := _web_pids(run.proc.pid)) == 2 and w, message="2 webs")
    assert second not in webs.values()
    wait_until(
        lambda: "netwatch_core_leader 1.0" in get(run.base, "/metrics")[1],
        timeout_s=30,
        message="the core's /metrics through the web workers' port",
    )
    os.kill(webs["0"], signal.SIGKILL)
    wait_until(
        lambda: (pid := _web_pids(run.proc.pid).get("0")) and pid != webs["0"],
        timeout_s=30,
        message="web worker 0 started again",
    )
    assert re.search(rf"child exited name=web-0 pid={webs['0']} status=-9", run.text())
    _serving(run)

    run.proc.send_signal(signal.SIGINT)
    assert run.proc.wait(timeout=60) == 0
    assert run.seen, "children were seen"
    wait_until(lambda: not [p for p in run.seen if alive(p)], timeout_s=10, message="nothing left")
    assert "supervisor stopped status=0" in run.text()


def _core_port(pid: int) -> int:
    found = re.search(r"--role core .*--listen \S+:(\d+)", _cmdline(pid))
    assert found, _cmdline(pid)
    return int(found.group(1))


def test_the_core_port_is_held_by_the_supervisor_across_core_restarts(
    supervised: Supervised,
) -> None:
    # The supervisor binds the core's port once and hands the socket down: between the core's
    # death and its next start nobody else can bind it, and the new core serves the same port
    # (a free port picked, closed and bound later by the core could be taken meanwhile).
    run = supervised
    _serving(run)
    first = wait_until(lambda: _core_pid(run.proc.pid), message="one core child")
    port = _core_port(first)
    wait_until(
        lambda: get(f"http://127.0.0.1:{port}", "/healthz")[0] == 200,
        timeout_s=30,
        message="the core on its own port",
    )
    run.proc.send_signal(signal.SIGSTOP)  # hold the restart: the gap a racing process would use
    try:
        os.kill(first, signal.SIGKILL)
        wait_until(lambda: not alive(first), timeout_s=10, message="the core gone")
        intruder = socket.socket()
        # EADDRINUSE: the supervisor still holds it.
        with intruder, pytest.raises(OSError, match="Address already in use"):
            intruder.bind(("127.0.0.1", port))
    finally:
        run.proc.send_signal(signal.SIGCONT)
    second = wait_until(
        lambda: (pid := _core_pid(run.proc.pid)) and pid != first and pid,
        timeout_s=30,
        message="the core started again",
    )
    assert _core_port(second) == port
    assert "--listen-fd" in _cmdline(second)
    wait_until(
        lambda: get(f"http://127.0.0.1:{port}", "/healthz")[0] == 200,
        timeout_s=60,
        message="the restarted core on the same port",
    )


def test_the_private_bus_takes_only_the_supervisors_children(
    supervised: Supervised, tmp_path: Path
) -> None:
    # Anyone reaching the bus could forge observations (and tickets to ISPs): the supervisor's
    # nats-server wants this run's token, which the children get in their environment, never
    # on a command line (every local user can read those).
    run = supervised
    _serving(run)  # the core and the web workers connected with the token
    token_file = tmp_path / "data" / "nats" / "token"
    assert stat.S_IMODE(token_file.stat().st_mode) == 0o600
    token = token_file.read_text().strip()
    assert len(token) >= 40
    assert all(token not in _cmdline(pid) for pid in run.look())
    found = re.search(r"nats-server ready url=nats://([\d.]+):(\d+)", run.text())
    assert found, run.text()
    with socket.create_connection((found.group(1), int(found.group(2))), timeout=5) as sock:
        reader = sock.makefile("rb")
        assert reader.readline().startswith(b"INFO ")
        sock.sendall(b'CONNECT {"verbose":false,"pedantic":false}\r\nPING\r\n')
        assert reader.readline().strip() == b"-ERR 'Authorization Violation'"


def test_a_dead_bus_stops_everything_with_status_1(supervised: Supervised) -> None:
    run = supervised
    _serving(run)
    [bus] = [p for p in run.look() if "nats-server" in _cmdline(p)]
    os.kill(bus, signal.SIGKILL)
    assert run.proc.wait(timeout=60) == 1
    wait_until(lambda: not [p for p in run.seen if alive(p)], timeout_s=10, message="nothing left")
    assert "nats-server exited" in run.text()


def test_a_killed_supervisor_takes_its_children_with_it(supervised: Supervised) -> None:
    run = supervised
    _serving(run)
    children = run.look()
    assert len(children) >= 2  # nats-server and the core (and what the core runs)
    run.proc.kill()
    run.proc.wait(timeout=10)
    wait_until(
        lambda: not [p for p in children if alive(p)],
        timeout_s=20,
        message="children gone after the supervisor's SIGKILL",
    )


@pytest.fixture
def taken_port() -> Iterator[int]:
    """A port something else listens on: the web workers cannot bind it."""
    port = reserved_port()
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", port))
        sock.listen()
        yield port


def test_a_child_that_keeps_failing_is_restarted_ever_more_slowly(
    tmp_path: Path, taken_port: int
) -> None:
    log = tmp_path / "supervisor.log"
    with spawned(_supervisor(tmp_path, taken_port), log, {"NETWATCH_DATABASE_URL": ""}) as proc:
        pauses = wait_until(
            lambda: (
                (
                    found := re.findall(
                        r"child exited name=web-0 .* restart in ([\d.]+) s", log.read_text()
                    )
                )
                and len(found) >= 3
                and found
            ),
            timeout_s=90,
            interval_s=0.5,
            message="three failed starts of web worker 0",
        )
        assert [float(p) for p in pauses[:3]] == [1.0, 2.0, 4.0]
        proc.send_signal(signal.SIGTERM)
        assert proc.wait(timeout=60) == 0
