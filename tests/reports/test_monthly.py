"""The monthly report from a hand-made November (tests/reports/scenario.py), every figure
checked to the second, on SQLite and on PostgreSQL."""

from __future__ import annotations

from pathlib import Path

import pytest

from netwatch.inventory import Inventory, load_inventory
from netwatch.reports import (
    CircuitReport,
    Figure,
    GroupReport,
    Month,
    MonthlyReport,
    Outage,
    ReportError,
    Times,
    monthly_report,
)
from netwatch.store import Store
from netwatch.store.rollups import Rollups
from tests.reports.scenario import (
    CONFIG,
    ENV,
    MONTH_S,
    NOW,
    A,
    B,
    C,
    at,
    nov,
    write_month,
)

NOVEMBER = Month(2026, 11)
MS = 0.001


@pytest.fixture
def inventory(tmp_path: Path) -> Inventory:
    path = tmp_path / "netwatch.yaml"
    path.write_text(CONFIG, encoding="utf-8")
    return load_inventory(path, environ=ENV)


async def _report(
    store: Store, inventory: Inventory, month: Month = NOVEMBER, **kw: str
) -> MonthlyReport:
    return await monthly_report(store, Rollups(store), inventory, month, NOW, **kw)


def _circuit(report: MonthlyReport, link: str) -> CircuitReport:
    (found,) = [c for c in report.circuits if c.link == link]
    return found


def _group(groups: tuple[GroupReport, ...], key: str) -> GroupReport:
    (found,) = [g for g in groups if g.key == key]
    return found


A_TIMES = Times(MONTH_S, 21_600, 21_600, 17_130, 3_600, 2_528_070)
B_TIMES = Times(MONTH_S, 0, 21_600, 4_845, 5_400, 2_560_155)
C_TIMES = Times(MONTH_S, 0, 1_296_000, 0, 0, 1_296_000)


async def test_every_figure_of_a_known_november(store: Store, inventory: Inventory) -> None:
    await write_month(store)
    report = await _report(store, inventory)
    assert report.month == NOVEMBER
    assert report.month.start == nov(1)
    assert report.month.end == at(12, 1)
    assert report.complete
    assert [c.link for c in report.circuits] == [A, B, C]

    a = _circuit(report, A)
    assert (a.circuit, a.isp_name, a.province, a.province_name) == (
        "LDG-TSLCD-0001",
        "VNPT",
        "68",
        "Lâm Đồng",
    )
    assert a.commune_name == "Xã Lạc Dương"
    assert a.maintenance_excluded
    assert a.maintenance_s == 21_600
    assert a.times == A_TIMES
    assert a.times.known_s == 2_548_800
    assert a.times.availability_ratio == pytest.approx(1 - 17_130 / 2_548_800, abs=1e-15)
    assert a.times.downtime_min == 285.5
    assert a.outages == (
        Outage(nov(1), nov(1, 0, 30), 1_800, began_before=True, continues_after=False),
        Outage(nov(5, 10), nov(5, 12, 15, 30), 8_130, began_before=False, continues_after=False),
        # Maintenance ended at 03:00: only the hour after it counts.
        Outage(nov(20, 3), nov(20, 4), 3_600, began_before=False, continues_after=False),
        # 25 Nov 22:30-23:00 lay wholly in excluded maintenance: no incident.
        Outage(nov(30, 23), at(12, 1), 3_600, began_before=False, continues_after=True),
    )
    assert a.incidents == 4
    assert a.latency_s.count == 20
    assert a.latency_s.mean == pytest.approx(36.0 * MS, abs=1e-12)
    assert a.latency_s.p95 == pytest.approx(30.0 * MS, abs=1e-12)
    assert a.loss_ratio.count == 20
    assert a.loss_ratio.mean == pytest.approx(0.005, abs=1e-15)
    # The 19th of A's 20 November buckets (1 % ... 20 %); the maintenance and October ones out.
    assert a.utilization_p95_ratio == 0.19
    assert a.utilization_missing is None
    assert [b.figure for b in a.breaches] == [Figure.AVAILABILITY]
    assert [t.id for t in a.tickets] == ["NW-T1", "NW-T2"]
    t1, t2 = a.tickets
    assert (t1.time_to_acknowledge_s, t1.time_to_restore_s) == (1_050, 7_950)
    assert t1.restored_at == nov(5, 12, 15, 30)  # when the line came back, not the auto-resolve
    assert (t2.time_to_acknowledge_s, t2.time_to_restore_s) == (None, 3_300)
    assert a.ticket_summary.count == 2
    assert a.ticket_summary.acknowledged == 1
    assert a.ticket_summary.mean_time_to_acknowledge_s == 1_050
    assert a.ticket_summary.mean_time_to_restore_s == 5_625
    assert a.ticket_summary.max_time_to_restore_s == 7_950

    b = _circuit(report, B)
    assert not b.maintenance_excluded  # Viettel's contract counts maintenance
    assert b.maintenance_s == 7_200
    assert b.times == B_TIMES
    assert b.times.availability_ratio == pytest.approx(1 - 4_845 / 2_570_400, abs=1e-15)
    assert [(o.start, o.end, o.counted_s) for o in b.outages] == [
        (nov(8, 14), nov(8, 14, 20, 45), 1_245),
        (nov(25, 22, 10), nov(25, 23, 10), 3_600),
    ]
    assert b.latency_s.count == 10
    assert b.latency_s.mean == pytest.approx(64.0 * MS, abs=1e-12)
    assert b.latency_s.p95 == pytest.approx(100.0 * MS, abs=1e-12)
    assert b.loss_ratio.mean == pytest.approx(0.025, abs=1e-15)
    # 21 buckets (the one in maintenance counts for Viettel): the 20th is 85 %, exactly the
    # threshold, which breaks it (>=, as alerting's capacity rule).
    assert b.utilization_p95_ratio == 0.85
    assert [x.figure for x in b.breaches] == [
        Figure.MEAN_LATENCY,
        Figure.LOSS,
        Figure.P95_UTILIZATION,
    ]
    (used,) = [x for x in b.breaches if x.figure is Figure.P95_UTILIZATION]
    assert used.value == 0.85
    assert used.threshold.source.en == "NetWatch's default threshold (thresholds)"
    assert [t.id for t in b.tickets] == ["NW-T2", "NW-T4"]
    assert b.tickets[1].time_to_acknowledge_s == 1_800
    assert b.tickets[1].time_to_restore_s is None  # still open

    c = _circuit(report, C)
    assert c.province_name == "Cà Mau"
    assert c.times == C_TIMES  # unknown until its first judged state
    assert c.times.availability_ratio == 1.0
    assert c.latency_s.count == 0
    assert c.latency_s.mean is None
    assert c.utilization_p95_ratio is None  # no SNMP bucket at all
    assert c.utilization_missing is not None
    assert "no SNMP poll in the month" in c.utilization_missing.en
    assert c.breaches == ()
    assert c.tickets == ()


async def test_groups_are_time_weighted(store: Store, inventory: Inventory) -> None:
    await write_month(store)
    report = await _report(store, inventory)
    vnpt = _group(report.by_isp, "vnpt")
    assert (vnpt.name, vnpt.circuits) == ("VNPT", 2)
    assert vnpt.times == A_TIMES + C_TIMES
    # 1 - 17,130 / (2,548,800 + 1,296,000); the mean of A's and C's percentages would differ.
    assert vnpt.times.availability_ratio == pytest.approx(1 - 17_130 / 3_844_800, abs=1e-15)
    assert vnpt.incidents == 4
    assert vnpt.circuits_in_breach == 1
    assert vnpt.breaches == ()  # 99.554 %: the group holds
    viettel = _group(report.by_isp, "viettel")
    assert viettel.times == B_TIMES

    lam_dong = _group(report.by_province, "68")
    assert (lam_dong.name, lam_dong.circuits) == ("Lâm Đồng", 2)
    assert lam_dong.times == A_TIMES + B_TIMES
    assert lam_dong.times.down_s == 21_975
    assert lam_dong.times.availability_ratio == pytest.approx(1 - 21_975 / 5_119_200, abs=1e-15)
    # Buckets pooled: (19 x 30 + 150 + 9 x 60 + 100) / 30 ms; the 29th of 30 is 100 ms.
    assert lam_dong.latency_s.count == 30
    assert lam_dong.latency_s.mean == pytest.approx(1_360 / 30 * MS, abs=1e-12)
    assert lam_dong.latency_s.p95 == pytest.approx(100.0 * MS, abs=1e-12)
    assert lam_dong.loss_ratio.mean == pytest.approx(0.35 / 30, abs=1e-15)
    # T2 is about both circuits: one ticket.
    tickets = lam_dong.ticket_summary
    assert (tickets.count, tickets.acknowledged, tickets.restored) == (3, 2, 2)
    assert tickets.mean_time_to_acknowledge_s == 1_425
    assert tickets.mean_time_to_restore_s == 5_625
    assert lam_dong.circuits_in_breach == 2
    assert lam_dong.breaches == ()  # 99.571 %, 45.3 ms, 1.17 %: the province holds

    ca_mau = _group(report.by_province, "96")
    assert ca_mau.times == C_TIMES
    total = report.total
    assert total.circuits == 3
    assert total.times == A_TIMES + B_TIMES + C_TIMES
    assert total.incidents == 6
    assert total.ticket_summary.count == 3


async def test_an_outage_across_the_month_start_counts_in_both_months(
    store: Store, inventory: Inventory
) -> None:
    await write_month(store)
    october = _circuit(await _report(store, inventory, Month(2026, 10)), A)
    assert october.outages[-1] == Outage(
        at(10, 31, 23), nov(1), 3_600, began_before=False, continues_after=True
    )
    # A is known from 20 Oct 00:00: the 19 days before are unknown.
    assert october.times.unknown_s == 19 * 86_400
    assert october.times.down_s == 3_600
    assert [t.id for t in october.tickets] == ["NW-T3"]  # a ticket belongs to its opening month
    assert october.tickets[0].time_to_restore_s == 87 * 60
    # Its latency bucket (31 Oct 23:00) is October's, and so is its utilization bucket.
    assert october.latency_s.count == 1
    assert october.utilization_p95_ratio == 0.99


async def test_filters_and_refusals(store: Store, inventory: Inventory) -> None:
    await write_month(store)
    only = await _report(store, inventory, province="96")
    assert [c.link for c in only.circuits] == [C]
    assert only.province == "96"
    vnpt_lam_dong = await _report(store, inventory, province="68", isp="vnpt")
    assert [c.link for c in vnpt_lam_dong.circuits] == [A]
    with pytest.raises(ReportError) as unknown_isp:
        await _report(store, inventory, isp="fpt")
    assert unknown_isp.value.not_found
    assert unknown_isp.value.message == (
        "ISP 'fpt' has no circuit monitored here (ISPs: viettel, vnpt)"
    )
    with pytest.raises(ReportError) as unknown_province:
        await _report(store, inventory, province="01")
    assert unknown_province.value.message == (
        "province 01 has no commune monitored by this NetWatch (provinces: 68, 96)"
    )
    with pytest.raises(ReportError) as future:
        await _report(store, inventory, Month(2027, 1))
    assert not future.value.not_found
    assert future.value.message == (
        "2027-01 has not begun yet: a report covers a past or the current month"
    )


async def test_the_current_month_counts_the_rest_as_unknown(
    store: Store, inventory: Inventory
) -> None:
    await write_month(store)
    report = await monthly_report(store, Rollups(store), inventory, NOVEMBER, nov(16, 12))
    assert not report.complete
    c = _circuit(report, C)
    assert (c.times.ok_s, c.times.unknown_s) == (12 * 3600, MONTH_S - 12 * 3600)
