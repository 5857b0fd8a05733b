"""Link rollups: per link and hour, the packed 5-minute ICMP buckets of the 24-hour chart.

``link_rollups`` (link, hour_start) -> buckets (binary, netwatch.history's packing), with an
index on hour_start for retention pruning. A new table only: nothing existing is touched.

Revision ID: 0003
Revises: 0002
Create Date: 2026-12-06
"""

from __future__ import annotations

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0003"
down_revision: str | None = "0002"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    """Create link_rollups and its hour_start index."""
    op.create_table(
        "link_rollups",
        sa.Column("link", sa.String(length=200), nullable=False),
        sa.Column("hour_start", sa.DateTime(timezone=True), nullable=False),
        sa.Column("buckets", sa.LargeBinary(), nullable=False),
        sa.Column("updated_at", sa.DateTime(timezone=True), nullable=False),
        sa.PrimaryKeyConstraint("link", "hour_start", name=op.f("pk_link_rollups")),
    )
    op.create_index("ix_link_rollups_hour_start", "link_rollups", ["hour_start"])


def downgrade() -> None:
    """Drop link_rollups."""
    op.drop_index("ix_link_rollups_hour_start", table_name="link_rollups")
    op.drop_table("link_rollups")
