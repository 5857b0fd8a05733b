"""HTTPS stand-in for the National Public Service Portal, run as a subprocess in the lab.

Each request reads a small JSON control file, so `lab fault portal slow 3` or `... error` take
effect at once without restarting the server. The control may also delay only the answers to
some client addresses (`lab fault portal-slow 3 --commune CODE`: the commune's agent box sources,
so the portal is slow over that commune's path(s) only).
"""

from __future__ import annotations

import argparse
import asyncio
import enum
import json
import os
import signal
import ssl
import sys
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

from aiohttp import web

PAGE_TITLE = "Cổng Dịch vụ công quốc gia"
PAGE_HTML = """<!doctype html>
<html lang="vi"><head><meta charset="utf-8"><title>Cổng Dịch vụ công quốc gia</title></head>
<body><h1>Cổng Dịch vụ công quốc gia</h1>
<p>Kết nối, cung cấp thông tin và dịch vụ công mọi lúc, mọi nơi.</p>
<p><small>NetWatch lab stand-in</small></p></body></html>
"""
MAINTENANCE_HTML = """<!doctype html>
<html lang="vi"><head><meta charset="utf-8"><title>Bảo trì hệ thống</title></head>
<body><h1>Hệ thống đang bảo trì</h1><p>Service Unavailable</p></body></html>
"""


class PortalMode(enum.StrEnum):
    """How the portal answers."""

    OK = "ok"
    SLOW = "slow"
    ERROR = "error"


@dataclass(frozen=True, slots=True)
class PortalControl:
    """The portal's behaviour, as written in its control file."""

    mode: PortalMode = PortalMode.OK
    delay_s: float = 0.0
    # (client address, delay) pairs: answers to these clients wait that long, whatever the mode
    source_delays: tuple[tuple[str, float], ...] = ()

    def delay_for(self, client: str | None) -> float:
        """How long the answer to ``client`` waits: the larger of the global and its own."""
        delay = self.delay_s if self.mode is PortalMode.SLOW else 0.0
        own = dict(self.source_delays).get(client or "", 0.0)
        return max(delay, own)


def write_control(path: Path, control: PortalControl) -> None:
    """Atomically replace the control file."""
    tmp = path.with_suffix(".tmp")
    data: dict[str, object] = {"mode": control.mode.value, "delay_s": control.delay_s}
    if control.source_delays:
        data["sources"] = dict(control.source_delays)
    tmp.write_text(json.dumps(data))
    os.replace(tmp, path)


def read_control(path: Path) -> PortalControl:
    """The current control; a missing or broken file means a healthy portal."""
    try:
        data = json.loads(path.read_text())
        sources = tuple(
            sorted((str(k), float(v)) for k, v in dict(data.get("sources") or {}).items())
        )
        return PortalControl(
            PortalMode(data.get("mode", "ok")), float(data.get("delay_s", 0.0)), sources
        )
    except (OSError, ValueError, TypeError, AttributeError):
        return PortalControl()


def make_app(control_path: Path) -> web.Application:
    """The aiohttp application serving the portal page under the current control."""

    async def handle(request: web.Request) -> web.Response:
        control = read_control(control_path)
        delay_s = control.delay_for(request.remote)
        if delay_s > 0:
            await asyncio.sleep(delay_s)
        if control.mode is PortalMode.ERROR:
            return web.Response(status=503, text=MAINTENANCE_HTML, content_type="text/html")
        return web.Response(text=PAGE_HTML, content_type="text/html")

    app = web.Application()
    app.router.add_get("/{tail:.*}", handle)
    return app


async def serve(
    host: str, port: int, cert: Path, key: Path, control_path: Path, stop: asyncio.Event
) -> None:
    """Serve HTTPS on host:port until `stop` is set."""
    context = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
    context.load_cert_chain(cert, key)
    runner = web.AppRunner(make_app(control_path), access_log=None)
    await runner.setup()
    site = web.TCPSite(runner, host, port, ssl_context=context, backlog=512)
    await site.start()
    try:
        await stop.wait()
    finally:
        await runner.cleanup()


async def _main_async(args: argparse.Namespace) -> None:
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGTERM, signal.SIGINT):
        loop.add_signal_handler(sig, stop.set)
    await serve(args.host, args.port, args.cert, args.key, args.control, stop)


def main(argv: Sequence[str] | None = None) -> int:
    """Entry point: `python -m netwatch.lab.portal --host ... --cert ... --key ...`."""
    parser = argparse.ArgumentParser(description="NetWatch lab portal stand-in (HTTPS)")
    parser.add_argument("--host", required=True)
    parser.add_argument("--port", type=int, default=443)
    parser.add_argument("--cert", type=Path, required=True)
    parser.add_argument("--key", type=Path, required=True)
    parser.add_argument("--control", type=Path, required=True)
    args = parser.parse_args(argv)
    asyncio.run(_main_async(args))
    return 0


if __name__ == "__main__":
    sys.exit(main())
