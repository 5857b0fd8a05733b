"""API tokens: only a hash is stored; the token is shown once."""

from __future__ import annotations

import hashlib
import hmac
import secrets
from collections.abc import Sequence
from datetime import datetime

import sqlalchemy as sa

from netwatch.store.base import StoreBase, _value
from netwatch.store.models import ApiTokenRow
from netwatch.store.types import ApiToken, IssuedToken, RevokeOutcome, TokenCheck, TokenReason

TOKEN_PREFIX = "nw_"  # noqa: S105 - a marker that makes leaked tokens greppable
TOKEN_ID_HEX = 16


class TokensRepository(StoreBase):
    """API tokens: create, verify, revoke, list."""

    async def create_token(
        self,
        name: str,
        scopes: Sequence[str],
        now: datetime,
        *,
        provinces: Sequence[int] | None = None,
        isp: str | None = None,
    ) -> IssuedToken:
        """Make a token; the plain token is in the result only, the store keeps its SHA-256.
        `provinces` or `isp` restrict what it sees and acts on (None: everything)."""
        token_id = secrets.token_hex(TOKEN_ID_HEX // 2)
        token = f"{TOKEN_PREFIX}{token_id}_{secrets.token_urlsafe(32)}"
        row = ApiTokenRow(
            id=token_id,
            name=name,
            token_sha256=_token_hash(token),
            scopes=sorted(set(scopes)),
            created_at=now,
            revoked_at=None,
            provinces=sorted(set(provinces)) if provinces else None,
            isp=isp,
        )
        async with self._write() as session:
            session.add(row)
        return IssuedToken(token=token, info=_to_token(row))

    async def verify_token(self, token: str, scope: str | None = None) -> TokenCheck:
        """Check a presented token (hashes compared in constant time) and, if given, a scope."""
        sep = len(TOKEN_PREFIX) + TOKEN_ID_HEX
        if not (token.startswith(TOKEN_PREFIX) and len(token) > sep + 1 and token[sep] == "_"):
            return TokenCheck(TokenReason.MALFORMED, None)
        presented = _token_hash(token)
        async with self._read() as session:
            row = await session.get(ApiTokenRow, token[len(TOKEN_PREFIX) : sep])
        if row is None:
            return TokenCheck(TokenReason.UNKNOWN, None)
        info = _to_token(row)
        if not hmac.compare_digest(presented, row.token_sha256):
            return TokenCheck(TokenReason.MISMATCH, None)
        if row.revoked_at is not None:
            return TokenCheck(TokenReason.REVOKED, info)
        if scope is not None and scope not in row.scopes:
            return TokenCheck(TokenReason.MISSING_SCOPE, info)
        return TokenCheck(TokenReason.OK, info)

    async def revoke_token(self, token_id: str, at: datetime) -> RevokeOutcome:
        """Revoke a token by its id; it stays listed, refused from now on."""
        return await self._stamp_once(ApiTokenRow, token_id, "revoked_at", at)

    async def list_tokens(self) -> list[ApiToken]:
        """All tokens (public part only), oldest first."""
        async with self._read() as session:
            rows = await session.scalars(
                sa.select(ApiTokenRow).order_by(ApiTokenRow.created_at, ApiTokenRow.id)
            )
            return [_to_token(r) for r in rows]


def _token_hash(token: str) -> str:
    return hashlib.sha256(token.encode()).hexdigest()


def _to_token(row: ApiTokenRow) -> ApiToken:
    provinces = tuple(row.provinces) if row.provinces else None
    return _value(ApiToken, row, scopes=tuple(row.scopes), provinces=provinces)
