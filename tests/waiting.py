"""Waits on conditions, never on the wall clock: poll a predicate until it holds or time is up.

A fixed sleep is either too short on a loaded machine (a flaky test) or too long everywhere (a
slow suite). These helpers return as soon as the condition holds and fail with a message naming
it when it never does. Both return the predicate's first truthy value, so a wait can also fetch.
"""

from __future__ import annotations

import asyncio
import contextlib
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


async def stops_after_a_lost_cancellation(
    loop: Callable[[], Awaitable[None]], timeout_s: float = 20.0
) -> bool:
    """Whether `loop` stops when its task was asked to stop and a library lost the request on
    the way (Python 3.11's wait_for under nats-py's fetch: asked to stop, nothing raised; the
    teardown of a test hung on the core's feed so)."""

    async def asked_then_lost() -> None:
        task = asyncio.current_task()
        assert task is not None
        task.cancel()
        with contextlib.suppress(asyncio.CancelledError):  # as wait_for does when its future
            await asyncio.sleep(0)  # completed in the same moment
        await loop()

    task = asyncio.create_task(asked_then_lost())
    try:
        await asyncio.wait([task], timeout=timeout_s)
        return task.cancelled()
    finally:
        task.cancel()
        await asyncio.gather(task, return_exceptions=True)
