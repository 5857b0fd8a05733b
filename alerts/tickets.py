"""The ticket lifecycle as a pure state machine: incidents in, typed actions out.

One ticket per incident key per episode: open → acknowledged → resolved, auto-resolved after the
incident held off for the recovery period, reopened (never duplicated) when it relapses within the
reopen window. Escalation and reminders follow the contact levels of the ticket's route.

The book is an immutable value. ``TicketBook.evaluate`` (and the manual ``acknowledge``,
``resolve``, ``note``) return a :class:`Step`: the next book and the actions that lead to it. The
caller's contract, which is what makes a crash at any point harmless:

1. Persist every action in order, in one transaction: upsert ``action.ticket`` by ``ticket.id``
   and insert ``action.event`` keyed by ``(ticket.id, event.seq)``, ignoring a row that exists.
   Put the notifications in the persisted outbox in the same transaction.
2. Only then adopt ``step.book`` (and let the outbox notify).

A ticket id is derived from (incident key, episode start) only, and event sequence numbers from
the ticket's log, so replaying the same evaluation on the same book (after a crash before the
commit) yields the same ids and rows: the store's upsert makes it a no-op. After a restart,
``TicketBook.restore`` rebuilds the book from the stored tickets and the episodes continue.
Evaluations and manual changes must be serialized through one book value.
"""

from __future__ import annotations

import enum
import hashlib
from collections.abc import Collection, Iterable, Mapping, Sequence
from dataclasses import dataclass, field, replace
from datetime import UTC, datetime, timedelta
from types import MappingProxyType
from typing import TypeAlias

from alerts.model import Incident, IncidentKind, Measurements, Route
from alerts.subject import SubjectKey


class TicketStatus(enum.Enum):
    """Where a ticket is in its lifecycle."""

    OPEN = "open"
    ACKNOWLEDGED = "acknowledged"
    RESOLVED = "resolved"


class EventKind(enum.Enum):
    """What changed on a ticket (one event in its log per change)."""

    OPENED = "opened"
    REOPENED = "reopened"
    STATE_CHANGED = "state_changed"  # lossy → down, or the cause behind it changed
    KIND_CHANGED = "kind_changed"  # e.g. congested (capacity) → down (link fault): new route
    EVIDENCE = "evidence"  # worse figures, more links affected
    RECOVERING = "recovering"  # the incident is gone: the recovery clock runs
    LINE_BACK = "line_back"  # gone for line_back_s: "line back, watching N min before closing"
    BAD_AGAIN = "bad_again"  # back before the recovery period ended: same ticket
    RECOVERY_HELD = "recovery_held"  # NetWatch lost its own connectivity: clock stopped
    CLEARED = "cleared"  # a manually resolved ticket's incident is gone too
    AUTO_RESOLVED = "auto_resolved"
    # Resolved because its subject left the configuration (a reload): nothing recovered.
    UNMONITORED = "unmonitored"
    LINKED = "linked"  # absorbed by an upstream outage
    UNLINKED = "unlinked"
    MAINTENANCE_STARTED = "maintenance_started"  # kept open, escalation paused
    MAINTENANCE_ENDED = "maintenance_ended"
    ESCALATED = "escalated"
    REMINDED = "reminded"
    ACKNOWLEDGED = "acknowledged"
    RESOLVED = "resolved"
    NOTE = "note"


# Changes written to the ticket's log but not sent to anyone: new worst figures arrive every few
# rounds, and the recovery clock's ups and downs would mail the ISP for every flap (issue 4: a
# flapping line is one episode, not a storm). State and kind changes, escalations, reminders,
# resolution and reopening are sent. Of the recovery clock, people hear twice at most per
# episode (issue 12): once "line back" when the incident has been gone for line_back_s, and
# once "bad again" if it returns after that notice; every other tick of it is logged only.
_LOG_ONLY = frozenset(
    {
        EventKind.EVIDENCE,
        EventKind.RECOVERING,
        EventKind.BAD_AGAIN,
        EventKind.RECOVERY_HELD,
        EventKind.CLEARED,
    }
)


class ActorKind(enum.Enum):
    """Who made a change."""

    SYSTEM = "system"  # NetWatch itself
    ISP = "isp"  # an ISP engineer, through a signed link
    PROVINCIAL_IT = "provincial_it"  # provincial IT staff, through the API


@dataclass(frozen=True, slots=True)
class Actor:
    """The one who made a change, as shown in the ticket's log."""

    kind: ActorKind
    name: str


SYSTEM = Actor(ActorKind.SYSTEM, "netwatch")


@dataclass(frozen=True, slots=True)
class TicketEvent:
    """One entry of a ticket's log; ``seq`` is its index, unique per ticket."""

    seq: int
    at: datetime
    actor: Actor
    kind: EventKind
    text: str = ""


@dataclass(frozen=True, slots=True)
class Evidence:
    """What a ticket proves: kind, state, since when, downtime, the figures seen."""

    kind: IncidentKind
    state: str
    worst_state: str
    detail: str
    links: tuple[str, ...]
    first_bad_at: datetime
    bad_since: datetime | None  # start of the current bad stretch; None while it is off
    downtime_closed_s: float = 0.0  # bad stretches that have ended
    first: Measurements | None = None  # the figures when they were first attached
    worst: Measurements | None = None  # the worst figure of each kind over the episode

    def downtime_s(self, at: datetime) -> float:
        """Time the subject was bad during this episode, as of ``at``."""
        running = _seconds(at - self.bad_since) if self.bad_since is not None else 0.0
        return self.downtime_closed_s + running


@dataclass(frozen=True, slots=True)
class Ticket:
    """One incident episode as people handle it. Persist all fields; restore() takes them back."""

    id: str
    key: SubjectKey  # the incident's
    episode_start: datetime  # with key, what the id is derived from
    route: Route
    isp: str | None
    status: TicketStatus
    evidence: Evidence
    opened_at: datetime
    escalation_from: datetime  # open or reopen: escalation delays count from here
    last_notified_at: datetime  # open, reopen, escalation or reminder: reminder cadence
    level: int = 0  # highest contact level told so far (0: nobody yet)
    acknowledged_at: datetime | None = None
    resolved_at: datetime | None = None
    ok_since: datetime | None = None  # first evaluation the incident was seen gone
    parent: SubjectKey | None = None  # the key of the upstream outage that absorbed it
    maintenance: bool = False  # its key is under maintenance: escalation paused
    reopened: int = 0
    log: tuple[TicketEvent, ...] = ()
    # This episode's "line back" notice (at most one), and whether "bad again" followed it.
    line_back_at: datetime | None = None
    bad_again_told: bool = False


@dataclass(frozen=True, slots=True)
class Contact:
    """One person or desk at one escalation level (``isp`` None: provincial IT)."""

    level: int
    name: str
    escalate_after_s: float = 0.0  # unacknowledged this long after opening → told
    isp: str | None = None
    email: str | None = None
    webhook: str | None = None
    telegram_chat_id: str | None = None
    zalo_phone: str | None = None  # 84xxxxxxxxx, for Zalo ZNS template messages


@dataclass(frozen=True, slots=True)
class Level:
    """One escalation level of a route: who, and how long after opening."""

    level: int
    after_s: float
    contacts: tuple[Contact, ...]


@dataclass(frozen=True, slots=True)
class Directory:
    """Whom to tell: each ISP's contact levels, provincial IT's, and each commune's own."""

    isps: Mapping[str, tuple[Contact, ...]] = field(default_factory=dict)
    provincial_it: tuple[Contact, ...] = ()
    communes: Mapping[str, tuple[Contact, ...]] = field(default_factory=dict)  # by commune code

    def levels(
        self, route: Route, isp: str | None, commune: str | None = None
    ) -> tuple[Level, ...]:
        """Escalation levels for a route, lowest first; delays never decrease. The commune's
        own contacts join provincial IT's on the PROVINCIAL_IT_AND_COMMUNE route, by level."""
        isp_contacts = self.isps.get(isp, ()) if isp is not None else ()
        lists: list[tuple[Contact, ...]] = []
        own_route = route in (Route.PROVINCIAL_IT, Route.PROVINCIAL_IT_AND_COMMUNE)
        if not own_route and isp_contacts:
            lists.append(isp_contacts)
        # An ISP without contacts (or no ISP) still reaches someone: provincial IT.
        if route is not Route.ISP or not isp_contacts:
            lists.append(self.provincial_it)
        if route is Route.PROVINCIAL_IT_AND_COMMUNE and commune is not None:
            lists.append(self.communes.get(commune, ()))
        grouped: dict[int, list[Contact]] = {}
        for contacts in lists:
            for contact in contacts:
                grouped.setdefault(contact.level, []).append(contact)
        levels: list[Level] = []
        floor_s = 0.0
        for number in sorted(grouped):
            group = grouped[number]
            # A higher level told before a lower one would skip the escalation order.
            floor_s = max(floor_s, min(c.escalate_after_s for c in group))
            levels.append(Level(number, floor_s, tuple(group)))
        return tuple(levels)


@dataclass(frozen=True, slots=True)
class TicketPolicy:
    """Timing rules of the lifecycle, in seconds."""

    recovery_s: float = 600.0  # incident gone this long → auto-resolve
    line_back_s: float | None = None  # gone this long → one "line back" notice; None: none
    reopen_window_s: float = 7200.0  # relapse this soon after resolution → reopen
    remind_every_s: float | None = 3600.0  # None: no reminders
    still_failing_s: float = 900.0  # resolved by hand while still bad → reopen after this

    def __post_init__(self) -> None:
        """Refuse settings that cannot be meant."""
        if min(self.recovery_s, self.reopen_window_s, self.still_failing_s) < 0:
            raise ValueError("ticket policy durations must not be negative")
        if self.line_back_s is not None and self.line_back_s < 0:
            raise ValueError("line_back_s must not be negative (or None for no notice)")
        if self.remind_every_s is not None and self.remind_every_s <= 0:
            raise ValueError("remind_every_s must be positive (or None for no reminders)")


@dataclass(frozen=True, slots=True)
class TicketChange:
    """An action on one ticket: the ticket after the change, its new event, whom to tell."""

    ticket: Ticket
    event: TicketEvent
    recipients: tuple[Contact, ...]


@dataclass(frozen=True, slots=True)
class OpenTicket(TicketChange):
    """A new episode: store the ticket, then tell the first levels."""


@dataclass(frozen=True, slots=True)
class ReopenTicket(TicketChange):
    """A relapse within the reopen window, or still failing after a manual resolve."""


@dataclass(frozen=True, slots=True)
class UpdateTicket(TicketChange):
    """State, evidence, recovery or maintenance changed (``event.kind`` says which)."""


@dataclass(frozen=True, slots=True)
class AutoResolve(TicketChange):
    """The incident held off for the recovery period."""


@dataclass(frozen=True, slots=True)
class Unmonitored(TicketChange):
    """Its subject was removed from monitoring: resolved without a recovery."""


@dataclass(frozen=True, slots=True)
class Escalate(TicketChange):
    """Unacknowledged too long: tell the next level (``recipients`` are that level's)."""

    level: int


@dataclass(frozen=True, slots=True)
class Remind(TicketChange):
    """Still open and unacknowledged: tell everyone told so far again."""


@dataclass(frozen=True, slots=True)
class LinkToParent(TicketChange):
    """The ticket's incident is absorbed by an upstream outage; that one carries the alerts."""

    parent_key: SubjectKey
    parent_ticket_id: str | None  # None: the outage has no ticket (e.g. under maintenance)


@dataclass(frozen=True, slots=True)
class Acknowledged(TicketChange):
    """Someone took the ticket: escalation and reminders stop."""


@dataclass(frozen=True, slots=True)
class Resolved(TicketChange):
    """Someone resolved the ticket by hand."""


@dataclass(frozen=True, slots=True)
class Noted(TicketChange):
    """Someone added a note."""


@dataclass(frozen=True, slots=True)
class Suppressed:
    """An incident under maintenance opened (or reopened) no ticket; for the log."""

    key: SubjectKey
    incident: Incident
    at: datetime


Action: TypeAlias = (
    OpenTicket
    | ReopenTicket
    | UpdateTicket
    | AutoResolve
    | Unmonitored
    | Escalate
    | Remind
    | LinkToParent
    | Acknowledged
    | Resolved
    | Noted
    | Suppressed
)


class Refusal(enum.Enum):
    """Why a manual change was not made."""

    UNKNOWN_TICKET = "unknown_ticket"  # not the latest ticket of its key (ask the store)
    ALREADY_ACKNOWLEDGED = "already_acknowledged"
    ALREADY_RESOLVED = "already_resolved"
    EMPTY_NOTE = "empty_note"


@dataclass(frozen=True, slots=True)
class Refused:
    """A manual change that was not made, and why; the book is unchanged."""

    ticket_id: str
    reason: Refusal


@dataclass(frozen=True, slots=True)
class Step:
    """The next book and the actions leading to it, to persist (in order) before adopting it."""

    book: TicketBook
    actions: tuple[Action, ...]


# Worse states rank higher; unknown strings rank lowest so they never hide a known bad one.
_SEVERITY: Mapping[str, int] = MappingProxyType(
    {"ok": 0, "up": 0, "slow": 1, "congested": 2, "lossy": 3, "failing": 4, "down": 5}
)


def ticket_id(key: SubjectKey, episode_start: datetime) -> str:
    """The deterministic id of the ticket for (incident key, episode start)."""
    start = episode_start.astimezone(UTC)
    digest = hashlib.sha256(f"{key.encoded}\n{start.isoformat()}".encode()).hexdigest()
    return f"NW-{start:%Y%m%d}-{digest[:10]}"


@dataclass(frozen=True, slots=True)
class TicketBook:
    """The latest ticket of every incident key, and the rules to move them on."""

    policy: TicketPolicy = field(default_factory=TicketPolicy)
    directory: Directory = field(default_factory=Directory)
    tickets: Mapping[SubjectKey, Ticket] = field(default_factory=dict)  # by incident key
    suppressed: Mapping[SubjectKey, datetime] = field(default_factory=dict)  # key → incident since

    @classmethod
    def restore(
        cls, policy: TicketPolicy, directory: Directory, tickets: Iterable[Ticket]
    ) -> TicketBook:
        """Rebuild from stored tickets (at least the latest of each key); older ones are ignored."""
        latest: dict[SubjectKey, Ticket] = {}
        for ticket in tickets:
            known = latest.get(ticket.key)
            if known is None or ticket.episode_start > known.episode_start:
                latest[ticket.key] = ticket
        return cls(policy, directory, latest)

    def shifted(self, by: timedelta) -> tuple[TicketBook, tuple[Ticket, ...]]:
        """The book with every running timer moved by ``by``; and the tickets that moved.

        A timer is a duration counted from a stored time: escalation and reminders (from
        ``escalation_from`` and ``last_notified_at``) and the recovery clock (from ``ok_since``)
        of unresolved tickets. After the wall clock jumped by ``by``, moving them keeps each
        duration as long as it really was, so nothing falls due (a forward jump) or is held
        back (a backward one) because of the jump (issue 15, docs/alerting.md "Clock jumps").
        Times that people read as history (opened, acknowledged, resolved) stay as they were.
        """
        moved: dict[SubjectKey, Ticket] = {}
        for key, ticket in self.tickets.items():
            if ticket.status is TicketStatus.RESOLVED:
                continue
            moved[key] = replace(
                ticket,
                escalation_from=ticket.escalation_from + by,
                last_notified_at=ticket.last_notified_at + by,
                ok_since=None if ticket.ok_since is None else ticket.ok_since + by,
            )
        return replace(self, tickets={**self.tickets, **moved}), tuple(moved.values())

    def clamped(self, latest: datetime) -> tuple[TicketBook, tuple[Ticket, ...]]:
        """The book with every running timer that starts after ``latest`` starting there; and
        the tickets that changed. Only a clock that went back can leave a timer starting in
        the future; unclamped, it would hold escalation back by as long as the clock went back.
        """
        moved: dict[SubjectKey, Ticket] = {}
        for key, ticket in self.tickets.items():
            if ticket.status is TicketStatus.RESOLVED:
                continue
            ok_since = ticket.ok_since
            clamped = replace(
                ticket,
                escalation_from=min(ticket.escalation_from, latest),
                last_notified_at=min(ticket.last_notified_at, latest),
                ok_since=None if ok_since is None else min(ok_since, latest),
            )
            if clamped != ticket:
                moved[key] = clamped
        return replace(self, tickets={**self.tickets, **moved}), tuple(moved.values())

    def by_id(self, ticket_id: str) -> Ticket | None:
        """The ticket with this id, if it is the latest of its key."""
        return next((t for t in self.tickets.values() if t.id == ticket_id), None)

    def evaluate(
        self,
        incidents: Sequence[Incident],
        now: datetime,
        *,
        maintenance: Collection[SubjectKey] = frozenset(),
        measurements: Mapping[SubjectKey, Measurements] | None = None,
    ) -> Step:
        """Move tickets on given what is wrong at ``now`` and which keys are in maintenance."""
        _require_aware(now)
        present: dict[SubjectKey, Incident] = {}
        for incident in incidents:
            if incident.key in present:
                raise ValueError(f"two incidents with key {incident.key.encoded!r}")
            present[incident.key] = incident
        run = _Run(self, now, maintenance, measurements or {})
        # Outages first, so tickets absorbed by one can point at its ticket.
        order = sorted(
            present, key=lambda k: (present[k].kind is not IncidentKind.UPSTREAM_OUTAGE, k)
        )
        for key in order:
            run.present(present[key])
        # A site unreachable (issue 11) covers its links as an outage covers those behind it:
        # a line's ticket opened a round before its site went dark waits in it, never "back".
        covering = {
            link: incident.key
            for incident in present.values()
            if incident.kind in (IncidentKind.UPSTREAM_OUTAGE, IncidentKind.SITE_UNREACHABLE)
            for link in incident.links
        }
        # NetWatch's own line is down: a missing incident means "not seen", not "recovered".
        blind = any(i.kind is IncidentKind.MONITOR_CONNECTIVITY for i in present.values())
        for key in sorted(self.tickets):
            if key not in present:
                run.absent(run.tickets[key], covering, blind)
        suppressed = {k: v for k, v in run.suppressed.items() if k in present}
        book = replace(self, tickets=run.tickets, suppressed=suppressed)
        return Step(book, tuple(run.actions))

    def acknowledge(
        self, ticket_id: str, actor: Actor, now: datetime, text: str = ""
    ) -> Step | Refused:
        """Take an open ticket: stops escalation and reminders."""
        ticket = self._current(ticket_id, now)
        if isinstance(ticket, Refused):
            return ticket
        if ticket.status is TicketStatus.RESOLVED:
            return Refused(ticket_id, Refusal.ALREADY_RESOLVED)
        if ticket.status is TicketStatus.ACKNOWLEDGED:
            return Refused(ticket_id, Refusal.ALREADY_ACKNOWLEDGED)
        changed = replace(ticket, status=TicketStatus.ACKNOWLEDGED, acknowledged_at=now)
        return self._manual(changed, now, actor, EventKind.ACKNOWLEDGED, text, Acknowledged)

    def resolve(
        self, ticket_id: str, actor: Actor, now: datetime, text: str = ""
    ) -> Step | Refused:
        """Resolve by hand; if the incident is still there after ``still_failing_s``, it reopens."""
        ticket = self._current(ticket_id, now)
        if isinstance(ticket, Refused):
            return ticket
        if ticket.status is TicketStatus.RESOLVED:
            return Refused(ticket_id, Refusal.ALREADY_RESOLVED)
        changed = replace(ticket, status=TicketStatus.RESOLVED, resolved_at=now)
        return self._manual(changed, now, actor, EventKind.RESOLVED, text, Resolved)

    def note(self, ticket_id: str, actor: Actor, now: datetime, text: str) -> Step | Refused:
        """Add a note to a ticket, in any status."""
        ticket = self._current(ticket_id, now)
        if isinstance(ticket, Refused):
            return ticket
        if not text.strip():
            return Refused(ticket_id, Refusal.EMPTY_NOTE)
        return self._manual(ticket, now, actor, EventKind.NOTE, text, Noted)

    def unmonitor(self, keys: Collection[SubjectKey], now: datetime) -> Step:
        """Subjects removed from monitoring (a configuration reload): their unresolved tickets
        resolve as such, telling those told so far (not a recovery: nobody saw it come back),
        and the keys leave the book, so nothing of them reopens or clears later."""
        _require_aware(now)
        actions: list[Action] = []
        tickets = dict(self.tickets)
        for key in sorted(k for k in keys if k in tickets):
            ticket = tickets.pop(key)
            if ticket.status is TicketStatus.RESOLVED:
                continue
            closed = replace(
                ticket,
                status=TicketStatus.RESOLVED,
                resolved_at=now,
                ok_since=now,  # nothing left to clear or watch
                parent=None,
                evidence=_close(ticket.evidence, now),
            )
            closed, event = _log(closed, now, EventKind.UNMONITORED, "removed from monitoring")
            actions.append(Unmonitored(closed, event, _told(self.directory, closed)))
        suppressed = {k: v for k, v in self.suppressed.items() if k not in keys}
        return Step(replace(self, tickets=tickets, suppressed=suppressed), tuple(actions))

    def _current(self, ticket_id: str, now: datetime) -> Ticket | Refused:
        """The ticket a manual change is about, if it is the latest of its key."""
        _require_aware(now)
        ticket = self.by_id(ticket_id)
        return ticket if ticket is not None else Refused(ticket_id, Refusal.UNKNOWN_TICKET)

    def _manual(
        self,
        ticket: Ticket,
        now: datetime,
        actor: Actor,
        kind: EventKind,
        text: str,
        action: type[Acknowledged | Resolved | Noted],
    ) -> Step:
        ticket, event = _log(ticket, now, kind, text, actor)
        tickets = {**self.tickets, ticket.key: ticket}
        recipients = _told(self.directory, ticket)
        return Step(replace(self, tickets=tickets), (action(ticket, event, recipients),))


class _Run:
    """The working state of one evaluation (local to it, discarded after)."""

    def __init__(
        self,
        book: TicketBook,
        now: datetime,
        maintenance: Collection[SubjectKey],
        measurements: Mapping[SubjectKey, Measurements],
    ) -> None:
        self.policy = book.policy
        self.directory = book.directory
        self.now = now
        self.maintenance = maintenance
        self.measurements = measurements
        self.tickets = dict(book.tickets)
        self.suppressed = dict(book.suppressed)
        self.actions: list[Action] = []

    # -- incidents that are present ------------------------------------------------------------

    def present(self, incident: Incident) -> None:
        key = incident.key
        ticket = self.tickets.get(key)
        under = key in self.maintenance
        if not under:
            self.suppressed.pop(key, None)
        if ticket is None or self._retired(ticket):
            if under:
                self._suppress(incident)
            else:
                self._open(incident, ticket)
            return
        if ticket.status is TicketStatus.RESOLVED:
            if under:
                self._suppress(incident)
                return
            if ticket.ok_since is None:
                # Resolved by hand while still bad: give the fix time to show before disputing.
                resolved_at = ticket.resolved_at or self.now
                if _seconds(self.now - resolved_at) >= self.policy.still_failing_s:
                    self._reopen(ticket, incident, "still failing after it was resolved")
                return
            self._reopen(ticket, incident, "relapsed after resolution")
            return
        self._continue(ticket, incident, under)

    def _open(self, incident: Incident, previous: Ticket | None) -> None:
        start = incident.since
        # The old ticket of this key may share the incident's start (resolved while still bad):
        # a new episode must not get the old id, or the store's upsert would overwrite it.
        if previous is not None and previous.resolved_at and start <= previous.resolved_at:
            start = self.now
        measured = self.measurements.get(incident.key)
        evidence = Evidence(
            kind=incident.kind,
            state=incident.state,
            worst_state=incident.state,
            detail=incident.detail,
            links=incident.links,
            first_bad_at=incident.since,
            bad_since=incident.since,
            first=measured,
            worst=measured,
        )
        level, recipients = self._first(incident)
        ticket = Ticket(
            id=ticket_id(incident.key, start),
            key=incident.key,
            episode_start=start,
            route=incident.route,
            isp=incident.isp,
            status=TicketStatus.OPEN,
            evidence=evidence,
            opened_at=self.now,
            escalation_from=self.now,
            last_notified_at=self.now,
            level=level,
        )
        self._emit(ticket, EventKind.OPENED, _describe(incident), OpenTicket, recipients)

    def _reopen(self, ticket: Ticket, incident: Incident, why: str) -> None:
        level, recipients = self._first(incident)
        evidence = _restate(_track(ticket.evidence, incident, ticket.ok_since), incident)
        evidence = _measure(evidence, self.measurements.get(incident.key))
        ticket = replace(
            ticket,
            route=incident.route,
            isp=incident.isp,
            status=TicketStatus.OPEN,
            evidence=evidence,
            escalation_from=self.now,
            last_notified_at=self.now,
            level=level,
            acknowledged_at=None,
            resolved_at=None,
            ok_since=None,
            parent=None,
            maintenance=False,
            reopened=ticket.reopened + 1,
            line_back_at=None,  # a new episode: its own line-back notice
            bad_again_told=False,
        )
        text = f"{why}: {_describe(incident)}"
        self._emit(ticket, EventKind.REOPENED, text, ReopenTicket, recipients)

    def _first(self, incident: Incident) -> tuple[int, tuple[Contact, ...]]:
        """The levels told at once when an episode opens: the highest of them, and whom."""
        first = [
            lv
            for lv in self.directory.levels(incident.route, incident.isp, incident.key.commune)
            if lv.after_s <= 0
        ]
        return (first[-1].level if first else 0), tuple(c for lv in first for c in lv.contacts)

    def _continue(self, ticket: Ticket, incident: Incident, under: bool) -> None:
        if ticket.parent is not None:
            ticket = self._update(replace(ticket, parent=None), EventKind.UNLINKED, "own incident")
        if ticket.ok_since is not None:
            evidence = _track(ticket.evidence, incident, ticket.ok_since)
            ticket = replace(ticket, ok_since=None, evidence=evidence)
            if ticket.line_back_at is not None and not ticket.bad_again_told:
                # They were told it is back: they must hear it is not (once an episode).
                ticket = replace(ticket, bad_again_told=True)
                recipients = _told(self.directory, ticket)
                ticket = self._emit(
                    ticket, EventKind.BAD_AGAIN, _describe(incident), UpdateTicket, recipients
                )
            else:
                ticket = self._update(ticket, EventKind.BAD_AGAIN, _describe(incident))
        ticket = self._maintenance(ticket, under)
        old = ticket.evidence
        if (incident.kind, incident.route, incident.isp) != (old.kind, ticket.route, ticket.isp):
            evidence = replace(old, kind=incident.kind)
            ticket = replace(ticket, evidence=evidence, route=incident.route, isp=incident.isp)
            text = f"{old.kind.value} → {incident.kind.value}, route {incident.route.value}"
            ticket = self._update(ticket, EventKind.KIND_CHANGED, text)
        if (incident.state, incident.detail) != (old.state, old.detail):
            evidence = replace(_restate(ticket.evidence, incident), links=ticket.evidence.links)
            text = f"{old.state} → {_describe(incident)}"
            ticket = self._update(replace(ticket, evidence=evidence), EventKind.STATE_CHANGED, text)
        evidence = _measure(ticket.evidence, self.measurements.get(incident.key))
        links = tuple(dict.fromkeys((*evidence.links, *incident.links)))
        if evidence != ticket.evidence or links != evidence.links:
            evidence = replace(evidence, links=links)
            ticket = replace(ticket, evidence=evidence)
            ticket = self._update(ticket, EventKind.EVIDENCE, _figures(evidence))
        if ticket.status is TicketStatus.OPEN and not under:
            self._escalate(ticket)

    def _escalate(self, ticket: Ticket) -> None:
        levels = self.directory.levels(ticket.route, ticket.isp, ticket.key.commune)
        elapsed_s = _seconds(self.now - ticket.escalation_from)
        escalated = False
        for level in levels:
            if level.level <= ticket.level:
                continue
            if elapsed_s < level.after_s:
                break
            ticket = replace(ticket, level=level.level, last_notified_at=self.now)
            ticket, event = _log(ticket, self.now, EventKind.ESCALATED, f"level {level.level}")
            self._store(ticket)
            self.actions.append(Escalate(ticket, event, level.contacts, level.level))
            escalated = True
        remind_s = self.policy.remind_every_s
        if escalated or remind_s is None or ticket.level == 0:
            return
        if _seconds(self.now - ticket.last_notified_at) >= remind_s:
            ticket = replace(ticket, last_notified_at=self.now)
            text = f"unacknowledged since {ticket.escalation_from.isoformat()}"
            self._emit(ticket, EventKind.REMINDED, text, Remind, _told(self.directory, ticket))

    # -- tickets whose incident is gone --------------------------------------------------------

    def absent(self, ticket: Ticket, covering: Mapping[str, SubjectKey], blind: bool) -> None:
        if ticket.status is TicketStatus.RESOLVED:
            if ticket.ok_since is None and not blind and not self._retired(ticket):
                evidence = _close(ticket.evidence, self.now)
                ticket = replace(ticket, ok_since=self.now, evidence=evidence)
                self._update(ticket, EventKind.CLEARED, "")
            return
        ticket = self._maintenance(ticket, ticket.key in self.maintenance)
        parent = _parent(ticket, covering)
        if parent is not None:
            if ticket.parent != parent:
                self._link(ticket, parent)
            return
        if ticket.parent is not None:
            text = f"{ticket.parent} is over"
            ticket = self._update(replace(ticket, parent=None), EventKind.UNLINKED, text)
        if blind:
            if ticket.ok_since is not None:
                ticket = replace(ticket, ok_since=None)
                self._update(ticket, EventKind.RECOVERY_HELD, "NetWatch's own connectivity lost")
            return
        ok_since = ticket.ok_since
        if ok_since is None:
            ok_since = self.now
            evidence = _close(ticket.evidence, self.now)
            ticket = replace(ticket, ok_since=ok_since, evidence=evidence)
            ticket = self._update(ticket, EventKind.RECOVERING, "")
        gone_s = _seconds(self.now - ok_since)
        line_back_s = self.policy.line_back_s
        if (
            line_back_s is not None
            and ticket.line_back_at is None
            and line_back_s <= gone_s < self.policy.recovery_s
        ):
            ticket = replace(ticket, line_back_at=self.now)
            text = f"ok since {ok_since.isoformat()}"
            recipients = _told(self.directory, ticket)
            ticket = self._emit(ticket, EventKind.LINE_BACK, text, UpdateTicket, recipients)
        if gone_s >= self.policy.recovery_s:
            ticket = replace(ticket, status=TicketStatus.RESOLVED, resolved_at=self.now)
            text = f"ok since {ok_since.isoformat()}"
            recipients = _told(self.directory, ticket)
            self._emit(ticket, EventKind.AUTO_RESOLVED, text, AutoResolve, recipients)

    def _link(self, ticket: Ticket, parent_key: SubjectKey) -> None:
        parent = self.tickets.get(parent_key)
        parent_id = parent.id if parent is not None and not self._retired(parent) else None
        # While absorbed, the link is still bad: its downtime runs on and no recovery clock.
        evidence = ticket.evidence
        if evidence.bad_since is None:
            evidence = replace(evidence, bad_since=self.now)
        ticket = replace(ticket, parent=parent_key, ok_since=None, evidence=evidence)
        ticket, event = _log(ticket, self.now, EventKind.LINKED, parent_key.encoded)
        self._store(ticket)
        recipients = _told(self.directory, ticket)
        self.actions.append(LinkToParent(ticket, event, recipients, parent_key, parent_id))

    # -- helpers -------------------------------------------------------------------------------

    def _maintenance(self, ticket: Ticket, under: bool) -> Ticket:
        if ticket.maintenance == under:
            return ticket
        kind = EventKind.MAINTENANCE_STARTED if under else EventKind.MAINTENANCE_ENDED
        return self._update(replace(ticket, maintenance=under), kind, "")

    def _retired(self, ticket: Ticket) -> bool:
        if ticket.status is not TicketStatus.RESOLVED or ticket.resolved_at is None:
            return False
        return _seconds(self.now - ticket.resolved_at) > self.policy.reopen_window_s

    def _suppress(self, incident: Incident) -> None:
        if self.suppressed.get(incident.key) != incident.since:
            self.suppressed[incident.key] = incident.since
            self.actions.append(Suppressed(incident.key, incident, self.now))

    def _update(self, ticket: Ticket, kind: EventKind, text: str) -> Ticket:
        recipients = () if kind in _LOG_ONLY else _told(self.directory, ticket)
        return self._emit(ticket, kind, text, UpdateTicket, recipients)

    def _emit(
        self,
        ticket: Ticket,
        kind: EventKind,
        text: str,
        action: type[OpenTicket | ReopenTicket | UpdateTicket | AutoResolve | Remind],
        recipients: tuple[Contact, ...],
    ) -> Ticket:
        ticket, event = _log(ticket, self.now, kind, text)
        self._store(ticket)
        self.actions.append(action(ticket, event, recipients))
        return ticket

    def _store(self, ticket: Ticket) -> None:
        self.tickets[ticket.key] = ticket


def _log(
    ticket: Ticket, at: datetime, kind: EventKind, text: str, actor: Actor = SYSTEM
) -> tuple[Ticket, TicketEvent]:
    event = TicketEvent(len(ticket.log), at, actor, kind, text)
    return replace(ticket, log=(*ticket.log, event)), event


def _told(directory: Directory, ticket: Ticket) -> tuple[Contact, ...]:
    """Everyone told about the ticket so far: its route's levels up to its level."""
    levels = directory.levels(ticket.route, ticket.isp, ticket.key.commune)
    return tuple(c for lv in levels if lv.level <= ticket.level for c in lv.contacts)


def _parent(ticket: Ticket, covering: Mapping[str, SubjectKey]) -> SubjectKey | None:
    links = ticket.evidence.links
    own = ticket.key.link_id
    if not links and own is not None:
        links = (own,)
    for link in links:
        parent = covering.get(link)
        if parent is not None and parent != ticket.key:
            return parent
    return None


def _track(evidence: Evidence, incident: Incident, ok_since: datetime | None) -> Evidence:
    """Evidence when the incident is back on: a new bad stretch starts."""
    if evidence.bad_since is not None:
        return evidence
    # Never count the same time twice: the stretch starts no earlier than the recovery.
    bad_since = max(incident.since, ok_since) if ok_since is not None else incident.since
    return replace(evidence, bad_since=bad_since)


def _restate(evidence: Evidence, incident: Incident) -> Evidence:
    """Evidence with the incident's kind, state and cause; the worst state kept."""
    worst = evidence.worst_state
    if _SEVERITY.get(incident.state, -1) > _SEVERITY.get(worst, -1):
        worst = incident.state
    return replace(
        evidence,
        kind=incident.kind,
        state=incident.state,
        detail=incident.detail,
        worst_state=worst,
        links=tuple(dict.fromkeys((*evidence.links, *incident.links))),
    )


def _close(evidence: Evidence, at: datetime) -> Evidence:
    """Evidence when the incident is gone: the bad stretch ends at ``at``."""
    if evidence.bad_since is None:
        return evidence
    closed_s = evidence.downtime_closed_s + _seconds(at - evidence.bad_since)
    return replace(evidence, bad_since=None, downtime_closed_s=closed_s)


def _measure(evidence: Evidence, measured: Measurements | None) -> Evidence:
    if measured is None:
        return evidence
    first = evidence.first if evidence.first is not None else measured
    worst = measured if evidence.worst is None else _worse(evidence.worst, measured)
    return replace(evidence, first=first, worst=worst)


def _worse(a: Measurements, b: Measurements) -> Measurements:
    """The worst of each figure (an interface seen down stays down)."""
    if a.interface_up is False or b.interface_up is False:
        interface_up: bool | None = False
    elif a.interface_up or b.interface_up:
        interface_up = True
    else:
        interface_up = None
    return Measurements(
        loss_ratio=_max(a.loss_ratio, b.loss_ratio),
        rtt_median_s=_max(a.rtt_median_s, b.rtt_median_s),
        interface_up=interface_up,
        utilization_ratio=_max(a.utilization_ratio, b.utilization_ratio),
        path=a.path or b.path,  # the first trace taken stays
        rtt_max_s=_max(a.rtt_max_s, b.rtt_max_s),
        down_cause=a.down_cause or b.down_cause,
        # What the agent saw from inside: the latest rounds attached (they carry their times).
        inside_paths=b.inside_paths or a.inside_paths,
        inside_portals=b.inside_portals or a.inside_portals,
    )


def _max(a: float | None, b: float | None) -> float | None:
    if a is None:
        return b
    if b is None:
        return a
    return max(a, b)


def _describe(incident: Incident) -> str:
    return f"{incident.state} ({incident.detail})" if incident.detail else incident.state


def _figures(evidence: Evidence) -> str:
    worst = evidence.worst
    parts = [f"links {len(evidence.links)}"]
    if worst is not None:
        if worst.loss_ratio is not None:
            parts.append(f"loss {worst.loss_ratio:.0%}")
        if worst.rtt_median_s is not None:
            parts.append(f"rtt {worst.rtt_median_s * 1000:.0f} ms")
        if worst.interface_up is not None:
            parts.append("interface " + ("up" if worst.interface_up else "down"))
        if worst.utilization_ratio is not None:
            parts.append(f"utilization {worst.utilization_ratio:.0%}")
    return ", ".join(parts)


def _seconds(delta: timedelta) -> float:
    """A duration in seconds; a clock seen going back counts as zero, never negative."""
    return max(0.0, delta.total_seconds())


def _require_aware(at: datetime) -> None:
    if at.tzinfo is None or at.utcoffset() is None:
        raise ValueError("times must be timezone-aware")
