"""A web worker (`netwatch run --role web --nats URL --listen HOST:PORT`): the pages, read-only.

A web worker is a **read replica** of the alerting core: the same runtime with probing off, fed
from the OBSERVATIONS stream by a consumer of its own, judging what the core judges; it never
leads alerting and writes nothing of alerting's (netwatch.runtime, `RuntimeOptions.replica`).
Several run side by side on one port (SO_REUSEPORT: the kernel spreads connections over them),
so a crowd on the status page never shares a loop with the core's alerting or the probes.

* **Its feed starts by time**: ``web-<name>``, delivering from now minus a warm-up (10 ICMP
  rounds, 3 SNMP and HTTP rounds, then back to a 5-minute chart bucket's start) so its health
  has judged the same recent rounds as the core's when it starts answering; deleted first if an
  earlier run left it, and removed by the server once nobody fetched from it for a minute (a
  SIGKILLed web worker leaves nothing behind).
* **Ticket actions go to the leading core** over the bus (`BusDesk`: ``nw.cmd.v1.ticket.action``,
  netwatch.bus.commands); no core leads: 503 "standby", as on a standby instance.
  Maintenance windows and tokens are the store's: written directly, as before.
* **Whether a core leads** (`LeaseWatch`, the ``nw_leader`` lease polled every second): the
  status and admin pages say since when alerting is paused while nobody does.
* Without the core, pages keep answering from the stream (probe workers still publish); when
  the probe workers stop too, the pages show when the data was measured.
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
from collections.abc import AsyncIterator, Callable, Sequence
from contextlib import asynccontextmanager
from dataclasses import replace
from datetime import UTC, datetime, timedelta

import nats
import nats.errors
import nats.js.errors
from nats.aio.client import Client as NatsClient
from nats.js.kv import KeyValue

from alerts.tickets import Actor, Refused
from netwatch.bus import wire
from netwatch.bus.auth import connect_options
from netwatch.bus.cancel import raise_if_cancelled
from netwatch.bus.commands import (
    TICKET_ACTION,
    ActionName,
    TicketAction,
    decode_ticket_reply,
    encode_ticket_action,
)
from netwatch.bus.errors import BusErrors
from netwatch.bus.lease import Lease
from netwatch.bus.setup import ensure_agent_stream
from netwatch.bus.streams import StreamLimits, ensure_buckets, ensure_stream
from netwatch.history import BUCKET_S
from netwatch.inside.feed import AgentFeed
from netwatch.inventory import Inventory
from netwatch.plan import Plan
from netwatch.roles.core import BusFeed, role_app
from netwatch.runtime import DeskAnswer, Runtime, RuntimeOptions, open_runtime

__all__ = [
    "BusDesk",
    "LeaseWatch",
    "consumer_name",
    "reuse_port_socket",
    "run_web",
    "warmup_s",
    "warmup_start",
    "web_opener",
]

log = logging.getLogger("netwatch.roles.web")

WARMUP_ICMP_ROUNDS = 10
INACTIVE_THRESHOLD_S = 60.0  # a web worker's consumer outlives the worker by this much
_WATCH_EVERY_S = 1.0
_ACTION_TIMEOUT_S = 5.0  # the leader's answer (a store write) within this, else "standby"
_LEADERLESS_TIMEOUT_S = 1.5  # the same while the lease says nobody leads (one may just have)


def consumer_name(name: str) -> str:
    """The stream consumer of a web worker called `name` (NATS allows no . * > or space)."""
    return "web-" + re.sub(r"[^A-Za-z0-9_-]", "_", name)


def warmup_s(plan: Plan) -> float:
    """How far back a web worker starts reading: health judges on the last rounds only."""
    return max(
        WARMUP_ICMP_ROUNDS * plan.icmp_interval_s,
        3 * plan.snmp_interval_s,
        3 * plan.http_interval_s,
    )


def warmup_start(now: datetime, plan: Plan) -> datetime:
    """Where a web worker's consumer starts: `warmup_s` back, then back to the start of a
    24 h chart bucket, so that the chart's buckets it rebuilds from the stream are whole (each
    replaces the one restored from the store, which the core wrote from whole buckets)."""
    since = int((now - timedelta(seconds=warmup_s(plan))).timestamp())
    return datetime.fromtimestamp(since - since % BUCKET_S, UTC)


class LeaseWatch:
    """Whether a core leads alerting (the ``nw_leader`` lease), polled every second.

    `paused_since()` is None while a core holds the lease (and before the first look), else
    since when nobody does: the last time this worker saw a holder, or the store's last
    alerting heartbeat (`hint`) if it never saw one, or when it started looking."""

    def __init__(self, kv: KeyValue, *, clock: Callable[[], datetime] | None = None) -> None:
        self._lease = Lease(kv, holder="")
        self._clock = clock or (lambda: datetime.now(UTC))
        self._started = self._clock()
        self._held_at: datetime | None = None  # the last look that found a holder
        self._hint: datetime | None = None
        self.holder: str | None = None
        self.looked = False

    def hint(self, last_alive: datetime | None) -> None:
        """When the leader was last known alive before this worker started (the store's)."""
        self._hint = last_alive

    def paused_since(self) -> datetime | None:
        """Since when no core leads alerting; None while one does (or before the first look)."""
        if not self.looked or self.holder is not None:
            return None
        return self._held_at or self._hint or self._started

    @property
    def leads(self) -> bool:
        """Whether a core held the lease at the last look."""
        return self.holder is not None

    async def look(self) -> None:
        """One look at the lease (a bus error counts as nobody known to lead)."""
        try:
            holder = await asyncio.wait_for(self._lease.holder_now(), 2.0)
        except (TimeoutError, nats.errors.Error, nats.js.errors.Error) as exc:
            log.debug("lease not readable: %r", exc)
            holder = None
        now = self._clock()
        if holder is not None:
            self._held_at = now
        elif self.holder is not None or not self.looked:
            log.warning("no core leads alerting since=%s", self.paused_since() or now)
        self.holder = holder
        self.looked = True

    async def run(self) -> None:
        """Look every second until cancelled."""
        while True:
            await self.look()
            raise_if_cancelled()  # the look's wait_for may have lost a stop (bus/cancel.py)
            await asyncio.sleep(_WATCH_EVERY_S)


class BusDesk:
    """A web worker's TicketDesk: the action goes to the leading core over NATS."""

    def __init__(self, nc: NatsClient, watch: LeaseWatch) -> None:
        self._nc = nc
        self._watch = watch

    async def act(
        self, action: ActionName, ticket_id: str, actor: Actor, now: datetime, text: str
    ) -> DeskAnswer | Refused:
        request = encode_ticket_action(TicketAction(ticket_id, action, actor, now, text))
        timeout = _ACTION_TIMEOUT_S if self._watch.leads else _LEADERLESS_TIMEOUT_S
        try:
            msg = await self._nc.request(TICKET_ACTION, request, timeout=timeout)
        except (nats.errors.NoRespondersError, nats.errors.TimeoutError):
            return DeskAnswer.STANDBY  # no core, or none leads
        except nats.errors.Error as exc:
            log.warning("ticket action not sent ticket=%s error=%r", ticket_id, exc)
            return DeskAnswer.STANDBY
        try:
            reply = decode_ticket_reply(msg.data)
        except wire.WireError as exc:
            log.warning("ticket action answer unreadable ticket=%s error=%s", ticket_id, exc)
            return DeskAnswer.STANDBY
        if reply.refusal is not None:
            return Refused(ticket_id, reply.refusal)
        return DeskAnswer.DONE


def web_opener(
    nats_urls: Sequence[str], name: str, limits: StreamLimits | None = None
) -> Callable[[Inventory, RuntimeOptions, Plan], contextlib.AbstractAsyncContextManager[Runtime]]:
    """A RuntimeOpener (netwatch.web.app): a read replica fed from the bus."""

    @asynccontextmanager
    async def open_web(
        inventory: Inventory, options: RuntimeOptions, plan: Plan
    ) -> AsyncIterator[Runtime]:
        lim = limits or StreamLimits()
        nc = await nats.connect(
            servers=list(nats_urls),
            name=f"web@{socket.gethostname()}:{os.getpid()} {name}",
            max_reconnect_attempts=-1,
            reconnect_time_wait=0.5,
            error_cb=BusErrors(log).error,
            **connect_options(),
        )
        watching: asyncio.Task[None] | None = None
        try:
            js = nc.jetstream()
            await ensure_stream(js, lim)  # a web worker may start before any core
            await ensure_agent_stream(js, lim)
            buckets = await ensure_buckets(js, lim)
            watch = LeaseWatch(buckets.leader)
            await watch.look()
            watching = asyncio.create_task(watch.run(), name="netwatch-lease-watch")
            start = warmup_start(datetime.now(UTC), plan)
            feed = BusFeed(
                js,
                wire.PlanIndex.from_plan(plan),
                consumer_name(name),
                start_time=start,
                inactive_threshold_s=INACTIVE_THRESHOLD_S,
                fresh=True,
            )
            replica = replace(
                options,
                probing=False,
                feed=feed,
                replica=True,
                desk=BusDesk(nc, watch),
                alerting_paused_since=watch.paused_since,
            )
            async with open_runtime(inventory, replica, plan=plan) as runtime:
                runtime.plan_hooks.append(feed.reindex)  # a configuration reload
                with contextlib.suppress(Exception):
                    watch.hint(await runtime.store.last_heartbeat())
                log.info(
                    "web worker started name=%s consumer=%s from=%s",
                    name,
                    feed.durable,
                    start.isoformat(timespec="seconds"),
                )
                # What agents report, for the pages: the newest round per commune, then live.
                agents = AgentFeed(nc, runtime.inside_sinks)
                await agents.start()
                try:
                    yield runtime
                finally:
                    await agents.stop()
        finally:
            if watching is not None:
                watching.cancel()
                await asyncio.gather(watching, return_exceptions=True)
            with contextlib.suppress(Exception):
                await asyncio.wait_for(nc.close(), 5.0)

    return open_web


def reuse_port_socket(host: str, port: int) -> socket.socket:
    """A listening TCP socket other processes may bind too (SO_REUSEPORT: the kernel spreads
    new connections over every process listening on the port).

    Made with protocol IPPROTO_TCP, not 0: asyncio sets TCP_NODELAY only on connections of such
    sockets, and without it a response's header and body writes wait out the peer's delayed ACK
    (40 ms per request, measured: every page took 44 ms, even to a single reader). TCP_NODELAY
    is also set here; Linux hands it down to accepted connections."""
    family = socket.AF_INET6 if ":" in host else socket.AF_INET
    sock = socket.socket(family, socket.SOCK_STREAM, socket.IPPROTO_TCP)
    try:
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEPORT, 1)
        sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        sock.bind((host, port))
        sock.listen(2048)
        sock.setblocking(False)
    except OSError:
        sock.close()
        raise
    return sock


def run_web(args: argparse.Namespace) -> int:
    """`netwatch run --role web`: a read replica serving the web on --listen (SO_REUSEPORT)."""
    import uvicorn

    from netwatch.web.app import fast_pages
    from netwatch.web.edge import edge_options, server_config

    host, port = args.listen_host, args.listen_port
    name = args.name or f"{socket.gethostname()}-{port}-{os.getpid()}"
    app = role_app(args, "web", name, web_opener)
    if isinstance(app, int):
        return app
    try:
        sock = reuse_port_socket(host, port)
    except OSError as exc:
        print(f"netwatch run --role web: cannot listen on {args.listen}: {exc}", file=sys.stderr)
        return 1
    config = server_config(
        fast_pages(app, core_url=getattr(args, "core_url", None)),
        edge_options(args),
        web=app,
        log_level=args.log_level,
        access_log=False,
        lifespan="on",
    )
    server = uvicorn.Server(config)
    with sock:
        asyncio.run(server.serve(sockets=[sock]))
    return 0 if server.started else 1
