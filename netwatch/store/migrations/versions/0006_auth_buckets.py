"""Failed-authentication buckets and totals shared by every process of a deployment.

``auth_buckets`` (a key: ``addr:<client address>`` or ``user:<token id>`` -> the tokens left and
when they were last counted, unix seconds) and ``auth_failure_totals`` (kind -> failures ever),
so that the limit on failed logins and bearer tokens holds across web workers (issue 15: with W
workers an address got W times the tries) and the core's /metrics counts every worker's
failures. New tables only: nothing existing is touched.

Revision ID: 0006
Revises: 0005
Create Date: 2026-12-06
"""

from __future__ import annotations

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0006"
down_revision: str | None = "0005"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    """Create auth_buckets and auth_failure_totals."""
    op.create_table(
        "auth_buckets",
        sa.Column("key", sa.String(length=120), nullable=False),
        sa.Column("tokens", sa.Float(), nullable=False),
        sa.Column("at_s", sa.Float(), nullable=False),
        sa.PrimaryKeyConstraint("key", name=op.f("pk_auth_buckets")),
    )
    op.create_table(
        "auth_failure_totals",
        sa.Column("kind", sa.String(length=32), nullable=False),
        sa.Column("total", sa.BigInteger(), nullable=False),
        sa.PrimaryKeyConstraint("kind", name=op.f("pk_auth_failure_totals")),
    )


def downgrade() -> None:
    """Drop auth_failure_totals and auth_buckets."""
    op.drop_table("auth_failure_totals")
    op.drop_table("auth_buckets")
