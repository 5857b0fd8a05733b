"""The alerting core (`netwatch run --role core --nats URL`): the runtime without probing.

Probe workers (netwatch.roles.probe) publish observations on the bus; every core consumes the
whole OBSERVATIONS stream into its own memory (collector, latest state, health, history: the
runtime's sinks, exactly as the local engine feeds them), so a standby is *hot*: its health is
current the moment it takes over. One core leads alerting (tickets, outbox, state history) by the
bus lease (`nw_leader`), which works on SQLite and PostgreSQL alike; the others stand by.

* **Each core its own durable consumer** (`core-<name>`), in stream order, one message in
  flight. A batch is applied, its stream sequence remembered, then acknowledged; a message
  redelivered at or below the last applied sequence (an ack lost, a consumer re-bound after a
  bus hiccup) is acknowledged and skipped: nothing counted twice. A core restarted under the
  same name continues after its last acknowledged message: nothing lost.
* Full rounds go to every sink, fast rounds (subjects ending ``.fast``) to the fast sinks (latest
  state, health), round reports to every sink's ``round_done`` (netwatch_rounds_total & co.).
* **Leadership** (`LeaseLeader`): the lease is renewed every TTL / 3; a leader that cannot renew
  (the bus gone, the key taken) steps down at once, and in any case once 2/3 of the TTL passed
  since its last renewal: before the server could give the key to another core. A standby tries
  every second and wakes alerting when it wins. docs/architecture.md: why the lease.

The core has a web of its own (uvicorn around netwatch.web.app: /metrics, /healthz/leader, the
admin view and the API); the public pages are the web workers' (netwatch.roles.web), which hand
people's ticket actions to the leading core over the bus (`serve_ticket_actions`).
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import logging
import os
import re
import socket
import sys
import time
from collections.abc import AsyncIterator, Callable, Iterable, Sequence
from contextlib import asynccontextmanager
from dataclasses import dataclass, field, replace
from datetime import datetime
from pathlib import Path
from typing import TYPE_CHECKING

import nats
import nats.errors
import nats.js.errors
from nats.aio.client import Client as NatsClient
from nats.aio.msg import Msg
from nats.aio.subscription import Subscription
from nats.js import JetStreamContext
from nats.js.kv import KeyValue
from prometheus_client.core import CounterMetricFamily, GaugeMetricFamily, Metric
from prometheus_client.registry import Collector

from alerts.tickets import Refused
from netwatch.bus import wire
from netwatch.bus.auth import TOKEN_ENV, connect_options
from netwatch.bus.cancel import raise_if_cancelled
from netwatch.bus.commands import (
    TICKET_ACTION,
    TicketReply,
    decode_ticket_action,
    encode_ticket_reply,
)
from netwatch.bus.errors import BusErrors
from netwatch.bus.hub import AGENT_HUB_ENV
from netwatch.bus.lease import Lease
from netwatch.bus.setup import ensure_agent_stream
from netwatch.bus.streams import (
    OBSERVATIONS,
    Delivery,
    ObservationConsumer,
    StreamLimits,
    ensure_buckets,
    ensure_stream,
)
from netwatch.inside.cfg import ConfigResponder
from netwatch.inside.feed import AgentFeed, FeedMetrics
from netwatch.inside.hub import AgentHub, HubMetrics
from netwatch.inventory import ConfigError, Inventory
from netwatch.observations import ObservationSink
from netwatch.plan import Plan
from netwatch.runtime import DeskAnswer, Runtime, RuntimeOptions, open_runtime
from netwatch.store.leader import LeaderCheck, LeaderStatus

if TYPE_CHECKING:
    from fastapi import FastAPI

__all__ = [
    "BusFeed",
    "LeaseLeader",
    "core_opener",
    "durable_name",
    "role_app",
    "run_core",
    "serve_ticket_actions",
]

log = logging.getLogger("netwatch.roles.core")

_ACQUIRE_EVERY_S = 1.0  # a standby asks for the lease this often
_BUS_TIMEOUT_S = 2.0  # a lease call that takes longer counts as failed


class LeaseLeader:
    """Alerting's leader (netwatch.store.leader.Leader) on the bus lease.

    A task of its own keeps the lease: renewed every TTL / 3 while held, asked for every second
    while not. `refresh()` (alerting calls it before every evaluation) reads that state and
    refuses leadership once 2/3 of the TTL passed without a renewal, whatever the bus says.
    `on_change` hooks run when the status changes in the background (alerting's wake)."""

    def __init__(
        self,
        lease: Lease,
        ttl_s: float,
        *,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self._lease = lease
        self._ttl_s = ttl_s
        self._clock = clock
        self._status = LeaderStatus.FOLLOWER
        self._reported = LeaderStatus.FOLLOWER  # what the last refresh said: its `changed`
        self._renewed_at: float | None = None
        self._guard = asyncio.Lock()  # one lease call at a time: a CAS must not race itself
        self._task: asyncio.Task[None] | None = None
        self.on_change: list[Callable[[], None]] = []

    @property
    def status(self) -> LeaderStatus:
        """The status as of the last lease call or refresh."""
        return self._status

    @property
    def is_leader(self) -> bool:
        """Whether this core leads, with a lease renewed recently enough to trust."""
        return self._status is LeaderStatus.LEADER and self._fresh()

    @property
    def revision(self) -> int | None:
        """The lease's revision while held: the fencing token."""
        return self._lease.revision

    def _fresh(self) -> bool:
        at = self._renewed_at
        return at is not None and self._clock() - at < self._ttl_s * 2 / 3

    async def refresh(self) -> LeaderCheck:
        """Where this core stands now; takes the lease at once when it is free. `changed` is
        against the previous refresh (the lease task may have moved in between)."""
        if self._task is None:
            self._task = asyncio.create_task(self._keep(), name="netwatch-lease")
        if self._status is not LeaderStatus.LEADER:
            await self._step()
        elif not self._fresh():
            self._lost(LeaderStatus.DISCONNECTED, "not renewed in time")
        before, self._reported = self._reported, self._status
        return LeaderCheck(self._status, self._status is not before)

    async def _keep(self) -> None:
        while True:
            wait = self._ttl_s / 3 if self._status is LeaderStatus.LEADER else _ACQUIRE_EVERY_S
            await asyncio.sleep(wait)
            before = self._status
            await self._step()
            raise_if_cancelled()  # a renewal's wait_for may have lost a stop (bus/cancel.py)
            if self._status is not before:
                for hook in self.on_change:
                    hook()

    async def _step(self) -> None:
        """Renew the lease we hold (when due), or try to take it."""
        async with self._guard:
            holding = self._status is LeaderStatus.LEADER
            last = self._renewed_at
            if holding and last is not None and self._clock() - last < self._ttl_s / 3 - 0.05:
                return  # renewed a moment ago (refresh and the task both came)
            started = self._clock()
            try:
                call = self._lease.renew() if holding else self._lease.try_acquire()
                ok = await asyncio.wait_for(call, _BUS_TIMEOUT_S)
            except (TimeoutError, nats.errors.Error, nats.js.errors.Error) as exc:
                if holding:
                    self._lease.revision = None  # unknown now: never CAS on it again
                    self._lost(LeaderStatus.DISCONNECTED, repr(exc))
                else:
                    self._status = LeaderStatus.DISCONNECTED
                return
            if ok:
                if not holding:
                    log.warning(
                        "leader lease taken holder=%s revision=%s",
                        self._lease.holder,
                        self._lease.revision,
                    )
                self._status = LeaderStatus.LEADER
                self._renewed_at = started  # the lease runs from when we asked
            elif holding:
                self._lost(LeaderStatus.FOLLOWER, "expired or taken by another core")
            else:
                self._status = LeaderStatus.FOLLOWER

    def _lost(self, status: LeaderStatus, why: str) -> None:
        log.error("leader lease lost holder=%s reason=%s: alerting stops", self._lease.holder, why)
        self._status = status
        self._renewed_at = None

    async def release(self) -> None:
        """Stop keeping the lease and free it at once (a clean stop: no TTL to wait)."""
        task, self._task = self._task, None
        if task is not None:
            task.cancel()
            await asyncio.gather(task, return_exceptions=True)
        async with self._guard:
            with contextlib.suppress(TimeoutError, nats.errors.Error, nats.js.errors.Error):
                await asyncio.wait_for(self._lease.release(), _BUS_TIMEOUT_S)
            self._status = LeaderStatus.FOLLOWER
            self._renewed_at = None


@dataclass(slots=True)
class FeedCounts:
    """What a core took from the stream (its /metrics: netwatch_core_*)."""

    messages: int = 0  # applied
    observations: dict[tuple[str, bool], int] = field(default_factory=dict)  # (kind, fast)
    reports: dict[str, int] = field(default_factory=dict)
    unknown: int = 0  # observations of subjects this core's plan does not know
    skipped: int = 0  # redelivered at or below the last applied sequence: not applied again
    rejected: int = 0  # undecodable messages (terminated)
    # What consumers bound before the current one skipped and rejected.
    skipped_before: int = 0
    rejected_before: int = 0
    failed: int = 0  # messages a sink raised on (logged; the batch is lost to this core)
    last_seq: int = 0  # the stream sequence of the last applied message


class BusFeed:
    """The runtime's ObservationFeed from the OBSERVATIONS stream (one durable per core).

    A web worker's feed (netwatch.roles.web) starts by time instead (`start_time`: the last
    minutes, enough to warm health up), under a name that is its own for this process's life
    (`fresh`: a consumer left under that name by an earlier run is deleted first, its
    position meant nothing to this memory) and goes away when idle (`inactive_threshold_s`)."""

    def __init__(
        self,
        js: JetStreamContext,
        index: wire.PlanIndex,
        durable: str,
        *,
        start_time: datetime | None = None,
        inactive_threshold_s: float | None = None,
        fresh: bool = False,
    ) -> None:
        self._js = js
        self._index = index
        self.durable = durable
        self._start_time = start_time
        self._inactive_threshold_s = inactive_threshold_s
        self._fresh = fresh
        self.counts = FeedCounts()
        self._consumer: ObservationConsumer | None = None

    def reindex(self, plan: Plan) -> None:
        """A reloaded plan: observations are resolved against it from the next message on
        (subjects it does not know are counted as unknown and dropped)."""
        self._index = wire.PlanIndex.from_plan(plan)
        if self._consumer is not None:
            self._consumer.index = self._index

    async def _forget_earlier(self) -> None:
        """Delete a consumer an earlier process left under our name (once, at the first bind)."""
        if not self._fresh:
            return
        with contextlib.suppress(nats.js.errors.NotFoundError):
            await self._js.delete_consumer(OBSERVATIONS, self.durable)
        self._fresh = False

    async def run(
        self, sinks: Sequence[ObservationSink], fast_sinks: Sequence[ObservationSink]
    ) -> None:
        """Apply every message in order, forever; a bus failure re-binds after a pause."""
        delay = 0.5
        while True:
            consumer = ObservationConsumer(
                self._js,
                self._index,
                durable=self.durable,
                after_seq=self.counts.last_seq,
                start_time=self._start_time,
                inactive_threshold_s=self._inactive_threshold_s,
            )
            self._consumer = consumer
            try:
                await self._forget_earlier()
                async for delivery in consumer.deliveries():
                    self._tally(consumer)
                    self._apply_safely(delivery, sinks, fast_sinks)
                    self.counts.last_seq = consumer.after_seq = delivery.stream_seq
                    await delivery.ack()
                    delay = 0.5
            except (nats.errors.Error, nats.js.errors.Error, TimeoutError) as exc:
                log.warning("observation feed interrupted error=%r; again in %.1f s", exc, delay)
            except Exception:  # a bug here must not leave the core deaf: log, re-bind
                log.exception("observation feed failed; again in %.1f s", delay)
            finally:
                self._tally(consumer)
                self.counts.skipped_before = self.counts.skipped
                self.counts.rejected_before = self.counts.rejected
                with contextlib.suppress(Exception):
                    await asyncio.wait_for(consumer.close(), _BUS_TIMEOUT_S)
            await asyncio.sleep(delay)
            delay = min(delay * 2, 10.0)

    def _tally(self, consumer: ObservationConsumer) -> None:
        self.counts.skipped = self.counts.skipped_before + consumer.skipped
        self.counts.rejected = self.counts.rejected_before + consumer.rejected

    def _apply_safely(
        self,
        delivery: Delivery,
        sinks: Sequence[ObservationSink],
        fast_sinks: Sequence[ObservationSink],
    ) -> None:
        """Apply one message; a sink that raises loses that batch, logged, never the stream
        (a message that fails the same way every time would otherwise stop the core for good)."""
        try:
            self._apply(delivery.batch, sinks, fast_sinks)
        except Exception:
            self.counts.failed += 1
            log.exception(
                "observation batch not applied subject=%s seq=%d",
                delivery.subject,
                delivery.stream_seq,
            )

    def _apply(
        self,
        batch: wire.Batch,
        sinks: Sequence[ObservationSink],
        fast_sinks: Sequence[ObservationSink],
    ) -> None:
        c = self.counts
        c.messages += 1
        c.unknown += batch.unknown
        if batch.report is not None:
            c.reports[batch.kind] = c.reports.get(batch.kind, 0) + 1
            for sink in sinks:
                sink.round_done(batch.report)
            return
        if not batch.observations:  # all of subjects we do not know: not an empty round
            return
        key = (batch.kind, batch.fast)
        c.observations[key] = c.observations.get(key, 0) + len(batch.observations)
        for sink in fast_sinks if batch.fast else sinks:
            sink.observe(batch.observations)


class CoreMetrics(Collector):
    """The core's own series: what it applied from the stream, and whether it leads."""

    def __init__(self, feed: BusFeed, leader: LeaseLeader) -> None:
        self._feed = feed
        self._leader = leader

    def collect(self) -> Iterable[Metric]:
        c = self._feed.counts
        applied = CounterMetricFamily(
            "netwatch_core_observations_applied",
            "Observations this core applied from the bus, by kind; fast: confirmation rounds",
            labels=["kind", "fast"],
        )
        for (kind, fast), n in sorted(c.observations.items()):
            applied.add_metric([kind, "true" if fast else "false"], n)
        yield applied
        reports = CounterMetricFamily(
            "netwatch_core_round_reports_applied", "Round reports applied, by kind", labels=["kind"]
        )
        for kind, n in sorted(c.reports.items()):
            reports.add_metric([kind], n)
        yield reports
        for name, doc, value in (
            ("messages_applied", "Bus messages applied", c.messages),
            ("messages_skipped", "Redelivered messages skipped (applied before)", c.skipped),
            ("messages_rejected", "Undecodable bus messages dropped", c.rejected),
            ("messages_failed", "Bus messages a sink failed on (see the log)", c.failed),
            ("observations_unknown", "Observations of subjects not in this plan", c.unknown),
        ):
            yield CounterMetricFamily(f"netwatch_core_{name}", doc, value=value)
        yield GaugeMetricFamily(
            "netwatch_core_stream_sequence",
            "Stream sequence of the last message applied",
            value=c.last_seq,
        )
        yield GaugeMetricFamily(
            "netwatch_core_leader",
            "1 while this core leads alerting (holds the bus lease), else 0",
            value=1 if self._leader.is_leader else 0,
        )


async def serve_ticket_actions(nc: NatsClient, runtime: Runtime) -> Subscription:
    """Answer web workers' ticket actions (``nw.cmd.v1.ticket.action``, docs/bus.md) while this
    core leads alerting; a core that does not lead stays silent, so the leader's answer is the
    only one (none at all: the web worker says "standby")."""

    async def on_action(msg: Msg) -> None:
        try:
            action = decode_ticket_action(msg.data)
        except wire.WireError as exc:
            log.warning("ticket action unreadable error=%s", exc)
            return
        if not runtime.alerting.is_leader or not msg.reply:
            return
        try:
            result = await runtime.desk.act(
                action.action, action.ticket, action.actor, action.at, action.text
            )
        except Exception:  # the store failed: no answer, the web worker says "try again"
            log.exception("ticket action failed ticket=%s action=%s", action.ticket, action.action)
            return
        if result is DeskAnswer.STANDBY:  # stepped down meanwhile
            return
        refusal = result.reason if isinstance(result, Refused) else None
        log.info(
            "ticket action from a web worker ticket=%s action=%s refused=%s",
            action.ticket,
            action.action,
            refusal.value if refusal is not None else "no",
        )
        await msg.respond(encode_ticket_reply(TicketReply(refusal)))

    return await nc.subscribe(TICKET_ACTION, cb=on_action)


def durable_name(name: str) -> str:
    """The consumer's durable name for a core called `name` (NATS allows no . * > or space)."""
    return "core-" + re.sub(r"[^A-Za-z0-9_-]", "_", name)


def core_opener(
    nats_urls: Sequence[str], name: str, limits: StreamLimits | None = None
) -> Callable[[Inventory, RuntimeOptions, Plan], contextlib.AbstractAsyncContextManager[Runtime]]:
    """A RuntimeOpener (netwatch.web.app) that feeds the runtime from the bus and leads by the
    lease; `name` names this core's consumer and lease holder (stable across its restarts)."""

    @asynccontextmanager
    async def open_core(
        inventory: Inventory, options: RuntimeOptions, plan: Plan
    ) -> AsyncIterator[Runtime]:
        lim = limits or StreamLimits()
        holder = f"core@{socket.gethostname()}:{os.getpid()} {name}"
        nc = await nats.connect(
            servers=list(nats_urls),
            name=holder,
            max_reconnect_attempts=-1,  # the bus comes back: keep the position, never give up
            reconnect_time_wait=0.5,
            error_cb=BusErrors(log).error,
            **connect_options(),
        )
        try:
            js = nc.jetstream()
            await ensure_stream(js, lim)
            await ensure_agent_stream(js, lim)
            buckets = await ensure_buckets(js, lim)
            leader = LeaseLeader(Lease(buckets.leader, holder), lim.leader_ttl_s)
            feed = BusFeed(js, wire.PlanIndex.from_plan(plan), durable_name(name))
            core = replace(options, probing=False, feed=feed, leader=leader)
            async with open_runtime(inventory, core, plan=plan) as runtime:
                leader.on_change.append(runtime.alerting.wake)
                runtime.plan_hooks.append(feed.reindex)
                runtime.registry.register(CoreMetrics(feed, leader))
                await serve_ticket_actions(nc, runtime)
                log.info("core started name=%s consumer=%s nats=%s", name, feed.durable, nc)
                async with _agents(nc, runtime, name, buckets.state, nats_urls):
                    yield runtime
        finally:
            with contextlib.suppress(Exception):
                await asyncio.wait_for(nc.close(), 5.0)

    return open_core


@asynccontextmanager
async def _agents(
    nc: NatsClient, runtime: Runtime, name: str, state: KeyValue, nats_urls: Sequence[str]
) -> AsyncIterator[None]:
    """The core's side of the commune agents (docs/agent-centre.md): their rounds and heartbeats
    to the inside sinks, their configuration requests answered, and (with a hub for agents)
    their users kept in step with the credentials."""
    feed = AgentFeed(
        nc, runtime.inside_sinks, durable=f"agents-{durable_name(name)}", seq_store=state
    )
    await feed.start()
    runtime.registry.register(FeedMetrics(feed))
    responder = ConfigResponder(runtime.inventory)
    runtime.inventory_hooks.append(responder.reload)
    answering = await responder.serve(nc)
    hub: AgentHub | None = None
    stop = asyncio.Event()
    keeping: asyncio.Task[None] | None = None
    hub_dir = os.environ.get(AGENT_HUB_ENV, "").strip()
    token = os.environ.get(TOKEN_ENV, "").strip()
    if hub_dir and token:
        hub = AgentHub(runtime.store, Path(hub_dir), token)
        await hub.open(nats_urls[0])
        runtime.registry.register(HubMetrics(hub))
        keeping = asyncio.create_task(hub.run(stop), name="netwatch-agent-hub")
    try:
        yield
    finally:
        stop.set()
        if keeping is not None:
            await asyncio.gather(keeping, return_exceptions=True)
        if hub is not None:
            await hub.close()
        with contextlib.suppress(Exception):
            await answering.unsubscribe()
        await feed.stop()


OpenerFactory = Callable[
    [Sequence[str], str, StreamLimits | None],
    Callable[[Inventory, RuntimeOptions, Plan], contextlib.AbstractAsyncContextManager[Runtime]],
]


def role_app(
    args: argparse.Namespace, role: str, name: str, opener: OpenerFactory
) -> FastAPI | int:
    """The web app of a role on the bus (core, web) from its arguments: a FastAPI app, or the
    exit status (2 without --nats, 1 for a bad config) after saying why."""
    from netwatch.web.app import create_app

    if not args.nats:
        print(f"netwatch run --role {role}: --nats URL is required", file=sys.stderr)
        return 2
    from netwatch.roles.supervisor import SUPERVISOR_PID_ENV
    from netwatch.web.reload import enable_reload

    try:
        app = create_app(
            args.config,
            data_dir=Path(args.data_dir),
            database_url=args.database_url or None,
            opener=opener(args.nats.split(","), name, StreamLimits(replicas=args.bus_replicas)),
        )
    except ConfigError as exc:
        print(exc, file=sys.stderr)
        return 1
    # SIGHUP reloads the file (the supervisor passes it on); the API asks the supervisor.
    supervisor = os.environ.get(SUPERVISOR_PID_ENV)
    enable_reload(app, args.config, sighup=True, supervisor=int(supervisor) if supervisor else None)
    return app


def run_core(args: argparse.Namespace) -> int:
    """`netwatch run --role core`: the runtime fed by the bus, its own web on --listen."""
    import uvicorn

    from netwatch.web.edge import edge_options, server_config

    host, port = args.listen_host, args.listen_port
    app = role_app(args, "core", args.name or f"{socket.gethostname()}-{port}", core_opener)
    if isinstance(app, int):
        return app
    config = server_config(app, edge_options(args), host=host, port=port, log_level=args.log_level)
    server = uvicorn.Server(config)
    fd = getattr(args, "listen_fd", None)
    # The supervisor's socket (bound once for its lifetime), else uvicorn binds --listen.
    server.run(sockets=[socket.socket(fileno=fd)] if fd is not None else None)
    # uvicorn returns (does not raise) when it cannot bind or the lifespan failed: a supervisor
    # must see that as a crash.
    return 0 if server.started else 1
