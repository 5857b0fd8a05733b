"""The FastAPI application: routes around a runtime built by netwatch.runtime.

The lifespan enters `open_runtime` (or the opener given: the alerting core's, which feeds the
runtime from the bus) and publishes the finished runtime on ``app.state.runtime`` for
`RuntimeDep` (netwatch.web.deps); nothing long-lived is built here.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import AsyncIterator, Callable, Mapping
from contextlib import AbstractAsyncContextManager, asynccontextmanager
from pathlib import Path

import aiohttp
from fastapi import FastAPI, Request
from fastapi.exception_handlers import http_exception_handler
from fastapi.responses import HTMLResponse, JSONResponse, Response, StreamingResponse
from prometheus_client import CONTENT_TYPE_LATEST, generate_latest
from sqlalchemy import exc as sa_exc
from starlette.types import ASGIApp, Receive, Scope, Send

from netwatch import __version__
from netwatch.engine import EngineOptions
from netwatch.inventory import Inventory, load_inventory_isolated
from netwatch.notify.outbox import RetryPolicy
from netwatch.plan import Plan, compile_plan
from netwatch.runtime import Runtime, RuntimeOptions, open_runtime
from netwatch.store import MomentOutOfRangeError, StoreTimeoutError
from netwatch.web import admin, api, isp, reload, reports, status
from netwatch.web.auth import refresh_failure_totals
from netwatch.web.deps import NotReady, RuntimeDep
from netwatch.web.session import SessionSigner

__all__ = ["Runtime", "RuntimeOpener", "create_app", "fast_pages"]

log = logging.getLogger(__name__)

# Builds and runs the runtime for the app's lifespan: open_runtime, or one that wraps it.
RuntimeOpener = Callable[[Inventory, RuntimeOptions, Plan], AbstractAsyncContextManager[Runtime]]


def _open_local(
    inventory: Inventory, options: RuntimeOptions, plan: Plan
) -> AbstractAsyncContextManager[Runtime]:
    return open_runtime(inventory, options, plan=plan)


def _standby(request: Request) -> Response:
    return JSONResponse({"role": "standby"}, 503)


def _starting(request: Request) -> Response:
    return JSONResponse({"detail": "starting"}, 503)


# What a route answers while the runtime is not built, when not the API's JSON 503.
_NOT_READY: Mapping[str, Callable[[Request], Response]] = {
    "/healthz": _starting,
    "/healthz/leader": _standby,
}


async def _not_ready(request: Request, exc: Exception) -> Response:
    assert isinstance(exc, NotReady)
    path = request.url.path
    if path == admin.PREFIX or path.startswith(admin.PREFIX + "/"):
        return admin.starting_page(request)
    answer = _NOT_READY.get(path)
    if answer is not None:
        return answer(request)
    return await http_exception_handler(request, exc)


async def _store_unavailable(request: Request, exc: Exception) -> Response:
    """A database call that timed out (logged by the store) or that the database refused for
    now (SQLite locked or its disk full, PostgreSQL gone): 503, try again, never a 500."""
    if not isinstance(exc, StoreTimeoutError):
        log.warning("store.unavailable path=%s error=%s", request.url.path, type(exc).__name__)
    return JSONResponse(
        {"detail": "the database is slow or unreachable; try again in a minute"},
        503,
        headers={"Retry-After": "60"},
    )


async def _out_of_range(request: Request, exc: Exception) -> Response:
    """A moment the store does not keep, from a form or a body no route checked (the admin
    forms): 422 with the store's words (netwatch.store.utc_moment), never a 500."""
    cause = exc.orig if isinstance(exc, sa_exc.StatementError) else exc
    if not isinstance(cause, MomentOutOfRangeError):
        raise exc
    return JSONResponse({"detail": str(cause)}, 422)


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
    opener: RuntimeOpener = _open_local,
) -> FastAPI:
    """Build the app; the inventory is loaded (and validated) before anything starts.

    `opener` builds the runtime in the lifespan: by default with this process's own probes;
    the alerting core (netwatch.roles.core) passes one that feeds it from the bus."""
    inventory = inventory if inventory is not None else load_inventory_isolated(config)
    plan = compile_plan(inventory)
    runtime_options = RuntimeOptions(
        probing=probing,
        engine=options or EngineOptions(),
        data_dir=data_dir,
        database_url=database_url,
        alerting_tick_s=alerting_tick_s,
        retry=retry,
    )

    @asynccontextmanager
    async def lifespan(app: FastAPI) -> AsyncIterator[None]:
        async with opener(inventory, runtime_options, plan) as runtime:
            app.state.runtime = runtime
            yield

    app = FastAPI(
        title="NetWatch",
        version=__version__,
        description=(
            "Network health of commune Public Administration Service Centers: links, routers "
            "and the National Public Service Portal."
        ),
        lifespan=lifespan,
        # No Swagger UI or ReDoc: FastAPI's load their scripts from a public CDN (and inline
        # one), which the pages' Content-Security-Policy refuses and a province's network may
        # not reach. The schema stays at /openapi.json for any OpenAPI viewer (docs/security.md).
        docs_url=None,
        redoc_url=None,
    )
    app.add_exception_handler(NotReady, _not_ready)
    app.add_exception_handler(StoreTimeoutError, _store_unavailable)
    app.add_exception_handler(sa_exc.OperationalError, _store_unavailable)
    app.add_exception_handler(MomentOutOfRangeError, _out_of_range)
    app.add_exception_handler(sa_exc.StatementError, _out_of_range)
    # Admin sessions without a configured link secret: a key for this app's lifetime.
    app.state.admin_session_signer = SessionSigner.random()

    @app.get("/metrics", include_in_schema=False)
    async def metrics(request: Request, runtime: RuntimeDep) -> StreamingResponse:
        # Failed authentications of every process on the database (web workers too).
        await refresh_failure_totals(request, runtime.store)

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
    def healthz(runtime: RuntimeDep) -> JSONResponse:
        """200 while this instance works; 503 with the reason while its alerting loop fails
        (a database that cannot be written: issue 15 found 200 there)."""
        alerting = runtime.alerting
        if alerting.failing is not None:
            since = alerting.failing_since.isoformat() if alerting.failing_since else "?"
            reason = (
                f"ticket evaluation failing since {since} ({alerting.failing}): "
                "is the database reachable and writable?"
            )
            return JSONResponse({"status": "failing", "reason": reason}, 503)
        return JSONResponse({"status": "ok"})

    # The public status pages first: they take most of the traffic, and routes are tried in
    # order (docs/status-page.md, load figures).
    app.include_router(status.router)

    @app.get("/healthz/leader", include_in_schema=False)
    def healthz_leader(runtime: RuntimeDep) -> JSONResponse:
        """200 on the instance that leads alerting, 503 on a standby (for load balancers)."""
        leads = runtime.alerting.is_leader
        return JSONResponse({"role": "leader" if leads else "standby"}, 200 if leads else 503)

    app.include_router(api.router)
    app.include_router(reports.router)
    app.include_router(reload.router)
    app.include_router(isp.router)
    app.include_router(admin.router)
    return app


# Asked of the alerting core by a web worker that knows where it listens (the supervisor's):
# Prometheus's one target and a load balancer's leader check keep their meaning on the port
# the web workers took over.
_CORE_PATHS = frozenset({"/metrics", "/healthz/leader"})
_CORE_TIMEOUT_S = 10.0
_CORE_CHUNK = 256 * 1024  # bytes passed on at a time


async def _from_core(core_url: str, scope: Scope, send: Send) -> None:
    """Answer with the core's own answer (status, type, body), or 503 when it does not answer.
    The body is passed on as it arrives: a national /metrics is ~50 MB, which a web worker
    read whole before sending (its RSS grew by ~90 MB at each scrape)."""
    timeout = aiohttp.ClientTimeout(total=_CORE_TIMEOUT_S)
    started = False
    try:
        async with (
            aiohttp.ClientSession(timeout=timeout) as session,
            session.get(core_url.rstrip("/") + scope["path"]) as reply,
        ):
            content_type = reply.headers.get("Content-Type", "text/plain")
            await send(
                {
                    "type": "http.response.start",
                    "status": reply.status,
                    "headers": [(b"content-type", content_type.encode())],
                }
            )
            started = True
            async for chunk in reply.content.iter_chunked(_CORE_CHUNK):
                await send({"type": "http.response.body", "body": chunk, "more_body": True})
    except (aiohttp.ClientError, TimeoutError) as exc:
        if started:
            # Cut short: end the connection without the final chunk, so the client (Prometheus)
            # sees a failed scrape, never a shorter exposition that parses as a whole one.
            log.warning("the alerting core's answer to %s broke off: %r", scope["path"], exc)
            raise
    if not started:
        body = b'{"detail":"the alerting core does not answer"}'
        headers = [
            (b"content-type", b"application/json"),
            (b"content-length", str(len(body)).encode()),
        ]
        await send({"type": "http.response.start", "status": 503, "headers": headers})
        await send({"type": "http.response.body", "body": body})
        return
    await send({"type": "http.response.body", "body": b"", "more_body": False})


def fast_pages(
    app: FastAPI, *, core_url: str | None = None, inner: ASGIApp | None = None
) -> ASGIApp:
    """The web worker's ASGI app: a GET of a public status page already rendered from the
    current snapshot is answered from memory (status.fast_response: the very bytes, headers and
    cookie the route would send), skipping FastAPI's routing, dependencies and middleware;
    everything else goes to `app` (or `inner`, the app as wrapped by a test's server). With
    `core_url`, /metrics and /healthz/leader are the alerting core's (a web worker leads
    nothing and is not Prometheus's target)."""
    fallback: ASGIApp = inner if inner is not None else app

    async def serve(scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] == "http" and scope["method"] == "GET":
            path: str = scope["path"]
            if path.startswith(status.BASE):
                pages = getattr(app.state, "status_pages", None)
                if pages is not None and pages.runtime is getattr(app.state, "runtime", None):
                    answer = status.fast_response(pages, scope)
                    if answer is not None:
                        await answer(scope, receive, send)
                        return
            elif core_url is not None and path in _CORE_PATHS:
                await _from_core(core_url, scope, send)
                return
        await fallback(scope, receive, send)

    return serve
