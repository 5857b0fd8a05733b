"""Signed ISP links recorded when issued, not only when first used.

``ticket_links.issued_at`` (new, nullable: links recorded before this revision were recorded on
their first use only) and ``first_used_at`` made nullable (a link issued in a notice and never
opened). So provincial IT can list and revoke every link a notice carried, opened or not, and
the ISP pages can bound how long a link may act (``notifications.link_act_hours`` from
``issued_at``). Rows are kept as they are.

Revision ID: 0005
Revises: 0004
Create Date: 2026-12-06
"""

from __future__ import annotations

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0005"
down_revision: str | None = "0004"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    """Add ticket_links.issued_at; let first_used_at be empty."""
    with op.batch_alter_table("ticket_links") as batch:
        batch.add_column(sa.Column("issued_at", sa.DateTime(timezone=True), nullable=True))
        batch.alter_column("first_used_at", existing_type=sa.DateTime(timezone=True), nullable=True)


def downgrade() -> None:
    """Drop links never used (the old schema cannot hold them) and issued_at."""
    op.execute("DELETE FROM ticket_links WHERE first_used_at IS NULL")
    with op.batch_alter_table("ticket_links") as batch:
        batch.alter_column(
            "first_used_at", existing_type=sa.DateTime(timezone=True), nullable=False
        )
        batch.drop_column("issued_at")
