"""Outbox: dedup, due claims with leases, retries, and concurrent claimers."""

from __future__ import annotations

import asyncio
from datetime import UTC, datetime, timedelta

from netwatch.store import (
    DeliveryOutcome,
    EnqueueOutcome,
    NewOutboxItem,
    OutboxItem,
    Store,
    create_engine,
)

NOW = datetime(2026, 6, 3, 3, 0, tzinfo=UTC)


def _item(key: str, not_before: datetime | None = None) -> NewOutboxItem:
    return NewOutboxItem(
        channel="telegram",
        recipient="-100123",
        payload={"text": f"Sự cố {key}", "n": [1, 2.5, None, True]},
        dedup_key=key,
        not_before=not_before,
    )


async def test_same_dedup_key_is_enqueued_once(store: Store) -> None:
    assert (await store.enqueue_many([_item("t1:opened:tg")], NOW))[0] is EnqueueOutcome.ENQUEUED
    assert (await store.enqueue_many([_item("t1:opened:tg")], NOW))[0] is EnqueueOutcome.DUPLICATE
    outcomes = await store.enqueue_many([_item("t1:opened:tg"), _item("t1:resolved:tg")], NOW)
    assert outcomes == [EnqueueOutcome.DUPLICATE, EnqueueOutcome.ENQUEUED]
    items = await store.outbox_items()
    assert [i.dedup_key for i in items] == ["t1:opened:tg", "t1:resolved:tg"]
    assert items[0].payload == {"text": "Sự cố t1:opened:tg", "n": [1, 2.5, None, True]}
    # Even once sent, the same notification is never enqueued again.
    await store.mark_sent(items[0].id, NOW)
    assert (await store.enqueue_many([_item("t1:opened:tg")], NOW))[0] is EnqueueOutcome.DUPLICATE


async def test_claim_lease_retry_and_delivery(store: Store) -> None:
    await store.enqueue_many(
        [_item("a"), _item("b"), _item("later", not_before=NOW + timedelta(minutes=10))], NOW
    )
    claimed = await store.claim_due(NOW, limit=10, lease_s=60)
    assert [c.dedup_key for c in claimed] == ["a", "b"]
    assert all(
        c.attempts == 1 and c.next_attempt_at == NOW + timedelta(seconds=60) for c in claimed
    )
    # Leased: nobody else gets them while the lease runs.
    assert await store.claim_due(NOW + timedelta(seconds=30), limit=10) == []

    a, b = claimed
    assert await store.mark_sent(a.id, NOW) is DeliveryOutcome.RECORDED
    assert await store.mark_sent(a.id, NOW) is DeliveryOutcome.ALREADY_SENT
    retry_at = NOW + timedelta(seconds=20)
    assert await store.mark_failed(b.id, "SMTP 421 try later", retry_at) is DeliveryOutcome.RECORDED
    assert await store.mark_failed(a.id, "late", retry_at) is DeliveryOutcome.ALREADY_SENT
    assert await store.mark_sent(999_999, NOW) is DeliveryOutcome.NOT_FOUND

    backlog = await store.outbox_backlog(NOW + timedelta(seconds=20))
    assert (backlog.pending, backlog.due, backlog.given_up) == (2, 1, 0)
    assert backlog.oldest_pending_at == NOW

    again = await store.claim_due(retry_at, limit=10)
    assert [(c.dedup_key, c.attempts, c.last_error) for c in again] == [
        ("b", 2, "SMTP 421 try later")
    ]
    # Giving up: never due again.
    assert await store.mark_failed(b.id, "550 no such user", None) is DeliveryOutcome.RECORDED
    later = await store.claim_due(NOW + timedelta(days=1), limit=10)
    assert [c.dedup_key for c in later] == ["later"]
    stored = await store.get_outbox_item(b.id)
    assert stored is not None
    assert stored.next_attempt_at is None
    assert stored.sent_at is None


async def test_a_dead_claimer_s_items_come_back_after_the_lease(store: Store) -> None:
    await store.enqueue_many([_item("a")], NOW)
    (first,) = await store.claim_due(NOW, limit=1, lease_s=300)
    # The claimer died without marking anything.
    assert await store.claim_due(NOW + timedelta(seconds=299), limit=1) == []
    (second,) = await store.claim_due(NOW + timedelta(seconds=300), limit=1)
    assert second.id == first.id
    assert second.attempts == 2


async def test_concurrent_claimers_never_get_the_same_item(store: Store, db_url: str) -> None:
    count = 120
    await store.enqueue_many([_item(f"k{i:03d}") for i in range(count)], NOW)
    stores = [store, *(Store(create_engine(db_url)) for _ in range(3))]

    async def drain(s: Store) -> list[OutboxItem]:
        got: list[OutboxItem] = []
        while batch := await s.claim_due(NOW, limit=5):
            got.extend(batch)
        return got

    try:
        per_claimer = await asyncio.gather(*(drain(s) for s in stores))
    finally:
        for s in stores[1:]:
            await s.close()
    ids = [item.id for claimed in per_claimer for item in claimed]
    assert len(ids) == count
    assert len(set(ids)) == count
