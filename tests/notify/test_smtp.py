"""SMTP channel and outbox against a real aiosmtpd: STARTTLS, AUTH, threading, outages."""

from __future__ import annotations

import email
import logging
import random
from collections.abc import Awaitable, Callable
from email.message import EmailMessage
from email.policy import default
from pathlib import Path

import pytest

from netwatch.inventory.secrets import Secret
from netwatch.notify.channels import Delivered, Failed, FailureReason, SmtpChannel, SmtpConfig
from netwatch.notify.messages import ChannelKind, NoticeEvent, dedup_key, outbox_payload
from netwatch.notify.outbox import OutboxWorker, RetryPolicy

from .conftest import SMTP_PASSWORD, SMTP_USER, ManualClock, MemoryOutbox, SmtpServer, make_notice

SmtpFactory = Callable[..., Awaitable[SmtpServer]]
FROM = "NetWatch Lâm Đồng <netwatch@lamdong.gov.vn>"
TO = "noc-lamdong@vnpt.example"


def smtp_channel(port: int, ca_file: Path | None, password: str = SMTP_PASSWORD) -> SmtpChannel:
    return SmtpChannel(
        SmtpConfig(
            host="127.0.0.1",
            port=port,
            from_address=FROM,
            username=SMTP_USER,
            password=Secret(password, "NETWATCH_SMTP_PASSWORD"),
            starttls=True,
            ca_file=ca_file,
            timeout_s=10.0,
        )
    )


def parse(data: bytes) -> EmailMessage:
    message = email.message_from_bytes(data, policy=default)
    assert isinstance(message, EmailMessage)
    return message


@pytest.mark.parametrize(("mechanism", "exclude"), [("LOGIN", ["PLAIN"]), ("PLAIN", ["LOGIN"])])
async def test_vietnamese_mail_threaded_over_starttls_and_auth(
    smtp_factory: SmtpFactory, ca_file: Path, mechanism: str, exclude: list[str]
) -> None:
    port = 18601 if mechanism == "LOGIN" else 18602
    server = await smtp_factory(port, exclude=exclude)
    channel = smtp_channel(port, ca_file)

    opened = outbox_payload(ChannelKind.EMAIL, make_notice(NoticeEvent.OPENED, 1))
    acked = outbox_payload(
        ChannelKind.EMAIL,
        make_notice(NoticeEvent.ACKNOWLEDGED, 2, actor="Nguyễn Văn An (VNPT Lâm Đồng)"),
    )
    assert isinstance(await channel.send(TO, opened, "d1"), Delivered)
    assert isinstance(await channel.send(TO, acked, "d2"), Delivered)

    assert len(server.received) == 2
    for got in server.received:
        assert got.tls, "mail must only travel after STARTTLS"
        assert got.login == SMTP_USER
        assert got.mechanism == mechanism
        assert got.mail_from == "netwatch@lamdong.gov.vn"
        assert got.rcpt_tos == [TO]
    first, second = (parse(got.data) for got in server.received)

    subject = (
        "[NetWatch NW-2026-000042] Sự cố đường truyền: Xã Lạc Dương, Lâm Đồng — VNPT | Link fault"
    )
    assert first["Subject"] == subject
    assert second["Subject"] == subject
    assert first["Message-ID"] == "<ticket.NW-2026-000042@lamdong.gov.vn>"
    assert first["In-Reply-To"] is None
    assert second["Message-ID"] == "<ticket.NW-2026-000042.2.acknowledged@lamdong.gov.vn>"
    assert second["In-Reply-To"] == first["Message-ID"]
    assert second["References"] == first["Message-ID"]
    assert first["Date"] == "Sun, 22 Nov 2026 08:20:00 +0700"
    assert first["Auto-Submitted"] == "auto-generated"

    body = first.get_content()
    assert first.get_content_charset() == "utf-8"
    vi, sep, en = body.partition("--- English ---")
    assert sep
    assert "Xã Lạc Dương (mã 24848)" in vi
    assert "Bắt đầu từ: 07:15 22/11/2026 (giờ Việt Nam)" in vi
    assert "Thời gian sự cố đến nay: 1 giờ 5 phút" in vi
    assert "Cổng WAN của router: ngừng hoạt động (down)" in vi
    assert "Since: 07:15 22/11/2026 (Vietnam time, UTC+7)" in en
    assert "Downtime so far: 1 hour 5 minutes" in en
    ack_body = second.get_content()
    assert "Phiếu đã được tiếp nhận bởi Nguyễn Văn An (VNPT Lâm Đồng)." in ack_body
    assert "Acknowledged by Nguyễn Văn An (VNPT Lâm Đồng)." in ack_body


async def test_wrong_password_is_a_permanent_failure(
    smtp_factory: SmtpFactory, ca_file: Path, caplog: pytest.LogCaptureFixture
) -> None:
    server = await smtp_factory(18603)
    channel = smtp_channel(18603, ca_file, password="sai-mật-khẩu-9f3k")
    caplog.set_level(logging.DEBUG)
    outcome = await channel.send(TO, outbox_payload(ChannelKind.EMAIL, make_notice()), "d1")
    assert isinstance(outcome, Failed)
    assert outcome.reason is FailureReason.AUTH_FAILED
    assert not outcome.retryable
    assert "535" in outcome.detail
    assert "sai-mật-khẩu-9f3k" not in outcome.detail + caplog.text
    assert server.received == []


async def test_untrusted_certificate_is_refused_and_retried_later(
    smtp_factory: SmtpFactory,
) -> None:
    server = await smtp_factory(18604)
    channel = smtp_channel(18604, ca_file=None)  # the system CAs do not know the test CA
    outcome = await channel.send(TO, outbox_payload(ChannelKind.EMAIL, make_notice()), "d1")
    assert isinstance(outcome, Failed)
    assert outcome.reason is FailureReason.TLS_ERROR
    assert outcome.retryable
    assert server.received == []


async def test_bad_payload_is_permanent(ca_file: Path) -> None:
    channel = smtp_channel(18605, ca_file)
    outcome = await channel.send(TO, {"format": "chat/v1", "text": "x"}, "d1")
    assert outcome == Failed(FailureReason.BAD_PAYLOAD, False, "not an e-mail payload")


async def test_server_down_then_up_delivers_once_after_backoff(
    smtp_factory: SmtpFactory, ca_file: Path, clock: ManualClock
) -> None:
    """The port is closed for several attempts; once the server starts, one mail arrives."""
    port = 18610
    server = await smtp_factory(port, start=False)
    store = MemoryOutbox()
    policy = RetryPolicy(base_delay_s=10, factor=2, max_delay_s=60, jitter_ratio=0.5)
    worker = OutboxWorker(
        store,
        {"email-vnpt": smtp_channel(port, ca_file)},
        clock,
        policy=policy,
        rng=random.Random(7),
    )
    notice = make_notice()
    item_id = store.enqueue(
        "email-vnpt",
        TO,
        outbox_payload(ChannelKind.EMAIL, notice),
        dedup_key(notice, "email-vnpt", TO),
        clock.now(),
    )
    row = store.rows[item_id]

    for attempt in range(1, 6):
        report = await worker.deliver_due()
        assert (report.claimed, report.retrying) == (1, 1)
        assert row.attempts == attempt
        assert row.errors[-1].startswith("connection_refused")
        at, next_at = row.schedule[-1]
        assert next_at is not None
        delay_s = (next_at - at).total_seconds()
        nominal_s = policy.nominal_delay_s(attempt)
        assert nominal_s * 0.5 <= delay_s <= nominal_s  # backoff with jitter, capped at 60 s
        # Just before the retry is due, nothing is claimed: the backoff is respected.
        clock.set(next_at)
        clock.advance(-0.5)
        assert (await worker.deliver_due()).claimed == 0
        clock.advance(0.5)
    assert policy.nominal_delay_s(5) == 60  # the cap was reached

    await server.start()
    report = await worker.deliver_due()
    assert (report.claimed, report.delivered) == (1, 1)
    assert row.sent_at == clock.now()
    for _ in range(5):  # later passes, long after: nothing is sent again
        clock.advance(3600)
        assert (await worker.deliver_due()).claimed == 0
    assert len(server.received) == 1
    assert parse(server.received[0].data)["Message-ID"] == "<ticket.NW-2026-000042@lamdong.gov.vn>"


@pytest.mark.parametrize(
    ("reply", "reason", "retryable"),
    [
        ("451 4.3.0 Hệ thống bận, thử lại sau", FailureReason.TEMPORARY_REJECT, True),
        ("552 5.3.4 Message too big", FailureReason.PERMANENT_REJECT, False),
    ],
)
async def test_smtp_4xx_is_retried_and_5xx_is_not(
    smtp_factory: SmtpFactory, ca_file: Path, reply: str, reason: FailureReason, retryable: bool
) -> None:
    server = await smtp_factory(18606)
    server.handler.replies.append(reply)
    channel = smtp_channel(18606, ca_file)
    outcome = await channel.send(TO, outbox_payload(ChannelKind.EMAIL, make_notice()), "d1")
    assert isinstance(outcome, Failed)
    assert (outcome.reason, outcome.retryable) == (reason, retryable)
    assert outcome.detail.startswith(reply[:3])
    assert server.received == []


async def test_a_mail_with_files_keeps_them_and_its_identity(
    smtp_factory: SmtpFactory, ca_file: Path
) -> None:
    """The document e-mail (the monthly report's): files attached byte for byte, the same
    Message-ID and Date on a resend; a payload with a broken file is refused for good."""
    from datetime import UTC, datetime

    from netwatch.notify.documents import DocumentEmail, MailAttachment

    server = await smtp_factory(18653)
    channel = smtp_channel(18653, ca_file)
    pdf = b"%PDF-1.4 \x00\xff binary"
    content = DocumentEmail(
        subject="[NetWatch] Báo cáo tháng 11/2026",
        text="Độ khả dụng chung: 99,657 %\n",
        key="report.2026-11",
        date=datetime(2026, 12, 1, 1, 0, tzinfo=UTC),
        attachments=(
            MailAttachment("netwatch-2026-11.pdf", "application/pdf", pdf),
            MailAttachment("netwatch-2026-11.csv", "text/csv", "\ufeffMạch\r\n".encode()),
        ),
    )
    payload = content.to_payload()
    for _ in range(2):
        assert isinstance(await channel.send(TO, payload, "report/2026-11/email/x"), Delivered)
    first, second = (parse(got.data) for got in server.received)
    assert first["Message-ID"] == second["Message-ID"]
    assert first["Message-ID"].startswith("<netwatch.report.2026-11.")
    assert first["Message-ID"].endswith("@lamdong.gov.vn>")
    assert first["Date"] == second["Date"] == "Tue, 01 Dec 2026 08:00:00 +0700"
    assert first["Subject"] == "[NetWatch] Báo cáo tháng 11/2026"
    files = {p.get_filename(): p.get_payload(decode=True) for p in first.iter_attachments()}
    assert files == {
        "netwatch-2026-11.pdf": pdf,
        "netwatch-2026-11.csv": "\ufeffMạch\r\n".encode(),
    }
    body = first.get_body(preferencelist=("plain",))
    assert body is not None
    assert body.get_content().splitlines() == ["Độ khả dụng chung: 99,657 %"]

    broken = {**payload, "attachments": [{"filename": "x.pdf", "content_type": "application/pdf"}]}
    outcome = await channel.send(TO, broken, "d")
    assert outcome == Failed(FailureReason.BAD_PAYLOAD, False, "not an e-mail payload")
    assert len(server.received) == 2
