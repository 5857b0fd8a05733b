"""When a circuit was under maintenance in a month: recurring windows unrolled, windows merged,
a cancelled window cut at its cancellation (pure functions, no store)."""

from __future__ import annotations

import itertools
from datetime import datetime, time, timedelta

from alerts.maintenance import (
    MaintenanceScope,
    MaintenanceWindow,
    OneOff,
    Recurrence,
    Recurring,
    ScopeKind,
)
from alerts.model import LinkInfo, Topology, UpstreamInfo
from netwatch.reports.compute import maintenance_spans, schedule_spans
from netwatch.reports.model import Month
from tests.reports.scenario import A, at, nov

NOVEMBER = Month(2026, 11)
SUNDAY_NIGHTS = Recurring(Recurrence.WEEKLY, time(23, 0), 120, frozenset({6}))
DAILY = Recurring(Recurrence.DAILY, time(23, 30), 60)
INFO = LinkInfo(A, "68", "24848", "Xã Lạc Dương", "vnpt", "LDG-TSLCD-0001", upstream="pop-b")
# pop-b hangs behind pop-a: a window on pop-a covers the link.
TOPOLOGY = Topology(
    links={A: INFO},
    upstreams={
        "pop-a": UpstreamInfo("pop-a", "vnpt", "POP A", pinged=True),
        "pop-b": UpstreamInfo("pop-b", "vnpt", "POP B", pinged=True, parent="pop-a"),
    },
)


def _seconds(spans: list[tuple[datetime, datetime]]) -> float:
    return sum((b - a).total_seconds() for a, b in spans)


def test_weekly_windows_cross_midnight_and_stay_in_the_month() -> None:
    # 1 November 2026 is a Sunday: five Sunday nights, each running into Monday.
    spans = schedule_spans(SUNDAY_NIGHTS, NOVEMBER.start, NOVEMBER.end)
    assert spans == [(nov(d, 23), nov(d + 1, 1)) for d in (1, 8, 15, 22, 29)]


def test_daily_windows_are_clipped_at_both_ends_of_the_month() -> None:
    spans = schedule_spans(DAILY, NOVEMBER.start, NOVEMBER.end)
    # 31 October 23:30 runs 30 minutes into November; 30 November 23:30 only 30 minutes of it.
    assert spans[0] == (nov(1), nov(1, 0, 30))
    assert spans[-1] == (nov(30, 23, 30), at(12, 1))
    assert len(spans) == 31
    assert _seconds(spans) == 30 * 3600


def test_windows_covering_a_link_are_merged_and_cut_at_cancellation() -> None:
    def window(kind: ScopeKind, value: str, schedule: OneOff | Recurring) -> MaintenanceWindow:
        return MaintenanceWindow(MaintenanceScope(kind, value), schedule)

    windows = [
        (window(ScopeKind.ISP, "vnpt", SUNDAY_NIGHTS), None),
        (window(ScopeKind.UPSTREAM, "pop-a", DAILY), None),
        (window(ScopeKind.ISP, "viettel", SUNDAY_NIGHTS), None),  # another ISP's
        (window(ScopeKind.COMMUNE, "24848", OneOff(nov(10, 9), nov(10, 17))), nov(10, 11)),
    ]
    spans = maintenance_spans(INFO, TOPOLOGY, windows, NOVEMBER.start, NOVEMBER.end)
    # Sunday 23:00-01:00 swallows that night's 23:30-00:30; the cancelled day window lasted 2 h.
    assert spans[1] == (nov(1, 23), nov(2, 1))
    assert (nov(10, 9), nov(10, 11)) in spans
    sundays = 5
    assert _seconds(spans) == 30 * 3600 - sundays * 3600 + sundays * 7200 + 2 * 3600
    assert all(b < c for (_, b), (c, _) in itertools.pairwise(spans))
    assert timedelta(0) not in {b - a for a, b in spans}
