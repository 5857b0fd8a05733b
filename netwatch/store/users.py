"""People's accounts (revision 0007): a name, an argon2id hash of the password, a role.

The password is hashed with argon2id (argon2-cffi's defaults, RFC 9106's second recommended
parameter set: 64 MiB, 3 passes) off the event loop: a hash takes tens of milliseconds of CPU.
An unknown or disabled name still costs one verification, so the answer's time does not say
which names exist.
"""

from __future__ import annotations

import asyncio
import enum
import functools
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime

import sqlalchemy as sa
from argon2 import PasswordHasher
from argon2.exceptions import InvalidHashError, VerificationError

from netwatch.store.base import StoreBase, _value
from netwatch.store.models import UserRow
from netwatch.store.types import RevokeOutcome, User

ROLES = ("national", "province", "isp")
MIN_PASSWORD_CHARS = 12
MAX_PASSWORD_CHARS = 1024  # argon2 takes any length; a megabyte "password" is a CPU attack
_HASHER = PasswordHasher()


@functools.cache
def _dummy_hash() -> str:
    """Verified against when the name is unknown, so that a miss costs what a hit costs (made
    on the first login, not at import: every process imports the store)."""
    return _HASHER.hash("netwatch-no-such-user-password")


class LoginReason(enum.Enum):
    """Why a password login was accepted or refused."""

    OK = "ok"
    UNKNOWN = "unknown"  # no such user
    MISMATCH = "mismatch"  # wrong password
    DISABLED = "disabled"


@dataclass(frozen=True, slots=True)
class LoginCheck:
    """The outcome of a password login."""

    reason: LoginReason
    user: User | None

    @property
    def ok(self) -> bool:
        """Whether the person may log in."""
        return self.reason is LoginReason.OK


def password_problem(password: str) -> str | None:
    """Why a new password is refused, or None."""
    if len(password) < MIN_PASSWORD_CHARS:
        return f"the password must have at least {MIN_PASSWORD_CHARS} characters"
    if len(password) > MAX_PASSWORD_CHARS:
        return f"the password must have at most {MAX_PASSWORD_CHARS} characters"
    return None


def _verify(stored_hash: str, password: str) -> bool:
    try:
        return _HASHER.verify(stored_hash, password)
    except (VerificationError, InvalidHashError):
        return False


class UsersRepository(StoreBase):
    """People's accounts: create, set a password, verify, disable, list."""

    async def create_user(
        self,
        name: str,
        role: str,
        password: str,
        now: datetime,
        *,
        provinces: Sequence[int] | None = None,
        isp: str | None = None,
    ) -> User:
        """A new account (the caller checked the role's restriction and the password)."""
        if role not in ROLES:
            raise ValueError(f"unknown role {role!r}: one of {', '.join(ROLES)}")
        hashed = await asyncio.to_thread(_HASHER.hash, password)
        row = UserRow(
            name=name,
            password_hash=hashed,
            role=role,
            provinces=sorted(set(provinces)) if provinces else None,
            isp=isp,
            created_at=now,
            password_set_at=now,
            disabled_at=None,
        )
        async with self._write() as session:
            session.add(row)
        return _to_user(row)

    async def set_password(self, name: str, password: str, now: datetime) -> bool:
        """Replace a user's password; whether the user exists."""
        hashed = await asyncio.to_thread(_HASHER.hash, password)
        async with self._write() as session:
            row = await session.get(UserRow, name, with_for_update=True)
            if row is None:
                return False
            row.password_hash, row.password_set_at = hashed, now
            return True

    async def verify_password(self, name: str, password: str) -> LoginCheck:
        """Check a login: the hash compared by argon2 (constant time), the account enabled."""
        async with self._read() as session:
            row = await session.get(UserRow, name[:64])
            user = _to_user(row) if row is not None else None
            known = row.password_hash if row is not None else None
        stored = known if known is not None else await asyncio.to_thread(_dummy_hash)
        matches = await asyncio.to_thread(_verify, stored, password[:MAX_PASSWORD_CHARS])
        if user is None:
            return LoginCheck(LoginReason.UNKNOWN, None)
        if not matches:
            return LoginCheck(LoginReason.MISMATCH, None)
        if user.disabled_at is not None:
            return LoginCheck(LoginReason.DISABLED, user)
        return LoginCheck(LoginReason.OK, user)

    async def get_user(self, name: str) -> User | None:
        """One account, or None."""
        async with self._read() as session:
            row = await session.get(UserRow, name[:64])
            return _to_user(row) if row is not None else None

    async def disable_user(self, name: str, at: datetime) -> RevokeOutcome:
        """Refuse the account's logins and sessions from now on."""
        return await self._stamp_once(UserRow, name, "disabled_at", at)

    async def list_users(self) -> list[User]:
        """Every account, by name."""
        async with self._read() as session:
            rows = await session.scalars(sa.select(UserRow).order_by(UserRow.name))
            return [_to_user(r) for r in rows]


def _to_user(row: UserRow) -> User:
    provinces = tuple(row.provinces) if row.provinces else None
    return _value(User, row, provinces=provinces)
