"""Signed webhook against a real aiohttp receiver that verifies with `verify_webhook`."""

from __future__ import annotations

import asyncio
import json
import random
import socket
from collections.abc import AsyncIterator
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta

import aiohttp
import pytest
from aiohttp import web

from netwatch.inventory.secrets import Secret
from netwatch.notify.channels import (
    DELIVERY_HEADER,
    SIGNATURE_HEADER,
    TIMESTAMP_HEADER,
    Delivered,
    Failed,
    FailureReason,
    WebhookChannel,
    WebhookConfig,
    WebhookVerdict,
    sign_webhook,
    verify_webhook,
    webhook_body,
    webhook_delivery_id,
)
from netwatch.notify.clock import SystemClock
from netwatch.notify.messages import ChannelKind, dedup_key, outbox_payload
from netwatch.notify.outbox import OutboxWorker, RetryPolicy

from .conftest import ManualClock, MemoryOutbox, Row, make_notice
from .http_peer import posting_to

SECRET = "chia-sẻ-bí-mật-7d1e"
PORT = 18630
SLOW_PORT = 18632


@dataclass
class Receiver:
    """A webhook receiver: answers from a script of statuses, verifies every request."""

    statuses: list[int]
    requests: list[tuple[WebhookVerdict, str, dict[str, object]]] = field(default_factory=list)
    accepted: list[str] = field(default_factory=list)
    raw_ids: list[bytes] = field(default_factory=list)  # the header's bytes, as they came

    async def handle(self, request: web.Request) -> web.Response:
        raw = await request.read()
        self.raw_ids += [v for k, v in request.raw_headers if k.lower() == b"x-netwatch-delivery"]
        verdict = verify_webhook(
            SECRET,
            raw,
            request.headers.get(SIGNATURE_HEADER),
            request.headers.get(TIMESTAMP_HEADER),
            datetime.now(UTC),
        )
        delivery = request.headers.get(DELIVERY_HEADER, "")
        self.requests.append((verdict, delivery, json.loads(raw)))
        if verdict is not WebhookVerdict.VALID:
            return web.Response(status=401, text=verdict.value)
        status = self.statuses.pop(0) if self.statuses else 200
        if status == 200 and delivery not in self.accepted:  # receivers de-duplicate
            self.accepted.append(delivery)
        return web.Response(status=status, text="ok" if status == 200 else "lỗi")


@pytest.fixture
async def receiver() -> AsyncIterator[Receiver]:
    rec = Receiver(statuses=[])
    async with posting_to("/hooks/netwatch", rec.handle, PORT):
        yield rec


def channel(
    session: aiohttp.ClientSession,
    port: int = PORT,
    secret: str = SECRET,
    timeout_s: float = 5.0,
    connect_timeout_s: float = 5.0,
) -> WebhookChannel:
    config = WebhookConfig(
        url=f"http://127.0.0.1:{port}/hooks/netwatch",
        secret=Secret(secret, "NETWATCH_WEBHOOK_SECRET"),
        timeout_s=timeout_s,
        connect_timeout_s=connect_timeout_s,
    )
    return WebhookChannel(config, session, SystemClock())


async def test_500_then_200_delivers_once_with_valid_signatures(
    receiver: Receiver, session: aiohttp.ClientSession, clock: ManualClock
) -> None:
    receiver.statuses = [500, 200]
    store = MemoryOutbox()
    worker = OutboxWorker(
        store,
        {"hook-vnpt": channel(session)},
        clock,
        policy=RetryPolicy(base_delay_s=30, max_delay_s=600),
        rng=random.Random(1),
    )
    notice = make_notice()
    key = dedup_key(notice, "hook-vnpt", "vnpt-noc")
    item_id = store.enqueue(
        "hook-vnpt", "vnpt-noc", outbox_payload(ChannelKind.WEBHOOK, notice), key, clock.now()
    )

    first = await worker.deliver_due()
    assert (first.claimed, first.retrying) == (1, 1)
    assert store.rows[item_id].errors == ["server_error: HTTP 500 lỗi"]
    assert (await worker.deliver_due()).claimed == 0  # not due yet
    clock.advance(30)
    second = await worker.deliver_due()
    assert (second.claimed, second.delivered) == (1, 1)
    clock.advance(3600)
    assert (await worker.deliver_due()).claimed == 0

    assert [verdict for verdict, _, _ in receiver.requests] == [WebhookVerdict.VALID] * 2
    delivery = webhook_delivery_id(key)
    assert [delivery for _, delivery, _ in receiver.requests] == [delivery, delivery]
    assert receiver.accepted == [delivery]
    body = receiver.requests[-1][2]
    assert body["delivery_id"] == delivery
    assert body["schema"] == "netwatch.ticket-notice/v1"
    assert body["commune"] == {"code": "24848", "name": "Xã Lạc Dương", "province": "Lâm Đồng"}
    assert store.rows[item_id].sent_at is not None


async def test_delivery_ids_are_ascii_stable_per_contact_and_distinct_between_contacts(
    receiver: Receiver, session: aiohttp.ClientSession, clock: ManualClock
) -> None:
    """Issue 15, finding 14: the id named the contact (Vietnamese) in an HTTP header. Two
    contacts of one receiver whose names fold to the same ASCII, each failing once: four
    requests, every id ASCII, each contact's id the same on its retry, the two different."""
    receiver.statuses = [500, 500]
    notice, names = make_notice(), ["Nguyễn Văn Đức", "Nguyễn Văn Dục"]
    keys = [dedup_key(notice, "hook", name) for name in names]
    store = MemoryOutbox()
    payload = outbox_payload(ChannelKind.WEBHOOK, notice)
    for name, key in zip(names, keys, strict=True):
        store.enqueue("hook", name, payload, key, clock.now())
    policy = RetryPolicy(base_delay_s=30)
    worker = OutboxWorker(store, {"hook": channel(session)}, clock, policy=policy)
    first = await worker.deliver_due()
    clock.advance(30)
    assert (first.retrying, (await worker.deliver_due()).delivered) == (2, 2)

    assert len(receiver.raw_ids) == 4
    assert all(raw.isascii() for raw in receiver.raw_ids), receiver.raw_ids
    ids = [delivery for _, delivery, _ in receiver.requests]
    assert all(body["delivery_id"] == delivery for _, delivery, body in receiver.requests)
    assert sorted(ids) == sorted(2 * [webhook_delivery_id(key) for key in keys])
    assert len(set(ids)) == 2
    assert len(receiver.accepted) == 2
    assert all(i.startswith(f"{notice.ticket_id}/1/hook/nguyen-van-") for i in ids), ids


async def test_wrong_secret_is_rejected_by_the_receiver_and_not_retried(
    receiver: Receiver, session: aiohttp.ClientSession
) -> None:
    payload = outbox_payload(ChannelKind.WEBHOOK, make_notice())
    outcome = await channel(session, secret="không-phải-bí-mật").send("x", payload, "d1")
    assert isinstance(outcome, Failed)
    assert outcome.reason is FailureReason.REJECTED
    assert not outcome.retryable
    assert receiver.requests[0][0] is WebhookVerdict.BAD_SIGNATURE
    assert "không-phải-bí-mật" not in outcome.detail


async def test_refused_connection_is_retryable(session: aiohttp.ClientSession) -> None:
    payload = outbox_payload(ChannelKind.WEBHOOK, make_notice())
    outcome = await channel(session, port=18631).send("x", payload, "d1")
    assert isinstance(outcome, Failed)
    assert outcome.reason is FailureReason.CONNECTION_REFUSED
    assert outcome.retryable


async def test_bad_payload_is_permanent(session: aiohttp.ClientSession) -> None:
    outcome = await channel(session).send("x", {"format": "email/v1"}, "d1")
    assert outcome == Failed(FailureReason.BAD_PAYLOAD, False, "not a webhook payload")


async def test_delivered_on_2xx(receiver: Receiver, session: aiohttp.ClientSession) -> None:
    payload = outbox_payload(ChannelKind.WEBHOOK, make_notice())
    assert await channel(session).send("x", payload, "d1") == Delivered("HTTP 200")


def test_verify_webhook_refuses_tampering_and_replays() -> None:
    now = datetime(2026, 11, 22, 1, 20, tzinfo=UTC)
    body = webhook_body(outbox_payload(ChannelKind.WEBHOOK, make_notice()), "d1")
    assert body is not None
    ts = str(int(now.timestamp()))
    sig = sign_webhook(SECRET, ts, body)
    assert verify_webhook(SECRET, body, sig, ts, now) is WebhookVerdict.VALID
    assert verify_webhook(SECRET.encode(), body, sig, ts, now) is WebhookVerdict.VALID
    tampered = body.replace(b'"down"', b'"ok"')
    assert tampered != body
    assert verify_webhook(SECRET, tampered, sig, ts, now) is WebhookVerdict.BAD_SIGNATURE
    # Moving the timestamp forward to replay later breaks the signature...
    later = now + timedelta(hours=1)
    later_ts = str(int(later.timestamp()))
    assert verify_webhook(SECRET, body, sig, later_ts, later) is WebhookVerdict.BAD_SIGNATURE
    # ...and replaying it unchanged later is stale.
    assert verify_webhook(SECRET, body, sig, ts, later) is WebhookVerdict.STALE
    assert verify_webhook(SECRET, body, None, ts, now) is WebhookVerdict.MISSING_HEADERS
    assert verify_webhook(SECRET, body, sig, "", now) is WebhookVerdict.MISSING_HEADERS
    assert verify_webhook(SECRET, body, "md5=abc", ts, now) is WebhookVerdict.MALFORMED
    assert verify_webhook(SECRET, body, sig, "12ab", now) is WebhookVerdict.MALFORMED
    assert verify_webhook(SECRET, body, "sha256=ẞ", ts, now) is WebhookVerdict.BAD_SIGNATURE


@dataclass
class SlowReceiver:
    """A receiver that takes each request (recorded on arrival) but answers only when told to:
    slower than any timeout, the way an overloaded one is."""

    answer_fast_from: int | None = None  # from this request on (0-based), answer at once
    ids: list[str] = field(default_factory=list)
    release: asyncio.Event = field(default_factory=asyncio.Event)

    async def handle(self, request: web.Request) -> web.Response:
        await request.read()
        self.ids.append(request.headers.get(DELIVERY_HEADER, ""))
        if self.answer_fast_from is None or len(self.ids) <= self.answer_fast_from:
            await self.release.wait()
        return web.Response(text="ok")


@pytest.fixture
async def slow_receiver() -> AsyncIterator[SlowReceiver]:
    rec = SlowReceiver()
    async with posting_to("/hooks/netwatch", rec.handle, SLOW_PORT):
        try:
            yield rec
        finally:
            rec.release.set()  # the handlers still waiting end, so the server can stop


async def _deliver_slowly(
    session: aiohttp.ClientSession, clock: ManualClock, recipient: str, passes: int
) -> tuple[str, Row]:
    """One notice for `recipient` through the slow receiver's channel, `passes` worker passes
    an hour apart (past any backoff); its delivery id and its outbox row."""
    store = MemoryOutbox()
    # A short whole-request timeout so the test does not wait 30 s per attempt.
    worker = OutboxWorker(store, {"hook": channel(session, SLOW_PORT, timeout_s=0.3)}, clock)
    notice = make_notice()
    key = dedup_key(notice, "hook", recipient)
    item = store.enqueue(
        "hook", recipient, outbox_payload(ChannelKind.WEBHOOK, notice), key, clock.now()
    )
    for _ in range(passes):
        await worker.deliver_due()
        clock.advance(3600)
    return webhook_delivery_id(key), store.rows[item]


async def test_a_receiver_that_never_answers_in_time_gets_the_same_delivery_three_times_only(
    slow_receiver: SlowReceiver,
    session: aiohttp.ClientSession,
    clock: ManualClock,
    caplog: pytest.LogCaptureFixture,
) -> None:
    """Issue 15, finding 13: a receiver slower than the timeout was sent the same delivery on
    every retry for ~4 days. Now each unanswered attempt (maybe delivered) is retried with the
    same id, three in a row at most, then the item is given up with a warning."""
    delivery, row = await _deliver_slowly(session, clock, "Nguyễn Văn Đức", passes=8)
    assert slow_receiver.ids == [delivery] * 3
    assert row.gave_up
    assert row.sent_at is None
    assert [e.split(";")[0] for e in row.errors] == [f"unanswered: {n} in a row" for n in (1, 2, 3)]
    assert "notify.gave_up_unanswered" in caplog.text
    assert caplog.text.count("notify.unanswered ") == 2


async def test_an_unanswered_attempt_then_an_answer_delivers_under_the_same_id(
    slow_receiver: SlowReceiver, session: aiohttp.ClientSession, clock: ManualClock
) -> None:
    slow_receiver.answer_fast_from = 1
    delivery, row = await _deliver_slowly(session, clock, "vnpt-noc", passes=4)
    assert slow_receiver.ids == [delivery] * 2
    assert row.sent_at is not None


async def test_no_connection_in_time_is_not_counted_as_maybe_delivered(
    session: aiohttp.ClientSession,
) -> None:
    """A listener whose backlog is full never completes the handshake: nothing was sent, so
    this is the receiver being down (retried as long as ever), not an unanswered delivery."""
    with socket.socket() as full:
        full.bind(("127.0.0.1", 0))
        full.listen(0)
        port = full.getsockname()[1]
        # Fill the backlog with a connection nobody accepts (Linux queues backlog + 1): the
        # next handshake's SYN is dropped.
        filler = socket.create_connection(("127.0.0.1", port), timeout=5)
        try:
            hook = channel(session, port, connect_timeout_s=0.3)
            payload = outbox_payload(ChannelKind.WEBHOOK, make_notice())
            outcome = await hook.send("x", payload, "d1")
        finally:
            filler.close()
    assert isinstance(outcome, Failed)
    assert (outcome.reason, outcome.retryable) == (FailureReason.TIMEOUT, True), outcome
