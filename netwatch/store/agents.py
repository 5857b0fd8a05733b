"""Commune agents' credentials (revision 0009): one per agent, revocable from the centre.

An agent's secret is 256 random bits, printed once by ``netwatch agent-key add`` and never
stored: the table keeps its bcrypt hash, which is what nats-server checks a leafnode's password
against (netwatch.inside.hub renders the hub's users from these rows). bcrypt's cost is low
(``BCRYPT_ROUNDS``) on purpose: a cost factor slows the guessing of *people's* passwords; a
random 256-bit secret cannot be guessed at any cost, while every agent's (re)connection costs
the hub one verification (3,321 agents reconnecting after a hub restart: ~4 ms each at cost 6,
~0.3 s each at cost 12).
"""

from __future__ import annotations

import secrets
from dataclasses import dataclass
from datetime import datetime
from typing import Final

import bcrypt
import sqlalchemy as sa

from netwatch.store.base import StoreBase, _value
from netwatch.store.models import AgentCredentialRow
from netwatch.store.types import RevokeOutcome

__all__ = [
    "BCRYPT_ROUNDS",
    "AgentCredential",
    "AgentKeyExistsError",
    "AgentsRepository",
    "IssuedAgentKey",
    "new_agent_secret",
]

BCRYPT_ROUNDS: Final = 6
SECRET_PREFIX: Final = "nwa_"  # noqa: S105 (a marker that makes a leaked secret greppable)


class AgentKeyExistsError(ValueError):
    """The agent has an active credential already (revoke it first)."""


@dataclass(frozen=True, slots=True)
class AgentCredential:
    """A stored agent credential (the secret itself is never stored)."""

    agent: str
    commune: str
    secret_bcrypt: str
    created_at: datetime
    revoked_at: datetime | None

    @property
    def active(self) -> bool:
        """Whether the agent may connect with it."""
        return self.revoked_at is None


@dataclass(frozen=True, slots=True)
class IssuedAgentKey:
    """A credential just made: the secret is here only."""

    secret: str
    credential: AgentCredential


def new_agent_secret() -> str:
    """A fresh agent secret (URL-safe: it goes into the box's leafnode URL)."""
    return SECRET_PREFIX + secrets.token_urlsafe(32)


def hash_secret(secret: str, rounds: int = BCRYPT_ROUNDS) -> str:
    """The secret's bcrypt hash ($2b$), as nats-server wants it."""
    return bcrypt.hashpw(secret.encode(), bcrypt.gensalt(rounds=rounds)).decode("ascii")


def secret_matches(secret: str, hashed: str) -> bool:
    """Whether `secret` is the one hashed (for tests and tools; nats-server checks its own)."""
    return bcrypt.checkpw(secret.encode(), hashed.encode("ascii"))


class AgentsRepository(StoreBase):
    """Agent credentials: add (once per agent until revoked), revoke, list."""

    async def add_agent_key(self, agent: str, commune: str, now: datetime) -> IssuedAgentKey:
        """Make the agent's credential; a revoked one of the same agent is replaced. Raises
        AgentKeyExistsError while an active one exists."""
        secret = new_agent_secret()
        hashed = hash_secret(secret)
        async with self._write() as session:
            row = await session.get(AgentCredentialRow, agent, with_for_update=True)
            if row is not None and row.revoked_at is None:
                raise AgentKeyExistsError(f"agent {agent} has an active key: revoke it first")
            if row is None:
                row = AgentCredentialRow(agent=agent)
                session.add(row)
            row.commune = commune
            row.secret_bcrypt = hashed
            row.created_at = now
            row.revoked_at = None
        return IssuedAgentKey(secret, _value(AgentCredential, row))

    async def revoke_agent_key(self, agent: str, at: datetime) -> RevokeOutcome:
        """Refuse the agent from now on (its row stays, listed as revoked)."""
        return await self._stamp_once(AgentCredentialRow, agent, "revoked_at", at)

    async def list_agent_keys(self, *, active_only: bool = False) -> list[AgentCredential]:
        """Every credential (or the active ones), by agent id."""
        query = sa.select(AgentCredentialRow).order_by(AgentCredentialRow.agent)
        if active_only:
            query = query.where(AgentCredentialRow.revoked_at.is_(None))
        async with self._read() as session:
            rows = await session.scalars(query)
            return [_value(AgentCredential, r) for r in rows]
