"""The FastAPI application and its lifespan: the one place long-lived things are built."""

from __future__ import annotations

import asyncio
import logging
from collections.abc import AsyncIterator
from contextlib import AsyncExitStack, asynccontextmanager
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path

import aiohttp
from fastapi import FastAPI, HTTPException, Request
from fastapi.responses import HTMLResponse, StreamingResponse
from prometheus_client import (
    CONTENT_TYPE_LATEST,
    CollectorRegistry,
    ProcessCollector,
    generate_latest,
)

from netwatch import __version__
from netwatch.alerting import Alerting, StoreOutbox, build_channels
from netwatch.engine import Engine, EngineOptions
from netwatch.health import HealthMonitor
from netwatch.inventory import Inventory, load_inventory
from netwatch.metrics import MetricsCollector
from netwatch.notify.clock import SystemClock
from netwatch.notify.outbox import OutboxWorker, RetryPolicy
from netwatch.plan import Plan, compile_plan
from netwatch.state import LatestState
from netwatch.store import Store, open_store
from netwatch.web import api, isp, status
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
                plan, pinger, snmp, http, [collector, latest, health], options or EngineOptions()
            )
            app.state.runtime = Runtime(
                inventory, plan, latest, registry, collector, health, engine
            )
            store = await open_store(database_url, data_dir=data_dir)
            stack.push_async_callback(store.close)
            alerting = Alerting(inventory, store, health, latest, tick_s=alerting_tick_s)
            await alerting.restore(datetime.now(UTC))
            session = await stack.enter_async_context(aiohttp.ClientSession())
            channels = build_channels(inventory, session, SystemClock())
            worker = OutboxWorker(StoreOutbox(store), channels, SystemClock(), policy=retry)
            alerting.on_enqueued.append(worker.wake)
            app.state.runtime.store = store
            app.state.runtime.alerting = alerting
            engine.start()
            stack.push_async_callback(engine.stop)
            stop = asyncio.Event()
            background = [
                asyncio.create_task(alerting.run(stop), name="netwatch-alerting"),
                asyncio.create_task(worker.run(stop), name="netwatch-outbox"),
            ]

            async def stop_background() -> None:
                stop.set()
                await asyncio.gather(*background, return_exceptions=True)

            stack.push_async_callback(stop_background)
            log.info(
                "netwatch started communes=%d icmp_targets=%d routers=%d portals=%d",
                len(inventory.communes),
                len(plan.icmp),
                len(plan.snmp),
                len(plan.portals),
            )
            yield

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

    app.include_router(api.router)
    app.include_router(isp.router)
    app.include_router(status.router)
    return app
