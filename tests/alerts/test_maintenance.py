"""Maintenance windows in Asia/Ho_Chi_Minh local time, checked at UTC instants along timelines."""

from __future__ import annotations

from datetime import UTC, datetime, time, timedelta

import pytest

from alerts.maintenance import (
    LOCAL_TZ,
    MaintenanceScope,
    MaintenanceWindow,
    OneOff,
    Recurrence,
    Recurring,
    ScopeKind,
    covers,
    incident_window,
    is_active,
    link_window,
)
from alerts.model import Incident, IncidentKind, LinkInfo, Route, Topology, UpstreamInfo
from alerts.subject import SubjectKey

LINK = LinkInfo("24848/vnpt-tslcd", "68", "24848", "Xã Lát", "vnpt", "LDG-0001", "pop-1")
OTHER = LinkInfo("00123/viettel", "08", "00123", "Xã Khác", "viettel", "HG-0002", "pop-2")
# pop-0 feeds pop-1 (LINK's) and pop-2 (OTHER's).
TOPO = Topology(
    links={LINK.link: LINK, OTHER.link: OTHER},
    upstreams={
        "pop-0": UpstreamInfo("pop-0", "vnpt", "POP 0", pinged=True),
        "pop-1": UpstreamInfo("pop-1", "vnpt", "POP 1", pinged=True, parent="pop-0"),
        "pop-2": UpstreamInfo("pop-2", "viettel", "POP 2", pinged=False, parent="pop-0"),
    },
)


def local(year: int, month: int, day: int, hour: int, minute: int) -> datetime:
    """A local wall-clock time, as the UTC instant NetWatch would check."""
    return datetime(year, month, day, hour, minute, tzinfo=LOCAL_TZ).astimezone(UTC)


def active_minutes(schedule: OneOff | Recurring, start: datetime, minutes: int) -> list[bool]:
    return [is_active(schedule, start + timedelta(minutes=m)) for m in range(minutes)]


def test_one_off_window_is_start_inclusive_end_exclusive() -> None:
    window = OneOff(
        datetime(2026, 11, 22, 22, 0, tzinfo=LOCAL_TZ),
        datetime(2026, 11, 23, 2, 0, tzinfo=LOCAL_TZ),
    )
    timeline = [
        (local(2026, 11, 22, 21, 59), False),
        (local(2026, 11, 22, 22, 0), True),
        (datetime(2026, 11, 22, 15, 0, tzinfo=UTC), True),  # 22:00 local is 15:00 UTC
        (local(2026, 11, 23, 0, 30), True),  # across midnight
        (local(2026, 11, 23, 1, 59), True),
        (local(2026, 11, 23, 2, 0), False),
        (local(2026, 11, 24, 23, 0), False),  # a one-off never comes back
    ]
    for instant, expected in timeline:
        assert is_active(window, instant) is expected, instant


def test_one_off_naive_times_are_local() -> None:
    window = OneOff(datetime(2026, 11, 22, 22, 0), datetime(2026, 11, 23, 2, 0))  # noqa: DTZ001
    assert is_active(window, datetime(2026, 11, 22, 15, 0, tzinfo=UTC))
    assert not is_active(window, datetime(2026, 11, 22, 14, 59, tzinfo=UTC))


def test_a_naive_instant_is_a_bug() -> None:
    window = OneOff(datetime(2026, 1, 1, tzinfo=UTC), datetime(2026, 1, 2, tzinfo=UTC))
    with pytest.raises(ValueError, match="timezone-aware"):
        is_active(window, datetime(2026, 1, 1, 12, 0))  # noqa: DTZ001


def test_daily_window_crossing_midnight() -> None:
    nightly = Recurring(Recurrence.DAILY, time(23, 0), 120)
    timeline = [
        (local(2026, 3, 1, 22, 59), False),
        (local(2026, 3, 1, 23, 0), True),
        (local(2026, 3, 2, 0, 30), True),  # yesterday's occurrence still running
        (local(2026, 3, 2, 0, 59), True),
        (local(2026, 3, 2, 1, 0), False),
        (local(2026, 3, 2, 12, 0), False),
        (local(2026, 3, 2, 23, 15), True),  # and again every night
    ]
    for instant, expected in timeline:
        assert is_active(nightly, instant) is expected, instant
    # One day, minute by minute: exactly 120 active minutes.
    assert sum(active_minutes(nightly, local(2026, 3, 2, 12, 0), 24 * 60)) == 120


def test_weekly_window_on_sunday_night_crosses_into_monday() -> None:
    sunday_night = Recurring(Recurrence.WEEKLY, time(23, 0), 120, frozenset({6}))
    # 2026-03-01 is a Sunday.
    timeline = [
        (local(2026, 2, 28, 23, 30), False),  # Saturday
        (local(2026, 3, 1, 23, 30), True),  # Sunday
        (local(2026, 3, 2, 0, 30), True),  # Monday morning: the new week, same window
        (local(2026, 3, 2, 1, 0), False),
        (local(2026, 3, 2, 23, 30), False),  # Monday night
        (local(2026, 3, 8, 23, 30), True),  # next Sunday
    ]
    for instant, expected in timeline:
        assert is_active(sunday_night, instant) is expected, instant
    week = active_minutes(sunday_night, local(2026, 3, 2, 12, 0), 7 * 24 * 60)
    assert sum(week) == 120


def test_weekly_on_several_days_and_longer_than_a_day() -> None:
    weekdays = Recurring(Recurrence.WEEKLY, time(12, 0), 30, frozenset({0, 2, 4}))
    assert is_active(weekdays, local(2026, 3, 4, 12, 10))  # Wednesday
    assert not is_active(weekdays, local(2026, 3, 3, 12, 10))  # Tuesday
    weekend = Recurring(Recurrence.WEEKLY, time(20, 0), 2 * 24 * 60 + 60, frozenset({4}))
    assert is_active(weekend, local(2026, 3, 8, 20, 30))  # Friday 20:00 + 2 days 30 min
    assert not is_active(weekend, local(2026, 3, 8, 21, 0))
    assert not is_active(weekend, local(2026, 3, 6, 19, 59))


def test_local_time_has_no_daylight_saving() -> None:
    nightly = Recurring(Recurrence.DAILY, time(23, 0), 60)
    for month in (1, 4, 7, 10):  # summer and winter alike: 23:00 local is 16:00 UTC
        assert is_active(nightly, datetime(2026, month, 15, 16, 0, tzinfo=UTC))
        assert not is_active(nightly, datetime(2026, month, 15, 15, 59, tzinfo=UTC))
        assert not is_active(nightly, datetime(2026, month, 15, 17, 0, tzinfo=UTC))


@pytest.mark.parametrize(
    ("kind", "value", "covered"),
    [
        (ScopeKind.PROVINCE, "68", {LINK}),
        (ScopeKind.PROVINCE, "8", {OTHER}),  # codes compare as numbers
        (ScopeKind.COMMUNE, "24848", {LINK}),
        (ScopeKind.COMMUNE, "123", {OTHER}),
        (ScopeKind.LINK, "24848/vnpt-tslcd", {LINK}),
        (ScopeKind.LINK, "123/viettel", {OTHER}),
        (ScopeKind.LINK, "24848/vnpt", set()),
        (ScopeKind.ISP, "vnpt", {LINK}),
        (ScopeKind.ISP, "VNPT", {LINK}),
        (ScopeKind.ISP, "fpt", set()),
        (ScopeKind.UPSTREAM, "pop-1", {LINK}),  # the node the link hangs off
        (ScopeKind.UPSTREAM, "pop-0", {LINK, OTHER}),  # a node above: its whole subtree
        (ScopeKind.UPSTREAM, "pop-9", set()),
    ],
)
def test_each_scope(kind: ScopeKind, value: str, covered: set[LinkInfo]) -> None:
    scope = MaintenanceScope(kind, value)
    assert {link for link in (LINK, OTHER) if covers(scope, link, TOPO)} == covered


NIGHTLY = Recurring(Recurrence.DAILY, time(23, 0), 120)
INSIDE, OUTSIDE = local(2026, 3, 2, 23, 30), local(2026, 3, 2, 22, 0)


def test_link_window_returns_the_covering_active_window() -> None:
    other_isp = MaintenanceWindow(MaintenanceScope(ScopeKind.ISP, "viettel"), NIGHTLY, "x")
    commune = MaintenanceWindow(MaintenanceScope(ScopeKind.COMMUNE, "24848"), NIGHTLY, "Nâng cấp")
    assert link_window(LINK, TOPO, [other_isp, commune], INSIDE) is commune
    assert link_window(LINK, TOPO, [other_isp, commune], OUTSIDE) is None
    assert link_window(LINK, TOPO, [], INSIDE) is None


def _incident(kind: IncidentKind, key: str, links: tuple[str, ...], isp: str | None) -> Incident:
    return Incident(SubjectKey.parse(key), kind, "down", INSIDE, Route.ISP, isp, links)


def test_a_link_incident_is_under_maintenance_when_its_link_is() -> None:
    incident = _incident(IncidentKind.LINK_FAULT, "link:24848/vnpt-tslcd", (LINK.link,), "vnpt")
    window = MaintenanceWindow(MaintenanceScope(ScopeKind.LINK, LINK.link), NIGHTLY)
    assert incident_window(incident, TOPO, [window], INSIDE) is window
    assert incident_window(incident, TOPO, [window], OUTSIDE) is None
    gone = _incident(IncidentKind.LINK_FAULT, "link:9/gone", ("9/gone",), "vnpt")
    assert incident_window(gone, TOPO, [window], INSIDE) is None


def test_an_upstream_outage_is_covered_by_its_isp_or_by_all_its_links() -> None:
    outage = _incident(
        IncidentKind.UPSTREAM_OUTAGE, "upstream:pop-1", (LINK.link, OTHER.link), "vnpt"
    )
    isp = MaintenanceWindow(MaintenanceScope(ScopeKind.ISP, "vnpt"), NIGHTLY)
    assert incident_window(outage, TOPO, [isp], INSIDE) is isp
    assert incident_window(outage, TOPO, [isp], OUTSIDE) is None
    one = MaintenanceWindow(MaintenanceScope(ScopeKind.COMMUNE, "24848"), NIGHTLY)
    both = MaintenanceWindow(MaintenanceScope(ScopeKind.PROVINCE, "8"), NIGHTLY)
    assert incident_window(outage, TOPO, [one], INSIDE) is None  # one link still expected up
    assert incident_window(outage, TOPO, [one, both], INSIDE) is one
    no_isp = _incident(IncidentKind.UPSTREAM_OUTAGE, "upstream:p", (LINK.link,), None)
    assert incident_window(no_isp, TOPO, [isp], INSIDE) is isp  # via its link's ISP


def test_portal_and_monitor_incidents_are_never_under_maintenance() -> None:
    everything = MaintenanceWindow(MaintenanceScope(ScopeKind.ISP, "vnpt"), NIGHTLY)
    for kind in (IncidentKind.PORTAL_OUTAGE, IncidentKind.MONITOR_CONNECTIVITY):
        incident = _incident(kind, "portal:x", (LINK.link,), "vnpt")
        assert incident_window(incident, TOPO, [everything], INSIDE) is None


def test_an_upstream_outage_is_covered_by_a_window_on_a_node_above_it() -> None:
    outage = _incident(IncidentKind.UPSTREAM_OUTAGE, "upstream:pop-1", (LINK.link,), "vnpt")
    above = MaintenanceWindow(MaintenanceScope(ScopeKind.UPSTREAM, "pop-0"), NIGHTLY)
    assert incident_window(outage, TOPO, [above], INSIDE) is above
    beside = MaintenanceWindow(MaintenanceScope(ScopeKind.UPSTREAM, "pop-2"), NIGHTLY)
    assert incident_window(outage, TOPO, [beside], INSIDE) is None


def test_the_topology_chain_stops_at_unknown_nodes_and_cycles() -> None:
    loop = Topology(
        links={},
        upstreams={
            "a": UpstreamInfo("a", "vnpt", "A", pinged=True, parent="b"),
            "b": UpstreamInfo("b", "vnpt", "B", pinged=True, parent="a"),
            "c": UpstreamInfo("c", "vnpt", "C", pinged=True, parent="gone"),
        },
    )
    assert loop.upstream_chain("a") == ["a", "b"]
    assert loop.upstream_chain("c") == ["c"]
    assert loop.upstream_chain(None) == []
