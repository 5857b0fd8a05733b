"""A cancellation that nats-py lost on the way, raised again.

Python 3.11's ``asyncio.wait_for``, which nats-py uses for every request, fetch and publish
acknowledgement, can lose a cancellation that lands in the same moment as its own outcome: it
returns the result of a future that just completed, or raises ``TimeoutError`` when its timeout
fired (both fixed in 3.12). A loop that retries on errors or fetches forever would then never
stop, and a process would hang on its way out (the core's feed kept fetching after a test had
cancelled it). The request is still counted on the task (``Task.cancelling``): loops call
:func:`raise_if_cancelled` between their awaits and before retrying.
"""

from __future__ import annotations

import asyncio

__all__ = ["raise_if_cancelled"]


def raise_if_cancelled() -> None:
    """Raise CancelledError when the current task was asked to stop but was not told."""
    task = asyncio.current_task()
    if task is not None and task.cancelling():
        raise asyncio.CancelledError
