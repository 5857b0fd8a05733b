"""The probe worker (`netwatch run --role probe`): measures its shard of the plan and publishes
every round on the bus; judges nothing for alerting, stores nothing.

* The plan is compiled from the config as everywhere else, then cut to this worker's shard
  (`shard_plan`: a commune whole on one shard, national targets on shard 0) and kinds
  (`icmp,http`, `snmp`, or `all`). Only the probe clients of those kinds are opened.
* The existing Engine runs the rounds; a `BusSink` hands them to a bounded buffer drained by a
  publisher task, so a slow or absent bus never delays a round (netwatch/bus/sink.py).
* ICMP keeps fast confirmation: a LOCAL HealthMonitor over the inventory is the Judge, fed the
  worker's own full and fast rounds. Its router polls are NATS requests on
  ``nw.cmd.v1.snmp.poll`` answered by the SNMP worker that owns the router
  (netwatch/bus/commands.py); no answer in time means no router poll, as without SNMP.
* An SNMP worker answers those requests for its own routers: it polls at once, publishes the
  poll on the ``.fast`` subject and answers with the same poll.
* Its own /metrics (`--metrics-listen`): process, rounds, publishing, router-poll requests,
  labelled ``role="probe"`` and ``shard``; an address it cannot bind costs the metrics (logged),
  never the probing.
* SIGTERM / SIGINT: the engine stops, what is queued is flushed (bounded), the connection is
  closed, exit 0.

Docs: docs/bus.md, "Probe workers".
"""

from __future__ import annotations

import asyncio
import logging
import signal
import sys
from collections import Counter
from collections.abc import Coroutine, Iterator, Sequence
from contextlib import AsyncExitStack
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any, Final, get_args
from wsgiref.simple_server import WSGIServer

import nats
import nats.errors
from nats.aio.client import Client
from nats.aio.msg import Msg
from prometheus_client import CollectorRegistry, ProcessCollector, start_http_server
from prometheus_client.core import CounterMetricFamily, GaugeMetricFamily, Metric
from prometheus_client.registry import Collector

from alerts.subject import SubjectKey
from netwatch.bus import commands, wire
from netwatch.bus.auth import connect_options
from netwatch.bus.cancel import raise_if_cancelled
from netwatch.bus.sink import BusSink
from netwatch.bus.streams import ObservationPublisher, StreamLimits, ensure_stream
from netwatch.engine import Engine, EngineOptions
from netwatch.health import HealthMonitor
from netwatch.inventory import ConfigError, Inventory, load_inventory_isolated
from netwatch.loopstats import LoopTasks
from netwatch.metrics import IGNORED_PACKETS, IGNORED_PACKETS_HELP, ignored_packets
from netwatch.observations import Kind, Observation, ObservationSink, RoundReport
from netwatch.plan import Plan, compile_plan, shard_plan
from probes.http import HttpProber
from probes.icmp import IcmpPinger, IcmpUnavailableError
from probes.snmp import SnmpPoller

log = logging.getLogger("netwatch.roles.probe")

KINDS: Final[tuple[Kind, ...]] = get_args(Kind)
ROLE: Final = "probe"


# -- command line values ---------------------------------------------------------------------


def parse_shard(text: str) -> tuple[int, int]:
    """``I/N`` -> (I, N) with 0 <= I < N; ValueError with the reason otherwise."""
    index, sep, count = text.partition("/")
    if not sep or not index.strip().isdigit() or not count.strip().isdigit():
        raise ValueError(f"--shard wants I/N (e.g. 0/2), got {text!r}")
    i, n = int(index), int(count)
    if n < 1 or i >= n:
        raise ValueError(f"--shard {text}: want N >= 1 and 0 <= I < N")
    return i, n


def parse_kinds(text: str) -> frozenset[Kind]:
    """``icmp,http``, ``snmp``, ``all`` ... -> the kinds; ValueError naming a bad one."""
    words = [w.strip() for w in text.split(",") if w.strip()]
    if words == ["all"]:
        return frozenset(KINDS)
    kinds: set[Kind] = set()
    for word in words:
        if word not in KINDS:
            raise ValueError(f"--kinds: unknown kind {word!r} (want {', '.join(KINDS)} or all)")
        kinds.add(word)
    if not kinds:
        raise ValueError("--kinds: give at least one kind (icmp,http | snmp | all)")
    return frozenset(kinds)


def parse_listen(text: str) -> tuple[str, int]:
    """``ADDRESS:PORT`` -> (address, port)."""
    host, _, port = text.rpartition(":")
    if not host or not port.isdigit():
        raise ValueError(f"--metrics-listen wants ADDRESS:PORT, got {text!r}")
    return host.strip("[]"), int(port)


@dataclass(frozen=True, slots=True)
class ProbeOptions:
    """How one probe worker runs."""

    nats: tuple[str, ...]  # server URLs
    shard: int = 0
    shards: int = 1
    kinds: frozenset[Kind] = frozenset(("icmp", "http"))
    metrics_listen: tuple[str, int] | None = None
    engine: EngineOptions = field(default_factory=EngineOptions)
    poll_timeout_s: float = 10.0  # an unanswered router poll request: no poll
    flush_timeout_s: float = 5.0  # at stop, what is queued gets this long to go out
    keep_rounds: int = 4  # per kind while the bus is down; older ones are dropped
    reconnect_s: float = 1.0
    bus_replicas: int | None = None  # the stream's copies when it sets it up (None: as they are)


# -- metrics ---------------------------------------------------------------------------------


class RoundStats:
    """An ObservationSink that only keeps the round reports, for /metrics."""

    def __init__(self) -> None:
        self.last: dict[Kind, RoundReport] = {}
        self.rounds: Counter[Kind] = Counter()
        self.skipped: Counter[Kind] = Counter()

    def observe(self, batch: Sequence[Observation]) -> None:
        """Observations are the bus's business."""
        del batch

    def round_done(self, report: RoundReport) -> None:
        """Count the round and keep its report."""
        self.last[report.kind] = report
        self.rounds[report.kind] += 1
        self.skipped[report.kind] += report.skipped_rounds


class ProbeMetrics(Collector):
    """The worker's families, read at scrape time (from the metrics server's thread)."""

    def __init__(self, worker: ProbeWorker) -> None:
        self._w = worker

    def collect(self) -> Iterator[Metric]:
        """Rounds (the names the single process uses, with role and shard), publishing, and
        router-poll requests."""
        w = self._w
        base = ("role", "shard")
        own = [ROLE, str(w.options.shard)]
        rounds = CounterMetricFamily("netwatch_rounds", "Rounds completed", labels=(*base, "kind"))
        skipped = CounterMetricFamily(
            "netwatch_rounds_skipped",
            "Round slots skipped because a round overran",
            labels=(*base, "kind"),
        )
        duration = GaugeMetricFamily(
            "netwatch_round_duration_seconds", "Duration of the last round", labels=(*base, "kind")
        )
        lag = GaugeMetricFamily(
            "netwatch_round_lag_seconds", "How late the last round started", labels=(*base, "kind")
        )
        for kind, report in sorted(dict(w.stats.last).items()):
            rounds.add_metric([*own, kind], w.stats.rounds[kind])
            skipped.add_metric([*own, kind], w.stats.skipped[kind])
            duration.add_metric([*own, kind], report.duration_s)
            lag.add_metric([*own, kind], report.lag_s)
        # Not netwatch_targets: dashboards sum that over a job's instances, and the core's
        # already counts the whole plan (docs/dashboards.md, "Scrape targets").
        targets = GaugeMetricFamily(
            "netwatch_shard_targets", "Targets of this shard per probe kind", labels=(*base, "kind")
        )
        for name, count in w.plan.counts().items():
            if name in w.options.kinds:
                targets.add_metric([*own, name], count)
        yield from (rounds, skipped, duration, lag, targets)
        yield from self._bus(base, own)
        ignored = CounterMetricFamily(
            IGNORED_PACKETS.removesuffix("_total"),
            IGNORED_PACKETS_HELP,
            labels=(*base, "kind", "reason"),
        )
        engine = w.engine
        if engine is not None:
            for probe, reason, count in ignored_packets(engine.pinger, engine.snmp):
                ignored.add_metric([*own, probe, reason], count)
        yield ignored

    def _bus(self, base: tuple[str, ...], own: list[str]) -> Iterator[Metric]:
        w = self._w
        c = w.sink.counters
        published = _by_round_kind(
            "netwatch_bus_published_rounds",
            "Rounds published on the bus (fast: fast confirmation rounds and router polls)",
            base,
            own,
            c.published_rounds,
        )
        messages = CounterMetricFamily(
            "netwatch_bus_published_messages",
            "Messages acknowledged by the stream",
            labels=(*base, "kind"),
        )
        for kind, n in sorted(dict(c.published_messages).items()):
            messages.add_metric([*own, kind], n)
        dropped = _by_round_kind(
            "netwatch_bus_dropped_rounds",
            "Rounds dropped unpublished (the oldest, while the bus was down)",
            base,
            own,
            c.dropped_rounds,
        )
        errors = CounterMetricFamily(
            "netwatch_bus_publish_errors", "Publish attempts that failed", labels=base
        )
        errors.add_metric(own, c.publish_errors)
        queued = GaugeMetricFamily(
            "netwatch_bus_queued_rounds", "Rounds waiting to be published", labels=base
        )
        queued.add_metric(own, w.sink.queued)
        connected = GaugeMetricFamily(
            "netwatch_bus_connected", "1 while connected to the bus", labels=base
        )
        connected.add_metric(own, 1.0 if w.connected() else 0.0)
        polls = CounterMetricFamily(
            "netwatch_router_poll_requests",
            "Router poll requests: asked (answered, unanswered) or served (polled, not_mine, "
            "bad_request)",
            labels=(*base, "result"),
        )
        for result, n in sorted(dict(w.poll_requests).items()):
            polls.add_metric([*own, result], n)
        yield from (published, messages, dropped, errors, queued, connected, polls)


def _by_round_kind(
    name: str,
    doc: str,
    base: tuple[str, ...],
    own: list[str],
    counts: dict[tuple[Kind, bool], int],
) -> CounterMetricFamily:
    family = CounterMetricFamily(name, doc, labels=(*base, "kind", "fast"))
    for (kind, fast), n in sorted(dict(counts).items()):
        family.add_metric([*own, kind, str(fast).lower()], n)
    return family


# -- the worker ------------------------------------------------------------------------------


class ProbeWorker:
    """One probe worker: its shard's plan, its probe clients, the engine and the bus."""

    def __init__(self, inventory: Inventory, options: ProbeOptions) -> None:
        self.inventory = inventory
        self.options = options
        self.plan: Plan = shard_plan(compile_plan(inventory), options.shard, options.shards)
        self.index = wire.PlanIndex.from_plan(self.plan)
        intervals: dict[Kind, float] = {
            "icmp": self.plan.icmp_interval_s,
            "snmp": self.plan.snmp_interval_s,
            "http": self.plan.http_interval_s,
        }
        self.sink = BusSink(intervals, keep_rounds=options.keep_rounds, connected=self.connected)
        self.stats = RoundStats()
        # The judge of fast confirmation (ICMP, portals): this worker's own, over its rounds.
        judging = bool(options.kinds & {"icmp", "http"})
        self.health = HealthMonitor(inventory) if judging else None
        self.poll_requests: dict[str, int] = {}
        self._routers = {job.key.encoded: job.key for job in self.plan.snmp}
        self._nc: Client | None = None
        self._publisher: ObservationPublisher | None = None
        self._tasks: set[asyncio.Task[None]] = set()
        self.engine: Engine | None = None

    async def reload(self, inventory: Inventory) -> None:
        """A reloaded configuration (SIGHUP, passed on by the supervisor): this shard of the
        new plan is measured from the next round; the local judge keeps what stays. Probe kinds
        whose clients were not opened at start (no target then) need a restart."""
        plan = shard_plan(compile_plan(inventory), self.options.shard, self.options.shards)
        self.inventory = inventory
        self.plan = plan
        self.index = wire.PlanIndex.from_plan(plan)
        if self._publisher is not None:
            self._publisher.index = self.index
        self._routers = {job.key.encoded: job.key for job in plan.snmp}
        if self.health is not None:
            self.health.reload(inventory, datetime.now(UTC))
            self.health.drain_transitions()  # the core writes the state history, not we
        if self.engine is not None:
            await self.engine.reload(plan)
        log.warning(
            "probe worker reloaded shard=%d/%d icmp=%d routers=%d portals=%d",
            self.options.shard,
            self.options.shards,
            len(plan.icmp),
            len(plan.snmp),
            len(plan.portals),
        )

    def connected(self) -> bool:
        """Connected to the bus now."""
        return self._nc is not None and self._nc.is_connected

    def _count(self, result: str) -> None:
        self.poll_requests[result] = self.poll_requests.get(result, 0) + 1

    async def _open_probes(
        self, stack: AsyncExitStack
    ) -> tuple[IcmpPinger | None, SnmpPoller | None, HttpProber | None]:
        kinds = self.options.kinds
        pinger: IcmpPinger | None = None
        snmp: SnmpPoller | None = None
        http: HttpProber | None = None
        if "icmp" in kinds and self.plan.icmp:
            try:
                pinger = await stack.enter_async_context(await IcmpPinger.open())
            except IcmpUnavailableError as exc:
                log.error("ICMP probing disabled: %s", exc)
        if "snmp" in kinds and self.plan.snmp:
            snmp = await stack.enter_async_context(await SnmpPoller.open())
        if "http" in kinds and self.plan.portals:
            http = await stack.enter_async_context(HttpProber())
            http.prepare([job.check for job in self.plan.portals])
        return pinger, snmp, http

    async def run(self, stop: asyncio.Event) -> None:
        """Probe and publish until `stop` is set; then stop, flush (bounded) and close."""
        o = self.options
        async with AsyncExitStack() as stack:
            pinger, snmp, http = await self._open_probes(stack)
            sinks: list[ObservationSink] = [self.sink, self.stats]
            fast: list[ObservationSink] = [self.sink.fast]
            if self.health is not None:
                sinks.append(self.health)
                fast.append(self.health)
            self.engine = Engine(
                self.plan,
                pinger,
                snmp,
                http,
                sinks,
                o.engine,
                judge=self.health,
                fast_sinks=fast,
                router_poller=self._poll_here if snmp is not None else self._ask_router_poll,
            )
            self._spawn(self._connect(), "netwatch-probe-connect")
            publisher = asyncio.create_task(
                self.sink.run(lambda: self._publisher), name="netwatch-probe-publish"
            )
            self.engine.start()
            log.info(
                "probe worker started shard=%d/%d kinds=%s icmp=%d routers=%d portals=%d",
                o.shard,
                o.shards,
                ",".join(sorted(o.kinds)),
                len(self.plan.icmp) if pinger else 0,
                len(self.plan.snmp) if snmp else 0,
                len(self.plan.portals) if http else 0,
            )
            try:
                await stop.wait()
            finally:
                await self.engine.stop()
                await self._flush(publisher)
                await self._cancel_tasks()
                if self._nc is not None:
                    await self._nc.close()
        log.info("probe worker stopped shard=%d/%d", o.shard, o.shards)

    async def _flush(self, publisher: asyncio.Task[None]) -> None:
        if self.connected():  # also waits for a round in flight (not in `queued` any more)
            try:
                await asyncio.wait_for(self.sink.drain(), self.options.flush_timeout_s)
            except TimeoutError:
                log.warning("stopped with %d rounds unpublished", self.sink.queued)
        publisher.cancel()
        await asyncio.gather(publisher, return_exceptions=True)

    def _spawn(self, coro: Coroutine[Any, Any, None], name: str) -> None:
        task = asyncio.create_task(coro, name=name)
        self._tasks.add(task)
        task.add_done_callback(self._tasks.discard)

    async def _cancel_tasks(self) -> None:
        tasks = list(self._tasks)
        for task in tasks:
            task.cancel()
        await asyncio.gather(*tasks, return_exceptions=True)

    # -- the bus connection -------------------------------------------------------------------

    async def _connect(self) -> None:
        """Connect (again and again until the bus answers), set up the stream, subscribe."""
        o = self.options
        warned = False
        while True:
            try:
                nc = await nats.connect(
                    list(o.nats),
                    name=f"netwatch-probe-{o.shard}-of-{o.shards}-{'-'.join(sorted(o.kinds))}",
                    allow_reconnect=True,
                    max_reconnect_attempts=-1,
                    reconnect_time_wait=o.reconnect_s,
                    connect_timeout=2,
                    error_cb=_quiet,
                    **connect_options(),
                )
                break
            except (OSError, TimeoutError, nats.errors.Error) as exc:
                raise_if_cancelled()
                if not warned:
                    log.warning("bus not reachable at start (%s): probing, buffering", exc)
                    warned = True
                await asyncio.sleep(o.reconnect_s)
        self._nc = nc
        js = nc.jetstream()
        while True:
            try:
                await ensure_stream(js, StreamLimits(replicas=o.bus_replicas))
                break
            except (TimeoutError, nats.errors.Error) as exc:
                raise_if_cancelled()
                log.info("stream not set up yet: %r", exc)
                await asyncio.sleep(o.reconnect_s)
        self._publisher = ObservationPublisher(
            js, self.index, o.shard, ack_timeout_s=2.0, attempts=2
        )
        if "snmp" in o.kinds and self._routers:
            await nc.subscribe(
                commands.SNMP_POLL,
                queue=commands.snmp_queue_group(o.shard, o.shards),
                cb=self._serve_poll,
            )
        log.info("connected to the bus at %s", nc.connected_url.netloc if nc.connected_url else "?")

    # -- router polls over the bus ------------------------------------------------------------

    async def _ask_router_poll(self, key: SubjectKey) -> None:
        """The confirmer's router poll: ask the SNMP worker that owns the router. No answer in
        time, no SNMP worker, no bus: no router poll (as when SNMP is absent)."""
        nc = self._nc
        if nc is None or not nc.is_connected:
            self._count("unanswered")
            return
        try:
            msg = await nc.request(
                commands.SNMP_POLL,
                commands.encode_poll_request(key.encoded),
                timeout=self.options.poll_timeout_s,
            )
            reply = commands.decode_poll_reply(msg.data)
            batch = wire.decode(reply.batch, self.index) if reply.batch else None
        except (nats.errors.Error, wire.WireError) as exc:
            self._count("unanswered")
            log.info("router poll not answered router=%s: %r", key, exc)
            return
        self._count("answered")
        if batch is not None and self.health is not None:
            self.health.observe(batch.observations)  # the local judge sees the poll too

    async def _poll_here(self, key: SubjectKey) -> None:
        """The confirmer's router poll when this worker polls routers itself (`--kinds all`):
        published as a fast observation, like one asked for over the bus, and judged here."""
        assert self.engine is not None
        obs = await self.engine.poll_router(key)
        if obs is not None:
            self.sink.observe_fast([obs])
            if self.health is not None:
                self.health.observe([obs])

    async def _serve_poll(self, msg: Msg) -> None:
        """A poll request: this shard's router is polled at once (in a task of its own, so
        requests do not queue behind each other); another's is left to its owner."""
        try:
            router = commands.decode_poll_request(msg.data)
        except wire.WireError as exc:
            self._count("bad_request")
            log.info("poll request refused: %s", exc)
            return
        key = self._routers.get(router)
        if key is None:
            self._count("not_mine")
            return
        self._spawn(self._poll_and_answer(key, msg), f"netwatch-poll-{router}")

    async def _poll_and_answer(self, key: SubjectKey, msg: Msg) -> None:
        assert self.engine is not None
        obs = await self.engine.poll_router(key)
        if obs is None:
            return
        self._count("polled")
        self.sink.observe_fast([obs])  # to the core, on the .snmp.fast subject
        failure = obs.sample.failure
        batch = wire.encode_observations(
            "snmp",
            [obs],
            round_id=int(datetime.now(UTC).timestamp() * 1000),
            shard=self.options.shard,
            sent_at=datetime.now(UTC),
            fast=True,
        )
        reply = commands.PollReply(
            key.encoded,
            self.options.shard,
            ok=failure is None,
            failure=None if failure is None else failure.value,
            batch=batch,
        )
        try:
            await msg.respond(commands.encode_poll_reply(reply))
        except nats.errors.Error as exc:
            log.info("poll answer not sent router=%s: %r", key, exc)


async def _quiet(exc: Exception) -> None:
    """nats-py's connection errors: the sink logs an outage once, not every retry."""
    log.debug("bus connection: %r", exc)


# -- entry point -----------------------------------------------------------------------------


def metrics_server(
    worker: ProbeWorker, listen: tuple[str, int], loop: asyncio.AbstractEventLoop
) -> WSGIServer | None:
    """The worker's /metrics, served from a thread; None (logged) when the address is taken:
    that costs the metrics, never the probing."""
    registry = CollectorRegistry(auto_describe=True)
    ProcessCollector(registry=registry)
    registry.register(ProbeMetrics(worker))
    registry.register(LoopTasks(loop))
    host, port = listen
    try:
        server, _thread = start_http_server(port, addr=host, registry=registry)
    except OSError as exc:
        log.error("metrics not served on %s:%d: %s; probing without them", host, port, exc)
        return None
    return server


async def _reload(worker: ProbeWorker, config: Path) -> None:
    """SIGHUP: read the file again; a bad one keeps the running plan (every mistake logged)."""
    try:
        loaded = await asyncio.to_thread(load_inventory_isolated, config)
    except ConfigError as exc:
        log.error("configuration not reloaded, the running one stays file=%s", config)
        for issue in exc.issues:
            log.error("configuration error %s", issue)
        return
    await worker.reload(loaded)


async def serve(inventory: Inventory, options: ProbeOptions, config: Path | None = None) -> None:
    """Run a probe worker until SIGTERM or SIGINT (SIGHUP: reload `config`); its metrics
    server with it."""
    worker = ProbeWorker(inventory, options)
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGTERM, signal.SIGINT):
        loop.add_signal_handler(sig, stop.set)
    reloads: set[asyncio.Task[None]] = set()
    one_at_a_time = asyncio.Lock()
    if config is not None:

        async def reload(path: Path) -> None:
            async with one_at_a_time:  # two SIGHUPs in a row: one reload after the other
                await _reload(worker, path)

        def on_sighup() -> None:
            task = loop.create_task(reload(config), name="netwatch-probe-reload")
            reloads.add(task)
            task.add_done_callback(reloads.discard)

        loop.add_signal_handler(signal.SIGHUP, on_sighup)
    metrics = None
    if options.metrics_listen is not None:
        metrics = metrics_server(worker, options.metrics_listen, loop)
    try:
        await worker.run(stop)
    finally:
        for sig in (signal.SIGTERM, signal.SIGINT, signal.SIGHUP):
            loop.remove_signal_handler(sig)
        for task in reloads:
            task.cancel()
        if metrics is not None:
            metrics.shutdown()
            metrics.server_close()


def run(config: str | Path, options: ProbeOptions) -> int:
    """`netwatch run --role probe`: load the config, serve; 0 on a clean stop."""
    try:
        inventory = load_inventory_isolated(config)  # keeps only the result: see its doc
    except ConfigError as exc:
        print(exc, file=sys.stderr)
        return 1
    asyncio.run(serve(inventory, options, Path(config)))
    return 0
