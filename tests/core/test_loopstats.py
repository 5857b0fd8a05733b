"""netwatch_asyncio_tasks: what `make soak` reads to tell a task leak from a steady process."""

from __future__ import annotations

import asyncio
import threading

from prometheus_client import CollectorRegistry, generate_latest
from prometheus_client.parser import text_string_to_metric_families

from netwatch.loopstats import LoopTasks


def _tasks(registry: CollectorRegistry) -> float:
    text = generate_latest(registry).decode()
    [family] = [
        f for f in text_string_to_metric_families(text) if f.name == "netwatch_asyncio_tasks"
    ]
    [sample] = family.samples
    return sample.value


async def test_the_gauge_follows_the_loops_tasks() -> None:
    registry = CollectorRegistry()
    registry.register(LoopTasks())
    before = _tasks(registry)
    gate = asyncio.Event()
    started = [asyncio.create_task(gate.wait()) for _ in range(5)]
    await asyncio.sleep(0)
    assert _tasks(registry) == before + 5
    gate.set()
    await asyncio.gather(*started)
    assert _tasks(registry) == before


def test_a_scrape_from_another_thread_reads_the_given_loop() -> None:
    """A probe worker serves /metrics from a thread: the loop is passed, not looked up."""
    loop = asyncio.new_event_loop()
    registry = CollectorRegistry()
    registry.register(LoopTasks(loop))
    gate = asyncio.Event()
    seen: list[float] = []

    async def main() -> None:
        waiting = [asyncio.create_task(gate.wait()) for _ in range(3)]
        await asyncio.sleep(0)
        reader = threading.Thread(target=lambda: seen.append(_tasks(registry)))
        reader.start()
        await asyncio.to_thread(reader.join)
        gate.set()
        await asyncio.gather(*waiting)

    try:
        loop.run_until_complete(main())
    finally:
        loop.close()
    assert seen == [4]  # main and its 3 waiters (to_thread is awaited within main)
    assert _tasks(registry) == 0  # a closed loop holds none
