"""Maintenance windows: when a link's problems are expected and must not raise tickets.

Windows are written in local time, Asia/Ho_Chi_Minh (UTC+7 all year: Vietnam has no daylight
saving time, so a wall-clock window is one fixed span of absolute time). A window is one-off
(start, end) or recurring (daily, or weekly on some days, starting at a local HH:MM and lasting
``duration_min``); a recurring window may cross midnight and the end of the week (Sunday 23:00
for 120 minutes covers Monday 00:30). A window is scoped to one province, commune, link
("CODE/LINK-ID"), ISP, or ISP upstream node: a node's window covers every link behind it, also
behind the nodes below it (its whole subtree of the topology). Maintenance suppresses tickets,
never measurement: callers keep evaluating health and decide what to do with an incident under
maintenance (the issue: a ticket already open when a window starts is kept).
"""

from __future__ import annotations

import enum
from collections.abc import Iterable
from dataclasses import dataclass, field
from datetime import date, datetime, time, timedelta
from zoneinfo import ZoneInfo

from alerts.model import Incident, IncidentKind, LinkInfo, Topology

LOCAL_TZ = ZoneInfo("Asia/Ho_Chi_Minh")


class ScopeKind(enum.Enum):
    """What a window's scope names."""

    PROVINCE = "province"
    COMMUNE = "commune"
    LINK = "link"
    ISP = "isp"
    UPSTREAM = "upstream"  # an ISP upstream node and everything behind it


class Recurrence(enum.Enum):
    """How often a recurring window comes back."""

    DAILY = "daily"
    WEEKLY = "weekly"


@dataclass(frozen=True, slots=True)
class MaintenanceScope:
    """The one thing a window covers: a province, commune, link ("CODE/LINK-ID"), ISP or
    upstream node (with the nodes below it)."""

    kind: ScopeKind
    value: str


@dataclass(frozen=True, slots=True)
class OneOff:
    """A single window; naive times are read as local time."""

    start: datetime
    end: datetime


@dataclass(frozen=True, slots=True)
class Recurring:
    """A window that comes back daily, or weekly on ``weekdays`` (0 = Monday ... 6 = Sunday)."""

    every: Recurrence
    at: time  # local start time
    duration_min: float
    weekdays: frozenset[int] = field(default_factory=frozenset)


@dataclass(frozen=True, slots=True)
class MaintenanceWindow:
    """A scoped window with its schedule and the reason shown to people."""

    scope: MaintenanceScope
    schedule: OneOff | Recurring
    reason: str = ""


def _local(at: datetime) -> datetime:
    return at.replace(tzinfo=LOCAL_TZ) if at.tzinfo is None else at.astimezone(LOCAL_TZ)


def is_active(schedule: OneOff | Recurring, at: datetime) -> bool:
    """Whether a schedule covers the instant ``at``, which must be timezone-aware."""
    if at.tzinfo is None:
        raise ValueError("maintenance is checked at a timezone-aware instant")  # a caller's bug
    now = at.astimezone(LOCAL_TZ)
    if isinstance(schedule, OneOff):
        return _local(schedule.start) <= now < _local(schedule.end)
    duration = timedelta(minutes=schedule.duration_min)
    # Any occurrence that started up to `duration` ago may still run: look back enough days.
    for days_back in range(duration.days + 2):
        day: date = now.date() - timedelta(days=days_back)
        if schedule.every is Recurrence.WEEKLY and day.weekday() not in schedule.weekdays:
            continue
        start = datetime.combine(day, schedule.at, tzinfo=LOCAL_TZ)
        if start <= now < start + duration:
            return True
    return False


def _same_code(a: str, b: str) -> bool:
    """Codes compare as numbers when both are digits: province 8 is "08", commune 123 "00123"."""
    a, b = a.strip(), b.strip()
    if a.isdigit() and b.isdigit():
        return int(a) == int(b)
    return a.casefold() == b.casefold()


def _same_link(a: str, b: str) -> bool:
    code_a, _, id_a = a.partition("/")
    code_b, _, id_b = b.partition("/")
    return _same_code(code_a, code_b) and id_a == id_b


def covers(scope: MaintenanceScope, link: LinkInfo, topology: Topology) -> bool:
    """Whether a scope includes a link (an upstream node's: the link is behind it or behind a
    node below it)."""
    if scope.kind is ScopeKind.LINK:
        return _same_link(scope.value, link.link)
    if scope.kind is ScopeKind.UPSTREAM:
        return scope.value in topology.upstream_chain(link.upstream)
    named = {
        ScopeKind.PROVINCE: link.province,
        ScopeKind.COMMUNE: link.commune,
        ScopeKind.ISP: link.isp,
    }[scope.kind]
    return _same_code(scope.value, named)


def link_window(
    link: LinkInfo, topology: Topology, windows: Iterable[MaintenanceWindow], at: datetime
) -> MaintenanceWindow | None:
    """The first window that puts a link under maintenance at ``at``, or None."""
    for window in windows:
        if covers(window.scope, link, topology) and is_active(window.schedule, at):
            return window
    return None


def incident_window(
    incident: Incident, topology: Topology, windows: Iterable[MaintenanceWindow], at: datetime
) -> MaintenanceWindow | None:
    """The window that explains an incident at ``at``, or None when it is not under maintenance.

    A link incident is under maintenance when its link is. An upstream outage is when a window
    for the node's ISP is active, or when every link behind it is under maintenance. Portal
    outages and the monitor's own connectivity are never covered: no scope names them.
    """
    pending = tuple(windows)
    if incident.kind in (IncidentKind.PORTAL_OUTAGE, IncidentKind.MONITOR_CONNECTIVITY):
        return None
    if incident.kind is IncidentKind.UPSTREAM_OUTAGE and incident.isp is not None:
        for window in pending:
            if (
                window.scope.kind is ScopeKind.ISP
                and _same_code(window.scope.value, incident.isp)
                and is_active(window.schedule, at)
            ):
                return window
    found: MaintenanceWindow | None = None
    for key in incident.links:
        info = topology.links.get(key)
        covering = None if info is None else link_window(info, topology, pending, at)
        if covering is None:
            return None
        found = found or covering
    return found
