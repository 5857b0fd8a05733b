"""NetWatch killed (SIGKILL) at random points of ticket creation, 20 times: no ticket is lost,
none is doubled, no notification is enqueued twice. A real process, a real SQLite file or a real
PostgreSQL database (where the kill drops the connection mid-transaction)."""

from __future__ import annotations

import asyncio
import os
import random
import signal
import subprocess
import sys
import time
from collections import Counter
from pathlib import Path

from netwatch.store import Store, open_store

ROOT = Path(__file__).resolve().parents[2]
LINKS = 300
CONFIG = """
isps:
  vnpt:
    name: VNPT
    contacts: [{level: 1, name: NOC, email: noc@vnpt.example}]
notifications:
  public_url: https://netwatch.test
  link_secret: {env: NW_LINK}
  smtp: {host: 127.0.0.1, port: 1, from_address: netwatch@netwatch.test}
communes:
"""


def _config(path: Path) -> None:
    lines = [CONFIG.lstrip("\n")]
    from netwatch.inventory import Divisions

    codes = sorted(Divisions().communes)[:LINKS]
    for i, code in enumerate(codes):
        lines.append(
            f"  - code: {int(code)}\n    links: [{{id: vnpt, isp: vnpt, circuit: C{i}, "
            f"bandwidth_mbps: 10, path: tslcd, address: 10.250.{i // 200}.{i % 200 + 1}}}]\n"
        )
    path.write_text("".join(lines), encoding="utf-8")


def _run(data_dir: Path, config: Path, url: str | None, kill_after_s: float | None) -> bool:
    """Start the worker; once it is ready to create tickets, kill it after kill_after_s (None:
    let it finish). True when it finished on its own."""
    with subprocess.Popen(
        [sys.executable, "-m", "tests.integration.crash_worker", str(data_dir), str(config),
         str(LINKS), *([url] if url else [])],
        cwd=ROOT, stdout=subprocess.PIPE, stderr=subprocess.DEVNULL,
    ) as proc:  # fmt: skip
        assert proc.stdout is not None
        try:
            assert proc.stdout.readline().strip() == b"ready"
            if kill_after_s is not None:
                time.sleep(kill_after_s)
                if proc.poll() is None:
                    os.kill(proc.pid, signal.SIGKILL)
            rest = proc.stdout.read()
            proc.wait(timeout=120)
        finally:
            if proc.poll() is None:
                proc.kill()
                proc.wait()
        return proc.returncode == 0 and b"done" in rest


def _read(data_dir: Path, url: str | None) -> tuple[list[str], Counter[str], int, int]:
    async def go() -> tuple[list[str], Counter[str], int, int]:
        store: Store = await open_store(url, data_dir=data_dir, migrate=False)
        try:
            tickets = await store.list_tickets(limit=1000)
            keys = [t.ticket.key.encoded for t in tickets]
            events = 0
            for t in tickets:
                log = await store.ticket_events(t.ticket.id)
                seqs = [e.seq for e in log]
                assert len(seqs) == len(set(seqs)), f"{t.ticket.id}: an event written twice"
                events += len(log)
            outbox = await store.outbox_items()
            dedup = Counter(i.dedup_key for i in outbox)
            return keys, dedup, events, len(outbox)
        finally:
            await store.close()

    return asyncio.run(go())


def test_twenty_kills_during_ticket_creation_lose_and_double_nothing(
    tmp_path: Path, database_url: str | None
) -> None:
    config = tmp_path / "netwatch.yaml"
    _config(config)
    data_dir = tmp_path / "data"
    rng = random.Random(20261122)
    kills = 0
    for _ in range(20):
        # Creating 300 tickets one evaluation at a time takes several seconds: kill within it.
        if not _run(data_dir, config, database_url, rng.uniform(0.0, 0.3)):
            kills += 1
        created = database_url is not None or (data_dir / "netwatch.sqlite3").exists()
        keys, dedup, _, _ = _read(data_dir, database_url) if created else ([], Counter(), 0, 0)
        assert len(keys) == len(set(keys)), "an incident got two tickets"
        assert all(n == 1 for n in dedup.values()), "a notification was enqueued twice"
    assert kills >= 15, "the runs should have been killed during creation"
    assert _run(data_dir, config, database_url, None)  # the survivor finishes the job
    keys, dedup, events, outbox = _read(data_dir, database_url)
    assert sorted(keys) == sorted(set(keys))
    assert len(keys) == LINKS  # none lost
    assert events == LINKS  # one "opened" event each, none doubled
    assert outbox == LINKS  # one mail each to the NOC, none doubled
    assert all(n == 1 for n in dedup.values())
