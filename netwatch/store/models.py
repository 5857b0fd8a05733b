"""The store's schema as SQLAlchemy ORM models; the Alembic migrations create exactly this.

Tables (times are UTC; timestamptz on PostgreSQL, naive-UTC text on SQLite):

- ``subject_states``: the current state of every subject (link "24848/vnpt-tslcd", upstream
  "upstream:pop-1", portal per vantage point "dvcqg@central"; alerts/subject.py), one row each,
  replaced on every transition.
- ``state_history``: one row per stretch of time a subject spent in one state, [since, until);
  ``until`` is NULL while it lasts and a partial unique index allows one open interval per
  subject. Monthly availability per link is computed from these intervals.
- ``tickets``: one per incident episode. The caller chooses the id, deterministic from
  (incident key, episode start), so creating it twice (restart, crash, second instance) is an
  insert-ignore. A partial unique index allows one unresolved ticket per incident key, so a new
  leader that dates an episode differently still cannot open a second ticket for it.
  ``book`` (revision 0002) holds the alerts state machine's whole ticket as JSON, ``{}`` for
  tickets written through the older per-change methods.
- ``ticket_events``: the ticket's log (who did what, when). ``seq`` (revision 0002) is the
  event's index in the state machine's log, UNIQUE per ticket so a replayed step inserts
  nothing; it is NULL for rows written by create_ticket / set_ticket_state / append_event /
  escalate and for rows older than 0002 (NULLs never collide), so those writers can never
  take a number the machine will hand out next.
- ``outbox``: notifications to deliver, written in the same transaction as the change that
  causes them; ``dedup_key`` is UNIQUE so the same notification is never enqueued twice.
  ``next_attempt_at`` is NULL once delivery was given up; a claim moves it forward by a lease.
- ``api_tokens``: token id (public), name, SHA-256 of the whole token (never the token), scopes.
- ``maintenance_windows``: one-off windows created through the API (recurring ones live in config).
- ``link_rollups`` (revision 0003): per link and hour, the packed 5-minute ICMP buckets
  (median and max RTT, loss) behind the status page's 24-hour chart; pruned after a retention.
- ``admin_sessions`` (revision 0004): the provincial IT view's sessions, server-side: the
  SHA-256 of the session id the cookie carries (never the id), the API token it was opened
  with, its CSRF token and expiry. Logout deletes the row, so a replayed cookie is refused.
- ``ticket_links`` (revision 0004; issued_at from 0005): every signed ISP link issued in a notice
  or seen in use, by an id derived from its signature, with its ticket and expiry;
  ``revoked_at`` refuses that one link from then on.
- ``ticket_internal_notes`` (revision 0004): notes the ISP and provincial IT keep to themselves,
  outside the ticket's log, so the public status page (which shows the log's notes) never does.
- ``auth_buckets``, ``auth_failure_totals`` (revision 0006): the failed-authentication limit's
  token buckets and the failure counts, shared by every process (netwatch.web.auth.AuthGuard).
- ``agent_credentials`` (revision 0009): one per commune agent: its commune, the bcrypt hash of
  its secret (never the secret), created and revoked times (docs/agent-centre.md).
- ``users`` (revision 0007): people who log in to /admin (argon2id hash, role, provinces, ISP);
  ``api_tokens.provinces``/``isp`` restrict a token, ``admin_sessions.user_name`` names the
  person a session was opened for (its ``token_id`` is then NULL).
"""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any, ClassVar

import sqlalchemy as sa
from sqlalchemy.dialects import postgresql
from sqlalchemy.engine import Dialect
from sqlalchemy.orm import DeclarativeBase, Mapped, mapped_column

# The moments the store keeps. Python's datetime ends at years 1 and 9999: a moment there with an
# offset overflowed in the conversion to UTC (issue 15: an OverflowError, a 500). Nothing NetWatch
# measures or plans is outside this range.
EARLIEST_MOMENT = datetime(1970, 1, 1, tzinfo=UTC)
LATEST_MOMENT = datetime(9000, 1, 1, tzinfo=UTC)


class MomentOutOfRangeError(ValueError):
    """A moment outside [EARLIEST_MOMENT, LATEST_MOMENT): refused, never stored."""


def utc_moment(value: datetime) -> datetime:
    """The aware moment in UTC; MomentOutOfRangeError when outside what the store keeps."""
    try:
        utc = value.astimezone(UTC)
    except OverflowError:
        utc = None
    if utc is None or not EARLIEST_MOMENT <= utc < LATEST_MOMENT:
        raise MomentOutOfRangeError(
            f"{value.isoformat()} is out of range: NetWatch keeps moments from "
            f"{EARLIEST_MOMENT.year} to {LATEST_MOMENT.year - 1}"
        )
    return utc


class UtcDateTime(sa.TypeDecorator[datetime]):
    """A timezone-aware UTC datetime on both backends; naive datetimes are refused (a bug)."""

    impl = sa.DateTime(timezone=True)
    cache_ok = True

    def process_bind_param(self, value: datetime | None, dialect: Dialect) -> datetime | None:
        """Store UTC; SQLite has no time zones, so it gets naive UTC (sortable as text)."""
        if value is None:
            return None
        if value.tzinfo is None:
            raise ValueError(f"naive datetime given to the store: {value!r}")
        value = utc_moment(value)
        return value.replace(tzinfo=None) if dialect.name == "sqlite" else value

    def process_result_value(self, value: datetime | None, dialect: Dialect) -> datetime | None:
        """Hand back aware UTC."""
        if value is None:
            return None
        return value.replace(tzinfo=UTC) if value.tzinfo is None else value.astimezone(UTC)


# JSONB on PostgreSQL (indexable, compact); JSON text elsewhere.
JsonType = sa.JSON().with_variant(postgresql.JSONB(), "postgresql")
# SQLite only autoincrements an INTEGER PRIMARY KEY; PostgreSQL gets a bigint identity.
BigIntId = sa.BigInteger().with_variant(sa.Integer(), "sqlite")


def _partial_index(name: str, column: str, where: str, *, unique: bool = False) -> sa.Index:
    """An index over the rows where `where` holds: the same condition on SQLite and PostgreSQL."""
    condition = sa.text(where)
    return sa.Index(name, column, unique=unique, sqlite_where=condition, postgresql_where=condition)


NAMING = {
    "ix": "ix_%(table_name)s_%(column_0_N_name)s",
    "uq": "uq_%(table_name)s_%(column_0_N_name)s",
    "ck": "ck_%(table_name)s_%(constraint_name)s",
    "fk": "fk_%(table_name)s_%(column_0_name)s_%(referred_table_name)s",
    "pk": "pk_%(table_name)s",
}


class Base(DeclarativeBase):
    """Declarative base with a naming convention, so migrations name constraints stably."""

    metadata = sa.MetaData(naming_convention=NAMING)
    type_annotation_map: ClassVar[dict[Any, Any]] = {datetime: UtcDateTime()}


class SubjectStateRow(Base):
    """The current state of one subject."""

    __tablename__ = "subject_states"

    subject: Mapped[str] = mapped_column(sa.String(200), primary_key=True)
    state: Mapped[str] = mapped_column(sa.String(32))
    detail: Mapped[str] = mapped_column(sa.String(200), default="")
    since: Mapped[datetime]
    updated_at: Mapped[datetime]


class StateHistoryRow(Base):
    """One interval [since, until) a subject spent in one state."""

    __tablename__ = "state_history"
    __table_args__ = (
        sa.Index("ix_state_history_subject_since", "subject", "since"),
        # At most one open interval per subject.
        _partial_index("uq_state_history_open", "subject", "until IS NULL", unique=True),
        sa.CheckConstraint("until IS NULL OR until >= since", name="interval_order"),
    )

    id: Mapped[int] = mapped_column(BigIntId, primary_key=True, autoincrement=True)
    subject: Mapped[str] = mapped_column(sa.String(200))
    state: Mapped[str] = mapped_column(sa.String(32))
    detail: Mapped[str] = mapped_column(sa.String(200), default="")
    since: Mapped[datetime]
    until: Mapped[datetime | None]


class TicketRow(Base):
    """One ticket per incident episode."""

    __tablename__ = "tickets"
    __table_args__ = (
        sa.Index("ix_tickets_state_opened_at", "state", "opened_at"),
        sa.Index("ix_tickets_incident_key", "incident_key"),
        # One unresolved ticket per incident: the database's own guard against doubles.
        _partial_index(
            "uq_tickets_unresolved_incident", "incident_key", "state != 'resolved'", unique=True
        ),
        sa.CheckConstraint("state IN ('open', 'acknowledged', 'resolved')", name="state"),
    )

    id: Mapped[str] = mapped_column(sa.String(100), primary_key=True)
    incident_key: Mapped[str] = mapped_column(sa.String(200))
    kind: Mapped[str] = mapped_column(sa.String(40))
    route: Mapped[str] = mapped_column(sa.String(40))
    isp: Mapped[str | None] = mapped_column(sa.String(64))
    state: Mapped[str] = mapped_column(sa.String(16))
    opened_at: Mapped[datetime]
    acknowledged_at: Mapped[datetime | None]
    resolved_at: Mapped[datetime | None]
    evidence: Mapped[dict[str, Any]] = mapped_column(JsonType)
    escalation_level: Mapped[int] = mapped_column(sa.Integer, default=1)
    last_notified_at: Mapped[datetime | None]
    updated_at: Mapped[datetime]
    book: Mapped[dict[str, Any]] = mapped_column(JsonType, server_default="{}")


class TicketEventRow(Base):
    """One entry in a ticket's log."""

    __tablename__ = "ticket_events"
    __table_args__ = (
        sa.Index("ix_ticket_events_ticket_id_at", "ticket_id", "at"),
        # A unique index, not a constraint: SQLite adds it without rebuilding the table, and
        # ON CONFLICT (ticket_id, seq) infers it on both backends.
        sa.Index("uq_ticket_events_ticket_id_seq", "ticket_id", "seq", unique=True),
    )

    id: Mapped[int] = mapped_column(BigIntId, primary_key=True, autoincrement=True)
    ticket_id: Mapped[str] = mapped_column(
        sa.String(100), sa.ForeignKey("tickets.id", ondelete="CASCADE")
    )
    at: Mapped[datetime]
    actor: Mapped[str] = mapped_column(sa.String(100))
    kind: Mapped[str] = mapped_column(sa.String(40))
    text: Mapped[str] = mapped_column(sa.Text, default="")
    seq: Mapped[int | None] = mapped_column(sa.Integer)


class OutboxRow(Base):
    """A notification waiting for (or done with) delivery."""

    __tablename__ = "outbox"
    __table_args__ = (
        # Claimers look for unsent items by due time.
        _partial_index("ix_outbox_due", "next_attempt_at", "sent_at IS NULL"),
        sa.Index("ix_outbox_ticket_id", "ticket_id"),
    )

    id: Mapped[int] = mapped_column(BigIntId, primary_key=True, autoincrement=True)
    ticket_id: Mapped[str | None] = mapped_column(
        sa.String(100), sa.ForeignKey("tickets.id", ondelete="SET NULL")
    )
    channel: Mapped[str] = mapped_column(sa.String(32))
    recipient: Mapped[str] = mapped_column(sa.String(500))
    payload: Mapped[dict[str, Any]] = mapped_column(JsonType)
    dedup_key: Mapped[str] = mapped_column(sa.String(300), unique=True)
    created_at: Mapped[datetime]
    next_attempt_at: Mapped[datetime | None]
    attempts: Mapped[int] = mapped_column(sa.Integer, default=0)
    last_error: Mapped[str | None] = mapped_column(sa.Text)
    sent_at: Mapped[datetime | None]


class ApiTokenRow(Base):
    """An API token: only its SHA-256 is kept."""

    __tablename__ = "api_tokens"

    id: Mapped[str] = mapped_column(sa.String(32), primary_key=True)
    name: Mapped[str] = mapped_column(sa.String(100))
    token_sha256: Mapped[str] = mapped_column(sa.String(64), unique=True)
    scopes: Mapped[list[str]] = mapped_column(JsonType)
    created_at: Mapped[datetime]
    revoked_at: Mapped[datetime | None]
    # Revision 0007: NULL, every province / every ISP; else only these (netwatch.web.reach).
    provinces: Mapped[list[int] | None] = mapped_column(JsonType, nullable=True)
    isp: Mapped[str | None] = mapped_column(sa.String(64))


class MaintenanceWindowRow(Base):
    """A one-off maintenance window created through the API."""

    __tablename__ = "maintenance_windows"
    __table_args__ = (
        sa.Index("ix_maintenance_windows_ends_at", "ends_at"),
        sa.CheckConstraint("ends_at > starts_at", name="window_order"),
    )

    id: Mapped[int] = mapped_column(BigIntId, primary_key=True, autoincrement=True)
    scope: Mapped[str] = mapped_column(sa.String(32))
    target: Mapped[str] = mapped_column(sa.String(200))
    starts_at: Mapped[datetime]
    ends_at: Mapped[datetime]
    reason: Mapped[str] = mapped_column(sa.Text, default="")
    created_by: Mapped[str] = mapped_column(sa.String(100))
    created_at: Mapped[datetime]
    cancelled_at: Mapped[datetime | None]


class LinkRollupRow(Base):
    """One hour of one link's 5-minute ICMP buckets (revision 0003), packed by netwatch.history.

    The status page's 24-hour chart reads these after a restart, the monthly reports read a
    month of them (netwatch.reports); rows older than the retention (config
    `reports.history_days`) are pruned. One row per (link, hour): a national instance keeps
    ~10,000 x 24 rows a day.
    """

    __tablename__ = "link_rollups"
    __table_args__ = (sa.Index("ix_link_rollups_hour_start", "hour_start"),)

    link: Mapped[str] = mapped_column(sa.String(200), primary_key=True)
    hour_start: Mapped[datetime] = mapped_column(primary_key=True)
    buckets: Mapped[bytes] = mapped_column(sa.LargeBinary)
    updated_at: Mapped[datetime]


class LinkUtilizationRow(Base):
    """One hour of one link's 5-minute utilization buckets (revision 0008), packed by
    netwatch.utilization: the highest SNMP in/out rate of each bucket over the contracted
    bandwidth. The monthly reports read a month of them for the p95 utilization; pruned with
    link_rollups (config `reports.history_days`). 24 bytes of buckets a row.
    """

    __tablename__ = "link_utilization"
    __table_args__ = (sa.Index("ix_link_utilization_hour_start", "hour_start"),)

    link: Mapped[str] = mapped_column(sa.String(200), primary_key=True)
    hour_start: Mapped[datetime] = mapped_column(primary_key=True)
    buckets: Mapped[bytes] = mapped_column(sa.LargeBinary)
    updated_at: Mapped[datetime]


class AgentCredentialRow(Base):
    """A commune agent's credential (revision 0009): only the bcrypt hash of its secret is kept,
    the form nats-server checks the agent's leafnode password against (netwatch.inside.hub)."""

    __tablename__ = "agent_credentials"

    agent: Mapped[str] = mapped_column(sa.String(64), primary_key=True)
    commune: Mapped[str] = mapped_column(sa.String(16))
    secret_bcrypt: Mapped[str] = mapped_column(sa.String(100))
    created_at: Mapped[datetime]
    revoked_at: Mapped[datetime | None]


class AdminSessionRow(Base):
    """A provincial IT session (revision 0004): only the SHA-256 of its id is kept."""

    __tablename__ = "admin_sessions"
    __table_args__ = (sa.Index("ix_admin_sessions_expires_at", "expires_at"),)

    id_sha256: Mapped[str] = mapped_column(sa.String(64), primary_key=True)
    # Opened with a token (token_id) or by a person (user_name, revision 0007).
    token_id: Mapped[str | None] = mapped_column(sa.String(32))
    csrf: Mapped[str] = mapped_column(sa.String(64))
    created_at: Mapped[datetime]
    expires_at: Mapped[datetime]
    user_name: Mapped[str | None] = mapped_column(sa.String(64))


class UserRow(Base):
    """A person who logs in with a password (revision 0007): only an argon2id hash is kept."""

    __tablename__ = "users"

    name: Mapped[str] = mapped_column(sa.String(64), primary_key=True)
    password_hash: Mapped[str] = mapped_column(sa.String(200))
    role: Mapped[str] = mapped_column(sa.String(16))  # national, province, isp
    provinces: Mapped[list[int] | None] = mapped_column(JsonType, nullable=True)
    isp: Mapped[str | None] = mapped_column(sa.String(64))
    created_at: Mapped[datetime]
    password_set_at: Mapped[datetime | None]
    disabled_at: Mapped[datetime | None]


class TicketLinkRow(Base):
    """A signed ISP link issued in a notice (0005) or seen in use (0004), revocable alone."""

    __tablename__ = "ticket_links"
    __table_args__ = (sa.Index("ix_ticket_links_ticket_id", "ticket_id"),)

    id: Mapped[str] = mapped_column(sa.String(32), primary_key=True)
    ticket_id: Mapped[str] = mapped_column(sa.String(200))
    expires_at: Mapped[datetime]
    issued_at: Mapped[datetime | None]  # None: recorded before revision 0005, on first use
    first_used_at: Mapped[datetime | None]  # None: issued, never opened
    revoked_at: Mapped[datetime | None]
    revoked_by: Mapped[str | None] = mapped_column(sa.String(100))


class TicketInternalNoteRow(Base):
    """A note for the ISP and provincial IT only (revision 0004), never shown publicly."""

    __tablename__ = "ticket_internal_notes"
    __table_args__ = (sa.Index("ix_ticket_internal_notes_ticket_id", "ticket_id"),)

    id: Mapped[int] = mapped_column(BigIntId, primary_key=True, autoincrement=True)
    ticket_id: Mapped[str] = mapped_column(sa.String(200))
    at: Mapped[datetime]
    actor_kind: Mapped[str] = mapped_column(sa.String(32))
    actor_name: Mapped[str] = mapped_column(sa.String(200))
    text: Mapped[str] = mapped_column(sa.Text)


class AuthBucketRow(Base):
    """A failed-authentication token bucket (revision 0006): tokens left at at_s (unix s)."""

    __tablename__ = "auth_buckets"

    key: Mapped[str] = mapped_column(sa.String(120), primary_key=True)
    tokens: Mapped[float] = mapped_column(sa.Float)
    at_s: Mapped[float] = mapped_column(sa.Float)


class AuthFailureTotalRow(Base):
    """Failed authentications of one kind ever counted (revision 0006)."""

    __tablename__ = "auth_failure_totals"

    kind: Mapped[str] = mapped_column(sa.String(32), primary_key=True)
    total: Mapped[int] = mapped_column(sa.BigInteger)
