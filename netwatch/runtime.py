"""The composition root: every long-lived part of a running NetWatch, built in one place.

`open_runtime` builds the whole runtime — inventory, plan, latest state, health, engine, store,
alerting (with its leader lock and path tracer), history and rollups, the utilization buckets,
the outbox worker, the metrics — starts its background work, and hands out one finished,
immutable `Runtime`; on the way out it stops everything in reverse order. Nothing is published
half-built: whoever holds a `Runtime` may use every field of it. The web (netwatch.web.app) only
wraps this context manager in its lifespan; probes are wired here, never in the web package (an
import contract says so).

What is legitimately optional is typed as such and decided here, once: with probing off there
is no pinger, SNMP poller or HTTP prober in the engine and no path tracer in alerting, and a
machine without ICMP permission runs without the pinger (logged once, with its fix).

Observations come from the engine's own rounds (`netwatch run --role all`, every test), or from
a **feed** (`RuntimeOptions.feed`): the alerting core (netwatch.roles.core) consumes what probe
workers publish on the bus and hands each batch to the very sinks the engine would feed. The
engine then has no probe clients and runs no round; alerting's leadership is then given too
(`RuntimeOptions.leader`: the bus lease instead of the store's advisory lock).

A **read replica** (`RuntimeOptions.replica`: a web worker, netwatch.roles.web) is fed the same
way and judges the same, but never leads alerting and writes nothing of alerting's (state
history, rollups, outbox); people's ticket actions go through its `desk` to the leading core.
"""

from __future__ import annotations

import asyncio
import contextlib
import enum
import gc
import logging
from collections.abc import AsyncIterator, Callable, Coroutine, Sequence
from contextlib import AsyncExitStack, asynccontextmanager
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any, Protocol

import aiohttp
from prometheus_client import CollectorRegistry, ProcessCollector

from alerts.tickets import Actor, Refused
from netwatch.alerting import Alerting, StoreOutbox, build_channels
from netwatch.bus.commands import ActionName
from netwatch.engine import Engine, EngineOptions
from netwatch.health import HealthMonitor, link_id
from netwatch.history import LinkHistory
from netwatch.inside.judge import InsideJudge, tell_site_tickets
from netwatch.inside.metrics import InsideMetrics
from netwatch.inside.state import InsideSink, InsideState
from netwatch.inventory import Inventory
from netwatch.loopstats import LoopTasks
from netwatch.metrics import MetricsCollector, ignored_packets_family
from netwatch.notify.clock import SystemClock
from netwatch.notify.outbox import OutboxWorker, RetryPolicy
from netwatch.observations import ObservationSink
from netwatch.ops_metrics import OpsMetrics
from netwatch.pathtrace import PathTracer
from netwatch.plan import Plan, compile_plan
from netwatch.reportmail import ReportMailer
from netwatch.state import LatestState
from netwatch.store import Store, open_store
from netwatch.store.leader import Leader, LeaderCheck, LeaderLock, LeaderStatus
from netwatch.store.models import LinkUtilizationRow
from netwatch.store.rollups import Rollups
from netwatch.utilization import LinkUtilization
from probes.http import HttpProber
from probes.icmp import IcmpPinger, IcmpUnavailableError
from probes.snmp import SnmpPoller

log = logging.getLogger("netwatch.runtime")

_Stopper = Callable[[], Coroutine[Any, Any, None]]


class ObservationFeed(Protocol):
    """Observations measured elsewhere (the bus), handed to the runtime's sinks."""

    async def run(
        self, sinks: Sequence[ObservationSink], fast_sinks: Sequence[ObservationSink]
    ) -> None:
        """Feed every batch to `sinks` (fast rounds to `fast_sinks`) until cancelled."""


class DeskAnswer(enum.Enum):
    """A manual ticket action's outcome when it was not refused."""

    DONE = "done"
    STANDBY = "standby"  # nobody that owns the ticket book takes changes now (no leader)


class TicketDesk(Protocol):
    """Where people's ticket actions go: this process's alerting while it leads (`LocalDesk`),
    or the leading core over the bus (a web worker's, netwatch.roles.web)."""

    async def act(
        self, action: ActionName, ticket_id: str, actor: Actor, now: datetime, text: str
    ) -> DeskAnswer | Refused:
        """Acknowledge, resolve or note a ticket; Refused as the ticket book says."""
        ...


class LocalDesk:
    """The desk of a process that owns a ticket book: changes only while it leads."""

    def __init__(self, alerting: Alerting) -> None:
        self._alerting = alerting

    async def act(
        self, action: ActionName, ticket_id: str, actor: Actor, now: datetime, text: str
    ) -> DeskAnswer | Refused:
        alerting = self._alerting
        if not alerting.is_leader:
            # The leading instance owns the ticket book; a change made here would be lost.
            return DeskAnswer.STANDBY
        change = {
            "acknowledge": alerting.acknowledge,
            "resolve": alerting.resolve,
            "note": alerting.note,
        }[action]
        result = await change(ticket_id, actor, now, text)
        return result if isinstance(result, Refused) else DeskAnswer.DONE


class _NeverLeads:
    """A read replica's Leader: it never leads, never holds anything to release."""

    @property
    def is_leader(self) -> bool:
        return False

    async def refresh(self) -> LeaderCheck:
        return LeaderCheck(LeaderStatus.FOLLOWER, changed=False)

    async def release(self) -> None:
        return None


def _never() -> datetime | None:
    return None


@dataclass(frozen=True, slots=True)
class RuntimeOptions:
    """How to build a runtime (what `netwatch run` and the tests choose)."""

    probing: bool = True  # False: no probe sockets at all (tests feed observations by hand)
    engine: EngineOptions = field(default_factory=EngineOptions)
    data_dir: Path = Path("data")  # the embedded SQLite database, when no database_url
    database_url: str | None = None  # PostgreSQL instead of SQLite
    alerting_tick_s: float = 5.0
    retry: RetryPolicy | None = None  # the outbox's retry policy (None: its default)
    # Observations from the bus instead of this process's probes (probing is then off).
    feed: ObservationFeed | None = None
    leader: Leader | None = None  # who leads alerting; None: the store's advisory lock
    # A read replica (a web worker, netwatch.roles.web): the same judgments from the same
    # feed, but it never leads alerting and writes no state history, rollups or outbox; its
    # history is the store's rollups at start, then what the feed brings.
    replica: bool = False
    desk: TicketDesk | None = None  # where ticket actions go; None: this runtime's alerting
    # Since when no core leads alerting (None: one does, or this process cannot tell).
    alerting_paused_since: Callable[[], datetime | None] = _never


@dataclass(frozen=True, slots=True)
class Runtime:
    """A running NetWatch: every part built and started; immutable (its parts have state)."""

    inventory: Inventory
    plan: Plan
    state: LatestState  # the latest observation of every target
    registry: CollectorRegistry  # what /metrics exposes besides the collector's own chunks
    collector: MetricsCollector
    health: HealthMonitor  # judged states and incidents
    engine: Engine
    store: Store
    alerting: Alerting
    history: LinkHistory  # 24 h per-link buckets for the status page
    rollups: Rollups
    # The current hour's per-link utilization buckets for the monthly report, and their table;
    # None on a read replica, which writes none (the core that writes rollups does).
    utilization: LinkUtilization | None
    utilization_rows: Rollups
    outbox: OutboxWorker
    ops: OpsMetrics
    tracer: PathTracer | None  # None with probing off: tickets open without a path trace
    desk: TicketDesk  # where people's ticket actions go (LocalDesk, or the bus's)
    replica: bool  # a read replica: never leads, writes no history (RuntimeOptions.replica)
    alerting_paused_since: Callable[[], datetime | None]  # for the pages (RuntimeOptions)
    # Called with the new plan when the configuration is reloaded (netwatch/reload.py): a bus
    # feed's plan index (netwatch.roles.core, netwatch.roles.web).
    plan_hooks: list[Callable[[Plan], None]] = field(default_factory=list)
    # Called with the new inventory when the configuration is reloaded, before the new Runtime
    # value is published (the commune agents' metrics: labels, expected config revisions; the
    # agents' config responder, netwatch.inside.cfg).
    inventory_hooks: list[Callable[[Inventory], None]] = field(default_factory=list)
    # What the commune agents report (issue 11, docs/agent.md): the latest per agent, and every
    # consumer of their rounds and heartbeats (the first is `inside`; health and metrics add
    # theirs). The bus feed of agent messages hands each message to every sink, in order.
    inside: InsideState = field(default_factory=InsideState)
    inside_sinks: list[InsideSink] = field(default_factory=list)


async def _open_probes(
    stack: AsyncExitStack, plan: Plan
) -> tuple[IcmpPinger | None, SnmpPoller, HttpProber]:
    """The probe clients, closed with the stack; no pinger when ICMP is not permitted."""
    pinger: IcmpPinger | None = None
    try:
        pinger = await stack.enter_async_context(await IcmpPinger.open())
    except IcmpUnavailableError as exc:
        log.error("ICMP probing disabled: %s", exc)
    snmp = await stack.enter_async_context(await SnmpPoller.open())
    http = await stack.enter_async_context(HttpProber())
    http.prepare([job.check for job in plan.portals])
    return pinger, snmp, http


@asynccontextmanager
async def open_runtime(
    inventory: Inventory,
    options: RuntimeOptions | None = None,
    *,
    plan: Plan | None = None,
) -> AsyncIterator[Runtime]:
    """Build and start everything; yield the finished runtime; stop everything on exit."""
    opts = options or RuntimeOptions()
    plan = plan if plan is not None else compile_plan(inventory)
    registry = CollectorRegistry(auto_describe=True)
    ProcessCollector(registry=registry)  # NetWatch's own CPU, memory, open files
    registry.register(LoopTasks())  # and its event loop's tasks
    collector = MetricsCollector(plan)
    collector.register(registry)
    latest = LatestState(plan.intervals())
    health = HealthMonitor(inventory)
    # Buckets are kept in the store for the monthly reports (inventory `reports.history_days`);
    # the status page's chart reads only the last day of them.
    history = LinkHistory(
        [link_id(c.code, k.id) for c in inventory.communes for k in c.links],
        retention_s=inventory.reports.history_days * 86400.0,
    )
    # And the SNMP utilization buckets of the monthly report's p95, kept as long.
    utilization = (
        None
        if opts.replica
        else LinkUtilization(
            [link_id(c.code, k.id) for c in inventory.communes for k in c.links],
            retention_s=inventory.reports.history_days * 86400.0,
        )
    )
    sinks: list[ObservationSink] = [collector, latest, health, history]
    if utilization is not None:
        sinks.append(utilization)
    async with AsyncExitStack() as stack:
        pinger: IcmpPinger | None = None
        snmp: SnmpPoller | None = None
        http: HttpProber | None = None
        if opts.probing and opts.feed is None:
            pinger, snmp, http = await _open_probes(stack, plan)
        engine = Engine(
            plan,
            pinger,
            snmp,
            http,
            sinks,
            opts.engine,
            judge=health,
            fast_sinks=[latest, health],
        )
        if pinger is not None or snmp is not None:
            probes = (pinger, snmp)
            collector.add_families(lambda: [ignored_packets_family(*probes)])
        store = await open_store(opts.database_url, data_dir=opts.data_dir)
        stack.push_async_callback(store.close)
        rollups = Rollups(store)
        await history.load(rollups, datetime.now(UTC))
        utilization_rows = Rollups(store, LinkUtilizationRow)
        if utilization is not None:
            await utilization.load(utilization_rows, datetime.now(UTC))
        # On PostgreSQL a second instance may share the store: one leads alerting.
        leader: Leader
        if opts.replica:
            leader = _NeverLeads()
        else:
            leader = opts.leader if opts.leader is not None else LeaderLock(store.engine)
        stack.push_async_callback(leader.release)
        # A core fed by the bus traces from its own machine (where the probes run, on one).
        traces = not opts.replica and (opts.probing or opts.feed is not None)
        tracer = PathTracer(inventory) if traces else None
        alerting = Alerting(
            inventory,
            store,
            health,
            tick_s=opts.alerting_tick_s,
            leader=leader,
            tracer=tracer,
        )
        if not opts.replica:
            await alerting.start(datetime.now(UTC))
        # Judged states, tickets and the outbox for Prometheus (docs/dashboards.md).
        ops = OpsMetrics(
            inventory,
            plan,
            health,
            ticket_book=lambda: alerting.book,
            outbox_backlog=store.outbox_backlog,
        )
        ops.register(registry, collector)
        # The commune agents' health and the view from inside (issue 11, docs/dashboards.md):
        # read from `inside` at scrape time, in the process that serves /metrics (a read
        # replica's /metrics is the core's, netwatch.web.app: none there).
        inside = InsideState()
        inside_metrics = None if opts.replica else InsideMetrics(inside, inventory)
        if inside_metrics is not None:
            inside_metrics.register(collector.add_families)
        alerting.on_taken_over.append(ops.tickets.baseline)
        session = await stack.enter_async_context(aiohttp.ClientSession())
        channels = build_channels(inventory, session, SystemClock())
        outbox = ops.metered(StoreOutbox(store), channels)  # counts deliveries
        worker = OutboxWorker(outbox, channels, SystemClock(), policy=opts.retry)
        alerting.on_enqueued.append(worker.wake)
        health.on_change.append(alerting.wake)
        runtime = Runtime(
            inventory=inventory,
            plan=plan,
            state=latest,
            registry=registry,
            collector=collector,
            health=health,
            engine=engine,
            store=store,
            alerting=alerting,
            history=history,
            rollups=rollups,
            utilization=utilization,
            utilization_rows=utilization_rows,
            outbox=worker,
            ops=ops,
            tracer=tracer,
            desk=opts.desk if opts.desk is not None else LocalDesk(alerting),
            replica=opts.replica,
            alerting_paused_since=opts.alerting_paused_since,
            inside=inside,
        )
        runtime.inside_sinks.append(runtime.inside)
        if inside_metrics is not None:
            runtime.inventory_hooks.append(inside_metrics.reload)
        # The view from inside judged with the centre's (issue 11, docs/alerting.md).
        judge = InsideJudge(health)
        runtime.inside_sinks.append(judge)
        alerting.before_evaluate.append(judge.tick)
        tell_site_tickets(judge, alerting)
        engine.start()
        stack.push_async_callback(engine.stop)
        if opts.feed is not None:
            stack.push_async_callback(_run_feed(opts.feed, engine, [latest, health]))
        stack.push_async_callback(_run_background(runtime))
        log.info(
            "netwatch started communes=%d icmp_targets=%d routers=%d portals=%d",
            len(inventory.communes),
            len(plan.icmp),
            len(plan.snmp),
            len(plan.portals),
        )
        # What is built by now lives as long as the runtime: keep it out of the cyclic GC's
        # generations, whose full passes would scan it all (100+ ms pauses at national
        # scale, the status pages' p99; docs/status-page.md). Unfrozen on the way out.
        gc.collect()
        gc.freeze()
        try:
            yield runtime
        finally:
            gc.unfreeze()


def _run_feed(
    feed: ObservationFeed, engine: Engine, fast_sinks: Sequence[ObservationSink]
) -> _Stopper:
    """Feed the engine's sinks (the list itself: a sink added later hears too) from elsewhere."""
    task = asyncio.create_task(feed.run(engine.sinks, fast_sinks), name="netwatch-feed")

    async def stop_feed() -> None:
        task.cancel()
        await asyncio.gather(task, return_exceptions=True)

    return stop_feed


async def _follow_the_leader(runtime: Runtime, stop: asyncio.Event) -> None:
    """A replica's stand-in for alerting's loop: the state history is the leader's to write, so
    the transitions health queues for it are dropped (as a standby does), never kept; and the
    leader's last alerting heartbeat in the store is the replica's `last_tick_at` (the admin
    health page's "last evaluation": within the heartbeat's 15 s)."""
    while not stop.is_set():
        runtime.health.drain_transitions()
        try:
            runtime.alerting.last_tick_at = await runtime.store.last_heartbeat()
        except Exception as exc:  # the store is down: the pages say so elsewhere
            log.debug("leader heartbeat not read: %r", exc)
        with contextlib.suppress(TimeoutError):
            await asyncio.wait_for(stop.wait(), 5.0)


def _run_background(runtime: Runtime) -> _Stopper:
    """Start the loops that run beside the rounds; the returned callable stops them."""
    stop = asyncio.Event()
    if runtime.replica:
        replica = [
            asyncio.create_task(_follow_the_leader(runtime, stop), name="netwatch-follow"),
            asyncio.create_task(runtime.ops.run(stop), name="netwatch-ops-metrics"),
        ]

        async def stop_replica() -> None:
            stop.set()
            await asyncio.gather(*replica, return_exceptions=True)

        return stop_replica
    background = [
        asyncio.create_task(runtime.alerting.run(stop), name="netwatch-alerting"),
        asyncio.create_task(runtime.outbox.run(stop), name="netwatch-outbox"),
        asyncio.create_task(runtime.ops.run(stop), name="netwatch-ops-metrics"),
        asyncio.create_task(runtime.history.run(runtime.rollups, stop), name="netwatch-history"),
        # The monthly report, mailed on the 1st at 08:00 by the alerting leader.
        asyncio.create_task(
            ReportMailer(
                runtime.inventory,
                runtime.store,
                runtime.rollups,
                SystemClock(),
                is_leader=lambda: runtime.alerting.is_leader,
                wake=runtime.outbox.wake,
            ).run(stop),
            name="netwatch-report-mail",
        ),
    ]

    if runtime.utilization is not None:
        background.append(
            asyncio.create_task(
                runtime.utilization.run(runtime.utilization_rows, stop), name="netwatch-utilization"
            )
        )

    async def stop_background() -> None:
        stop.set()
        await asyncio.gather(*background, return_exceptions=True)
        try:  # the time NetWatch is stopped counts as unknown, not as the last state
            await runtime.alerting.close(datetime.now(UTC))
        except Exception:
            log.exception("state history not closed at shutdown")

    return stop_background
