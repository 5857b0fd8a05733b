"""The 24 h per-link history at national scale: memory, CPU per round, store writes, restore.

LinkHistory (netwatch/history.py) keeps 288 five-minute buckets for every link and writes closed
buckets to the store as one packed row per link and hour. This measures it for --links links
(default 10,000, about the national ICMP target count) without any network: observations are
made up, the store is a real SQLite file (and a real PostgreSQL when --postgres URL is given).

- memory of the rings, filled (tracemalloc);
- CPU of one ICMP round folded in (what each 30 s round costs), and of the round that closes a
  bucket (every 5 minutes);
- writing the rows of one closed bucket (one transaction), and of a whole day (restart cost);
- restoring a day at start-up; reading one link's 24 h series (what a commune page does);
- the database's size for a day (26 h retention).

Run: .venv/bin/python benchmarks/bench_history.py [--links 10000] [--postgres URL]
Ends with: RESULT history links=<n> ram_mb=<n> round_ms=<n> close_ms=<n> flush_ms=<n> ...
"""

from __future__ import annotations

import argparse
import asyncio
import sys
import tempfile
import time
import tracemalloc
from datetime import UTC, datetime, timedelta
from pathlib import Path

HERE = Path(__file__).resolve()
sys.path.insert(0, str(HERE.parent.parent))

from netwatch.history import BUCKET_S, BUCKETS, LinkHistory  # noqa: E402
from netwatch.observations import IcmpObservation  # noqa: E402
from netwatch.plan import IcmpTarget, LinkRef  # noqa: E402
from netwatch.store import open_store  # noqa: E402
from netwatch.store.rollups import Rollups  # noqa: E402
from probes.icmp import PingResult  # noqa: E402


def observations(keys: list[str], at: datetime) -> list[IcmpObservation]:
    """One round: every link answered 5 echoes, one in a hundred links lost two."""
    out = []
    for i, key in enumerate(keys):
        commune, link = key.split("/")
        ref = LinkRef("01", commune, "Xã", link, "vnpt", "tslcd", "C", 1e8, None)
        received = 3 if i % 100 == 0 else 5
        rtt = 0.002 + (i % 50) / 10_000
        result = PingResult(
            "10.93.0.1", 5, received, (5 - received) / 5, rtt, rtt, rtt * 1.5, None, (), None, at
        )
        out.append(IcmpObservation(IcmpTarget(ref.key, "link", "10.93.0.1", ref), result))
    return out


def rebase(batch: list[IcmpObservation], at: datetime) -> list[IcmpObservation]:
    """The same round at another time (made ahead, so timing covers observe() alone)."""
    out = []
    for obs in batch:
        r = obs.result
        result = PingResult(
            r.address, r.sent, r.received, r.loss_ratio, r.rtt_min_s, r.rtt_median_s,
            r.rtt_max_s, r.jitter_s, r.rtts_s, r.failure, at,
        )  # fmt: skip
        out.append(IcmpObservation(obs.target, result))
    return out


def _sqlite_bytes(data_dir: Path) -> int:
    return sum(f.stat().st_size for f in data_dir.glob("netwatch.sqlite3*"))


async def store_figures(
    history: LinkHistory, url: str | None, data_dir: Path, now: datetime
) -> dict[str, float]:
    """Flush one bucket, then a whole day; restore it; size on disk (SQLite)."""
    store = await open_store(url, data_dir=data_dir)
    rollups = Rollups(store)
    try:
        day_rows = history.drain()  # every hour row of the day
        last_hour = max(r.hour_start for r in day_rows)
        one_bucket = [r for r in day_rows if r.hour_start == last_hour]
        t = time.perf_counter()
        await rollups.upsert(one_bucket, now)
        flush_s = time.perf_counter() - t
        t = time.perf_counter()
        await rollups.upsert(day_rows, now)
        day_s = time.perf_counter() - t
        fresh = LinkHistory(history.links)
        t = time.perf_counter()
        restored = await fresh.load(rollups, now)
        restore_s = time.perf_counter() - t
        rows = await rollups.count()
    finally:
        await store.close()
    size = await asyncio.to_thread(_sqlite_bytes, data_dir) if url is None else 0
    return {
        "flush_ms": flush_s * 1000,
        "flush_rows": len(one_bucket),
        "day_write_s": day_s,
        "restore_s": restore_s,
        "restored_buckets": restored,
        "rows": rows,
        "db_mb": size / 1e6,
    }


def main() -> int:
    """Measure and report."""
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawTextHelpFormatter)
    ap.add_argument("--links", type=int, default=10_000)
    ap.add_argument("--postgres", help="also measure the store on this PostgreSQL URL")
    args = ap.parse_args()
    keys = [f"{10000 + i // 2:05d}/{'vnpt' if i % 2 else 'viettel'}" for i in range(args.links)]
    # The last bucket boundary at least a day ago, so the day's buckets fill the ring.
    now = datetime.now(UTC).replace(microsecond=0)
    start = datetime.fromtimestamp((int(now.timestamp()) // BUCKET_S - BUCKETS) * BUCKET_S, UTC)

    tracemalloc.start()
    before = tracemalloc.get_traced_memory()[0]
    history = LinkHistory(keys)
    kept_mb = (tracemalloc.get_traced_memory()[0] - before) / 1e6
    tracemalloc.stop()
    round_batch = observations(keys, start)

    # One round inside a bucket, and the round that closes it.
    history.observe(round_batch)
    inside = rebase(round_batch, start + timedelta(seconds=30))
    t = time.perf_counter()
    history.observe(inside)
    round_s = time.perf_counter() - t
    crossing = rebase(round_batch, start + timedelta(seconds=BUCKET_S))
    t = time.perf_counter()
    history.observe(crossing)
    close_s = time.perf_counter() - t
    # The rest of the day: one round per bucket (the ring fills; the CPU of a full day of 30 s
    # rounds is 10 rounds a bucket at round_ms each).
    for b in range(2, BUCKETS):
        history.observe(rebase(round_batch, start + timedelta(seconds=b * BUCKET_S)))
    ring_mb = (len(keys) * BUCKETS * 5) / 1e6
    t = time.perf_counter()
    packed = [history._hour_row(i, int(start.timestamp()) // 3600) for i in range(len(keys))]
    pack_s = time.perf_counter() - t
    assert len(packed) == len(keys)
    t = time.perf_counter()
    for key in keys[:1000]:
        history.series(key, now)
    series_ms = time.perf_counter() - t  # per 1000 links, in s = per link, in ms

    print(f"links {len(keys)}, {BUCKETS} buckets of {BUCKET_S} s each")
    print(f"  memory: {kept_mb:.1f} MB in all, of which the rings {ring_mb:.1f} MB "
          "(5 bytes a bucket)")  # fmt: skip
    print(f"  one ICMP round folded in: {round_s * 1000:.1f} ms; the round closing a bucket: "
          f"{close_s * 1000:.1f} ms")  # fmt: skip
    print(f"  one link's 24 h series: {series_ms:.2f} ms")
    print(f"  packing one closed bucket's rows: {pack_s * 1000:.0f} ms (in chunks of 1,000)")
    results: dict[str, dict[str, float]] = {}
    with tempfile.TemporaryDirectory() as tmp:
        results["sqlite"] = asyncio.run(store_figures(history, None, Path(tmp), now))
    if args.postgres:
        # The drain above emptied the dirty set: the same day again, for PostgreSQL.
        again = LinkHistory(keys)
        for b in range(BUCKETS):
            again.observe(rebase(round_batch, start + timedelta(seconds=b * BUCKET_S)))
        with tempfile.TemporaryDirectory() as tmp:
            results["postgresql"] = asyncio.run(store_figures(again, args.postgres, Path(tmp), now))
    for backend, r in results.items():
        print(
            f"  {backend}: one closed bucket ({r['flush_rows']:.0f} rows) written in "
            f"{r['flush_ms']:.0f} ms; a day ({r['rows']:.0f} rows) in {r['day_write_s']:.1f} s; "
            f"restored ({r['restored_buckets']:.0f} buckets) in {r['restore_s']:.1f} s"
            + (f"; database {r['db_mb']:.0f} MB" if backend == "sqlite" else "")
        )
    sqlite = results["sqlite"]
    print(
        f"RESULT history links={len(keys)} ram_mb={kept_mb:.1f} round_ms={round_s * 1000:.1f} "
        f"close_ms={close_s * 1000:.1f} flush_ms={sqlite['flush_ms']:.0f} "
        f"restore_s={sqlite['restore_s']:.1f} sqlite_day_mb={sqlite['db_mb']:.0f} "
        f"series_ms={series_ms:.2f}"
    )
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
