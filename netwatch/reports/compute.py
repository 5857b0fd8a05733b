"""The monthly report computed from the store: state history, maintenance, rollups, tickets.

One pass per circuit over the month cut into segments at every state change, maintenance
boundary and the report's moment (`_segments`); each segment is one state, in or out of
maintenance, so every second of the month lands in exactly one of excluded, unknown, down,
degraded or ok. Groups (ISP, province, total) add the circuits' seconds and pool their buckets:
time-weighted figures, never an average of percentages. docs/reports.md says what each figure
means.
"""

from __future__ import annotations

import asyncio
import bisect
import itertools
import sys
from array import array
from collections import Counter
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from datetime import date, datetime, timedelta

from alerts.maintenance import (
    LOCAL_TZ,
    MaintenanceWindow,
    OneOff,
    Recurrence,
    Recurring,
    covers,
)
from alerts.model import LinkInfo, Topology
from alerts.tickets import EventKind
from netwatch.alerting import windows_of
from netwatch.health import link_id, topology_of
from netwatch.history import (
    BUCKET_BYTES,
    BUCKET_S,
    LOSS_STEPS,
    NO_LOSS,
    NO_RTT,
    RTT_UNIT_S,
    bucket_codes,
)
from netwatch.inventory.divisions import Divisions
from netwatch.inventory.models import Inventory
from netwatch.reports.model import (
    NO_TIME,
    UTILIZATION_MISSING,
    CircuitReport,
    Figure,
    GroupKind,
    GroupReport,
    Month,
    MonthlyReport,
    Outage,
    Samples,
    TicketFigures,
    TicketSummary,
    Times,
    breaches_of,
)
from netwatch.store import StateInterval, StoredTicket, TicketStatus
from netwatch.store.models import LinkUtilizationRow
from netwatch.store.repository import Store
from netwatch.store.rollups import RollupRow, Rollups
from netwatch.store.types import DEGRADED_STATES, UNAVAILABLE_STATES
from netwatch.utilization import BUCKET_S as UTIL_BUCKET_S
from netwatch.utilization import NO_UTIL, util_value, utilization_codes

Span = tuple[datetime, datetime]
LOSS_UNIT = 1.0 / LOSS_STEPS  # a loss code's ratio


class ReportError(ValueError):
    """A report that cannot be made as asked (an unknown province or ISP, a future month)."""

    def __init__(self, message: str, *, not_found: bool = False) -> None:
        super().__init__(message)
        self.message = message
        self.not_found = not_found  # the filter names nothing monitored (404), else 422


@dataclass(frozen=True, slots=True)
class Circuit:
    """What the report needs to know of one circuit, from the inventory."""

    info: LinkInfo
    link_id: str
    province_name: str
    isp_name: str
    path: str
    bandwidth_mbps: float
    exclude_maintenance: bool


def circuits_of(
    inventory: Inventory,
    province: str | None = None,
    isp: str | None = None,
    within: frozenset[int] | None = None,
) -> list[Circuit]:
    """The inventory's circuits (of one province and/or ISP, `within` the provinces the caller
    may see, None: all); ReportError (404) when a filter names nothing this NetWatch
    monitors."""
    topology = topology_of(inventory)
    provinces = Divisions().provinces
    out: list[Circuit] = []
    for commune in inventory.communes:
        for link in commune.links:
            info = topology.links[link_id(commune.code, link.id)]
            if province is not None and info.province != province:
                continue
            if within is not None and commune.province_code not in within:
                continue
            if isp is not None and info.isp != isp:
                continue
            isp_config = inventory.isps.get(link.isp)
            out.append(
                Circuit(
                    info=info,
                    link_id=link.id,
                    province_name=provinces.get(commune.province_code, info.province),
                    isp_name=isp_config.name if isp_config is not None else link.isp,
                    path=link.path,
                    bandwidth_mbps=link.bandwidth_mbps,
                    exclude_maintenance=(
                        isp_config.contract.exclude_maintenance if isp_config else True
                    ),
                )
            )
    codes = sorted({f"{c.province_code:02d}" for c in inventory.communes})
    if province is not None and province not in codes:
        raise ReportError(
            f"province {province} has no commune monitored by this NetWatch "
            f"(provinces: {', '.join(codes) or 'none'})",
            not_found=True,
        )
    if isp is not None and not out:
        known = sorted({link.isp for c in inventory.communes for link in c.links})
        raise ReportError(
            f"ISP {isp!r} has no circuit monitored here"
            + (f" in province {province}" if province else "")
            + f" (ISPs: {', '.join(known) or 'none'})",
            not_found=True,
        )
    # By province, then as the configuration lists them (what its writers expect to see).
    return sorted(out, key=lambda c: c.info.province)


# --- maintenance ------------------------------------------------------------------------------


def _local(at: datetime) -> datetime:
    return at.replace(tzinfo=LOCAL_TZ) if at.tzinfo is None else at


def schedule_spans(schedule: OneOff | Recurring, start: datetime, end: datetime) -> list[Span]:
    """The occurrences of a schedule that overlap [start, end), clipped to it."""
    if isinstance(schedule, OneOff):
        raw = [(_local(schedule.start), _local(schedule.end))]
    else:
        duration = timedelta(minutes=schedule.duration_min)
        first: date = start.astimezone(LOCAL_TZ).date() - timedelta(days=duration.days + 1)
        last: date = end.astimezone(LOCAL_TZ).date()
        raw = []
        day = first
        while day <= last:
            if schedule.every is Recurrence.DAILY or day.weekday() in schedule.weekdays:
                begin = datetime.combine(day, schedule.at, tzinfo=LOCAL_TZ)
                raw.append((begin, begin + duration))
            day += timedelta(days=1)
    return [(max(a, start), min(b, end)) for a, b in raw if a < end and b > start]


def merged(spans: Iterable[Span]) -> list[Span]:
    """Spans sorted with the overlapping and touching ones joined."""
    out: list[Span] = []
    for a, b in sorted(spans):
        if b <= a:
            continue
        if out and a <= out[-1][1]:
            out[-1] = (out[-1][0], max(out[-1][1], b))
        else:
            out.append((a, b))
    return out


def maintenance_spans(
    info: LinkInfo,
    topology: Topology,
    windows: Sequence[tuple[MaintenanceWindow, datetime | None]],
    start: datetime,
    end: datetime,
) -> list[Span]:
    """When a circuit was under maintenance in [start, end): the windows covering it (each
    cut at its cancellation, if cancelled), merged."""
    spans: list[Span] = []
    for window, cancelled_at in windows:
        if not covers(window.scope, info, topology):
            continue
        stop = min(end, cancelled_at) if cancelled_at is not None else end
        if stop > start:
            spans.extend(schedule_spans(window.schedule, start, stop))
    return merged(spans)


# --- one circuit ------------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class _Segment:
    start: datetime
    end: datetime
    state: str | None  # None: no interval covers it (unknown)
    maintenance: bool


def _segments(
    start: datetime,
    end: datetime,
    known_end: datetime,
    intervals: Sequence[StateInterval],
    spans: Sequence[Span],
) -> list[_Segment]:
    """[start, end) cut at every interval and maintenance boundary and at known_end."""
    points = {start, end}
    if start < known_end < end:
        points.add(known_end)
    for iv in intervals:
        for at in (iv.since, iv.until):
            if at is not None and start < at < end:
                points.add(at)
    for a, b in spans:
        points.update(p for p in (a, b) if start < p < end)
    cuts = sorted(points)
    out: list[_Segment] = []
    i = 0  # intervals are in order and do not overlap: one forward pass
    for a, b in itertools.pairwise(cuts):
        state: str | None = None
        if a < known_end:
            while i < len(intervals) and (intervals[i].until or known_end) <= a:
                i += 1
            j = i
            # The last interval that began by `a` and still runs at `a`.
            while j < len(intervals) and intervals[j].since <= a:
                if (intervals[j].until or known_end) > a:
                    state = intervals[j].state
                j += 1
        out.append(_Segment(a, b, state, _in(spans, a)))
    return out


def _times(segments: Sequence[_Segment], exclude: bool, period_s: float) -> Times:
    excluded = unknown = down = degraded = ok = 0.0
    for s in segments:
        seconds = (s.end - s.start).total_seconds()
        if exclude and s.maintenance:
            excluded += seconds
        elif s.state in UNAVAILABLE_STATES:
            down += seconds
        elif s.state in DEGRADED_STATES:
            degraded += seconds
        elif s.state == "ok":
            ok += seconds
        else:  # "unknown", no interval, after the report's moment, a state not classified
            unknown += seconds
    return Times(period_s, excluded, unknown, down, degraded, ok)


def _outages(
    intervals: Sequence[StateInterval],
    segments: Sequence[_Segment],
    exclude: bool,
    month: Month,
    known_end: datetime,
) -> list[Outage]:
    """Down stretches (adjacent unavailable intervals joined) with down time counted in the
    month; each keeps only its in-month, not excluded part."""
    stretches: list[tuple[datetime, datetime | None]] = []
    for iv in intervals:
        if iv.state not in UNAVAILABLE_STATES:
            continue
        if stretches and stretches[-1][1] == iv.since:
            stretches[-1] = (stretches[-1][0], iv.until)
        else:
            stretches.append((iv.since, iv.until))
    starts = [s.start for s in segments]
    out = []
    for since, until in stretches:
        stop = until or known_end
        counted = []
        for s in segments[bisect.bisect_left(starts, since) :]:
            if s.start >= stop:
                break
            if s.state in UNAVAILABLE_STATES and not (exclude and s.maintenance):
                counted.append(s)
        if not counted:
            continue
        out.append(
            Outage(
                start=counted[0].start,
                end=counted[-1].end,
                counted_s=sum((s.end - s.start).total_seconds() for s in counted),
                began_before=since < month.start,
                continues_after=until is None or until > month.end,
            )
        )
    return out


def _in(spans: Sequence[Span], at: datetime) -> bool:
    """Whether `at` is inside one of the (merged, sorted) spans."""
    k = bisect.bisect_right(spans, at, key=_span_start) - 1
    return k >= 0 and at < spans[k][1]


def _span_start(span: Span) -> datetime:
    return span[0]


def _bucket_codes(
    rows: Sequence[RollupRow], spans: Sequence[Span], exclude: bool
) -> tuple[Counter[int], Counter[int]]:
    """How many of the month's 5-minute buckets had each median RTT code and each loss code.
    A bucket starting in excluded maintenance is left out; one with no echo answered is
    downtime (counted in availability), not loss. Rows are the month's (hours start on it).

    Hours that no excluded maintenance touches are counted in C (byte slices and Counter over
    an array), the others bucket by bucket: a national month is ~86 million buckets."""
    rtts: Counter[int] = Counter()
    losses: Counter[int] = Counter()
    whole: list[bytes] = []
    step = timedelta(seconds=BUCKET_S)
    hour = timedelta(hours=1)
    for row in rows:
        if not (exclude and spans and _touches(spans, row.hour_start, row.hour_start + hour)):
            whole.append(row.buckets[: len(row.buckets) - len(row.buckets) % BUCKET_BYTES])
            continue
        for k, (rtt, _top, loss) in enumerate(bucket_codes(row.buckets)):
            if loss == NO_LOSS or _in(spans, row.hour_start + k * step):
                continue
            rtts[rtt] += 1
            losses[loss] += 1
    packed = b"".join(whole)
    # Little-endian uint16 median RTT at offset 0 of each 5-byte bucket, uint8 loss at 4.
    rtt_bytes = bytearray(2 * (len(packed) // BUCKET_BYTES))
    rtt_bytes[0::2] = packed[0::BUCKET_BYTES]
    rtt_bytes[1::2] = packed[1::BUCKET_BYTES]
    codes = array("H")
    codes.frombytes(bytes(rtt_bytes))
    if sys.byteorder == "big":
        codes.byteswap()
    rtts.update(codes)
    losses.update(packed[4::BUCKET_BYTES])
    # No echo answered: no RTT, and downtime rather than loss; no round at all: nothing.
    for counter, gone in ((rtts, NO_RTT), (losses, NO_LOSS), (losses, LOSS_STEPS)):
        counter.pop(gone, None)
    return rtts, losses


def _utilization_codes(
    rows: Sequence[RollupRow], spans: Sequence[Span], exclude: bool
) -> Counter[int]:
    """How many of the month's 5-minute utilization buckets had each code (netwatch.utilization);
    buckets without reading are left out, and so is a bucket starting in excluded maintenance."""
    codes: Counter[int] = Counter()
    step = timedelta(seconds=UTIL_BUCKET_S)
    hour = timedelta(hours=1)
    for row in rows:
        values = utilization_codes(row.buckets)
        if not (exclude and spans and _touches(spans, row.hour_start, row.hour_start + hour)):
            codes.update(values)
            continue
        codes.update(
            code for k, code in enumerate(values) if not _in(spans, row.hour_start + k * step)
        )
    codes.pop(NO_UTIL, None)
    return codes


def _touches(spans: Sequence[Span], start: datetime, end: datetime) -> bool:
    """Whether [start, end) overlaps one of the (merged, sorted) spans."""
    k = bisect.bisect_left(spans, end, key=_span_start)
    return k > 0 and spans[k - 1][1] > start


def ticket_figures(stored: StoredTicket) -> TicketFigures:
    """A ticket's handling times: restored when the incident was seen gone for good (the start
    of the recovery hold that auto-resolved it), or when resolved by hand; never for a ticket
    closed because its subject left the configuration."""
    t = stored.ticket
    restored: datetime | None = None
    # Closed because its circuit left the configuration: nobody saw it come back.
    unmonitored = any(e.kind is EventKind.UNMONITORED for e in t.log)
    if t.status is TicketStatus.RESOLVED and t.resolved_at is not None and not unmonitored:
        restored = t.resolved_at
        if t.ok_since is not None and t.ok_since <= t.resolved_at:
            restored = t.ok_since
    return TicketFigures(
        id=t.id,
        kind=t.evidence.kind.value,
        status=t.status.value,
        opened_at=t.opened_at,
        acknowledged_at=t.acknowledged_at,
        restored_at=restored,
        resolved_at=t.resolved_at,
    )


def _links_of(stored: StoredTicket) -> set[str]:
    t = stored.ticket
    links = set(t.evidence.links)
    if t.key.link_id is not None:
        links.add(t.key.link_id)
    return links


@dataclass(frozen=True, slots=True)
class _Computed:
    report: CircuitReport
    rtts: Counter[int]  # median RTT codes of the buckets (netwatch.history)
    losses: Counter[int]  # loss codes


def circuit_report(
    circuit: Circuit,
    month: Month,
    now: datetime,
    intervals: Sequence[StateInterval],
    spans: Sequence[Span],
    rows: Sequence[RollupRow],
    tickets: Sequence[TicketFigures],
    utilization: Sequence[RollupRow] = (),
) -> CircuitReport:
    """One circuit's month (the pure part: every input already read)."""
    return _circuit(circuit, month, now, intervals, spans, rows, tickets, utilization).report


def _circuit(
    circuit: Circuit,
    month: Month,
    now: datetime,
    intervals: Sequence[StateInterval],
    spans: Sequence[Span],
    rows: Sequence[RollupRow],
    tickets: Sequence[TicketFigures],
    utilization: Sequence[RollupRow] = (),
) -> _Computed:
    start, end = month.start, month.end
    known_end = min(end, max(now, start))
    exclude = circuit.exclude_maintenance
    segments = _segments(start, end, known_end, intervals, spans)
    times = _times(segments, exclude, month.seconds)
    rtts, losses = _bucket_codes(rows, spans, exclude)
    latency, loss = Samples.of_codes(rtts, RTT_UNIT_S), Samples.of_codes(losses, LOSS_UNIT)
    p95_code = Samples.of_codes(_utilization_codes(utilization, spans, exclude), 1.0).p95
    used = None if p95_code is None else util_value(int(p95_code))
    info = circuit.info
    report = CircuitReport(
        link=info.link,
        link_id=circuit.link_id,
        circuit=info.circuit,
        commune=info.commune,
        commune_name=info.commune_name,
        province=info.province,
        province_name=circuit.province_name,
        isp=info.isp,
        isp_name=circuit.isp_name,
        path=circuit.path,
        bandwidth_mbps=circuit.bandwidth_mbps,
        maintenance_excluded=exclude,
        maintenance_s=sum((b - a).total_seconds() for a, b in spans),
        times=times,
        outages=tuple(_outages(intervals, segments, exclude, month, known_end)),
        latency_s=latency,
        loss_ratio=loss,
        utilization_p95_ratio=used,
        utilization_missing=UTILIZATION_MISSING if used is None else None,
        tickets=tuple(tickets),
        ticket_summary=TicketSummary.of(list(tickets)),
        breaches=breaches_of(
            {
                Figure.AVAILABILITY: times.availability_ratio,
                Figure.MEAN_LATENCY: latency.mean,
                Figure.LOSS: loss.mean,
                Figure.P95_UTILIZATION: used,
            }
        ),
    )
    return _Computed(report, rtts, losses)


@dataclass(slots=True)
class _Group:
    """A group's figures, summed as its circuits are computed (their bucket counts can then
    be dropped: a national month has ~86 million buckets)."""

    kind: GroupKind
    key: str
    name: str
    circuits: int = 0
    times: Times = NO_TIME
    incidents: int = 0
    in_breach: int = 0
    rtts: Counter[int] = field(default_factory=Counter)
    losses: Counter[int] = field(default_factory=Counter)
    tickets: dict[str, TicketFigures] = field(default_factory=dict)

    def add(self, c: _Computed) -> None:
        self.circuits += 1
        self.times = self.times + c.report.times
        self.incidents += c.report.incidents
        self.in_breach += bool(c.report.breaches)
        self.rtts.update(c.rtts)
        self.losses.update(c.losses)
        self.tickets.update((t.id, t) for t in c.report.tickets)

    def report(self) -> GroupReport:
        latency = Samples.of_codes(self.rtts, RTT_UNIT_S)
        loss = Samples.of_codes(self.losses, LOSS_UNIT)
        return GroupReport(
            kind=self.kind,
            key=self.key,
            name=self.name,
            circuits=self.circuits,
            times=self.times,
            incidents=self.incidents,
            latency_s=latency,
            loss_ratio=loss,
            ticket_summary=TicketSummary.of(
                sorted(self.tickets.values(), key=lambda t: (t.opened_at, t.id))
            ),
            circuits_in_breach=self.in_breach,
            breaches=breaches_of(
                {
                    Figure.AVAILABILITY: self.times.availability_ratio,
                    Figure.MEAN_LATENCY: latency.mean,
                    Figure.LOSS: loss.mean,
                }
            ),
        )


class _Assembly:
    """The report's circuits and groups (by ISP, by province, the total), circuit by circuit."""

    def __init__(self) -> None:
        self.circuits: list[CircuitReport] = []
        self.by_isp: dict[str, _Group] = {}
        self.by_province: dict[str, _Group] = {}
        self.total = _Group(GroupKind.TOTAL, "", "")

    def add(self, c: _Computed) -> None:
        r = c.report
        self.circuits.append(r)
        isp = self.by_isp.setdefault(r.isp, _Group(GroupKind.ISP, r.isp, r.isp_name))
        province = self.by_province.setdefault(
            r.province, _Group(GroupKind.PROVINCE, r.province, r.province_name)
        )
        for group in (isp, province, self.total):
            group.add(c)

    def report(
        self, month: Month, now: datetime, province: str | None, isp: str | None
    ) -> MonthlyReport:
        return MonthlyReport(
            month=month,
            generated_at=now,
            complete=now >= month.end,
            province=province,
            isp=isp,
            circuits=tuple(self.circuits),
            by_isp=tuple(g.report() for _, g in sorted(self.by_isp.items())),
            by_province=tuple(g.report() for _, g in sorted(self.by_province.items())),
            total=self.total.report(),
        )


# --- from the store ---------------------------------------------------------------------------

# Circuits whose month of rollups is read at once (~720 rows each): a province in one or two
# reads, a national instance without holding its ~7 million rows.
ROLLUP_CHUNK = 100


async def monthly_report(
    store: Store,
    rollups: Rollups,
    inventory: Inventory,
    month: Month,
    now: datetime,
    *,
    province: str | None = None,
    isp: str | None = None,
    within: frozenset[int] | None = None,
) -> MonthlyReport:
    """The report of `month` as known at `now`, for the circuits of `province` and/or `isp`.

    ReportError for a month that has not begun (422) or a filter naming nothing monitored
    (404). Maintenance windows are the configuration's and the store's (a cancelled one counts
    until it was cancelled). The computing runs in a worker thread a chunk of circuits at a
    time, so the event loop keeps serving between chunks.
    """
    if month.start > now:
        raise ReportError(f"{month} has not begun yet: a report covers a past or the current month")
    circuits = circuits_of(inventory, province, isp, within)
    topology = topology_of(inventory)
    start, end = month.start, month.end
    histories = await store.histories(start, end, [c.info.link for c in circuits])
    windows: list[tuple[MaintenanceWindow, datetime | None]] = [
        (w, None) for w in windows_of(inventory)
    ]
    windows += [
        (w.window, w.cancelled_at)
        for w in await store.maintenance_windows(start, end, cancelled=True)
    ]
    tickets: dict[str, list[TicketFigures]] = {}
    for stored in await store.tickets_opened(start, end):
        figures = ticket_figures(stored)
        for link in _links_of(stored):
            tickets.setdefault(link, []).append(figures)
    assembly = _Assembly()
    utilization = Rollups(store, LinkUtilizationRow)

    def compute(
        chunk: Sequence[Circuit], rows: Sequence[RollupRow], used: Sequence[RollupRow]
    ) -> None:
        by_link: dict[str, list[RollupRow]] = {}
        for row in rows:
            by_link.setdefault(row.link, []).append(row)
        used_by_link: dict[str, list[RollupRow]] = {}
        for row in used:
            used_by_link.setdefault(row.link, []).append(row)
        for c in chunk:
            link = c.info.link
            spans = maintenance_spans(c.info, topology, windows, start, end)
            assembly.add(
                _circuit(
                    c,
                    month,
                    now,
                    histories.get(link, []),
                    spans,
                    by_link.get(link, []),
                    tickets.get(link, []),
                    used_by_link.get(link, []),
                )
            )

    for i in range(0, len(circuits), ROLLUP_CHUNK):
        chunk = circuits[i : i + ROLLUP_CHUNK]
        links = [c.info.link for c in chunk]
        rows = await rollups.load(start, links, until=end)
        used = await utilization.load(start, links, until=end)
        await asyncio.to_thread(compute, chunk, rows, used)
    return assembly.report(month, now, province, isp)


def latest_complete_month(now: datetime) -> Month:
    """The last month that has ended at `now` (what the report of the 1st covers)."""
    return Month.of(now).previous()


__all__ = [
    "Circuit",
    "ReportError",
    "circuit_report",
    "circuits_of",
    "latest_complete_month",
    "maintenance_spans",
    "merged",
    "monthly_report",
    "schedule_spans",
    "ticket_figures",
]
