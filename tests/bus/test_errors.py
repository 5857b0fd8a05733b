"""A core or web worker whose nats-server is gone says so once, not every 0.5 s with a
traceback (nats-py's default: the soak counted them after a supervisor's SIGKILL)."""

from __future__ import annotations

import asyncio
import contextlib
import logging
from pathlib import Path

import nats
import pytest

from netwatch.bus.errors import BusErrors
from netwatch.bus.server import NatsServerOptions, running_nats_server


async def test_a_lost_bus_is_one_line_without_a_traceback(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    log = logging.getLogger("tests.bus.errors")
    errors: list[Exception] = []
    five = asyncio.Event()
    quiet = BusErrors(log)

    async def counted(exc: Exception) -> None:
        errors.append(exc)
        if len(errors) >= 5:
            five.set()
        await quiet.error(exc)

    with caplog.at_level(logging.DEBUG):
        async with running_nats_server(NatsServerOptions(data_dir=tmp_path)) as server:
            # As the core and web workers pass it (nats-py refuses a callable object).
            probe = await nats.connect(server.url, error_cb=BusErrors(log).error)
            await probe.close()
            nc = await nats.connect(
                server.url, max_reconnect_attempts=-1, reconnect_time_wait=0.2,
                error_cb=counted,
            )  # fmt: skip
        try:
            async with asyncio.timeout(20):
                await five.wait()  # the server is gone: reconnects keep failing
        finally:
            with contextlib.suppress(Exception):
                await asyncio.wait_for(nc.close(), 5)
    ours = [r for r in caplog.records if r.name == "tests.bus.errors"]
    assert len(ours) == 1
    assert ours[0].levelno == logging.WARNING
    assert ours[0].getMessage().startswith("bus connection error: ")
    assert not any(r.exc_info for r in caplog.records if r.levelno >= logging.WARNING)


async def test_errors_that_go_on_are_summed_up_once_a_minute(
    caplog: pytest.LogCaptureFixture,
) -> None:
    now = [0.0]
    quiet = BusErrors(logging.getLogger("tests.bus.errors"), clock=lambda: now[0])
    with caplog.at_level(logging.WARNING, "tests.bus.errors"):
        for second in range(125):
            now[0] = float(second)
            await quiet.error(ConnectionRefusedError("refused"))
    lines = [r.getMessage() for r in caplog.records]
    assert len(lines) == 3  # at 0, 60 and 120 s
    assert lines[1].endswith("(59 more since the last line)")
