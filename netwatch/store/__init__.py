"""The NetWatch store: SQLite (embedded default) or PostgreSQL, through SQLAlchemy 2 async.

Usage: ``store = await open_store(url, data_dir)`` migrates to the newest schema and returns a
Store; ``async with leader_lock(store.engine) as lock`` decides who alerts. The schema is
described in netwatch.store.models.
"""

from __future__ import annotations

from pathlib import Path

from netwatch.store.engine import (
    DEFAULT_TIMEOUTS,
    MIGRATION_TIMEOUTS,
    DbTimeouts,
    StoreTimeoutError,
    create_engine,
    normalize_url,
    sqlite_url,
)
from netwatch.store.leader import LeaderCheck, LeaderLock, LeaderStatus, leader_lock
from netwatch.store.migrate import current_revision, head_revision, upgrade
from netwatch.store.models import EARLIEST_MOMENT, LATEST_MOMENT, MomentOutOfRangeError, utc_moment
from netwatch.store.repository import Store
from netwatch.store.types import (
    AdminSession,
    ApiToken,
    Availability,
    Backend,
    DeliveryOutcome,
    EnqueueOutcome,
    EventRecord,
    InternalNote,
    IssuedLink,
    IssuedToken,
    NewMaintenance,
    NewOutboxItem,
    OutboxBacklog,
    OutboxItem,
    RevokeOutcome,
    StateChange,
    StateInterval,
    StoredEvent,
    StoredTicket,
    StoredWindow,
    SubjectState,
    TicketLink,
    TicketRecord,
    TicketStatus,
    TicketStepOutcome,
    TicketStepResult,
    TokenCheck,
    TokenReason,
    TransitionOutcome,
    TransitionRecord,
    User,
)


async def open_store(
    url: str | None,
    data_dir: Path | None = None,
    migrate: bool = True,
    timeouts: DbTimeouts = DEFAULT_TIMEOUTS,
) -> Store:
    """Connect (SQLite under data_dir when url is None), migrate to head, return the Store whose
    PostgreSQL calls are bounded by `timeouts` (the migration only by the connection's)."""
    if migrate:
        migrating = create_engine(url, data_dir, MIGRATION_TIMEOUTS)
        try:
            await upgrade(migrating)
        finally:
            await migrating.dispose()
    return Store(create_engine(url, data_dir, timeouts))


__all__ = [
    "EARLIEST_MOMENT",
    "LATEST_MOMENT",
    "AdminSession",
    "ApiToken",
    "Availability",
    "Backend",
    "DbTimeouts",
    "DeliveryOutcome",
    "EnqueueOutcome",
    "EventRecord",
    "InternalNote",
    "IssuedLink",
    "IssuedToken",
    "LeaderCheck",
    "LeaderLock",
    "LeaderStatus",
    "MomentOutOfRangeError",
    "NewMaintenance",
    "NewOutboxItem",
    "OutboxBacklog",
    "OutboxItem",
    "RevokeOutcome",
    "StateChange",
    "StateInterval",
    "Store",
    "StoreTimeoutError",
    "StoredEvent",
    "StoredTicket",
    "StoredWindow",
    "SubjectState",
    "TicketLink",
    "TicketRecord",
    "TicketStatus",
    "TicketStepOutcome",
    "TicketStepResult",
    "TokenCheck",
    "TokenReason",
    "TransitionOutcome",
    "TransitionRecord",
    "User",
    "create_engine",
    "current_revision",
    "head_revision",
    "leader_lock",
    "normalize_url",
    "open_store",
    "sqlite_url",
    "upgrade",
    "utc_moment",
]
