"""Values the store hands out and takes in: frozen dataclasses and enums, never ORM objects."""

from __future__ import annotations

import enum
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from datetime import datetime
from typing import TypeAlias

from alerts.maintenance import MaintenanceScope, MaintenanceWindow, OneOff, ScopeKind
from alerts.subject import SubjectKey
from alerts.tickets import Ticket, TicketEvent
from alerts.tickets import TicketStatus as TicketStatus  # the one lifecycle enum, stored by value

# What JSON columns (ticket evidence, outbox payloads) hold.
JsonValue: TypeAlias = (
    "str | int | float | bool | Sequence[JsonValue] | Mapping[str, JsonValue] | None"
)
JsonObject: TypeAlias = Mapping[str, JsonValue]


class Backend(enum.Enum):
    """Which database engine a store runs on."""

    SQLITE = "sqlite"
    POSTGRESQL = "postgresql"


# --- subject states and history -------------------------------------------------------------

# States that count as unavailable in availability figures.
UNAVAILABLE_STATES = frozenset({"down", "failing"})
# States that mean "working, with degraded quality": available, reported separately.
DEGRADED_STATES = frozenset({"slow", "lossy", "congested"})
# The state recorded while NetWatch does not know (not running, just started).
UNKNOWN_STATE = "unknown"
HEARTBEAT_SUBJECT = "netwatch:heartbeat"  # NetWatch itself: alive until (not a judged subject)


@dataclass(frozen=True, slots=True)
class StateChange:
    """A subject entered a state at `since` (the first round of it, not when it was confirmed)."""

    subject: str
    state: str
    since: datetime
    detail: str = ""


@dataclass(frozen=True, slots=True)
class SubjectState:
    """The current state of one subject (link, upstream node, portal)."""

    subject: str
    state: str
    detail: str
    since: datetime
    updated_at: datetime


@dataclass(frozen=True, slots=True)
class StateInterval:
    """One stretch of time a subject spent in one state; until is None while it lasts."""

    subject: str
    state: str
    detail: str
    since: datetime
    until: datetime | None


class TransitionOutcome(enum.Enum):
    """What record_transitions did with one change."""

    RECORDED = "recorded"  # previous interval closed, new one opened
    UNCHANGED = "unchanged"  # same state as the open interval: only the detail was refreshed
    STALE = "stale"  # older than the open interval's start: ignored


@dataclass(frozen=True, slots=True)
class TransitionRecord:
    """The result of record_transitions for one change."""

    outcome: TransitionOutcome
    current: SubjectState | None


@dataclass(frozen=True, slots=True)
class Availability:
    """How one subject spent a period [start, end), in seconds per class of state.

    availability_ratio = 1 - unavailable_s / known_s: down (and failing) time is unavailable;
    slow, lossy and congested time is available (the line carries traffic) and is reported as
    degraded_s; unknown time (NetWatch not running, before the first observation, after `now`)
    is excluded from the denominator, neither blamed on the ISP nor credited to it. ok_ratio is
    the stricter figure: share of known time in `ok`.
    """

    subject: str
    start: datetime
    end: datetime
    ok_s: float
    degraded_s: float
    unavailable_s: float
    unknown_s: float
    seconds_by_state: Mapping[str, float] = field(default_factory=dict)

    @property
    def known_s(self) -> float:
        """Seconds with a known state."""
        return self.ok_s + self.degraded_s + self.unavailable_s

    @property
    def availability_ratio(self) -> float | None:
        """Share of known time not unavailable; None when nothing is known of the period."""
        known_s = self.known_s
        return 1.0 - self.unavailable_s / known_s if known_s > 0 else None

    @property
    def ok_ratio(self) -> float | None:
        """Share of known time in state ok; None when nothing is known of the period."""
        known_s = self.known_s
        return self.ok_s / known_s if known_s > 0 else None


# --- tickets ----------------------------------------------------------------------------------


# A stored log entry written before events were numbered (schema 0001) has no sequence number.
UNNUMBERED = -1


@dataclass(frozen=True, slots=True)
class StoredEvent:
    """One entry of a ticket's log as stored: alerts' event, and the row's own id.

    An entry written before events were numbered has ``event.seq`` UNNUMBERED (``seq`` None).
    """

    id: int
    ticket_id: str
    event: TicketEvent

    @property
    def seq(self) -> int | None:
        """The event's number in its ticket's log; None for an entry of an older version."""
        return None if self.event.seq == UNNUMBERED else self.event.seq


@dataclass(frozen=True, slots=True)
class StoredTicket:
    """A stored ticket as the web and the API read it: alerts' ticket, and what only its row
    keeps. The ticket is the row's columns, completed from its book (``TicketRecord.book``)
    with what only the book holds; a row of an older version (no book) gives its columns only:
    the episode starts at the opening, the log is empty (its events are in ticket_events)."""

    ticket: Ticket
    updated_at: datetime
    escalation_level: int  # its column: the level told so far (alerting writes 1 at least)
    # The recovery watch of an unresolved ticket: since when the incident has been gone, when
    # the ticket then closes if it stays so (pages show it); None otherwise.
    back_since: datetime | None = None
    closes_at: datetime | None = None


# --- outbox -----------------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class NewOutboxItem:
    """A notification to deliver; dedup_key makes enqueuing it twice a no-op."""

    channel: str  # "email", "webhook", "telegram"
    recipient: str
    payload: JsonObject
    dedup_key: str
    ticket_id: str | None = None
    not_before: datetime | None = None  # first attempt; default: as soon as enqueued


@dataclass(frozen=True, slots=True)
class OutboxItem:
    """A stored notification: one rendered payload for one channel and recipient, as the
    outbox worker claims it (netwatch.notify.outbox) and the store keeps it."""

    id: int
    ticket_id: str | None
    channel: str
    recipient: str
    payload: JsonObject
    dedup_key: str
    created_at: datetime
    next_attempt_at: datetime | None  # None: given up
    attempts: int
    last_error: str | None
    sent_at: datetime | None


class EnqueueOutcome(enum.Enum):
    """What enqueue did."""

    ENQUEUED = "enqueued"
    DUPLICATE = "duplicate"  # same dedup key already enqueued (sent or not)


class DeliveryOutcome(enum.Enum):
    """What mark_sent / mark_failed did."""

    RECORDED = "recorded"
    ALREADY_SENT = "already_sent"  # someone marked it sent first: nothing changed
    NOT_FOUND = "not_found"


@dataclass(frozen=True, slots=True)
class OutboxBacklog:
    """How much is waiting in the outbox."""

    pending: int  # not sent and not given up
    due: int  # pending and due now
    given_up: int
    oldest_pending_at: datetime | None


# --- API tokens -------------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class ApiToken:
    """A stored API token's public part (the token itself is never stored)."""

    id: str
    name: str
    scopes: tuple[str, ...]
    created_at: datetime
    revoked_at: datetime | None
    provinces: tuple[int, ...] | None = None  # None: every province (revision 0007)
    isp: str | None = None  # None: every ISP


@dataclass(frozen=True, slots=True)
class IssuedToken:
    """A newly created token: `token` is shown once and cannot be recovered."""

    token: str
    info: ApiToken


class TokenReason(enum.Enum):
    """Why a token was accepted or refused."""

    OK = "ok"
    MALFORMED = "malformed"
    UNKNOWN = "unknown"
    MISMATCH = "mismatch"
    REVOKED = "revoked"
    MISSING_SCOPE = "missing_scope"


@dataclass(frozen=True, slots=True)
class TokenCheck:
    """The result of verify_token; info is set whenever the token id was known."""

    reason: TokenReason
    info: ApiToken | None

    @property
    def ok(self) -> bool:
        """Whether the token is accepted."""
        return self.reason is TokenReason.OK


class RevokeOutcome(enum.Enum):
    """What revoke_token / cancel_maintenance did."""

    DONE = "done"
    ALREADY = "already"
    NOT_FOUND = "not_found"


# --- maintenance windows ----------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class NewMaintenance:
    """A one-off maintenance window created through the API."""

    scope: str  # "commune", "link", "isp", "province", "upstream"
    target: str  # the commune code, link key, ISP id, ...
    starts_at: datetime
    ends_at: datetime
    reason: str
    created_by: str


@dataclass(frozen=True, slots=True)
class StoredWindow:
    """A stored maintenance window (one-off, made through the API or the admin pages)."""

    id: int
    scope: str  # a ScopeKind value: "commune", "link", "isp", "province", "upstream"
    target: str
    starts_at: datetime
    ends_at: datetime
    reason: str
    created_by: str
    created_at: datetime
    cancelled_at: datetime | None

    @property
    def window(self) -> MaintenanceWindow:
        """The window as alerts/ evaluates it: the one conversion, for alerting and the pages
        alike (an upstream node's window covers its whole subtree)."""
        scope = MaintenanceScope(ScopeKind(self.scope), self.target)
        return MaintenanceWindow(scope, OneOff(self.starts_at, self.ends_at), self.reason)


# --- ticket steps (the alerts/ state machine's persistence) -----------------------------------


@dataclass(frozen=True, slots=True)
class TicketRecord:
    """A ticket as the state machine wants it stored; upserted by id, every column replaced.

    ``book`` is the caller's whole ticket (alerts' Ticket as JSON) so the machine can be
    restored after a restart; the other columns are what the web and API query.
    """

    id: str
    incident_key: SubjectKey
    kind: str
    route: str
    isp: str | None
    state: TicketStatus
    opened_at: datetime
    acknowledged_at: datetime | None
    resolved_at: datetime | None
    evidence: JsonObject
    escalation_level: int
    last_notified_at: datetime | None
    book: JsonObject


@dataclass(frozen=True, slots=True)
class EventRecord:
    """An entry of a ticket's log keyed by (ticket_id, seq): written once, replays ignored."""

    ticket_id: str
    seq: int
    at: datetime
    actor: str
    kind: str
    text: str = ""


class TicketStepOutcome(enum.Enum):
    """What apply_ticket_changes did."""

    APPLIED = "applied"  # everything written (or already there) in one transaction
    # A ticket would have been a second unresolved one for its incident key: nothing written.
    INCIDENT_OPEN = "incident_open"


@dataclass(frozen=True, slots=True)
class TicketStepResult:
    """The counts of apply_ticket_changes; a replay of a committed call counts nothing new."""

    outcome: TicketStepOutcome
    tickets_written: int = 0  # inserted, or updated because a column differed
    tickets_unchanged: int = 0  # already stored exactly so
    events_inserted: int = 0
    events_existing: int = 0  # (ticket_id, seq) already there: ignored
    outbox_enqueued: int = 0
    outbox_duplicates: int = 0  # dedup_key already there: ignored
    conflict_ticket_id: str | None = None  # INCIDENT_OPEN: the ticket that could not be written

    @property
    def changed(self) -> bool:
        """Whether the call wrote anything."""
        return bool(self.tickets_written or self.events_inserted or self.outbox_enqueued)


@dataclass(frozen=True, slots=True)
class AdminSession:
    """A stored provincial IT session (the id itself is only ever in the browser's cookie)."""

    token_id: str | None  # None: opened by a person (user_name)
    csrf: str
    created_at: datetime
    expires_at: datetime
    user_name: str | None = None


@dataclass(frozen=True, slots=True)
class User:
    """A person's account (the password hash stays in the store)."""

    name: str
    role: str  # national, province, isp
    provinces: tuple[int, ...] | None
    isp: str | None
    created_at: datetime
    password_set_at: datetime | None
    disabled_at: datetime | None


@dataclass(frozen=True, slots=True)
class TicketLink:
    """A signed ISP link: its id (from the signature), ticket, expiry, when a notice carried it
    (None for links recorded before revision 0005), its first use (None: never opened), its
    revocation."""

    id: str
    ticket_id: str
    expires_at: datetime
    issued_at: datetime | None
    first_used_at: datetime | None
    revoked_at: datetime | None
    revoked_by: str | None


@dataclass(frozen=True, slots=True)
class IssuedLink:
    """A signed ISP link a notice carries, recorded with the notice's outbox rows."""

    id: str
    ticket_id: str
    expires_at: datetime
    issued_at: datetime


@dataclass(frozen=True, slots=True)
class InternalNote:
    """A ticket note for the ISP and provincial IT only: who (kind, name), when, what."""

    ticket_id: str
    at: datetime
    actor_kind: str
    actor_name: str
    text: str
