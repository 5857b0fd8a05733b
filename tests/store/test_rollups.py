"""Link rollups: the 24 h per-link buckets, folded from ICMP rounds, persisted and restored.

Store tests run on SQLite and PostgreSQL (tests/store/conftest.py); LinkHistory is fed real
observation values, one round at a time, and read back.
"""

from __future__ import annotations

import asyncio
from datetime import UTC, datetime, timedelta

import pytest
from sqlalchemy.exc import DBAPIError

from netwatch.history import BUCKET_S, LinkHistory
from netwatch.observations import IcmpObservation
from netwatch.plan import IcmpTarget, LinkRef
from netwatch.store import Store, upgrade
from netwatch.store.migrate import downgrade
from netwatch.store.rollups import RollupRow, Rollups
from probes.icmp import PingResult

LINKS = ("24848/vnpt-tslcd", "24848/viettel-inet", "24850/vnpt-tslcd")
# A bucket boundary, so tests know which bucket each round falls in.
T0 = datetime(2026, 11, 22, 2, 0, tzinfo=UTC)


def target(link: str) -> IcmpTarget:
    commune, link_name = link.split("/")
    ref = LinkRef("68", commune, "Xã Thử", link_name, "vnpt", "tslcd", "C-1", 1e8, None)
    return IcmpTarget(f"link:{link}", "link", "10.91.0.1", ref)


def ping(link: str, at: datetime, received: int, rtt_s: float | None, sent: int = 10) -> object:
    rtts = (rtt_s,) * received if rtt_s is not None else ()
    return IcmpObservation(
        target(link),
        PingResult(
            address="10.91.0.1",
            sent=sent,
            received=received,
            loss_ratio=(sent - received) / sent,
            rtt_min_s=rtt_s,
            rtt_median_s=rtt_s if received else None,
            rtt_max_s=(rtt_s * 2) if rtt_s is not None and received else None,
            jitter_s=None,
            rtts_s=rtts,
            failure=None,
            started_at=at,
        ),
    )


def feed(history: LinkHistory, *observations: object) -> None:
    history.observe(list(observations))  # type: ignore[arg-type]


def test_rounds_fold_into_five_minute_buckets() -> None:
    history = LinkHistory(LINKS)
    # Bucket 0: three rounds (medians 10, 20, 30 ms; 1 of 30 echoes lost).
    feed(history, ping(LINKS[0], T0, 10, 0.010))
    feed(history, ping(LINKS[0], T0 + timedelta(seconds=30), 9, 0.020))
    feed(history, ping(LINKS[0], T0 + timedelta(seconds=60), 10, 0.030))
    # Bucket 1: the link is down.
    feed(history, ping(LINKS[0], T0 + timedelta(seconds=BUCKET_S), 0, None))
    # Bucket 3 (bucket 2 had no round at all): the first round of a new bucket closes the last.
    feed(history, ping(LINKS[0], T0 + timedelta(seconds=3 * BUCKET_S + 5), 10, 0.005))
    series = history.series(LINKS[0], T0 + timedelta(seconds=3 * BUCKET_S + 10))
    assert series is not None
    first = len(series.loss_ratio) - 4  # buckets 0..3 are the last four
    assert series.bucket_start(first) == T0
    assert series.rtt_median_s[first] == pytest.approx(0.020)
    assert series.rtt_max_s[first] == pytest.approx(0.060)
    assert series.loss_ratio[first] == pytest.approx(1 / 30, abs=0.005)
    assert series.loss_ratio[first + 1] == 1.0
    assert series.rtt_median_s[first + 1] is None
    assert series.loss_ratio[first + 2] is None  # no data: not "no loss"
    # The bucket still filling is shown from its rounds so far.
    assert series.rtt_median_s[first + 3] == pytest.approx(0.005)
    assert series.loss_ratio[first + 3] == 0.0
    assert all(v is None for v in series.loss_ratio[:first])
    # Another link saw nothing: all gaps, never someone else's values.
    other = history.series(LINKS[1], T0 + timedelta(seconds=3 * BUCKET_S + 10))
    assert other is not None
    assert set(other.loss_ratio) == {None}
    assert history.series("99999/none", T0) is None


def test_the_ring_keeps_one_day_and_forgets_older_buckets() -> None:
    history = LinkHistory(LINKS[:1], buckets=12)  # one hour, to keep the test short
    for k in range(15):
        feed(history, ping(LINKS[0], T0 + timedelta(seconds=k * BUCKET_S), 10, 0.001 * (k + 1)))
    now = T0 + timedelta(seconds=14 * BUCKET_S + 1)
    series = history.series(LINKS[0], now)
    assert series is not None
    assert len(series.rtt_median_s) == 12
    assert series.start == T0 + timedelta(seconds=3 * BUCKET_S)
    assert series.rtt_median_s == pytest.approx(tuple(0.001 * (k + 1) for k in range(3, 15)))
    # A long silence (down NetWatch) leaves gaps, not stale values.
    later = now + timedelta(seconds=20 * BUCKET_S)
    feed(history, ping(LINKS[0], later, 10, 0.002))
    series = history.series(LINKS[0], later)
    assert series is not None
    assert series.rtt_median_s[:-1] == (None,) * 11
    assert series.rtt_median_s[-1] == pytest.approx(0.002)


def test_values_are_packed_compactly_and_clamped() -> None:
    history = LinkHistory(LINKS[:1])
    feed(history, ping(LINKS[0], T0, 10, 9.0))  # 9 s: beyond 6553.4 ms, clamped
    feed(history, ping(LINKS[0], T0 + timedelta(seconds=BUCKET_S), 10, 0.0123))
    rows = history.drain()
    assert [len(r.buckets) for r in rows] == [12 * 5]
    series = history.series(LINKS[0], T0 + timedelta(seconds=BUCKET_S))
    assert series is not None
    assert series.rtt_median_s[-2] == pytest.approx(6.5534)
    assert series.rtt_median_s[-1] == pytest.approx(0.0123)


async def test_rollups_upsert_load_and_prune(store: Store) -> None:
    rollups = Rollups(store)
    hour = T0.replace(minute=0)
    rows = [
        RollupRow(LINKS[0], hour, b"\x01" * 60),
        RollupRow(LINKS[1], hour, b"\x02" * 60),
        RollupRow(LINKS[0], hour - timedelta(hours=30), b"\x03" * 60),
    ]
    assert await rollups.upsert(rows, T0) == 3
    # The same hour again replaces the row (the hour fills bucket by bucket).
    assert await rollups.upsert([RollupRow(LINKS[0], hour, b"\x04" * 60)], T0) == 1
    assert await rollups.count() == 3
    loaded = await rollups.load(hour - timedelta(hours=1))
    assert [(r.link, r.hour_start, r.buckets[:1]) for r in loaded] == [
        (LINKS[1], hour, b"\x02"),  # by link: "24848/viettel-inet" < "24848/vnpt-tslcd"
        (LINKS[0], hour, b"\x04"),
    ]
    only = await rollups.load(hour - timedelta(days=2), links=[LINKS[0]])
    assert [r.hour_start for r in only] == [hour - timedelta(hours=30), hour]
    assert await rollups.prune(hour - timedelta(hours=26)) == 1
    assert await rollups.count() == 2
    assert await rollups.upsert([], T0) == 0


async def test_history_survives_a_restart_through_the_store(store: Store) -> None:
    rollups = Rollups(store)
    now = datetime.now(UTC).replace(microsecond=0)
    start = now - timedelta(hours=2)
    before = LinkHistory(LINKS)
    at = start
    while at < now:
        down = start + timedelta(minutes=30) <= at < start + timedelta(minutes=40)
        feed(
            before,
            ping(LINKS[0], at, 0 if down else 10, None if down else 0.012),
            ping(LINKS[2], at, 10, 0.030),
        )
        at += timedelta(seconds=30)
    written = await before.flush(rollups, now, include_open=True)
    assert written >= 2 * 2  # two links, at least two hours each
    assert await before.flush(rollups, now) == 0  # nothing new: nothing written
    after = LinkHistory(LINKS)
    assert await after.load(rollups, now) > 0
    for link in (LINKS[0], LINKS[2]):
        old, new = before.series(link, now), after.series(link, now)
        assert old is not None
        assert new is not None
        # Every closed bucket comes back as it was (the one filling at restart starts afresh).
        assert new.rtt_median_s[:-1] == pytest.approx(old.rtt_median_s[:-1])
        assert new.loss_ratio[:-1] == old.loss_ratio[:-1]
    series = after.series(LINKS[0], now)
    assert series is not None
    assert 1.0 in series.loss_ratio  # the ten minutes down are in the chart after a restart
    # New rounds after the restart add to the chart; they never wipe what was restored.
    feed(after, ping(LINKS[0], now + timedelta(seconds=BUCKET_S), 10, 0.5))
    later = after.series(LINKS[0], now + timedelta(seconds=BUCKET_S))
    assert later is not None
    assert 1.0 in later.loss_ratio
    assert later.rtt_median_s[-1] == pytest.approx(0.5)
    assert later.rtt_median_s[-3] == pytest.approx(0.012)


async def test_a_failed_flush_keeps_the_rows_for_the_next(store: Store) -> None:
    rollups = Rollups(store)
    history = LinkHistory(LINKS[:1])
    feed(history, ping(LINKS[0], T0, 10, 0.01))
    feed(history, ping(LINKS[0], T0 + timedelta(seconds=BUCKET_S), 10, 0.01))
    await downgrade(store.engine, "0002")  # the table is gone: every write fails
    with pytest.raises(DBAPIError):
        await history.flush(rollups, T0)
    await upgrade(store.engine)
    assert await history.flush(rollups, T0) == 1  # the same row, written on the next flush
    assert await rollups.count() == 1


async def test_run_flushes_on_stop(store: Store) -> None:
    rollups = Rollups(store)
    history = LinkHistory(LINKS[:1])
    feed(history, ping(LINKS[0], datetime.now(UTC), 10, 0.01))
    stop = asyncio.Event()
    task = asyncio.create_task(history.run(rollups, stop, flush_s=30))
    await asyncio.sleep(0)
    stop.set()
    await asyncio.wait_for(task, 10)
    assert await rollups.count() == 1  # the partial bucket was written on the way out
