"""CPU and memory of a process and every descendant, sampled from /proc by a thread.

NetWatch under `netwatch run` is a tree: the supervisor, its nats-server, the probe workers and
the core (and a short `check-config` child at start). `ProcessTree` walks /proc every
``every_s``, finds the descendants of the root by parent pid, and keeps for each process (pid and
start time: a restarted child is a new process) the CPU seconds it had used at its last sample.
The tree's CPU is the sum over every process ever seen of what it used from its start to its last
sample, so children that restart are counted; what a process used between its last sample and
its exit is lost (at most ``every_s`` per exit). Memory is the
sum of the live processes' RSS at each sample; the peak of that sum is kept.
"""

from __future__ import annotations

import os
import threading
from dataclasses import dataclass
from pathlib import Path

CLOCK_TICKS = os.sysconf("SC_CLK_TCK")
PAGE_BYTES = os.sysconf("SC_PAGE_SIZE")


@dataclass(slots=True)
class _Seen:
    name: str
    cpu_s: float = 0.0  # at the last sample
    peak_rss_bytes: int = 0


@dataclass(frozen=True, slots=True)
class _Stat:
    ppid: int
    start: int  # clock ticks after boot: with the pid, one process
    cpu_s: float
    rss_bytes: int


def _stat(pid: int) -> _Stat | None:
    try:
        raw = Path(f"/proc/{pid}/stat").read_bytes()
    except OSError:
        return None
    f = raw[raw.rindex(b")") + 2 :].split()
    # after "pid (comm) ": state ppid ... utime(11) stime(12) ... starttime(19) vsize rss(21)
    cpu = (int(f[11]) + int(f[12])) / CLOCK_TICKS
    return _Stat(int(f[1]), int(f[19]), cpu, int(f[21]) * PAGE_BYTES)


def descendants(root: int) -> list[int]:
    """Every live process under ``root`` (by parent pid), ``root`` itself not included."""
    children: dict[int, list[int]] = {}
    for entry in os.listdir("/proc"):
        if entry.isdigit() and (s := _stat(int(entry))) is not None:
            children.setdefault(s.ppid, []).append(int(entry))
    found, todo = [], [root]
    while todo:
        for child in children.get(todo.pop(), []):
            found.append(child)
            todo.append(child)
    return found


def role_name(pid: int) -> str:
    """A short name for a NetWatch process from its command line: supervisor, core, probe-0,
    snmp-0, web-0, all, nats-server, check-config (else the program's name)."""
    try:
        argv = Path(f"/proc/{pid}/cmdline").read_bytes().decode(errors="replace").split("\0")
    except OSError:
        return "?"
    if any(a.endswith("nats-server") for a in argv[:1]):
        return "nats-server"
    if "check-config" in argv:
        return "check-config"
    if "run" not in argv:
        return Path(argv[0]).name if argv else "?"
    role = argv[argv.index("--role") + 1] if "--role" in argv else "supervisor"
    if role == "probe":
        shard = argv[argv.index("--shard") + 1].split("/")[0] if "--shard" in argv else "0"
        kinds = argv[argv.index("--kinds") + 1] if "--kinds" in argv else "icmp,http"
        return f"{'snmp' if kinds == 'snmp' else 'probe'}-{shard}"
    if role == "web" and "--name" in argv:
        return f"web-{argv[argv.index('--name') + 1]}"
    return role


class ProcessTree:
    """Samples the tree under ``root`` from a thread between `start` and `stop`."""

    def __init__(self, root: int, every_s: float = 0.5) -> None:
        self.root, self.every_s = root, every_s
        self.peak_rss_bytes = 0  # the peak of the tree's summed RSS
        self.samples = 0
        self._seen: dict[tuple[int, int], _Seen] = {}
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None
        self._lock = threading.Lock()

    def start(self) -> None:
        """Take the first sample now, then sample every ``every_s`` from a thread."""
        self.sample()
        self._thread = threading.Thread(target=self._loop, name="proctree", daemon=True)
        self._thread.start()

    def stop(self) -> None:
        """Stop sampling (after one last sample)."""
        self._stop.set()
        if self._thread is not None:
            self._thread.join()
        self.sample()

    def _loop(self) -> None:
        while not self._stop.wait(self.every_s):
            self.sample()

    def sample(self) -> None:
        """Read every process of the tree once."""
        stats: dict[int, _Stat] = {}
        for entry in os.listdir("/proc"):
            if entry.isdigit() and (s := _stat(int(entry))) is not None:
                stats[int(entry)] = s
        children: dict[int, list[int]] = {}
        for pid, s in stats.items():
            children.setdefault(s.ppid, []).append(pid)
        tree, todo = [], [self.root]
        while todo:
            pid = todo.pop()
            if pid in stats:
                tree.append(pid)
                todo += children.get(pid, [])
        rss = 0
        with self._lock:
            for pid in tree:
                s = stats[pid]
                seen = self._seen.get((pid, s.start))
                if seen is None:
                    seen = _Seen(role_name(pid))
                    self._seen[(pid, s.start)] = seen
                seen.cpu_s = s.cpu_s
                seen.peak_rss_bytes = max(seen.peak_rss_bytes, s.rss_bytes)
                rss += s.rss_bytes
            self.peak_rss_bytes = max(self.peak_rss_bytes, rss)
            self.samples += 1

    def cpu_s(self) -> float:
        """CPU seconds used by the tree's processes (as of the last sample)."""
        with self._lock:
            return sum(s.cpu_s for s in self._seen.values())

    def by_name(self) -> dict[str, tuple[float, float, int]]:
        """Per process name: (CPU s since start, peak RSS MB of one process, processes seen:
        more than one is a restart)."""
        out: dict[str, tuple[float, float, int]] = {}
        with self._lock:
            for s in self._seen.values():
                cpu, rss, n = out.get(s.name, (0.0, 0.0, 0))
                out[s.name] = (cpu + s.cpu_s, max(rss, s.peak_rss_bytes / 2**20), n + 1)
        return out
