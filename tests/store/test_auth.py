"""Admin sessions and ISP links in the store (revisions 0004, 0005), on SQLite and PostgreSQL."""

from __future__ import annotations

import asyncio
from datetime import UTC, datetime, timedelta

import sqlalchemy as sa

from netwatch.store import IssuedLink, RevokeOutcome, Store
from netwatch.store.auth import session_hash
from netwatch.store.models import AdminSessionRow

NOW = datetime(2026, 12, 6, 1, 0, tzinfo=UTC)
TTL = timedelta(hours=8)


async def test_a_session_is_kept_by_hash_and_ends_on_logout(store: Store) -> None:
    session_id, opened = await store.open_session("0123456789abcdef", NOW, TTL)
    async with store.engine.connect() as conn:
        rows = (await conn.execute(sa.select(AdminSessionRow.__table__))).all()
    assert [r.id_sha256 for r in rows] == [session_hash(session_id)]
    assert all(session_id not in str(v) for v in rows[0])  # never the id itself
    found = await store.get_session(session_id, NOW + timedelta(minutes=1))
    assert found == opened
    assert found is not None
    assert found.expires_at == NOW + TTL
    assert len(found.csrf) == 32
    assert await store.get_session(session_id, NOW + TTL) is None  # expired
    assert await store.get_session("not-a-session", NOW) is None
    assert await store.end_session(session_id) is True
    assert await store.get_session(session_id, NOW) is None
    assert await store.end_session(session_id) is False


async def test_opening_a_session_prunes_the_expired_ones(store: Store) -> None:
    old, _ = await store.open_session("0123456789abcdef", NOW - 2 * TTL, TTL)
    await store.open_session("0123456789abcdef", NOW, TTL)
    async with store.engine.connect() as conn:
        hashes = (await conn.execute(sa.select(AdminSessionRow.id_sha256))).scalars().all()
    assert session_hash(old) not in hashes
    assert len(hashes) == 1


async def test_links_are_recorded_once_and_revoked_alone(store: Store) -> None:
    expires = NOW + timedelta(days=7)
    first = await store.record_link("a" * 20, "NW-1", expires, NOW)
    again = await store.record_link("a" * 20, "NW-1", expires, NOW + timedelta(hours=1))
    assert again == first
    assert first.first_used_at == NOW
    assert first.revoked_at is None
    await store.record_link("b" * 20, "NW-1", expires, NOW + timedelta(minutes=1))
    await store.record_link("c" * 20, "NW-2", expires, NOW)
    assert [link.id for link in await store.ticket_links("NW-1")] == ["a" * 20, "b" * 20]
    assert await store.revoke_link("a" * 20, "token:ops", NOW) is RevokeOutcome.DONE
    assert await store.revoke_link("a" * 20, "token:ops", NOW) is RevokeOutcome.ALREADY
    assert await store.revoke_link("z" * 20, "token:ops", NOW) is RevokeOutcome.NOT_FOUND
    revoked = await store.record_link("a" * 20, "NW-1", expires, NOW)
    assert revoked.revoked_at == NOW
    assert revoked.revoked_by == "token:ops"
    other = await store.record_link("b" * 20, "NW-1", expires, NOW)
    assert other.revoked_at is None


async def test_links_issued_in_notices_are_listed_and_revocable_before_any_use(
    store: Store,
) -> None:
    expires = NOW + timedelta(days=7)
    opened = IssuedLink("d" * 20, "NW-3", expires, NOW)
    reminder = IssuedLink("e" * 20, "NW-3", expires + timedelta(hours=1), NOW + timedelta(hours=1))
    # A notice's rows (one per channel and recipient) carry the same link: recorded once.
    await store.apply_ticket_changes([], [], [], NOW, [opened, opened])
    await store.apply_ticket_changes([], [], [], NOW + timedelta(hours=1), [reminder])
    await store.apply_ticket_changes([], [], [], NOW + timedelta(hours=2), [opened])  # replay
    listed = await store.ticket_links("NW-3")
    assert [(link.id, link.issued_at, link.first_used_at) for link in listed] == [
        ("d" * 20, NOW, None),
        ("e" * 20, NOW + timedelta(hours=1), None),
    ]
    assert await store.ticket_link("e" * 20) == listed[1]
    assert await store.ticket_link("f" * 20) is None
    # Revoked before anyone opened it; its first use is still stamped (and refused upstream).
    assert await store.revoke_link("e" * 20, "token:ops", NOW) is RevokeOutcome.DONE
    used = await store.record_link("d" * 20, "NW-3", expires, NOW + timedelta(minutes=5))
    assert (used.issued_at, used.first_used_at) == (NOW, NOW + timedelta(minutes=5))
    later = await store.record_link("d" * 20, "NW-3", expires, NOW + timedelta(hours=3))
    assert later.first_used_at == NOW + timedelta(minutes=5)  # the first use stays
    revoked = await store.record_link("e" * 20, "NW-3", expires, NOW + timedelta(hours=2))
    assert revoked.revoked_at == NOW
    assert revoked.issued_at == NOW + timedelta(hours=1)


async def test_internal_notes_are_kept_per_ticket_in_order(store: Store) -> None:
    await store.add_internal_note("NW-1", "isp", "Nguyễn Văn A", "gọi lại sau", NOW)
    await store.add_internal_note("NW-2", "isp", "B", "khác", NOW)
    await store.add_internal_note("NW-1", "provincial_it", "ops", "đã gọi", NOW + TTL)
    notes = await store.internal_notes("NW-1")
    assert [(n.actor_name, n.text, n.at) for n in notes] == [
        ("Nguyễn Văn A", "gọi lại sau", NOW),
        ("ops", "đã gọi", NOW + TTL),
    ]
    assert await store.internal_notes("NW-3") == []


async def test_auth_buckets_refill_cap_spend_and_prune_in_one_statement(store: Store) -> None:
    keys = ["addr:10.91.0.7", "user:0123456789abcdef"]
    assert await store.auth_buckets(keys) == {}
    # Five failures at once (as from several web workers): each one counted.
    await asyncio.gather(
        *(store.spend_auth_buckets(keys, "bearer", 1000.0, 10.0, 1.0) for _ in range(5))
    )
    assert await store.auth_buckets(keys) == dict.fromkeys(keys, (5.0, 1000.0))
    # Two seconds later: refilled by two, then spent one.
    await store.spend_auth_buckets(keys[:1], "login", 1002.0, 10.0, 1.0)
    assert (await store.auth_buckets(keys))[keys[0]] == (6.0, 1002.0)
    # Much later: capped at the burst before the spend (not 10 + 998).
    await store.spend_auth_buckets(keys[:1], "login", 2000.0, 10.0, 1.0)
    # ...and the token bucket that has been full again for a while is gone.
    assert await store.auth_buckets(keys) == {keys[0]: (9.0, 2000.0)}
    assert await store.auth_failure_totals() == {"bearer": 5, "login": 2}
