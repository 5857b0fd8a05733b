"""Accounts and scopes: API tokens restricted to provinces or one ISP, people's accounts, and
sessions opened by a person rather than a token.

``api_tokens`` gains ``provinces`` (a JSON list of official province codes, NULL: every
province) and ``isp`` (an ISP id, NULL: every ISP): a token so restricted sees and acts on only
those communes' or that ISP's links and tickets (issue 13). Existing tokens keep NULL in both,
so they keep seeing everything they saw. ``users`` (a name -> argon2id hash, role, provinces,
ISP, disabled) are the people who log in to /admin with a password. ``admin_sessions`` gains
``user_name`` and its ``token_id`` may be NULL: a session is opened either with a token (as
before) or by a person.

Revision ID: 0007
Revises: 0006
Create Date: 2026-12-06
"""

from __future__ import annotations

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op
from sqlalchemy.dialects import postgresql

revision: str = "0007"
down_revision: str | None = "0006"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

_JSON = sa.JSON().with_variant(postgresql.JSONB(), "postgresql")


def upgrade() -> None:
    """Add the tokens' restriction, the users table and the sessions' user."""
    with op.batch_alter_table("api_tokens") as batch:
        batch.add_column(sa.Column("provinces", _JSON, nullable=True))
        batch.add_column(sa.Column("isp", sa.String(length=64), nullable=True))
    op.create_table(
        "users",
        sa.Column("name", sa.String(length=64), nullable=False),
        sa.Column("password_hash", sa.String(length=200), nullable=False),
        sa.Column("role", sa.String(length=16), nullable=False),
        sa.Column("provinces", _JSON, nullable=True),
        sa.Column("isp", sa.String(length=64), nullable=True),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("password_set_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column("disabled_at", sa.DateTime(timezone=True), nullable=True),
        sa.PrimaryKeyConstraint("name", name=op.f("pk_users")),
    )
    with op.batch_alter_table("admin_sessions") as batch:
        batch.alter_column("token_id", existing_type=sa.String(length=32), nullable=True)
        batch.add_column(sa.Column("user_name", sa.String(length=64), nullable=True))


def downgrade() -> None:
    """Drop the sessions of people, the users table and the tokens' restriction."""
    op.execute("DELETE FROM admin_sessions WHERE token_id IS NULL")
    with op.batch_alter_table("admin_sessions") as batch:
        batch.drop_column("user_name")
        batch.alter_column("token_id", existing_type=sa.String(length=32), nullable=False)
    op.drop_table("users")
    with op.batch_alter_table("api_tokens") as batch:
        batch.drop_column("isp")
        batch.drop_column("provinces")
