"""What a NetWatch process says when its bus connection fails.

nats-py's default error callback logs every failed reconnect with a traceback: every 0.5 s
while the nats-server is gone (`make soak` counted them after a supervisor's SIGKILL). Cores and
web workers pass `BusErrors(log).error` instead: one WARNING line on the first error (no
traceback), then one line a minute while errors go on.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable

__all__ = ["BusErrors"]

SUMMARY_EVERY_S = 60.0


class BusErrors:
    """nats-py's `error_cb`: the first error, then a line a minute with the count since."""

    def __init__(
        self,
        log: logging.Logger,
        clock: Callable[[], float] = time.monotonic,
        every_s: float = SUMMARY_EVERY_S,
    ) -> None:
        self._log = log
        self._clock = clock
        self._every_s = every_s
        self._told_at: float | None = None
        self._since_told = 0

    async def error(self, exc: Exception) -> None:
        """The callback (nats-py wants a coroutine function: pass `BusErrors(log).error`)."""
        now = self._clock()
        if self._told_at is not None and now - self._told_at < self._every_s:
            self._since_told += 1
            return
        more = f" ({self._since_told} more since the last line)" if self._since_told else ""
        self._log.warning("bus connection error: %s: %s%s", type(exc).__name__, exc, more)
        self._told_at, self._since_told = now, 0
