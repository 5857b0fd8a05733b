"""API tokens: only the hash is stored; verify and revoke."""

from __future__ import annotations

import hashlib
from datetime import UTC, datetime

import sqlalchemy as sa

from netwatch.store import RevokeOutcome, Store, TokenReason
from netwatch.store.models import ApiTokenRow

NOW = datetime(2026, 6, 3, tzinfo=UTC)


async def test_only_the_hash_is_stored(store: Store) -> None:
    issued = await store.create_token("so-khcn-ops", ["tickets:write", "maintenance:write"], NOW)
    async with store.engine.connect() as conn:
        rows = (await conn.execute(sa.select(ApiTokenRow.__table__))).all()
    assert len(rows) == 1
    stored = [str(value) for value in rows[0]]
    assert all(issued.token not in value for value in stored)
    assert hashlib.sha256(issued.token.encode()).hexdigest() in stored
    assert issued.info.scopes == ("maintenance:write", "tickets:write")


async def test_verify_and_revoke(store: Store) -> None:
    issued = await store.create_token("ops", ["tickets:write"], NOW)
    token = issued.token
    ok = await store.verify_token(token, "tickets:write")
    assert ok.ok
    assert ok.info == issued.info
    assert (await store.verify_token(token, "admin")).reason is TokenReason.MISSING_SCOPE
    altered = token[:-1] + ("y" if token.endswith("x") else "x")  # never the same token
    assert (await store.verify_token(altered)).reason is TokenReason.MISMATCH
    assert (await store.verify_token("Bearer abc")).reason is TokenReason.MALFORMED
    assert (await store.verify_token("nw_0123456789abcdef_secret")).reason is TokenReason.UNKNOWN

    assert await store.revoke_token(issued.info.id, NOW) is RevokeOutcome.DONE
    assert await store.revoke_token(issued.info.id, NOW) is RevokeOutcome.ALREADY
    assert await store.revoke_token("nope", NOW) is RevokeOutcome.NOT_FOUND
    revoked = await store.verify_token(token, "tickets:write")
    assert revoked.reason is TokenReason.REVOKED
    assert not revoked.ok
    (listed,) = await store.list_tokens()
    assert listed.revoked_at == NOW
