"""Waits on conditions, never on the wall clock: poll a predicate until it holds or time is up.

A fixed sleep is either too short on a loaded machine (a flaky test) or too long everywhere (a
slow suite). These helpers return as soon as the condition holds and fail with a message naming
it when it never does. Both return the predicate's first truthy value, so a wait can also fetch.
"""

from __future__ import annotations

import asyncio
import inspect
import time
from collections.abc import Awaitable, Callable
from typing import TypeVar

T = TypeVar("T")


class WaitTimeoutError(AssertionError):
    """A waited-for condition did not hold in time (an AssertionError: the test fails)."""


def wait_until(
    predicate: Callable[[], T],
    timeout_s: float = 10.0,
    interval_s: float = 0.05,
    message: str = "condition",
) -> T:
    """Call predicate until it returns something truthy (returned); WaitTimeoutError after timeout."""
    deadline = time.monotonic() + timeout_s
    while True:
        value = predicate()
        if value:
            return value
        if time.monotonic() >= deadline:
            raise WaitTimeoutError(f"{message}: not reached within {timeout_s} s (last: {value!r})")
        time.sleep(interval_s)


async def async_wait_until(
    predicate: Callable[[], T | Awaitable[T]],
    timeout_s: float = 10.0,
    interval_s: float = 0.01,
    message: str = "condition",
) -> T:
    """wait_until on the event loop: the predicate may be a plain or an async function."""
    deadline = time.monotonic() + timeout_s
    while True:
        value = predicate()
        if inspect.isawaitable(value):
            value = await value
        if value:
            return value  # type: ignore[return-value]
        if time.monotonic() >= deadline:
            raise WaitTimeoutError(f"{message}: not reached within {timeout_s} s (last: {value!r})")
        await asyncio.sleep(interval_s)
