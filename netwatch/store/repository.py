"""The store's operations, one module per aggregate, joined in one Store.

states (subject states, history, availability), tickets (with the outbox rows they write),
outbox, tokens, maintenance, auth (admin sessions, ISP links), users (people's accounts),
agents (commune agents' credentials). Every public method is one transaction and returns frozen
dataclasses from netwatch.store.types (or its module's own); ORM objects never leave the store.
"""

from __future__ import annotations

from netwatch.store.agents import AgentsRepository
from netwatch.store.auth import AuthRepository
from netwatch.store.maintenance import MaintenanceRepository
from netwatch.store.states import StatesRepository
from netwatch.store.tickets import TicketsRepository
from netwatch.store.tokens import TokensRepository
from netwatch.store.users import UsersRepository


class Store(
    StatesRepository,
    TicketsRepository,
    TokensRepository,
    MaintenanceRepository,
    AuthRepository,
    UsersRepository,
    AgentsRepository,
):
    """Typed access to the NetWatch database (SQLite or PostgreSQL) through one AsyncEngine."""
