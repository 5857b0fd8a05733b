"""Commune agents' credentials (issue 11): one per agent, revocable from the centre.

``agent_credentials`` (agent) -> commune, bcrypt hash of the agent's secret (the form
nats-server checks a leafnode's password against; the secret itself is printed once and never
stored), created_at, revoked_at (NULL while the agent may connect). A new table only: nothing
existing is touched.

Revision ID: 0009
Revises: 0008
Create Date: 2026-12-06
"""

from __future__ import annotations

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0009"
down_revision: str | None = "0008"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    """Create agent_credentials."""
    op.create_table(
        "agent_credentials",
        sa.Column("agent", sa.String(length=64), nullable=False),
        sa.Column("commune", sa.String(length=16), nullable=False),
        sa.Column("secret_bcrypt", sa.String(length=100), nullable=False),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("revoked_at", sa.DateTime(timezone=True), nullable=True),
        sa.PrimaryKeyConstraint("agent", name=op.f("pk_agent_credentials")),
    )


def downgrade() -> None:
    """Drop agent_credentials."""
    op.drop_table("agent_credentials")
