"""A TCP proxy on loopback in front of a real PostgreSQL (its unix socket) that can stop
forwarding: connections stay open and nothing answers, as when a route dies or the server's
machine freezes. Resuming forwards again what was held back, in order."""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import AsyncIterator
from pathlib import Path


class BlackHole:
    """Forwards 127.0.0.1:<port> to a unix socket until `swallow()`, again after `release()`."""

    def __init__(self, upstream: Path) -> None:
        self._upstream = upstream
        self._open = asyncio.Event()
        self._open.set()
        self._tasks: set[asyncio.Task[None]] = set()
        self._writers: set[asyncio.StreamWriter] = set()
        self._server: asyncio.Server | None = None
        self.port = 0

    def swallow(self) -> None:
        """Stop forwarding: new connections are accepted and hear nothing, open ones go quiet."""
        self._open.clear()

    def release(self) -> None:
        """Forward again."""
        self._open.set()

    async def _pump(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        try:
            while data := await reader.read(65536):
                await self._open.wait()
                writer.write(data)
                await writer.drain()
        except (ConnectionError, asyncio.CancelledError):
            pass
        finally:
            writer.close()

    async def _client(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        self._writers.add(writer)
        await self._open.wait()  # black-holed: the start-up message is never passed on
        try:
            up_reader, up_writer = await asyncio.open_unix_connection(self._upstream)
        except OSError:
            writer.close()
            return
        self._writers.add(up_writer)
        for pump in (self._pump(reader, up_writer), self._pump(up_reader, writer)):
            task = asyncio.ensure_future(pump)
            self._tasks.add(task)
            task.add_done_callback(self._tasks.discard)

    async def start(self) -> None:
        """Listen on a loopback port the kernel picks (`port`)."""

        def accepted(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
            task = asyncio.ensure_future(self._client(reader, writer))
            self._tasks.add(task)
            task.add_done_callback(self._tasks.discard)

        self._server = await asyncio.start_server(accepted, "127.0.0.1", 0)
        self.port = self._server.sockets[0].getsockname()[1]

    async def stop(self) -> None:
        """Close the listener and every connection through it."""
        if self._server is not None:
            self._server.close()
        for writer in self._writers:
            writer.close()
        for task in list(self._tasks):
            task.cancel()
        await asyncio.gather(*self._tasks, return_exceptions=True)
        if self._server is not None:
            with contextlib.suppress(Exception):
                await self._server.wait_closed()


@contextlib.asynccontextmanager
async def black_hole(socket_dir: Path, port: int) -> AsyncIterator[BlackHole]:
    """A BlackHole in front of the cluster's socket `<socket_dir>/.s.PGSQL.<port>`."""
    hole = BlackHole(socket_dir / f".s.PGSQL.{port}")
    await hole.start()
    try:
        yield hole
    finally:
        hole.release()
        await hole.stop()
