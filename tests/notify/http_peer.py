"""An aiohttp application served on a loopback port for the length of a test (webhook receivers,
a fake Telegram Bot API)."""

from __future__ import annotations

import contextlib
from collections.abc import AsyncIterator, Awaitable, Callable

from aiohttp import web

Handler = Callable[[web.Request], Awaitable[web.StreamResponse]]


@contextlib.asynccontextmanager
async def serving(app: web.Application, port: int) -> AsyncIterator[None]:
    """`app` on 127.0.0.1:`port` until the block ends (stopped also when it fails)."""
    runner = web.AppRunner(app, access_log=None)  # the peer's own access log is not NetWatch's
    await runner.setup()
    try:
        await web.TCPSite(runner, "127.0.0.1", port).start()
        yield
    finally:
        await runner.cleanup()


@contextlib.asynccontextmanager
async def serving_anywhere(app: web.Application) -> AsyncIterator[str]:
    """`app` on 127.0.0.1, on a port the kernel picks (no port to agree on with other tests);
    yields its base URL, http://127.0.0.1:<port>."""
    runner = web.AppRunner(app, access_log=None)
    await runner.setup()
    try:
        site = web.TCPSite(runner, "127.0.0.1", 0)
        await site.start()
        host, port = runner.addresses[0][:2]
        yield f"http://{host}:{port}"
    finally:
        await runner.cleanup()


@contextlib.asynccontextmanager
async def posting_to(path: str, handler: Handler, port: int) -> AsyncIterator[None]:
    """`handler` answering POSTs to `path` on 127.0.0.1:`port` until the block ends."""
    app = web.Application()
    app.router.add_post(path, handler)
    async with serving(app, port):
        yield
