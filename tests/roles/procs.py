"""NetWatch role processes in tests: the real CLI as subprocesses, their HTTP, their process tree."""

from __future__ import annotations

import contextlib
import os
import signal
import subprocess
import sys
import urllib.error
import urllib.request
from collections.abc import Iterator, Sequence
from pathlib import Path

from prometheus_client.parser import text_string_to_metric_families

from tests.processes import stop


def write_config(path: Path, *, links: int = 1, extra: str = "") -> Path:
    """A one-commune inventory whose links answer on loopback (127.0.0.2, .3 ...)."""
    rows = "".join(
        f"      - {{id: {chr(97 + i)}, isp: vnpt, circuit: C{i}, bandwidth_mbps: 10, path: tslcd,"
        f" address: 127.0.0.{2 + i}}}\n"
        for i in range(links)
    )
    path.write_text(
        "isps:\n"
        "  vnpt: {name: VNPT, contacts: [{level: 1, name: NOC, email: noc@vnpt.example}]}\n"
        f"{extra}"
        "communes:\n  - code: 24848\n    links:\n" + rows,
        encoding="utf-8",
    )
    return path


def netwatch(*args: str) -> list[str]:
    """The command line of this checkout's NetWatch (as the supervisor spawns it)."""
    return [sys.executable, "-m", "netwatch.cli", *args]


@contextlib.contextmanager
def spawned(
    argv: Sequence[str], log: Path, env: dict[str, str] | None = None
) -> Iterator[subprocess.Popen[bytes]]:
    """A process writing to `log`; stopped (SIGTERM, then SIGKILL) however the test ends."""
    with log.open("ab") as out:
        proc = subprocess.Popen(
            list(argv), stdout=out, stderr=subprocess.STDOUT, env={**os.environ, **(env or {})}
        )
    try:
        yield proc
    finally:
        stop(proc)


def get(base: str, path: str, token: str | None = None) -> tuple[int, str]:
    """Status and body of a GET (with a bearer token if given); 0 when nothing answers."""
    headers = {"Authorization": f"Bearer {token}"} if token else {}
    try:
        with urllib.request.urlopen(
            urllib.request.Request(base + path, headers=headers), timeout=5
        ) as reply:
            return reply.status, reply.read().decode()
    except urllib.error.HTTPError as refused:
        return refused.code, refused.read().decode()
    except OSError:
        return 0, ""


def read_token(*store: str, env: dict[str, str] | None = None) -> str:
    """A national read token made by `netwatch token create` in the store named by `store`
    (--data-dir DIR or --database-url URL): every /api/v1 route needs one."""
    made = subprocess.run(
        netwatch("token", "create", "tests-reader", "--scope", "read", *store),
        capture_output=True,
        text=True,
        check=True,
        env={**os.environ, **(env or {})},
    )
    return made.stdout.split()[0]


def samples(base: str) -> dict[str, float]:
    """Every sample of /metrics summed over its labels but `kind` (name{kind=...} or name)."""
    status, text = get(base, "/metrics")
    assert status == 200, status
    out: dict[str, float] = {}
    for family in text_string_to_metric_families(text):
        for s in family.samples:
            kind = s.labels.get("kind")
            name = f"{s.name}{{kind={kind}}}" if kind else s.name
            out[name] = out.get(name, 0.0) + s.value
    return out


# When each pid seen by descendants() started (clock ticks since boot): kill_all() kills a pid
# only while it is still that process. The suite forks tens of thousands of processes and pids
# wrap at 32,768 here: a pid seen minutes ago may be another worker's nats-server by now.
_STARTED: dict[int, int] = {}


def _stat(entry: Path) -> tuple[int, int]:
    """(parent pid, start time) from /proc/PID/stat."""
    fields = (entry / "stat").read_text().rsplit(")", 1)[1].split()
    return int(fields[1]), int(fields[19])


def descendants(pid: int) -> set[int]:
    """Every living process below `pid` (by /proc's parent links)."""
    parents: dict[int, int] = {}
    started: dict[int, int] = {}
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit():
            continue
        with contextlib.suppress(OSError, ValueError, IndexError):
            parents[int(entry.name)], started[int(entry.name)] = _stat(entry)
    found: set[int] = set()
    todo = [pid]
    while todo:
        parent = todo.pop()
        for child, ppid in parents.items():
            if ppid == parent and child not in found:
                found.add(child)
                todo.append(child)
    _STARTED.update((child, started[child]) for child in found)
    return found


def alive(pid: int) -> bool:
    """Whether `pid` runs (a zombie counts as gone)."""
    try:
        state = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[0]
    except OSError:
        return False
    return state != "Z"


def kill_all(pids: set[int]) -> None:
    """SIGKILL what is left of `pids` (a failed test's leftovers, as descendants() saw them):
    a pid that is now another process (reused since) is left alone."""
    for pid in pids:
        try:
            _, started = _stat(Path(f"/proc/{pid}"))
        except (OSError, ValueError, IndexError):
            continue  # gone
        if _STARTED.get(pid) != started:
            continue  # not the process that was seen
        with contextlib.suppress(ProcessLookupError):
            os.kill(pid, signal.SIGKILL)
