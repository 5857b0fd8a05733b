"""`make soak`: NetWatch for an hour on the lab with PostgreSQL, faults injected at random.

Everything is real and runs as it would in production, rounds compressed (the lab's inventory:
ICMP every 10 s, SNMP and the portal every 15 s):

* a lab of --communes communes (index 40: 10.128.0.0/16, namespaces nwl40-*), its inventory
  mailing every notification through a mail catcher (`netwatch mailbox serve`);
* a private PostgreSQL cluster (unix socket in a temp dir) as NetWatch's store;
* `netwatch run` (the supervisor: nats-server, probe workers, the SNMP worker, the alerting
  core, web workers) on that inventory, unchanged.

Then, every --fault-every seconds on average (seeded: --seed replays a run), one of:

* a commune's line cut (one link or all), lossy (30 %) or saturated, for 30 s to 3 min;
* SIGKILL of one NetWatch child (the supervisor restarts it), or of the supervisor itself (its
  children stop with it; the soak starts `netwatch run` again, as systemd would);
* PostgreSQL stopped hard (`pg_ctl stop -m immediate`) for 10 to 40 s;
* the mail catcher gone for 1 to 3 minutes.

At the end every fault is undone, the soak waits (--settle) until NetWatch has resolved every
ticket and delivered its outbox, and checks:

* each incident has exactly one ticket: no two tickets of one incident key overlap in time;
* each ticket's opening notification reached each of its recipients exactly once (the catcher's
  files), and no mail names a ticket the store does not have;
* no ticket is left open: every line is healthy again;
* memory (RSS), open files and asyncio tasks (`netwatch_asyncio_tasks`) per process role flat
  between the end of the warm-up and the end: RSS within +30 % or +40 MB, files within +25,
  tasks within +25 (a restarted process is compared as its role);
* no Python traceback in NetWatch's log but within an injected fault's window (a kill, the
  database or the mail catcher away, and a minute after).

Ends with `RESULT soak ok=1|0 ...` and exit status 0 when every check holds. Root only.
    .venv/bin/python scripts/soak.py [--duration 3600] [--communes 6] [--seed N]
    make soak SOAK_ARGS="--duration 600"
"""

from __future__ import annotations

import argparse
import contextlib
import glob
import itertools
import json
import os
import random
import re
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import time
import urllib.error
import urllib.request
from collections import Counter, defaultdict
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import datetime
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from benchmarks._proctree import descendants, role_name  # noqa: E402
from netwatch.lab import Lab  # noqa: E402
from netwatch.lab.config import MailSetup  # noqa: E402
from netwatch.mailbox import read_mailbox  # noqa: E402

LAB_INDEX = 40  # 10.128.0.0/16, namespaces nwl40-*: no test or benchmark uses it
PG_PORT = 15440  # names the unix socket in the soak's own directory (no TCP listener)
RSS_SLACK = (1.30, 40.0)  # end <= max(start * 1.30, start + 40 MB)
FD_SLACK = 25
TASK_SLACK = 25
TRACEBACK_GRACE_S = 60.0  # a traceback this long after an injected fault is the fault's
# Ticket times compressed like the rounds (production: 10 min, 2 h, 1 h): a ticket resolves
# itself after 90 s of health, a relapse within 5 min reopens it, reminders every 3 min.
TICKET_TIMES = """
tickets:
  recovery_min: 1.5
  line_back_s: 10
  reopen_window_min: 5
  remind_every_min: 3
"""


def log(message: str) -> None:
    print(f"{time.strftime('%H:%M:%S')} soak: {message}", flush=True)


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def free_port_range(count: int) -> int:
    """The first of `count` consecutive free loopback ports."""
    rng = random.Random()
    for _ in range(200):
        base = rng.randrange(20000, 30000)
        try:
            with contextlib.ExitStack() as stack:
                for port in range(base, base + count):
                    s = stack.enter_context(socket.socket())
                    s.bind(("127.0.0.1", port))
            return base
        except OSError:
            continue
    raise RuntimeError(f"no {count} consecutive free ports")


def wait_for(what: str, check: Callable[[], bool], timeout_s: float, every_s: float = 1.0) -> None:
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        if check():
            return
        time.sleep(every_s)
    raise RuntimeError(f"{what}: not within {timeout_s:.0f} s")


def http_get(url: str, timeout_s: float = 10.0, token: str | None = None) -> tuple[int, str]:
    headers = {"Authorization": f"Bearer {token}"} if token else {}
    try:
        with urllib.request.urlopen(
            urllib.request.Request(url, headers=headers), timeout=timeout_s
        ) as reply:
            return reply.status, reply.read().decode()
    except urllib.error.HTTPError as exc:
        return exc.code, exc.read().decode(errors="replace")
    except OSError:
        return 0, ""


# -- the injected faults' record ---------------------------------------------------------------


@dataclass(slots=True)
class Fault:
    kind: str  # line, kill, kill-supervisor, postgres, smtp
    detail: str
    start: float  # wall clock (time.time())
    end: float | None = None


@dataclass(slots=True)
class Record:
    faults: list[Fault] = field(default_factory=list)

    def begin(self, kind: str, detail: str) -> Fault:
        fault = Fault(kind, detail, time.time())
        self.faults.append(fault)
        log(f"fault: {kind} {detail}")
        return fault

    def explains(self, moment: float) -> bool:
        """Whether a traceback at `moment` falls in a fault's window that may cause one."""
        for f in self.faults:
            if f.kind == "line":
                continue  # a cut line is NetWatch's everyday business: never a traceback
            end = f.end if f.end is not None else f.start
            if f.start - 2.0 <= moment <= end + TRACEBACK_GRACE_S:
                return True
        return False

    def count(self, kind: str) -> int:
        return sum(1 for f in self.faults if f.kind == kind)


# -- the peers ---------------------------------------------------------------------------------


class Postgres:
    """A private cluster on a unix socket, run as the postgres user; stopped hard on demand."""

    def __init__(self, base: Path) -> None:
        found = sorted(glob.glob("/usr/lib/postgresql/*/bin/initdb"))
        if not found:
            raise RuntimeError("PostgreSQL binaries not found: make setup installs them")
        self.bin = Path(found[-1]).parent
        self.base = base
        self.data = base / "data"
        shutil.chown(base, "postgres", "postgres")
        self.as_postgres = ["runuser", "-u", "postgres", "--"]
        self.url = f"postgresql://postgres@/postgres?host={base}&port={PG_PORT}"

    def _ctl(self, *args: str) -> None:
        subprocess.run(
            [*self.as_postgres, str(self.bin / "pg_ctl"), "-D", str(self.data), *args],
            check=True, capture_output=True, timeout=90,
        )  # fmt: skip

    def init(self) -> None:
        subprocess.run(
            [*self.as_postgres, str(self.bin / "initdb"), "-D", str(self.data), "-U", "postgres",
             "-A", "trust", "--no-sync", "--no-instructions", "-E", "UTF8", "--no-locale"],
            check=True, capture_output=True, timeout=90,
        )  # fmt: skip
        self.start()

    def start(self) -> None:
        options = f"-k {self.base} -p {PG_PORT} -c listen_addresses='' -c max_connections=80"
        self._ctl("-l", str(self.base / "server.log"), "-w", "-t", "60", "-o", options, "start")

    def stop(self, mode: str = "immediate") -> None:
        if (self.data / "postmaster.pid").exists():
            self._ctl("-m", mode, "-w", "stop")


class Catcher:
    """`netwatch mailbox serve` on a fixed SMTP port, so it can go away and come back."""

    def __init__(self, folder: Path, log_file: Path) -> None:
        self.folder = folder
        self.log_file = log_file
        self.port = free_port()
        self.proc: subprocess.Popen[str] | None = None

    def start(self) -> None:
        command = [sys.executable, "-m", "netwatch.cli", "mailbox", "serve", "--dir",
                   str(self.folder), "--smtp", f"127.0.0.1:{self.port}", "--no-http"]  # fmt: skip
        with self.log_file.open("a") as output:
            self.proc = subprocess.Popen(command, stdout=subprocess.PIPE, stderr=output, text=True)
        assert self.proc.stdout is not None
        ready = self.proc.stdout.readline()
        if "mailbox ready" not in ready:
            raise RuntimeError(f"mail catcher did not start: {ready!r}")

    def stop(self) -> None:
        if self.proc is not None and self.proc.poll() is None:
            self.proc.send_signal(signal.SIGTERM)
            try:
                self.proc.wait(timeout=20)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait(timeout=10)
        if self.proc is not None and self.proc.stdout is not None:
            self.proc.stdout.close()
        self.proc = None


class NetWatch:
    """`netwatch run` on the lab's inventory, its log appended to across restarts."""

    def __init__(
        self, config: Path, env: dict[str, str], data_dir: Path, log_file: Path, port: int
    ) -> None:
        self.config = config
        self.env = env
        self.data_dir = data_dir
        self.log_file = log_file
        self.port = port
        self.metrics_base = free_port_range(8)
        self.base = f"http://127.0.0.1:{self.port}"
        self.proc: subprocess.Popen[bytes] | None = None
        self.token: str | None = None  # a read token for /api/v1, made after the first start

    def start(self) -> None:
        command = [sys.executable, "-m", "netwatch.cli", "run", "--config", str(self.config),
                   "--listen", f"127.0.0.1:{self.port}", "--data-dir", str(self.data_dir),
                   "--metrics-port-base", str(self.metrics_base)]  # fmt: skip
        with self.log_file.open("ab") as output:
            self.proc = subprocess.Popen(command, stdout=output, stderr=output, env=self.env)
        wait_for("NetWatch answering /healthz", self.healthy, 120, 0.5)
        if self.token is None:  # every /api/v1 route needs one (docs/security.md)
            made = subprocess.run(
                [sys.executable, "-m", "netwatch.cli", "token", "create", "soak", "--scope",
                 "read", "--data-dir", str(self.data_dir)],
                capture_output=True, text=True, check=True, env=self.env,
            )  # fmt: skip
            self.token = made.stdout.split()[0]

    def healthy(self) -> bool:
        if self.proc is None or self.proc.poll() is not None:
            raise RuntimeError(f"netwatch run exited; see {self.log_file}")
        return http_get(self.base + "/healthz", 3)[0] == 200

    def tree(self) -> dict[int, str]:
        if self.proc is None or self.proc.poll() is not None:
            return {}
        pids = [self.proc.pid, *descendants(self.proc.pid)]
        return {pid: role_name(pid) for pid in pids}

    def kill_supervisor(self) -> None:
        assert self.proc is not None
        children = descendants(self.proc.pid)
        self.proc.kill()
        self.proc.wait(timeout=10)
        # Its children get SIGTERM from the kernel (PR_SET_PDEATHSIG) and stop on their own.
        wait_for("the killed supervisor's children gone", lambda: not _alive(children), 60)

    def stop(self) -> None:
        if self.proc is None:
            return
        children = descendants(self.proc.pid)
        if self.proc.poll() is None:
            self.proc.send_signal(signal.SIGINT)
            try:
                self.proc.wait(timeout=60)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait(timeout=10)
        for pid in children:
            with contextlib.suppress(ProcessLookupError):
                os.kill(pid, signal.SIGKILL)
        self.proc = None


def _alive(pids: list[int]) -> bool:
    return any(Path(f"/proc/{pid}").exists() for pid in pids)


# -- measurements ------------------------------------------------------------------------------


def metric_values(text: str, name: str) -> list[float]:
    pattern = re.compile(rf"^{re.escape(name)}(?:\{{[^}}]*\}})? (\S+)$", re.MULTILINE)
    return [float(v) for v in pattern.findall(text)]


@dataclass(frozen=True, slots=True)
class Usage:
    rss_mb: dict[str, float]
    fds: dict[str, int]
    tasks: dict[str, float]


def usage(nw: NetWatch) -> Usage:
    rss: dict[str, float] = {}
    fds: dict[str, int] = {}
    for pid, role in nw.tree().items():
        with contextlib.suppress(OSError, ValueError):
            proc_status = Path(f"/proc/{pid}/status").read_text()
            found = re.search(r"^VmRSS:\s+(\d+) kB", proc_status, re.MULTILINE)
            rss[role] = rss.get(role, 0.0) + (int(found.group(1)) / 1024 if found else 0.0)
            fds[role] = fds.get(role, 0) + len(os.listdir(f"/proc/{pid}/fd"))
    tasks: dict[str, float] = {}
    status, text = http_get(nw.base + "/metrics", 30)
    if status == 200 and (values := metric_values(text, "netwatch_asyncio_tasks")):
        tasks["core"] = values[0]
    for offset in range(8):
        status, text = http_get(f"http://127.0.0.1:{nw.metrics_base + offset}/metrics", 5)
        if status == 200 and (values := metric_values(text, "netwatch_asyncio_tasks")):
            tasks[f"worker:{nw.metrics_base + offset}"] = values[0]
    return Usage(rss, fds, tasks)


def grown(start: Usage, end: Usage) -> list[str]:
    problems = []
    for role, before in start.rss_mb.items():
        after = end.rss_mb.get(role)
        limit = max(before * RSS_SLACK[0], before + RSS_SLACK[1])
        if after is not None and after > limit:
            problems.append(f"{role} RSS {before:.0f} -> {after:.0f} MB")
    for role, before_fds in start.fds.items():
        after_fds = end.fds.get(role)
        if after_fds is not None and after_fds > before_fds + FD_SLACK:
            problems.append(f"{role} open files {before_fds} -> {after_fds}")
    for role, before_tasks in start.tasks.items():
        after_tasks = end.tasks.get(role)
        if after_tasks is not None and after_tasks > before_tasks + TASK_SLACK:
            problems.append(f"{role} asyncio tasks {before_tasks:.0f} -> {after_tasks:.0f}")
    return problems


# -- the invariants ----------------------------------------------------------------------------


def tickets(nw: NetWatch) -> list[dict[str, Any]]:
    status, text = http_get(nw.base + "/api/v1/tickets?limit=1000", 30, nw.token)
    if status != 200:
        raise RuntimeError(f"GET /api/v1/tickets: {status} {text[:300]}")
    return list(json.loads(text))


def _time(text: str | None) -> float | None:
    return None if text is None else datetime.fromisoformat(text).timestamp()


def overlapping(all_tickets: list[dict[str, Any]]) -> list[str]:
    """Tickets of one incident key open at the same time: one incident, two tickets."""
    by_key: dict[str, list[dict[str, Any]]] = defaultdict(list)
    for t in all_tickets:
        by_key[t["incident_key"]].append(t)
    found = []
    for key, group in by_key.items():
        group.sort(key=lambda t: t["opened_at"])
        for earlier, later in itertools.pairwise(group):
            ended = _time(earlier["resolved_at"])
            if ended is None or (_time(later["opened_at"]) or 0.0) < ended:
                found.append(f"{key}: {earlier['id']} and {later['id']}")
    return found


@dataclass(frozen=True, slots=True)
class MailCheck:
    opening_mails: int
    missing: list[str]  # tickets without any opening mail
    duplicated: list[str]  # (ticket, recipient) with more than one opening mail
    unknown: list[str]  # mails naming a ticket the store does not have


def check_mail(folder: Path, all_tickets: list[dict[str, Any]]) -> MailCheck:
    mails = read_mailbox(folder)
    known = {t["id"] for t in all_tickets}
    opened = Counter((m.ticket_id, m.to) for m in mails if m.event == "opened")
    with_opening = {ticket for ticket, _ in opened}
    return MailCheck(
        opening_mails=sum(opened.values()),
        missing=sorted(known - with_opening),
        duplicated=[f"{t} to {to} x{n}" for (t, to), n in opened.items() if n > 1],
        unknown=sorted({m.ticket_id for m in mails if m.ticket_id and m.ticket_id not in known}),
    )


_STAMP = re.compile(r"^(\d{4}-\d{2}-\d{2} \d{2}:\d{2}:\d{2}),(\d{3}) ")


def tracebacks(log_file: Path) -> list[tuple[float | None, str]]:
    """Every traceback in the log: the time of the last stamped line before it, and its last
    line (the exception)."""
    found: list[tuple[float | None, str]] = []
    last_stamp: float | None = None
    lines = log_file.read_text(errors="replace").splitlines()
    for i, line in enumerate(lines):
        stamp = _STAMP.match(line)
        if stamp:
            last_stamp = time.mktime(time.strptime(stamp.group(1), "%Y-%m-%d %H:%M:%S"))
        if line.startswith("Traceback (most recent call last)"):
            end = i + 1
            while end < len(lines) and (lines[end].startswith(" ") or not lines[end].strip()):
                end += 1
            what = lines[end] if end < len(lines) else "?"
            found.append((last_stamp, what))
    return found


# -- the run -----------------------------------------------------------------------------------


@dataclass(slots=True)
class Soak:
    args: argparse.Namespace
    work: Path
    rng: random.Random
    record: Record = field(default_factory=Record)
    stack: contextlib.ExitStack = field(default_factory=contextlib.ExitStack)

    def run(self) -> int:
        with self.stack:
            return self._run()

    def _run(self) -> int:
        args = self.args
        pg = Postgres(self.work / "pg")
        pg.init()
        self.stack.callback(lambda: pg.stop("fast"))
        catcher = Catcher(self.work / "mailbox", self.work / "mailbox.log")
        catcher.start()
        self.stack.callback(catcher.stop)

        lab = Lab(LAB_INDEX, self.work / "lab")
        self.stack.callback(self._lab_down, lab)
        env_file_env: dict[str, str] = {}
        nw_port = free_port()  # known before the lab writes the links its mails carry
        lab.up(args.communes, MailSetup("127.0.0.1", catcher.port, f"http://127.0.0.1:{nw_port}"))
        for line in lab.paths.env_file.read_text().splitlines():
            if "=" in line:
                key, _, value = line.partition("=")
                env_file_env[key.strip()] = value.strip().strip("'\"")
        with lab.paths.config_file.open("a") as config:
            config.write(TICKET_TIMES)
        env = {**os.environ, **env_file_env, "NETWATCH_DATABASE_URL": pg.url}
        nw = NetWatch(
            lab.paths.config_file, env, self.work / "data", self.work / "netwatch.log", nw_port
        )
        nw.start()
        self.stack.callback(nw.stop)
        codes = [c.code for c in lab.plan.communes]
        links = {c.code: [lk.id for lk in c.links] for c in lab.plan.communes}
        log(f"NetWatch on {nw.base}, {len(codes)} communes, PostgreSQL {pg.base}")

        began = time.monotonic()
        warmup_end = began + min(args.warmup, args.duration / 2)
        deadline = began + args.duration
        start_usage: Usage | None = None
        lines: dict[int, tuple[Fault, float]] = {}  # commune -> (fault, restore at)
        pg_back: tuple[Fault, float] | None = None
        smtp_back: tuple[Fault, float] | None = None
        next_fault = time.monotonic() + self.rng.uniform(10, args.fault_every)
        while time.monotonic() < deadline:
            now = time.monotonic()
            if start_usage is None and now >= warmup_end:
                start_usage = usage(nw)
                log(f"after warm-up: {start_usage}")
            for code, (fault, restore_at) in list(lines.items()):
                if now >= restore_at:
                    lab.commune_restore(code)
                    fault.end = time.time()
                    del lines[code]
            if pg_back is not None and now >= pg_back[1]:
                log("PostgreSQL back")
                pg.start()
                pg_back[0].end = time.time()
                pg_back = None
            if smtp_back is not None and now >= smtp_back[1]:
                log("mail catcher back")
                catcher.start()
                smtp_back[0].end = time.time()
                smtp_back = None
            if nw.proc is not None and nw.proc.poll() is not None:
                log(f"netwatch run exited with {nw.proc.returncode}: starting it again")
                self.record.begin("kill-supervisor", f"exited {nw.proc.returncode}")
                nw.start()
            if now >= next_fault:
                next_fault = now + self.rng.uniform(0.5, 1.5) * args.fault_every
                choice = self.rng.choices(
                    ["line", "kill", "kill-supervisor", "postgres", "smtp"],
                    weights=[50, 20, 5, 12, 13],
                )[0]
                if choice == "line":
                    free = [c for c in codes if c not in lines]
                    if len(free) > len(codes) // 2:
                        code = self.rng.choice(free)
                        how = self.rng.choice(["down", "down-one", "loss", "congest"])
                        if how == "down":
                            result = lab.commune_down(code)
                        elif how == "down-one":
                            result = lab.commune_down(code, self.rng.choice(links[code]))
                        elif how == "loss":
                            result = lab.commune_loss(code, 30)
                        else:
                            result = lab.commune_congest(code)
                        if result.problem is None:
                            fault = self.record.begin("line", f"{code:05d} {how}")
                            lines[code] = (fault, now + self.rng.uniform(30, 180))
                elif choice == "kill":
                    tree = {p: r for p, r in nw.tree().items() if r != "supervisor"}
                    tree = {p: r for p, r in tree.items() if r != "nats-server"}
                    if tree:
                        pid = self.rng.choice(sorted(tree))
                        fault = self.record.begin("kill", f"{tree[pid]} pid {pid}")
                        with contextlib.suppress(ProcessLookupError):
                            os.kill(pid, signal.SIGKILL)
                        fault.end = time.time() + 30  # its restart and catch-up
                elif choice == "kill-supervisor":
                    fault = self.record.begin("kill-supervisor", "SIGKILL")
                    nw.kill_supervisor()
                    time.sleep(self.rng.uniform(1, 10))
                    nw.start()
                    fault.end = time.time()
                elif choice == "postgres" and pg_back is None:
                    fault = self.record.begin("postgres", "stopped (immediate)")
                    pg.stop("immediate")
                    pg_back = (fault, now + self.rng.uniform(10, 40))
                elif choice == "smtp" and smtp_back is None:
                    fault = self.record.begin("smtp", "mail catcher stopped")
                    catcher.stop()
                    smtp_back = (fault, now + self.rng.uniform(60, 180))
            time.sleep(1.0)

        log("undoing every fault; waiting for NetWatch to settle")
        for code, (fault, _) in lines.items():
            lab.commune_restore(code)
            fault.end = time.time()
        lab.restore()
        if pg_back is not None:
            pg.start()
            pg_back[0].end = time.time()
        if smtp_back is not None:
            catcher.start()
            smtp_back[0].end = time.time()
        if nw.proc is None or nw.proc.poll() is not None:
            nw.start()

        def settled() -> bool:
            try:
                open_tickets = [t for t in tickets(nw) if t["state"] != "resolved"]
            except RuntimeError:
                return False
            status, text = http_get(nw.base + "/metrics", 30)
            pending = metric_values(text, "netwatch_outbox_pending") if status == 200 else [1.0]
            return not open_tickets and pending == [0.0]

        settle_start = time.monotonic()
        with contextlib.suppress(RuntimeError):
            wait_for("every ticket resolved and the outbox empty", settled, args.settle, 5)
        settle_s = time.monotonic() - settle_start
        end_usage = usage(nw)
        if start_usage is None:
            start_usage = end_usage
        all_tickets = tickets(nw)
        mail = check_mail(catcher.folder, all_tickets)
        duplicates = overlapping(all_tickets)
        still_open = [
            f"{t['id']} {t['incident_key']}" for t in all_tickets if t["state"] != "resolved"
        ]
        growth = grown(start_usage, end_usage)
        found_tracebacks = tracebacks(nw.log_file)
        unexplained = [
            f"{time.strftime('%H:%M:%S', time.localtime(at))} {what}" if at else what
            for at, what in found_tracebacks
            if at is None or not self.record.explains(at)
        ]
        elapsed = time.monotonic() - began
        ok = not (duplicates or mail.missing or mail.duplicated or mail.unknown or still_open
                  or growth or unexplained)  # fmt: skip

        log(f"faults: {[(f.kind, f.detail) for f in self.record.faults]}")
        for title, items in [
            ("one incident, several tickets", duplicates),
            ("tickets without an opening mail", mail.missing),
            ("opening mails delivered more than once", mail.duplicated),
            ("mails naming unknown tickets", mail.unknown),
            ("tickets open at the end", still_open),
            ("grown after warm-up", growth),
            ("tracebacks outside the injected faults", unexplained),
        ]:
            if items:
                log(f"FAILED {title}: {items}")
        log(f"usage after warm-up: {start_usage}")
        log(f"usage at the end:    {end_usage}")
        rss_start, rss_end = sum(start_usage.rss_mb.values()), sum(end_usage.rss_mb.values())
        fds_start, fds_end = sum(start_usage.fds.values()), sum(end_usage.fds.values())
        tasks_start, tasks_end = sum(start_usage.tasks.values()), sum(end_usage.tasks.values())
        print(
            f"RESULT soak ok={int(ok)} duration_s={elapsed:.0f} seed={args.seed} "
            f"communes={len(codes)} line_faults={self.record.count('line')} "
            f"kills={self.record.count('kill')} "
            f"supervisor_kills={self.record.count('kill-supervisor')} "
            f"postgres_restarts={self.record.count('postgres')} "
            f"smtp_outages={self.record.count('smtp')} tickets={len(all_tickets)} "
            f"duplicate_tickets={len(duplicates)} opening_mails={mail.opening_mails} "
            f"missing_opening={len(mail.missing)} duplicated_opening={len(mail.duplicated)} "
            f"open_at_end={len(still_open)} settle_s={settle_s:.0f} "
            f"rss_mb={rss_start:.0f}->{rss_end:.0f} fds={fds_start}->{fds_end} "
            f"tasks={tasks_start:.0f}->{tasks_end:.0f} tracebacks={len(found_tracebacks)} "
            f"unexplained_tracebacks={len(unexplained)}",
            flush=True,
        )
        return 0 if ok else 1

    @staticmethod
    def _lab_down(lab: Lab) -> None:
        result = lab.down()
        if not result.leftovers.clean:
            log(f"lab leftovers: {result.leftovers}")


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--duration", type=float, default=3600.0, help="seconds of faults")
    parser.add_argument(
        "--warmup", type=float, default=300.0, help="seconds before the usage baseline"
    )
    parser.add_argument("--settle", type=float, default=600.0, help="seconds to resolve at the end")
    parser.add_argument(
        "--fault-every", type=float, default=45.0, help="mean seconds between faults"
    )
    parser.add_argument("--communes", type=int, default=6)
    parser.add_argument("--seed", type=int, default=None)
    parser.add_argument("--keep", action="store_true", help="keep the work directory (logs)")
    args = parser.parse_args(argv)
    if os.geteuid() != 0:
        print("make soak: run as root (the lab needs network namespaces)", file=sys.stderr)
        return 2
    if args.duration <= 0 or args.fault_every <= 0 or args.communes < 2:
        print("make soak: --duration and --fault-every > 0, --communes >= 2", file=sys.stderr)
        return 2
    if args.seed is None:
        args.seed = random.randrange(1 << 30)
    work = Path(tempfile.mkdtemp(prefix="nw-soak-"))  # short: the PostgreSQL socket lives here
    work.chmod(0o711)  # the postgres user reaches its directory inside
    (work / "pg").mkdir()
    log(f"seed {args.seed}, work directory {work}")
    soak = Soak(args, work, random.Random(args.seed))

    def stop(signum: int, _frame: object) -> None:
        raise KeyboardInterrupt(f"signal {signum}")

    signal.signal(signal.SIGTERM, stop)
    try:
        return soak.run()
    except KeyboardInterrupt:
        log("interrupted: everything it started is stopped")
        return 130
    finally:
        if args.keep:
            log(f"kept {work}")
        else:
            shutil.rmtree(work, ignore_errors=True)


if __name__ == "__main__":
    sys.exit(main())
