"""What only NetWatch knows, for Prometheus: judged states, tickets, the outbox, the map.

The probe families (netwatch/metrics.py) say what was measured; dashboards and alert rules also
need what NetWatch concluded from it: each link's judged state (after hysteresis, with
maintenance), where the communes are, the tickets and the notifications. Everything is read
from memory at scrape time: the health monitor's states, the alerting service's ticket book and
counters kept here. The store is asked only for the outbox backlog, every `outbox_refresh_s`,
never per scrape.

Per-link and per-commune families (~6,600 links and 3,321 communes nationally) are streamed like
the probe families, from label strings escaped once; the bounded families (tickets by ISP and
kind, portals, the outbox) are client_python families on the runtime registry.

Ticket counters follow the ticket book's logs: each ticket's log only grows (an event's `seq` is
its index), so the events past the last one seen are the new ones. Counters start at zero when
the process starts (Prometheus' increase() and rate() handle the reset); tickets restored from
the store at start are taken as seen, not counted again.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from bisect import bisect_left
from collections.abc import Awaitable, Callable, Iterable, Iterator, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime

from prometheus_client import CollectorRegistry
from prometheus_client.core import (
    CounterMetricFamily,
    GaugeMetricFamily,
    HistogramMetricFamily,
    Metric,
)
from vietnam_provinces import Province

from alerts.model import IncidentKind, LinkState, Status
from alerts.subject import LinkId, SubjectKey
from alerts.tickets import EventKind, Ticket, TicketBook, TicketEvent, TicketStatus
from netwatch.health import CENTRAL, HealthMonitor
from netwatch.inventory import Inventory
from netwatch.metrics import Family, MetricsCollector, labelset, link_labelset
from netwatch.notify.outbox import OutboxStore
from netwatch.plan import LinkRef, Plan
from netwatch.store import OutboxBacklog, OutboxItem

log = logging.getLogger("netwatch.ops_metrics")

MAINTENANCE = "maintenance"  # judged bad, but inside a maintenance window: nobody is paged
UNKNOWN = "unknown"  # not judged yet (no round since NetWatch started)
LINK_STATES = (*(s.value for s in LinkState), MAINTENANCE, UNKNOWN)
TICKET_KINDS = tuple(k.value for k in IncidentKind)
UNRESOLVED = (TicketStatus.OPEN.value, TicketStatus.ACKNOWLEDGED.value)
NO_ISP = "none"  # tickets without an ISP (portal outages, NetWatch's own line)
# Time to acknowledge and to restore: a minute to two days.
TICKET_BUCKETS_S = (
    60.0,
    300.0,
    600.0,
    900.0,
    1800.0,
    3600.0,
    7200.0,
    14400.0,
    28800.0,
    86400.0,
    172800.0,
)
_OPENINGS = frozenset({EventKind.OPENED, EventKind.REOPENED})
_RESOLUTIONS = frozenset({EventKind.RESOLVED, EventKind.AUTO_RESOLVED})
# Events after which a recovery (if any) no longer stands: the subject was bad again.
_BAD_AGAIN = frozenset({EventKind.OPENED, EventKind.REOPENED, EventKind.BAD_AGAIN})


def _seconds(start: datetime, end: datetime) -> float:
    return max(0.0, (end - start).total_seconds())


@dataclass(slots=True)
class _Histogram:
    """Counts per bucket (not cumulative), sum and count of one label set."""

    counts: list[int] = field(default_factory=lambda: [0] * (len(TICKET_BUCKETS_S) + 1))
    sum_s: float = 0.0

    def observe(self, value_s: float) -> None:
        self.counts[bisect_left(TICKET_BUCKETS_S, value_s)] += 1
        self.sum_s += value_s

    def cumulative(self) -> list[tuple[str, float]]:
        out, running = [], 0
        for le, count in zip((*TICKET_BUCKETS_S, float("inf")), self.counts, strict=True):
            running += count
            out.append(("+Inf" if le == float("inf") else repr(le), float(running)))
        return out


class TicketMeter:
    """Ticket lifecycle counters and durations, by ISP and kind, from the ticket book's logs."""

    def __init__(self, isps: Iterable[str]) -> None:
        # Every (isp, kind) pair exists from the start at zero, so that increase() sees the
        # first ticket of a pair (a series born at 1 would hide it).
        self._pairs = [(isp, kind) for isp in (*sorted(isps), NO_ISP) for kind in TICKET_KINDS]
        self.opened: dict[tuple[str, str], int] = dict.fromkeys(self._pairs, 0)
        self.reopened: dict[tuple[str, str], int] = dict.fromkeys(self._pairs, 0)
        self.acknowledged: dict[tuple[str, str], int] = dict.fromkeys(self._pairs, 0)
        self.resolved: dict[tuple[str, str], int] = dict.fromkeys(self._pairs, 0)
        self.to_acknowledge = {pair: _Histogram() for pair in self._pairs}
        self.to_restore = {pair: _Histogram() for pair in self._pairs}
        self.unresolved: dict[tuple[str, str, str], int] = {}
        self._seen: dict[str, Ticket] = {}  # ticket id -> the ticket object last looked at

    def baseline(self, book: TicketBook) -> None:
        """Take the book's tickets as already counted (tickets restored at start)."""
        self._seen = {t.id: t for t in book.tickets.values()}
        self._tally(book)

    def follow(self, book: TicketBook) -> None:
        """Count the events written to the book's tickets since the last look."""
        seen: dict[str, Ticket] = {}
        for ticket in book.tickets.values():
            before = self._seen.get(ticket.id)
            seen[ticket.id] = ticket
            if before is ticket:  # tickets are immutable: the same object has the same log
                continue
            start = len(before.log) if before is not None else 0
            for event in ticket.log[start:]:
                self._count(ticket, event)
        self._seen = seen
        self._tally(book)

    def _tally(self, book: TicketBook) -> None:
        unresolved: dict[tuple[str, str, str], int] = {}
        for ticket in book.tickets.values():
            if ticket.status is not TicketStatus.RESOLVED:
                key = (ticket.isp or NO_ISP, ticket.evidence.kind.value, ticket.status.value)
                unresolved[key] = unresolved.get(key, 0) + 1
        self.unresolved = unresolved

    def _pair(self, ticket: Ticket) -> tuple[str, str]:
        pair = (ticket.isp or NO_ISP, ticket.evidence.kind.value)
        if pair not in self.opened:  # an ISP no longer in the configuration
            for table in (self.opened, self.reopened, self.acknowledged, self.resolved):
                table[pair] = 0
            self.to_acknowledge[pair] = _Histogram()
            self.to_restore[pair] = _Histogram()
        return pair

    def _count(self, ticket: Ticket, event: TicketEvent) -> None:
        kind = event.kind
        if kind is EventKind.OPENED:
            self.opened[self._pair(ticket)] += 1
        elif kind is EventKind.REOPENED:
            self.reopened[self._pair(ticket)] += 1
        elif kind is EventKind.ACKNOWLEDGED:
            pair = self._pair(ticket)
            self.acknowledged[pair] += 1
            opened_at = _last_at(ticket.log[: event.seq], _OPENINGS)
            if opened_at is not None:
                self.to_acknowledge[pair].observe(_seconds(opened_at, event.at))
        elif kind in _RESOLUTIONS:
            pair = self._pair(ticket)
            self.resolved[pair] += 1
            earlier = ticket.log[: event.seq]
            restored_at = _restored_at(earlier) or event.at
            bad_from = _bad_from(ticket, earlier)
            if bad_from is not None:
                self.to_restore[pair].observe(_seconds(bad_from, restored_at))


def _last_at(events: Sequence[TicketEvent], kinds: frozenset[EventKind]) -> datetime | None:
    for event in reversed(events):
        if event.kind in kinds:
            return event.at
    return None


def _restored_at(events: Sequence[TicketEvent]) -> datetime | None:
    """When the final good stretch began: the last RECOVERING not followed by the bad again."""
    for event in reversed(events):
        if event.kind is EventKind.RECOVERING:
            return event.at
        if event.kind in _BAD_AGAIN:
            return None
    return None


def _bad_from(ticket: Ticket, events: Sequence[TicketEvent]) -> datetime | None:
    """Start of the episode being resolved: its first bad round, or the reopening."""
    for event in reversed(events):
        if event.kind is EventKind.REOPENED:
            return event.at
        if event.kind is EventKind.OPENED:
            return ticket.evidence.first_bad_at
    return None


class MeteredOutbox:
    """An OutboxStore that counts deliveries and failed attempts per channel on the way."""

    def __init__(self, inner: OutboxStore, channels: Iterable[str]) -> None:
        self._inner = inner
        names = sorted(channels)
        self.delivered: dict[str, int] = dict.fromkeys(names, 0)
        self.failed: dict[str, int] = dict.fromkeys(names, 0)
        self.gave_up: dict[str, int] = dict.fromkeys(names, 0)
        self._claimed: dict[int, str] = {}  # item id -> channel, while claimed

    async def claim_due(self, now: datetime, limit: int) -> list[OutboxItem]:
        """Claim through the store; remember each item's channel."""
        items = await self._inner.claim_due(now, limit)
        for item in items:
            self._claimed[item.id] = item.channel
        return items

    async def mark_sent(self, item_id: int, at: datetime) -> None:
        """Record the delivery in the store, then count it."""
        await self._inner.mark_sent(item_id, at)
        self._bump(self.delivered, self._claimed.pop(item_id, UNKNOWN))

    async def mark_failed(
        self, item_id: int, at: datetime, next_attempt_at: datetime | None, error: str
    ) -> None:
        """Record the failed attempt in the store, then count it."""
        await self._inner.mark_failed(item_id, at, next_attempt_at, error)
        channel = self._claimed.pop(item_id, UNKNOWN)
        self._bump(self.failed, channel)
        if next_attempt_at is None:
            self._bump(self.gave_up, channel)

    @staticmethod
    def _bump(table: dict[str, int], channel: str) -> None:
        table[channel] = table.get(channel, 0) + 1


@dataclass(frozen=True, slots=True)
class _Link:
    key: str  # the alerts/ link id: "24848/vnpt-tslcd"
    incident: SubjectKey  # its incident key
    labels: str  # escaped once


def _static(name: str, kind: str, help_text: str, lines: list[str]) -> Family:
    return (name, kind, help_text, lines)


class OpsMetrics:
    """A client_python Collector for the bounded families, and a source of streamed ones."""

    def __init__(
        self,
        inventory: Inventory,
        plan: Plan,
        health: HealthMonitor,
        *,
        ticket_book: Callable[[], TicketBook] | None = None,
        outbox_backlog: Callable[[datetime], Awaitable[OutboxBacklog]] | None = None,
        clock: Callable[[], datetime] = lambda: datetime.now(UTC),
    ) -> None:
        self._health = health
        self._book = ticket_book
        self._backlog_source = outbox_backlog
        self._clock = clock
        self.reload(inventory, plan)
        self.tickets = TicketMeter(inventory.isps)
        if ticket_book is not None:
            self.tickets.baseline(ticket_book())
        self.outbox: MeteredOutbox | None = None
        self.backlog: OutboxBacklog | None = None
        self._backlog_failing = False

    def reload(self, inventory: Inventory, plan: Plan) -> None:
        """Take the (re)loaded inventory and plan: the per-link and per-commune series follow."""
        self._links = [
            _Link(t.link.id, t.key, link_labelset(t.link)) for t in plan.icmp if t.link is not None
        ]
        refs = [t.link for t in plan.icmp if t.link is not None]
        self._link_info = [_link_info_line(ref) for ref in refs]
        self._commune_info = _commune_info_lines(inventory)
        self._portals = {job.portal: job.name for job in plan.portals}
        self._intervals = {
            "icmp": plan.icmp_interval_s,
            "snmp": plan.snmp_interval_s,
            "http": plan.http_interval_s,
        }

    def register(self, registry: CollectorRegistry, collector: MetricsCollector) -> None:
        """Add the bounded families to the registry and the per-link ones to the stream."""
        registry.register(self)
        collector.add_families(self.families)

    def metered(self, inner: OutboxStore, channels: Iterable[str]) -> MeteredOutbox:
        """Wrap the outbox store the delivery worker uses, to count its outcomes."""
        self.outbox = MeteredOutbox(inner, channels)
        return self.outbox

    async def run(
        self, stop: asyncio.Event, *, follow_s: float = 1.0, outbox_refresh_s: float = 15.0
    ) -> None:
        """Follow the ticket book and refresh the outbox backlog until stopped."""
        next_refresh = 0.0
        loop = asyncio.get_running_loop()
        while not stop.is_set():
            self.follow()
            if self._backlog_source is not None and loop.time() >= next_refresh:
                next_refresh = loop.time() + outbox_refresh_s
                await self.refresh_backlog()
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(stop.wait(), follow_s)

    def follow(self) -> None:
        """Count what happened to tickets since the last look."""
        if self._book is not None:
            self.tickets.follow(self._book())

    async def refresh_backlog(self) -> None:
        """Ask the store how much waits in the outbox (a failing store keeps the old figures)."""
        assert self._backlog_source is not None
        try:
            self.backlog = await self._backlog_source(self._clock())
        except Exception:
            if not self._backlog_failing:
                log.warning("outbox backlog unavailable", exc_info=True)
            self._backlog_failing = True
            return
        if self._backlog_failing:
            log.info("outbox backlog available again")
        self._backlog_failing = False

    # -- streamed: one series per link or commune -------------------------------------------
    def link_states(self) -> Iterator[tuple[_Link, str]]:
        """Every link with its judged state, as exported."""
        maintenance = self._maintenance()
        status = self._health.links.status
        for link in self._links:
            st: Status[LinkState] | None = status(link.key)
            if st is None:
                yield link, UNKNOWN
            elif st.state is not LinkState.OK and link.incident in maintenance:
                yield link, MAINTENANCE
            else:
                yield link, st.state.value

    def families(self) -> Iterator[Family]:
        """The streamed families, rendered by MetricsCollector.render_chunks."""
        yield (
            "netwatch_link_state",
            "gauge",
            "1 for the link's current judged state (after hysteresis); one series per link",
            (
                f'netwatch_link_state{{{link.labels},state="{state}"}} 1\n'
                for link, state in self.link_states()
            ),
        )
        yield _static(
            "netwatch_link_info",
            "gauge",
            "Configured link: circuit id and upstream node (value 1)",
            self._link_info,
        )
        yield _static(
            "netwatch_commune_info",
            "gauge",
            "Configured commune: province name and map coordinates where known (value 1)",
            self._commune_info,
        )

    def _maintenance(self) -> set[SubjectKey]:
        """Incident keys that are bad now but inside a maintenance window."""
        if self._book is None:
            return set()
        book = self._book()
        keys = set(book.suppressed)  # incidents that opened no ticket because of a window
        for ticket in book.tickets.values():
            if ticket.maintenance and ticket.status is not TicketStatus.RESOLVED:
                keys.add(ticket.key)
                keys.update(SubjectKey.link(LinkId(lk)) for lk in ticket.evidence.links)
        return keys

    # -- Collector: the bounded families ---------------------------------------------------
    def collect(self) -> Iterator[Metric]:
        """Portals, incidents, tickets, the outbox and the schedule (called on scrape)."""
        self.follow()
        yield self._portal_states()
        incidents = GaugeMetricFamily(
            "netwatch_incidents", "Current incidents by root-cause kind", labels=("kind",)
        )
        counts = dict.fromkeys(TICKET_KINDS, 0)
        for incident in self._health.incidents:
            counts[incident.kind.value] += 1
        for kind, count in counts.items():
            incidents.add_metric([kind], count)
        yield incidents
        if self._book is not None:
            yield from self._ticket_families()
        yield from self._outbox_families()
        interval = GaugeMetricFamily(
            "netwatch_round_interval_seconds",
            "Configured interval between rounds of each probe kind",
            labels=("kind",),
        )
        for kind, seconds in self._intervals.items():
            interval.add_metric([kind], seconds)
        yield interval

    def _portal_states(self) -> Metric:
        family = GaugeMetricFamily(
            "netwatch_portal_state",
            "1 for the portal's current judged state from each vantage point",
            labels=("portal", "portal_name", "vantage", "state"),
        )
        judged = self._health.portals.statuses()
        for portal, name in sorted(self._portals.items()):
            st = judged.get(f"{portal}@{CENTRAL}")
            family.add_metric([portal, name, CENTRAL, st.state.value if st else UNKNOWN], 1)
        return family

    def _ticket_families(self) -> Iterator[Metric]:
        t = self.tickets
        unresolved = GaugeMetricFamily(
            "netwatch_open_tickets",
            "Tickets not resolved yet, by ISP, kind and state (open or acknowledged)",
            labels=("isp", "kind", "state"),
        )
        for isp, kind in t.opened:  # every known pair, zero-filled
            for state in UNRESOLVED:
                unresolved.add_metric([isp, kind, state], t.unresolved.get((isp, kind, state), 0))
        yield unresolved
        for name, help_text, table in (
            ("netwatch_tickets_opened", "Tickets opened", t.opened),
            ("netwatch_tickets_reopened", "Tickets reopened after a relapse", t.reopened),
            ("netwatch_tickets_acknowledged", "Tickets acknowledged", t.acknowledged),
            ("netwatch_tickets_resolved", "Tickets resolved, by hand or automatically", t.resolved),
        ):
            counter = CounterMetricFamily(name, help_text, labels=("isp", "kind"))
            for (isp, kind), count in table.items():
                counter.add_metric([isp, kind], count)
            yield counter
        for name, help_text, histograms in (
            (
                "netwatch_ticket_time_to_acknowledge_seconds",
                "From a ticket's opening (or reopening) to its acknowledgement",
                t.to_acknowledge,
            ),
            (
                "netwatch_ticket_time_to_restore_seconds",
                "From the first bad round of a ticket's episode to the good stretch that "
                "resolved it",
                t.to_restore,
            ),
        ):
            family = HistogramMetricFamily(name, help_text, labels=("isp", "kind"))
            for (isp, kind), hist in histograms.items():
                family.add_metric([isp, kind], hist.cumulative(), hist.sum_s)
            yield family

    def _outbox_families(self) -> Iterator[Metric]:
        if self.outbox is not None:
            for name, help_text, table in (
                ("netwatch_outbox_deliveries", "Notifications delivered", self.outbox.delivered),
                (
                    "netwatch_outbox_delivery_failures",
                    "Failed delivery attempts (retried later, or given up)",
                    self.outbox.failed,
                ),
                (
                    "netwatch_outbox_given_up",
                    "Notifications given up after their last attempt",
                    self.outbox.gave_up,
                ),
            ):
                counter = CounterMetricFamily(name, help_text, labels=("channel",))
                for channel, count in sorted(table.items()):
                    counter.add_metric([channel], count)
                yield counter
        backlog = self.backlog
        if backlog is None:
            return
        yield GaugeMetricFamily(
            "netwatch_outbox_pending",
            "Notifications waiting for delivery (not sent, not given up)",
            value=backlog.pending,
        )
        yield GaugeMetricFamily(
            "netwatch_outbox_due", "Pending notifications due now", value=backlog.due
        )
        age = 0.0
        if backlog.oldest_pending_at is not None:
            age = _seconds(backlog.oldest_pending_at, self._clock())
        yield GaugeMetricFamily(
            "netwatch_outbox_oldest_pending_age_seconds",
            "Age of the oldest pending notification (0 when none waits)",
            value=age,
        )


def _link_info_line(ref: LinkRef) -> str:
    extra = labelset(("circuit", "upstream"), (ref.circuit, ref.upstream or ""))
    return f"netwatch_link_info{{{link_labelset(ref)},{extra}}} 1\n"


def _commune_info_lines(inventory: Inventory) -> list[str]:
    provinces = {p.code.value: p.name for p in Province.iter_all()}
    lines = []
    for commune in inventory.communes:
        names = ["province", "province_name", "commune", "commune_name"]
        values = [
            f"{commune.province_code:02d}",
            provinces.get(commune.province_code, ""),
            commune.code,
            commune.name,
        ]
        if commune.coordinates is not None:
            names += ["latitude", "longitude"]
            values += [repr(commune.coordinates.lat), repr(commune.coordinates.lon)]
        lines.append(f"netwatch_commune_info{{{labelset(names, values)}}} 1\n")
    return lines


__all__ = [
    "LINK_STATES",
    "TICKET_BUCKETS_S",
    "MeteredOutbox",
    "OpsMetrics",
    "TicketMeter",
]
