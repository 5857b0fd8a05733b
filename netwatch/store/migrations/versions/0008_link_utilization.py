"""Link utilization: per link and hour, the packed 5-minute buckets of the highest SNMP
utilization (in or out rate over the contracted bandwidth), for the monthly report's p95
utilization (issue 13).

``link_utilization`` (link, hour_start) -> buckets (binary, netwatch.utilization's packing),
with an index on hour_start for retention pruning; the shape of link_rollups (0003). A new
table only: nothing existing is touched.

Revision ID: 0008
Revises: 0007
Create Date: 2026-12-06
"""

from __future__ import annotations

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0008"
down_revision: str | None = "0007"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    """Create link_utilization and its hour_start index."""
    op.create_table(
        "link_utilization",
        sa.Column("link", sa.String(length=200), nullable=False),
        sa.Column("hour_start", sa.DateTime(timezone=True), nullable=False),
        sa.Column("buckets", sa.LargeBinary(), nullable=False),
        sa.Column("updated_at", sa.DateTime(timezone=True), nullable=False),
        sa.PrimaryKeyConstraint("link", "hour_start", name=op.f("pk_link_utilization")),
    )
    op.create_index("ix_link_utilization_hour_start", "link_utilization", ["hour_start"])


def downgrade() -> None:
    """Drop link_utilization."""
    op.drop_index("ix_link_utilization_hour_start", table_name="link_utilization")
    op.drop_table("link_utilization")
