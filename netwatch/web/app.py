"""The FastAPI application and its lifespan: the one place long-lived things are built."""

from __future__ import annotations

import asyncio
import gc
import logging
from collections.abc import AsyncIterator
from contextlib import AsyncExitStack, asynccontextmanager
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path

import aiohttp
from fastapi import FastAPI, HTTPException, Request
from fastapi.responses import HTMLResponse, JSONResponse, StreamingResponse
from prometheus_client import (
    CONTENT_TYPE_LATEST,
    CollectorRegistry,
    ProcessCollector,
    generate_latest,
)

from netwatch import __version__
from netwatch.alerting import Alerting, StoreOutbox, build_channels
from netwatch.engine import Engine, EngineOptions
from netwatch.health import HealthMonitor, link_id
from netwatch.history import LinkHistory
from netwatch.inventory import Inventory, load_inventory
from netwatch.metrics import MetricsCollector
from netwatch.notify.clock import SystemClock
from netwatch.notify.outbox import OutboxWorker, RetryPolicy
from netwatch.ops_metrics import OpsMetrics
from netwatch.pathtrace import PathTracer
from netwatch.plan import Plan, compile_plan
from netwatch.state import LatestState
from netwatch.store import Store, open_store
from netwatch.store.leader import LeaderLock
from netwatch.store.rollups import Rollups
from netwatch.web import admin, api, isp, status
from probes.http import HttpProber
from probes.icmp import IcmpPinger, IcmpUnavailableError
from probes.snmp import SnmpPoller

log = logging.getLogger("netwatch.web")


@dataclass(slots=True)
class Runtime:
    """Everything a request handler may read; lives on app.state.runtime."""

    inventory: Inventory
    plan: Plan
    state: LatestState
    registry: CollectorRegistry
    collector: MetricsCollector
    health: HealthMonitor
    engine: Engine
    store: Store | None = None
    alerting: Alerting | None = None
    history: LinkHistory | None = None  # 24 h per-link buckets for the status page


def create_app(
    config: Path | str,
    *,
    probing: bool = True,
    options: EngineOptions | None = None,
    inventory: Inventory | None = None,
    data_dir: Path = Path("data"),
    database_url: str | None = None,
    alerting_tick_s: float = 5.0,
    retry: RetryPolicy | None = None,
) -> FastAPI:
    """Build the app; the inventory is loaded (and validated) before anything starts."""
    inventory = inventory if inventory is not None else load_inventory(config)
    plan = compile_plan(inventory)

    @asynccontextmanager
    async def lifespan(app: FastAPI) -> AsyncIterator[None]:
        registry = CollectorRegistry(auto_describe=True)
        ProcessCollector(registry=registry)  # NetWatch's own CPU, memory, open files
        collector = MetricsCollector(plan)
        collector.register(registry)
        latest = LatestState()
        health = HealthMonitor(inventory)
        history = LinkHistory([link_id(c.code, k.id) for c in inventory.communes for k in c.links])
        pinger: IcmpPinger | None = None
        snmp: SnmpPoller | None = None
        http: HttpProber | None = None
        async with AsyncExitStack() as stack:
            if probing:
                try:
                    pinger = await stack.enter_async_context(await IcmpPinger.open())
                except IcmpUnavailableError as exc:
                    log.error("ICMP probing disabled: %s", exc)
                snmp = await stack.enter_async_context(await SnmpPoller.open())
                http = await stack.enter_async_context(HttpProber())
                http.prepare([job.check for job in plan.portals])
            engine = Engine(
                plan,
                pinger,
                snmp,
                http,
                [collector, latest, health, history],
                options or EngineOptions(),
                judge=health,
                fast_sinks=[latest, health],
            )
            app.state.runtime = Runtime(
                inventory, plan, latest, registry, collector, health, engine
            )
            store = await open_store(database_url, data_dir=data_dir)
            stack.push_async_callback(store.close)
            rollups = Rollups(store)
            await history.load(rollups, datetime.now(UTC))
            # On PostgreSQL a second instance may share the store: one leads alerting.
            leader = LeaderLock(store.engine)
            stack.push_async_callback(leader.release)
            alerting = Alerting(
                inventory,
                store,
                health,
                tick_s=alerting_tick_s,
                leader=leader,
                tracer=PathTracer(inventory) if probing else None,
            )
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
            alerting.on_taken_over.append(ops.tickets.baseline)
            session = await stack.enter_async_context(aiohttp.ClientSession())
            channels = build_channels(inventory, session, SystemClock())
            outbox = ops.metered(StoreOutbox(store), channels)  # counts deliveries
            worker = OutboxWorker(outbox, channels, SystemClock(), policy=retry)
            alerting.on_enqueued.append(worker.wake)
            health.on_change.append(alerting.wake)
            app.state.runtime.store = store
            app.state.runtime.alerting = alerting
            app.state.runtime.history = history
            engine.start()
            stack.push_async_callback(engine.stop)
            stop = asyncio.Event()
            background = [
                asyncio.create_task(alerting.run(stop), name="netwatch-alerting"),
                asyncio.create_task(worker.run(stop), name="netwatch-outbox"),
                asyncio.create_task(ops.run(stop), name="netwatch-ops-metrics"),
                asyncio.create_task(history.run(rollups, stop), name="netwatch-history"),
            ]

            async def stop_background() -> None:
                stop.set()
                await asyncio.gather(*background, return_exceptions=True)
                try:  # the time NetWatch is stopped counts as unknown, not as the last state
                    await alerting.close(datetime.now(UTC))
                except Exception:
                    log.exception("state history not closed at shutdown")

            stack.push_async_callback(stop_background)
            log.info(
                "netwatch started communes=%d icmp_targets=%d routers=%d portals=%d",
                len(inventory.communes),
                len(plan.icmp),
                len(plan.snmp),
                len(plan.portals),
            )
            # What is built by now lives as long as the app: keep it out of the cyclic GC's
            # generations, whose full passes would scan it all (100+ ms pauses at national
            # scale, the status pages' p99; docs/status-page.md). Unfrozen on the way out.
            gc.collect()
            gc.freeze()
            try:
                yield
            finally:
                gc.unfreeze()

    app = FastAPI(
        title="NetWatch",
        version=__version__,
        description=(
            "Network health of commune Public Administration Service Centers: links, routers "
            "and the National Public Service Portal."
        ),
        lifespan=lifespan,
    )

    @app.get("/metrics", include_in_schema=False)
    async def metrics(request: Request) -> StreamingResponse:
        runtime: Runtime = request.app.state.runtime

        # On the event loop, not in a worker thread: the rounds update the same state, and a
        # national scrape is streamed in chunks with the loop free between them.
        async def body() -> AsyncIterator[bytes]:
            yield generate_latest(runtime.registry)
            for chunk in runtime.collector.render_chunks():
                yield chunk
                await asyncio.sleep(0)

        return StreamingResponse(body(), media_type=CONTENT_TYPE_LATEST)

    @app.get("/", include_in_schema=False)
    def index() -> HTMLResponse:
        return HTMLResponse(status.redirect_page("/status"))

    @app.get("/healthz", include_in_schema=False)
    def healthz(request: Request) -> dict[str, str]:
        if not hasattr(request.app.state, "runtime"):
            raise HTTPException(503, "starting")
        return {"status": "ok"}

    # The public status pages first: they take most of the traffic, and routes are tried in
    # order (docs/status-page.md, load figures).
    app.include_router(status.router)

    @app.get("/healthz/leader", include_in_schema=False)
    def healthz_leader(request: Request) -> JSONResponse:
        """200 on the instance that leads alerting, 503 on a standby (for load balancers)."""
        runtime: Runtime | None = getattr(request.app.state, "runtime", None)
        leads = runtime is not None and runtime.alerting is not None and runtime.alerting.is_leader
        return JSONResponse({"role": "leader" if leads else "standby"}, 200 if leads else 503)

    app.include_router(api.router)
    app.include_router(isp.router)
    app.include_router(admin.router)
    return app
