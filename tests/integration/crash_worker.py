"""A NetWatch alerting process for the crash test: opens one ticket per incident, one at a time.

Run as `python -m tests.integration.crash_worker DATA_DIR CONFIG COUNT [DATABASE_URL]`; the test SIGKILLs it at
random moments and starts it again. Incidents have fixed start times, so every run asks for the
same tickets: whatever a killed run left behind, the next one continues it.
"""

from __future__ import annotations

import asyncio
import sys
from datetime import UTC, datetime, timedelta
from pathlib import Path

from alerts.model import Incident, IncidentKind, Route
from alerts.subject import SubjectKey
from netwatch.alerting import Alerting
from netwatch.health import HealthMonitor
from netwatch.inventory import load_inventory
from netwatch.store import open_store

SINCE = datetime(2026, 11, 22, 1, 0, tzinfo=UTC)


async def main(data_dir: Path, config: Path, count: int, database_url: str | None) -> None:
    inventory = load_inventory(
        config, environ={"NW_LINK": "crash-test-link-secret-6e380632a5e32686f535cbcd"}
    )
    store = await open_store(database_url, data_dir=data_dir)
    health = HealthMonitor(inventory)
    links = sorted(health.topology.links)[:count]
    alerting = Alerting(inventory, store, health)
    now = SINCE + timedelta(minutes=5)
    await alerting.restore(now)
    print("ready", flush=True)  # from here on, every evaluation may be creating a ticket
    # The incidents a killed run already ticketed are still there (a link stays down across a
    # restart); one more appears per evaluation.
    for k in range(max(1, len(alerting.book.tickets)), len(links) + 1):
        health.incidents = tuple(
            Incident(
                key=SubjectKey.parse(f"link:{link}"),
                kind=IncidentKind.LINK_FAULT,
                state="down",
                since=SINCE,
                route=Route.ISP,
                isp="vnpt",
                links=(link,),
                detail="no_echo",
            )
            for link in links[:k]
        )
        await alerting.evaluate(now)
    print("done", flush=True)
    await store.close()


if __name__ == "__main__":
    url = sys.argv[4] if len(sys.argv) > 4 else None  # None: SQLite under DATA_DIR
    asyncio.run(main(Path(sys.argv[1]), Path(sys.argv[2]), int(sys.argv[3]), url))
