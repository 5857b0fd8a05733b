"""Link utilization buckets: SNMP polls folded into 5-minute maxima, persisted and restored.

Store tests run on SQLite and PostgreSQL (tests/store/conftest.py); LinkUtilization is fed real
SnmpObservation values of the Lâm Đồng example's routers (as the engine builds them) and the
packed rows are read back from the link_utilization table.
"""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest

from netwatch.inventory import load_inventory
from netwatch.observations import InterfaceReading, SnmpObservation
from netwatch.plan import Plan, SnmpJob, compile_plan
from netwatch.store import Store
from netwatch.store.models import LinkUtilizationRow
from netwatch.store.rollups import RollupRow, Rollups
from netwatch.utilization import BUCKET_S, LinkUtilization, util_value, utilization_codes
from probes.snmp_types import InterfaceSample, RouterSample
from tests.lam_dong import ENV, EXAMPLE

# An hour boundary, so tests know which bucket and hour each poll falls in.
T0 = datetime(2026, 11, 22, 2, 0, tzinfo=UTC)
VNPT = "24848/vnpt-tslcd"  # 100 Mbps, ether1
VIETTEL = "24848/viettel-internet"  # 200 Mbps, ether2
MBPS = 1e6


@pytest.fixture(scope="module")
def plan() -> Plan:
    return compile_plan(load_inventory(EXAMPLE, environ=ENV))


def _job(plan: Plan) -> SnmpJob:
    return next(j for j in plan.snmp if j.commune == "24848")


def _links(plan: Plan) -> list[str]:
    return [i.link.id for j in plan.snmp for i in j.interfaces]


def poll(
    job: SnmpJob,
    at: datetime,
    rates: dict[str, tuple[float | None, float | None]],
    *,
    with_rates: bool = True,
) -> SnmpObservation:
    """One router poll as the engine hands it on: (in, out) bits/s per link of the job."""
    readings = []
    for n, iface in enumerate(job.interfaces, start=1):
        in_bps, out_bps = rates.get(iface.link.id, (None, None))
        bw = iface.link.bandwidth_bps
        readings.append(
            InterfaceReading(
                link_key=iface.link.key,
                if_index=n,
                oper_up=True,
                in_bps=in_bps,
                out_bps=out_bps,
                in_utilization_ratio=None if in_bps is None else in_bps / bw,
                out_utilization_ratio=None if out_bps is None else out_bps / bw,
                in_octets=10_000,
                out_octets=20_000,
                in_errors=0,
                out_errors=0,
                in_discards=0,
                out_discards=0,
            )
        )
    sample = RouterSample(
        address=job.target.address,
        taken_at=at,
        monotonic_s=at.timestamp(),
        uptime_s=3600.0,
        interfaces=tuple(
            InterfaceSample(n, 1, 10_000, 20_000, 64, 0, 0, 0, 0)
            for n in range(1, len(job.interfaces) + 1)
        ),
        failure=None,
    )
    since = at - timedelta(seconds=60) if with_rates else None
    return SnmpObservation(job, sample, tuple(readings), False, since)


def _ratios(row: RollupRow) -> list[float | None]:
    return [util_value(code) for code in utilization_codes(row.buckets)]


def _by_link(rows: list[RollupRow]) -> dict[tuple[str, datetime], list[float | None]]:
    return {(r.link, r.hour_start): _ratios(r) for r in rows}


EMPTY: list[float | None] = [None] * 12


def test_polls_fold_into_five_minute_maxima(plan: Plan) -> None:
    job = _job(plan)
    used = LinkUtilization(_links(plan))
    used.observe(
        [
            # Bucket 0: the busier direction of each poll, and the highest poll.
            poll(job, T0 + timedelta(seconds=30), {VNPT: (30 * MBPS, 60 * MBPS)}),
            poll(job, T0 + timedelta(seconds=90), {VNPT: (80 * MBPS, 10 * MBPS)}),
            poll(job, T0 + timedelta(seconds=150), {VNPT: (20 * MBPS, None)}),
            # A poll without rates (the first after a start or a failure) says nothing.
            poll(job, T0 + timedelta(seconds=200), {VNPT: (99 * MBPS, 99 * MBPS)}, with_rates=False),
            # Bucket 2; and the 200 Mbps Viettel link's own contract.
            poll(job, T0 + timedelta(seconds=610), {VNPT: (5 * MBPS, 5 * MBPS), VIETTEL: (None, 250 * MBPS)}),
        ]
    )  # fmt: skip
    assert used.bucket(VNPT, T0) == 0.8
    rows = _by_link(used.drain())
    assert rows == {
        (VNPT, T0): [0.8, None, 0.05, *EMPTY[3:]],
        (VIETTEL, T0): [None, None, 1.25, *EMPTY[3:]],  # a burst over the contract
    }
    assert used.drain() == []  # nothing changed since
    # A lower poll does not lower the bucket's highest; a higher one raises it.
    used.observe([poll(job, T0 + timedelta(seconds=40), {VNPT: (10 * MBPS, 10 * MBPS)})])
    assert used.drain() == []
    used.observe([poll(job, T0 + timedelta(seconds=620), {VNPT: (70 * MBPS, 0.0)})])
    assert _by_link(used.drain()) == {(VNPT, T0): [0.8, None, 0.7, *EMPTY[3:]]}


def test_only_the_current_hour_is_held(plan: Plan) -> None:
    job = _job(plan)
    used = LinkUtilization(_links(plan))
    used.observe([poll(job, T0 + timedelta(minutes=55), {VNPT: (50 * MBPS, 0.0)})])
    # The next hour: the last one is packed for the next flush and dropped from memory.
    used.observe([poll(job, T0 + timedelta(minutes=61), {VNPT: (10 * MBPS, 0.0)})])
    assert used.bucket(VNPT, T0 + timedelta(minutes=55)) is None
    # A poll late across the boundary counts in the current hour's first bucket.
    used.observe([poll(job, T0 + timedelta(minutes=59), {VIETTEL: (20 * MBPS, 0.0)})])
    hour = T0 + timedelta(hours=1)
    assert _by_link(used.drain()) == {
        (VNPT, T0): [*EMPTY[:11], 0.5],
        (VNPT, hour): [0.1, *EMPTY[1:]],
        (VIETTEL, hour): [0.1, *EMPTY[1:]],
    }


async def test_rows_are_written_restored_and_pruned(plan: Plan, store: Store) -> None:
    job = _job(plan)
    table = Rollups(store, LinkUtilizationRow)
    used = LinkUtilization(_links(plan), retention_s=86_400)
    step = timedelta(seconds=BUCKET_S)
    used.observe(
        [
            poll(job, T0 + 11 * step, {VNPT: (40 * MBPS, 0.0)}),
            poll(job, T0 + 12 * step, {VNPT: (60 * MBPS, 0.0), VIETTEL: (0.0, 20 * MBPS)}),
        ]
    )
    now = T0 + 12 * step + timedelta(seconds=10)
    assert await used.flush(table, now) == 3
    hour = T0 + timedelta(hours=1)
    stored = _by_link(await table.load(T0 - timedelta(days=1)))
    assert stored == {
        (VIETTEL, hour): [0.1, *EMPTY[1:]],
        (VNPT, T0): [*EMPTY[:11], 0.4],
        (VNPT, hour): [0.6, *EMPTY[1:]],
    }

    # A restart: the current hour comes back, so the next flush does not blank its buckets.
    again = LinkUtilization(_links(plan), retention_s=86_400)
    assert await again.load(table, now) == 2
    again.observe([poll(job, T0 + 13 * step, {VNPT: (10 * MBPS, 0.0)})])
    assert await again.flush(table, now + step) == 1
    stored = _by_link(await table.load(hour))
    assert stored[(VNPT, hour)] == [0.6, 0.1, *EMPTY[2:]]
    assert stored[(VIETTEL, hour)] == [0.1, *EMPTY[1:]]

    # Rows of hours before the retention are pruned.
    assert await table.prune(hour) == 1
    assert await table.count() == 2


def test_links_a_reload_adds_are_recorded(plan: Plan) -> None:
    job = _job(plan)
    used = LinkUtilization([VNPT])
    used.observe([poll(job, T0, {VNPT: (10 * MBPS, 0.0), VIETTEL: (100 * MBPS, 0.0)})])
    used.add_links(_links(plan))  # the configuration reload's (netwatch/reload.py)
    used.observe([poll(job, T0 + timedelta(seconds=60), {VIETTEL: (50 * MBPS, 0.0)})])
    # The VNPT bucket kept its value; VIETTEL counts from the reload on.
    assert _by_link(used.drain()) == {
        (VNPT, T0): [0.1, *EMPTY[1:]],
        (VIETTEL, T0): [0.25, *EMPTY[1:]],
    }


def test_readings_are_matched_to_links_by_key(plan: Plan) -> None:
    """A poll relayed by the bus from a probe whose plan lists the interfaces in another order
    (a reload under way) still lands on the right links, each over its own contract."""
    job = _job(plan)
    relayed = poll(job, T0, {VNPT: (50 * MBPS, 0.0), VIETTEL: (50 * MBPS, 0.0)})
    swapped = SnmpObservation(
        job, relayed.sample, relayed.interfaces[::-1], False, relayed.rates_since
    )
    used = LinkUtilization(_links(plan))
    used.observe([swapped])
    assert _by_link(used.drain()) == {
        (VNPT, T0): [0.5, *EMPTY[1:]],
        (VIETTEL, T0): [0.25, *EMPTY[1:]],
    }
