"""Telegram channel against a local fake Bot API (aiohttp): text delivered, token never logged."""

from __future__ import annotations

import logging
import random
from collections.abc import AsyncIterator
from dataclasses import dataclass, field

import aiohttp
import pytest
from aiohttp import web

from netwatch.inventory.secrets import Secret
from netwatch.notify.channels import (
    Delivered,
    Failed,
    FailureReason,
    TelegramChannel,
    TelegramConfig,
)
from netwatch.notify.messages import ChannelKind, NoticeEvent, dedup_key, outbox_payload
from netwatch.notify.outbox import OutboxWorker, RetryPolicy

from .conftest import ManualClock, MemoryOutbox, make_notice
from .http_peer import serving

TOKEN = "7311922045:AAH-thử-nghiệm-ZqX9"
PORT = 18640
CHAT = "-1001234567890"


@dataclass
class FakeBotApi:
    """Answers like api.telegram.org: 401 for a wrong token, a scripted error, else ok."""

    script: list[tuple[int, dict[str, object]]] = field(default_factory=list)
    messages: list[dict[str, object]] = field(default_factory=list)

    async def send_message(self, request: web.Request) -> web.Response:
        if request.match_info["token"] != TOKEN:
            return web.json_response(
                {"ok": False, "error_code": 401, "description": "Unauthorized"}, status=401
            )
        if self.script:
            status, answer = self.script.pop(0)
            return web.json_response(answer, status=status)
        body = await request.json()
        self.messages.append(body)
        result = {"message_id": len(self.messages), "chat": {"id": int(body["chat_id"])}}
        return web.json_response({"ok": True, "result": result})


@pytest.fixture
async def bot_api() -> AsyncIterator[FakeBotApi]:
    api = FakeBotApi()
    app = web.Application()
    app.router.add_post("/bot{token}/sendMessage", api.send_message)
    async with serving(app, PORT):
        yield api


def telegram(
    session: aiohttp.ClientSession, token: str = TOKEN, port: int = PORT
) -> TelegramChannel:
    config = TelegramConfig(
        token=Secret(token, "NETWATCH_TELEGRAM_TOKEN"),
        api_base_url=f"http://127.0.0.1:{port}/",
        timeout_s=5.0,
    )
    return TelegramChannel(config, session)


async def test_text_received_and_token_never_logged(
    bot_api: FakeBotApi,
    session: aiohttp.ClientSession,
    clock: ManualClock,
    caplog: pytest.LogCaptureFixture,
) -> None:
    caplog.set_level(logging.DEBUG)
    store = MemoryOutbox()
    bot_api.script = [(502, {"ok": False, "error_code": 502, "description": "Bad Gateway"})]
    worker = OutboxWorker(store, {"tg-it": telegram(session)}, clock, rng=random.Random(3))
    notice = make_notice(NoticeEvent.ESCALATED, 6, escalation_level=2)
    store.enqueue(
        "tg-it",
        CHAT,
        outbox_payload(ChannelKind.TELEGRAM, notice),
        dedup_key(notice, "tg-it", CHAT),
        clock.now(),
    )
    assert (await worker.deliver_due()).retrying == 1
    clock.advance(3600)
    assert (await worker.deliver_due()).delivered == 1

    assert len(bot_api.messages) == 1
    sent = bot_api.messages[0]
    assert sent["chat_id"] == CHAT
    text = sent["text"]
    assert isinstance(text, str)
    assert text.startswith("[NW-2026-000042] Chuyển cấp xử lý: Sự cố đường truyền")
    assert "Phiếu chưa được tiếp nhận; đã chuyển lên cấp xử lý 2." in text
    assert "Xã Lạc Dương, Lâm Đồng — VNPT" in text

    assert caplog.records, "the worker logs its deliveries"
    logged = caplog.text + "".join(str(r.args) for r in caplog.records)
    assert TOKEN not in logged
    assert "AAH-thử" not in logged
    assert TOKEN not in "".join(store.rows[1].errors)


async def test_wrong_token_is_permanent_and_not_echoed(
    bot_api: FakeBotApi, session: aiohttp.ClientSession
) -> None:
    payload = outbox_payload(ChannelKind.TELEGRAM, make_notice())
    outcome = await telegram(session, token="1:sai").send(CHAT, payload, "d1")
    assert isinstance(outcome, Failed)
    assert (outcome.reason, outcome.retryable) == (FailureReason.REJECTED, False)
    assert outcome.detail == "HTTP 401 Unauthorized"
    assert bot_api.messages == []


async def test_rate_limit_honours_retry_after(
    bot_api: FakeBotApi, session: aiohttp.ClientSession, clock: ManualClock
) -> None:
    bot_api.script = [
        (
            429,
            {
                "ok": False,
                "error_code": 429,
                "description": "Too Many Requests: retry after 90",
                "parameters": {"retry_after": 90},
            },
        )
    ]
    outcome = await telegram(session).send(
        CHAT, outbox_payload(ChannelKind.TELEGRAM, make_notice()), "d1"
    )
    assert outcome == Failed(
        FailureReason.RATE_LIMITED, True, "HTTP 429 Too Many Requests: retry after 90", 90.0
    )
    policy = RetryPolicy(base_delay_s=5)
    assert policy.delay_s(1, random.Random(0), outcome.retry_after_s) == 90.0


async def test_unreachable_api_is_retryable_and_hides_the_token(
    session: aiohttp.ClientSession,
) -> None:
    outcome = await telegram(session, port=18641).send(
        CHAT, outbox_payload(ChannelKind.TELEGRAM, make_notice()), "d1"
    )
    assert isinstance(outcome, Failed)
    assert (outcome.reason, outcome.retryable) == (FailureReason.CONNECTION_REFUSED, True)
    assert TOKEN not in outcome.detail


async def test_ok_answer_is_delivered(bot_api: FakeBotApi, session: aiohttp.ClientSession) -> None:
    outcome = await telegram(session).send(
        CHAT, outbox_payload(ChannelKind.TELEGRAM, make_notice()), "d1"
    )
    assert outcome == Delivered("message_id=1")
    bad = await telegram(session).send(CHAT, {"format": "chat/v1"}, "d1")
    assert bad == Failed(FailureReason.BAD_PAYLOAD, False, "not a chat payload")
