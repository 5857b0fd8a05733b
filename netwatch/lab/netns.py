"""Thin, typed wrappers around iproute2, nftables and process control for the lab."""

from __future__ import annotations

import contextlib
import ctypes
import os
import signal
import subprocess
import threading
import time
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path

# Environment variable put on every process the lab starts, so that `down()` can find them even
# when their namespace was already deleted by a killed run (`ip netns pids` cannot see those).
LAB_MARKER_ENV = "NETWATCH_LAB_ID"

_CLONE_NEWNET = 0x40000000
_CAP_NET_ADMIN = 12
_CAP_SYS_ADMIN = 21
NETNS_RUN_DIR = Path("/run/netns")


class LabError(RuntimeError):
    """The lab could not be built or changed (a command failed or a tool is missing)."""


@dataclass(frozen=True, slots=True)
class CommandResult:
    """Outcome of one external command."""

    argv: tuple[str, ...]
    returncode: int
    stdout: str
    stderr: str

    @property
    def ok(self) -> bool:
        """True when the command exited 0."""
        return self.returncode == 0


def run(
    argv: Sequence[str],
    *,
    input_text: str | None = None,
    check: bool = True,
    timeout_s: float = 60.0,
) -> CommandResult:
    """Run a command, capture its output, and raise LabError on failure when `check`."""
    try:
        proc = subprocess.run(
            list(argv),
            input=input_text,
            capture_output=True,
            text=True,
            timeout=timeout_s,
            check=False,
        )
    except FileNotFoundError as exc:
        raise LabError(f"command not found: {argv[0]} (install the Debian package)") from exc
    except subprocess.TimeoutExpired as exc:
        raise LabError(f"command timed out after {timeout_s} s: {' '.join(argv)}") from exc
    result = CommandResult(tuple(argv), proc.returncode, proc.stdout, proc.stderr)
    if check and not result.ok:
        raise LabError(
            f"command failed ({proc.returncode}): {' '.join(argv)}: {proc.stderr.strip()}"
        )
    return result


def ip_batch(lines: Iterable[str], namespace: str | None = None, *, force: bool = False) -> None:
    """Feed iproute2 commands to one `ip -batch -` process (optionally inside a namespace)."""
    argv = ["ip"]
    if namespace is not None:
        argv += ["-n", namespace]
    if force:
        argv.append("-force")
    argv += ["-batch", "-"]
    text = "\n".join(lines) + "\n"
    run(argv, input_text=text, check=not force)


def ip_batches_parallel(batches: Mapping[str, Sequence[str]], *, timeout_s: float = 60.0) -> None:
    """Run one `ip -n NS -batch -` per namespace, all at once; raise if any fails."""
    procs: list[tuple[str, subprocess.Popen[str]]] = []
    for namespace, lines in batches.items():
        proc = subprocess.Popen(
            ["ip", "-n", namespace, "-batch", "-"],
            stdin=subprocess.PIPE,
            stdout=subprocess.DEVNULL,
            stderr=subprocess.PIPE,
            text=True,
        )
        procs.append((namespace, proc))
        assert proc.stdin is not None
        proc.stdin.write("\n".join(lines) + "\n")
        proc.stdin.close()
    failures: list[str] = []
    for namespace, proc in procs:
        try:
            proc.wait(timeout=timeout_s)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()
        assert proc.stderr is not None
        err = proc.stderr.read()
        proc.stderr.close()
        if proc.returncode != 0:
            failures.append(f"{namespace}: {err.strip()}")
    if failures:
        raise LabError("ip batch failed in " + "; ".join(failures))


def netns_exec(namespace: str, argv: Sequence[str]) -> list[str]:
    """The argv that runs `argv` inside `namespace`."""
    return ["ip", "netns", "exec", namespace, *argv]


def list_namespaces(prefix: str) -> list[str]:
    """Names of the network namespaces whose name starts with `prefix`."""
    result = run(["ip", "netns", "list"], check=False)
    names = [line.split()[0] for line in result.stdout.splitlines() if line.strip()]
    # A killed `ip netns add` can leave a file in /run/netns that `ip netns list` still shows;
    # both are found here so `down()` deletes them.
    if NETNS_RUN_DIR.is_dir():
        names += [p.name for p in NETNS_RUN_DIR.iterdir()]
    return sorted({n for n in names if n.startswith(prefix)})


def pids_in_namespaces(namespaces: Iterable[str]) -> list[int]:
    """Pids whose network namespace is one of these named namespaces (one pass over /proc)."""
    inodes: set[int] = set()
    for name in namespaces:
        try:
            inodes.add(os.stat(NETNS_RUN_DIR / name).st_ino)
        except OSError:
            continue
    if not inodes:
        return []
    found: list[int] = []
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit():
            continue
        try:
            if os.stat(entry / "ns" / "net").st_ino in inodes:
                found.append(int(entry.name))
        except OSError:
            continue
    return found


def marked_pids(marker_value: str) -> list[int]:
    """Process ids whose environment carries the lab marker with this value."""
    needle = f"{LAB_MARKER_ENV}={marker_value}".encode() + b"\0"
    own = os.getpid()
    found: list[int] = []
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit() or int(entry.name) == own:
            continue
        try:
            environ = (entry / "environ").read_bytes()
        except OSError:
            continue
        if needle in environ:
            found.append(int(entry.name))
    return found


def pid_alive(pid: int) -> bool:
    """True when a process with this id exists (and is not a zombie)."""
    try:
        stat = Path(f"/proc/{pid}/stat").read_text()
    except OSError:
        return False
    # Field 3 (after the parenthesised command name) is the state; Z is a zombie.
    return stat.rsplit(")", 1)[-1].split()[0] != "Z"


def kill_pids(pids: Iterable[int], *, grace_s: float = 2.0) -> None:
    """SIGTERM the processes, then SIGKILL those still alive after `grace_s`."""
    targets = {p for p in pids if p > 1 and p != os.getpid()}
    for pid in targets:
        _signal(pid, signal.SIGTERM)
        # A process frozen by a power-loss fault acts on SIGTERM only once it runs again.
        _signal(pid, signal.SIGCONT)
    deadline = time.monotonic() + grace_s
    while time.monotonic() < deadline:
        targets = {p for p in targets if pid_alive(p)}
        if not targets:
            return
        time.sleep(0.05)
    for pid in targets:
        _signal(pid, signal.SIGKILL)


def _signal(pid: int, sig: signal.Signals) -> None:
    with contextlib.suppress(ProcessLookupError):
        os.kill(pid, sig)


def read_pidfile(path: Path) -> int | None:
    """The pid stored in a pidfile, or None when missing or unreadable."""
    try:
        text = path.read_text().strip()
    except OSError:
        return None
    return int(text) if text.isdigit() else None


def spawn_detached(
    namespace: str,
    argv: Sequence[str],
    *,
    log_path: Path,
    pid_path: Path,
    env: Mapping[str, str],
    cwd: Path,
    wait_s: float = 5.0,
) -> int:
    """Start a long-lived process inside a namespace, detached from us; return its pid.

    `setsid -f` forks so the child outlives the CLI that started it, and no Popen object is left
    behind to be garbage collected while the child still runs.
    """
    pid_path.unlink(missing_ok=True)
    script = 'echo $$ > "$0"; exec "$@"'
    full = ["ip", "netns", "exec", namespace, "setsid", "-f", "sh", "-c", script, str(pid_path)]
    full += list(argv)
    with log_path.open("ab") as log:
        proc = subprocess.run(
            full,
            stdin=subprocess.DEVNULL,
            stdout=log,
            stderr=log,
            env=dict(env),
            cwd=cwd,
            timeout=30,
            check=False,
        )
    if proc.returncode != 0:
        raise LabError(f"could not start {argv[0]} in {namespace} (see {log_path})")
    deadline = time.monotonic() + wait_s
    while time.monotonic() < deadline:
        pid = read_pidfile(pid_path)
        if pid is not None:
            return pid
        time.sleep(0.01)
    raise LabError(f"{argv[0]} in {namespace} wrote no pid to {pid_path}")


def write_sysctls(settings: Mapping[str, Mapping[str, str]]) -> None:
    """Write sysctls inside several namespaces: {namespace: {"net/ipv4/ip_forward": "1"}}.

    One helper thread joins each namespace in turn with setns(2) and writes /proc/sys directly,
    which costs microseconds instead of one `ip netns exec sysctl` fork per namespace. setns only
    moves the calling thread, so the rest of the process never changes namespace.
    """
    errors: list[str] = []

    def worker() -> None:
        libc = ctypes.CDLL(None, use_errno=True)
        home = os.open("/proc/thread-self/ns/net", os.O_RDONLY)
        try:
            for namespace, values in settings.items():
                fd = os.open(NETNS_RUN_DIR / namespace, os.O_RDONLY)
                try:
                    if libc.setns(fd, _CLONE_NEWNET) != 0:
                        errors.append(f"setns {namespace}: errno {ctypes.get_errno()}")
                        continue
                    for key, value in values.items():
                        try:
                            Path("/proc/sys", key).write_text(value)
                        except OSError as exc:
                            errors.append(f"{namespace} {key}: {exc}")
                finally:
                    os.close(fd)
        finally:
            if libc.setns(home, _CLONE_NEWNET) != 0:
                errors.append("could not return to the root namespace")
            os.close(home)

    thread = threading.Thread(target=worker, name="lab-sysctl")
    thread.start()
    thread.join()
    if errors:
        raise LabError("sysctl failed: " + "; ".join(errors))


def link_indexes(namespace: str | None = None) -> dict[str, int]:
    """Interface name → ifindex, in the root namespace or inside `namespace`."""
    where = [] if namespace is None else ["-n", namespace]
    result = run(["ip", *where, "-o", "link", "show"], check=False)
    indexes: dict[str, int] = {}
    for line in result.stdout.splitlines():
        parts = line.split(":", 2)
        if len(parts) < 2 or not parts[0].strip().isdigit():
            continue
        indexes[parts[1].strip().split("@", 1)[0]] = int(parts[0])
    return indexes


def root_links(prefix: str) -> list[str]:
    """Names of root-namespace interfaces starting with `prefix`."""
    return [name for name in link_indexes() if name.startswith(prefix)]


def root_routes(prefix_cidr: str) -> list[str]:
    """Root-namespace routes inside `prefix_cidr` (blackhole and via routes alike)."""
    result = run(["ip", "route", "show", "root", prefix_cidr], check=False)
    return [line.strip() for line in result.stdout.splitlines() if line.strip()]


def nft_tables(prefix: str, namespace: str | None = None) -> list[tuple[str, str]]:
    """(family, name) of nftables tables whose name starts with `prefix`."""
    argv = ["nft", "list", "tables"]
    if namespace is not None:
        argv = netns_exec(namespace, argv)
    result = run(argv, check=False)
    tables: list[tuple[str, str]] = []
    for line in result.stdout.splitlines():
        parts = line.split()
        if len(parts) == 3 and parts[0] == "table" and parts[2].startswith(prefix):
            tables.append((parts[1], parts[2]))
    return tables


def capabilities_ok() -> bool:
    """True when this process may build namespaces (CAP_NET_ADMIN and CAP_SYS_ADMIN)."""
    try:
        status = Path("/proc/self/status").read_text()
    except OSError:
        return False
    for line in status.splitlines():
        if line.startswith("CapEff:"):
            caps = int(line.split()[1], 16)
            needed = (1 << _CAP_NET_ADMIN) | (1 << _CAP_SYS_ADMIN)
            return caps & needed == needed
    return False
