"""Ticket steps: the state machine's ticket as JSON, and event sequence numbers per ticket.

``tickets.book`` (JSON, NOT NULL, default ``{}``) holds the alerts state machine's whole ticket,
so it can be restored after a restart; existing tickets get ``{}``.

``ticket_events.seq`` (integer, NULL allowed) with a unique index on (ticket_id, seq) keys the
machine's events, so replaying a step inserts nothing. Existing rows, and rows the older
per-change methods (create_ticket, set_ticket_state, append_event, escalate) keep writing, have
NULL: NULLs never collide in a unique index on either backend, and numbering them would take
numbers the machine hands out from its own log, silently dropping its next events.

No table is rebuilt on SQLite (ADD COLUMN, CREATE INDEX, and DROP COLUMN since SQLite 3.35):
a rebuilt ``tickets`` would be dropped with foreign keys on, and the drop would cascade into
``ticket_events`` and ``outbox``.

Revision ID: 0002
Revises: 0001
Create Date: 2026-11-29
"""

from __future__ import annotations

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op
from sqlalchemy.dialects import postgresql

revision: str = "0002"
down_revision: str | None = "0001"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

# Frozen copy of the model type: a migration must not change when the models do.
JSON = sa.JSON().with_variant(postgresql.JSONB(astext_type=sa.Text()), "postgresql")


def upgrade() -> None:
    """Add tickets.book and ticket_events.seq with its unique index."""
    op.add_column("tickets", sa.Column("book", JSON, server_default="{}", nullable=False))
    op.add_column("ticket_events", sa.Column("seq", sa.Integer(), nullable=True))
    op.create_index(
        "uq_ticket_events_ticket_id_seq", "ticket_events", ["ticket_id", "seq"], unique=True
    )


def downgrade() -> None:
    """Drop them again (the index first: SQLite refuses to drop an indexed column)."""
    op.drop_index("uq_ticket_events_ticket_id_seq", table_name="ticket_events")
    op.drop_column("ticket_events", "seq")
    op.drop_column("tickets", "book")
