"""`netwatch run` as a benchmark sees it: the real CLI in its own process group, its process tree
sampled (benchmarks/_proctree.py), and every probe worker's round reports read off its bus.

Two ways to run it:

* the supervisor (``role=None``, the default of `netwatch run`): a private nats-server, ICMP+HTTP
  probe workers (one per CPU), an SNMP worker, the alerting core and the web workers (on the
  port given; /metrics there is the core's, asked by the web workers). Each probe
  worker publishes a `RoundReport` per round on ``nw.obs.v1.round.<kind>`` (docs/bus.md);
  `RoundWatch` subscribes there (plain NATS, beside the core's durable consumer: it takes
  nothing from it) and keeps every report with its shard, so lag and skipped slots are per
  shard and per round, not the core's merged last-round gauges.
* ``role="all"``: the single process of before; no bus, its rounds come from its /metrics.

The nats-server's URL is read from the supervisor's log (``nats-server ready url=...``, info).
"""

from __future__ import annotations

import asyncio
import contextlib
import re
import socket
import threading
import time
import urllib.request
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path

from benchmarks._process import process_group
from benchmarks._proctree import ProcessTree

ROOT = Path(__file__).resolve().parent.parent
REPORTS = "nw.obs.v1.round.>"


@dataclass(frozen=True, slots=True)
class Report:
    """One shard's report of one round, as read off the bus."""

    kind: str
    shard: int
    round_id: int  # the slot's scheduled start, Unix ms (the same for every shard of a slot)
    lag_s: float
    duration_s: float
    targets: int
    skipped: int
    received: float  # time.monotonic() when it arrived


@dataclass(slots=True)
class RoundWatch:
    """Every round report published on a nats-server, collected by a thread of its own."""

    url: str
    token: str | None = None  # the supervisor's bus token (<data-dir>/nats/token)
    reports: list[Report] = field(default_factory=list)
    _lock: threading.Lock = field(default_factory=threading.Lock)
    _ready: threading.Event = field(default_factory=threading.Event)
    _loop: asyncio.AbstractEventLoop | None = None
    _stop: asyncio.Event | None = None
    _thread: threading.Thread | None = None
    _error: BaseException | None = None
    events: list[str] = field(default_factory=list)  # the client's errors and reconnections

    def start(self) -> None:
        """Subscribe (returns once the subscription is in place)."""
        self._thread = threading.Thread(target=self._run, name="roundwatch", daemon=True)
        self._thread.start()
        if not self._ready.wait(60) or self._error is not None:
            raise RuntimeError(f"could not subscribe to round reports at {self.url}: {self._error}")

    def stop(self) -> None:
        """Unsubscribe and close."""
        if self._loop is not None and self._stop is not None:
            self._loop.call_soon_threadsafe(self._stop.set)
        if self._thread is not None:
            self._thread.join(timeout=10)

    def _run(self) -> None:
        try:
            asyncio.run(self._main())
        except BaseException as exc:  # reported by start()
            self._error = exc
            self._ready.set()

    async def _main(self) -> None:
        import nats

        from netwatch.bus import wire

        empty = wire.PlanIndex({}, {}, {}, {}, {})  # a report resolves nothing in the plan
        self._loop, self._stop = asyncio.get_running_loop(), asyncio.Event()

        async def on_report(msg: object) -> None:
            batch = wire.decode(msg.data, empty)  # type: ignore[attr-defined]
            r = batch.report
            if r is None:
                return
            with self._lock:
                self.reports.append(
                    Report(
                        batch.kind,
                        batch.shard,
                        batch.round_id,
                        r.lag_s,
                        r.duration_s,
                        r.targets,
                        r.skipped_rounds,
                        time.monotonic(),
                    )
                )

        async def on_error(exc: Exception) -> None:
            self.events.append(f"error: {exc!r}")

        async def on_disconnect() -> None:
            self.events.append("disconnected")

        async def on_reconnect() -> None:
            self.events.append("reconnected")

        # Ready means the connection is proven to deliver, not just a SUB the server acknowledged:
        # a message sent to ourselves (on an inbox, so no stream of the bus keeps it) came back.
        # A connection that does not deliver it in time is replaced (a CI run once got nothing
        # for 30 s on a subscription the server had acknowledged).
        echoed = asyncio.Event()
        for attempt in range(1, 7):
            nc = await nats.connect(
                self.url,
                token=self.token,
                allow_reconnect=True,
                max_reconnect_attempts=-1,
                error_cb=on_error,
                disconnected_cb=on_disconnect,
                reconnected_cb=on_reconnect,
            )

            async def on_echo(msg: object) -> None:
                echoed.set()

            try:
                await nc.subscribe(REPORTS, cb=on_report)
                echo = nc.new_inbox()
                await nc.subscribe(echo, cb=on_echo)
                await nc.publish(echo, b"")
                await nc.flush()
                try:
                    await asyncio.wait_for(echoed.wait(), 5)
                except TimeoutError:
                    self.events.append(f"attempt {attempt}: own echo not delivered in 5 s")
                    continue
                self._ready.set()
                await self._stop.wait()
                return
            finally:
                await nc.close()
        raise RuntimeError(f"no connection delivered its own echo: {self.events}")

    def of(self, kind: str, since: float = 0.0, until: float = float("inf")) -> list[Report]:
        """The reports of `kind` that arrived in [since, until] (monotonic)."""
        with self._lock:
            return [r for r in self.reports if r.kind == kind and since <= r.received <= until]


@dataclass(frozen=True, slots=True)
class Rounds:
    """Round figures of one kind, per shard and over all shards."""

    shards: dict[int, tuple[int, float, int, float]]  # shard: (rounds, worst lag, skipped, worst s)
    slots: int  # distinct round ids
    incomplete_slots: int  # round ids not reported by every shard seen

    @property
    def worst_lag_s(self) -> float:
        return max((s[1] for s in self.shards.values()), default=0.0)

    @property
    def skipped(self) -> int:
        return sum(s[2] for s in self.shards.values())

    @property
    def worst_round_s(self) -> float:
        return max((s[3] for s in self.shards.values()), default=0.0)

    def describe(self) -> str:
        per = ", ".join(
            f"shard {i}: {n} rounds, worst lag {lag:.3f} s, worst round {took:.1f} s, "
            f"skipped {skip}"
            for i, (n, lag, skip, took) in sorted(self.shards.items())
        )
        return f"{self.slots} slots ({self.incomplete_slots} not reported by every shard); {per}"


def summarize(reports: list[Report]) -> Rounds:
    """Per shard: rounds, worst lag, skipped slots, longest round; and the slots."""
    shards: dict[int, tuple[int, float, int, float]] = {}
    by_slot: dict[int, set[int]] = {}
    for r in reports:
        n, lag, skip, took = shards.get(r.shard, (0, 0.0, 0, 0.0))
        shards[r.shard] = (n + 1, max(lag, r.lag_s), skip + r.skipped, max(took, r.duration_s))
        by_slot.setdefault(r.round_id, set()).add(r.shard)
    incomplete = sum(1 for s in by_slot.values() if len(s) < len(shards))
    return Rounds(shards, len(by_slot), incomplete)


def free_port() -> int:
    """A free TCP port on loopback."""
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port: int = probe.getsockname()[1]
        return port


def fetch(url: str, *, gzipped: bool = False, timeout_s: float = 30) -> bytes:
    """GET a URL (as sent, compressed when asked)."""
    headers = {"Accept-Encoding": "gzip"} if gzipped else {}
    request = urllib.request.Request(url, headers=headers)
    with urllib.request.urlopen(request, timeout=timeout_s) as response:
        body: bytes = response.read()
        return body


def metric(text: str, name: str, kind: str = "icmp") -> float | None:
    """One ``kind`` sample of a NetWatch family in a /metrics text (None when absent)."""
    match = re.search(rf'^{name}\{{(?:[^}}]*,)?kind="{kind}"(?:,[^}}]*)?\}} (\S+)$', text, re.M)
    return float(match.group(1)) if match else None


@dataclass(slots=True)
class Running:
    """A started `netwatch run`."""

    process: object  # subprocess.Popen[bytes]
    base: str  # http://127.0.0.1:PORT, the web (the web workers' under the supervisor)
    log: Path
    tree: ProcessTree
    started: float  # time.monotonic() at start
    watch: RoundWatch | None  # None for --role all

    def scrape(self) -> str:
        """The web's /metrics."""
        return fetch(self.base + "/metrics").decode()

    def restarts(self) -> int:
        """Children the supervisor started again (from its log)."""
        return self.log.read_text(errors="replace").count("child exited name=")


def _nats_url(log: Path, process: object, deadline: float) -> str:
    while True:
        match = re.search(r"nats-server ready url=(\S+)", log.read_text(errors="replace"))
        if match:
            return match.group(1)
        if process.poll() is not None or time.monotonic() > deadline:  # type: ignore[attr-defined]
            raise RuntimeError("the supervisor's nats-server did not start:\n" + _tail(log))
        time.sleep(0.1)


def _tail(log: Path) -> str:
    return log.read_text(errors="replace")[-3000:]


@contextlib.contextmanager
def netwatch_run(
    config: Path,
    work: Path,
    port: int,
    *,
    role: str | None = None,
    env: dict[str, str] | None = None,
    extra: tuple[str, ...] = (),
) -> Iterator[Running]:
    """`netwatch run --config X` (the supervisor, or ``--role all``) at log level info, its
    tree sampled from the moment it starts; stopped (SIGTERM to the group) whatever happens."""
    argv = [
        str(ROOT / ".venv/bin/netwatch"), "run", "--config", str(config),
        "--listen", f"127.0.0.1:{port}", "--data-dir", str(work / "data"), "--log-level", "info",
        *(("--role", role) if role else ()), *extra,
    ]  # fmt: skip
    log = work / f"netwatch-{role or 'supervisor'}.log"
    with process_group(argv, log=log, env=env, stop_timeout_s=30) as process:
        started = time.monotonic()
        tree = ProcessTree(process.pid)
        tree.start()
        watch = None
        try:
            if role is None:
                url = _nats_url(log, process, started + 60)
                token = (work / "data" / "nats" / "token").read_text().strip()
                watch = RoundWatch(url, token)
                watch.start()
            yield Running(process, f"http://127.0.0.1:{port}", log, tree, started, watch)
        finally:
            tree.stop()
            if watch is not None:
                watch.stop()


def wait_for(running: Running, ready: object, what: str, timeout_s: float = 240) -> None:
    """Poll ``ready()`` every 0.5 s until true; fail with the log's tail if NetWatch dies or
    ``timeout_s`` passes."""
    deadline = time.monotonic() + timeout_s
    while True:
        with contextlib.suppress(OSError):
            if ready():  # type: ignore[operator]
                return
        if running.process.poll() is not None or time.monotonic() > deadline:  # type: ignore[attr-defined]
            raise RuntimeError(f"NetWatch: {what} did not happen:\n" + _tail(running.log))
        time.sleep(0.5)
