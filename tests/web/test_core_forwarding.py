"""A web worker answers /metrics and /healthz/leader with the alerting core's answer
(netwatch.web.app.fast_pages with core_url): passed on as it arrives, not read whole (a
national /metrics is ~50 MB), and 503 when the core does not answer."""

from __future__ import annotations

from collections.abc import AsyncIterator

import httpx
from fastapi import FastAPI
from fastapi.responses import JSONResponse, StreamingResponse

from netwatch.web.app import fast_pages
from tests.servers import uvicorn_thread

LINE = b'netwatch_link_up{link="24848/vnpt-tslcd",commune="24848"} 1\n'
LINES = 150_000  # ~9 MB


def _core() -> FastAPI:
    """A stand-in for the alerting core's own web (ours): a big streamed scrape, a standby."""
    core = FastAPI()

    @core.get("/metrics")
    async def metrics() -> StreamingResponse:
        async def body() -> AsyncIterator[bytes]:
            for _ in range(LINES // 1000):
                yield LINE * 1000

        return StreamingResponse(body(), media_type="text/plain; version=0.0.4")

    @core.get("/healthz/leader")
    def leader() -> JSONResponse:
        return JSONResponse({"role": "standby"}, 503)

    return core


def test_the_cores_scrape_is_passed_on_as_it_arrives() -> None:
    with uvicorn_thread(_core()) as core_url:
        worker = fast_pages(FastAPI(), core_url=core_url)
        with uvicorn_thread(worker) as base:  # type: ignore[arg-type]
            reply = httpx.get(f"{base}/metrics", timeout=30)
            assert reply.status_code == 200
            assert reply.headers["content-type"].startswith("text/plain; version=0.0.4")
            assert reply.content == LINE * LINES
            # Streamed on (chunked), not buffered and sent with a length.
            assert "content-length" not in reply.headers
            assert reply.headers["transfer-encoding"] == "chunked"
            standby = httpx.get(f"{base}/healthz/leader", timeout=30)
            assert standby.status_code == 503
            assert standby.json() == {"role": "standby"}


def test_a_core_that_does_not_answer_is_a_503() -> None:
    with uvicorn_thread(_core()) as core_url:
        pass  # stopped: nothing listens there any more
    worker = fast_pages(FastAPI(), core_url=core_url)
    with uvicorn_thread(worker) as base:  # type: ignore[arg-type]
        reply = httpx.get(f"{base}/metrics", timeout=30)
        assert reply.status_code == 503
        assert reply.json() == {"detail": "the alerting core does not answer"}
