"""How many asyncio tasks a process's event loop holds: a leak shows as a count that only grows.

`make soak` (scripts/soak.py) reads it at the end of the warm-up and at the end of the run, with
every process's memory and open files (client_python's ProcessCollector), and expects it flat.
The gauge is read from the scrape's thread (a probe worker serves /metrics from a thread of its
own): `asyncio.all_tasks(loop)` takes the loop explicitly and copes with a set that changes
while it is read.
"""

from __future__ import annotations

import asyncio
from collections.abc import Iterator

from prometheus_client.core import GaugeMetricFamily, Metric
from prometheus_client.registry import Collector

__all__ = ["LoopTasks"]


class LoopTasks(Collector):
    """`netwatch_asyncio_tasks`: the tasks alive in one event loop (that of the caller)."""

    def __init__(self, loop: asyncio.AbstractEventLoop | None = None) -> None:
        self._loop = loop if loop is not None else asyncio.get_running_loop()

    def collect(self) -> Iterator[Metric]:
        count = 0 if self._loop.is_closed() else len(asyncio.all_tasks(self._loop))
        yield GaugeMetricFamily(
            "netwatch_asyncio_tasks",
            "Asyncio tasks alive in this process's event loop (flat unless something leaks)",
            value=count,
        )
