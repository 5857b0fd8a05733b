"""Rendering: Vietnamese then English, local times, plain durations, stable threading and JSON."""

from __future__ import annotations

import json
import unicodedata
from datetime import UTC, datetime, timedelta

import pytest

from alerts.model import IncidentKind, Measurements
from netwatch.notify.messages import (
    CHAT_NOTE_MAX_CHARS,
    ChannelKind,
    EmailContent,
    NoticeEvent,
    ProblemState,
    TicketNotice,
    build_email,
    dedup_key,
    email_subject,
    format_duration_en,
    format_duration_vi,
    format_time_en,
    format_time_vi,
    message_id,
    outbox_payload,
    render_chat,
    render_email,
    render_webhook,
    sender_domain,
    thread_root_id,
)

from .conftest import T0, make_notice

FROM = "NetWatch Lâm Đồng <netwatch@lamdong.gov.vn>"


@pytest.mark.parametrize(
    ("seconds", "vi", "en"),
    [
        (0, "0 giây", "0 seconds"),
        (40.9, "40 giây", "40 seconds"),
        (60, "1 phút", "1 minute"),
        (3900, "1 giờ 5 phút", "1 hour 5 minutes"),
        (7200, "2 giờ", "2 hours"),
        (86400 + 3 * 3600 + 59, "1 ngày 3 giờ", "1 day 3 hours"),
        (2 * 86400 + 61, "2 ngày 1 phút", "2 days 1 minute"),
    ],
)
def test_durations_are_plain_words(seconds: float, vi: str, en: str) -> None:
    assert format_duration_vi(seconds) == vi
    assert format_duration_en(seconds) == en


def test_times_are_shown_in_vietnam() -> None:
    assert format_time_vi(T0) == "07:15 22/11/2026 (giờ Việt Nam)"
    assert format_time_en(T0) == "07:15 22/11/2026 (Vietnam time, UTC+7)"
    # Across midnight UTC: 17:30 UTC is already the next day in Vietnam.
    late = datetime(2026, 12, 31, 17, 30, tzinfo=UTC)
    assert format_time_vi(late) == "00:30 01/01/2027 (giờ Việt Nam)"


def test_email_is_vietnamese_then_english() -> None:
    content = render_email(make_notice())
    vi, sep, en = content.text.partition("\n--- English ---\n")
    assert sep, "the English part must follow a '--- English ---' line"
    assert unicodedata.is_normalized("NFC", content.text)
    for expected in (
        "Phiếu NW-2026-000042 — Mở phiếu sự cố",
        "Xã Lạc Dương (mã 24848)",
        "Tỉnh/thành phố: Lâm Đồng",
        "Nhà mạng: VNPT",
        "Mã mạch (circuit ID): LDG-FTTH-0012345",
        "Bắt đầu từ: 07:15 22/11/2026 (giờ Việt Nam)",
        "Thời gian sự cố đến nay: 1 giờ 5 phút",
        "Tỷ lệ mất gói: 100%",
        "Cổng WAN của router: ngừng hoạt động (down)",
        "Mức sử dụng băng thông: 3,1% băng thông hợp đồng",
        "Đường đi dừng sau: POP Đà Lạt (10.20.0.1)",
        "Đường đi từ NetWatch, đo lúc 07:16 22/11/2026 (giờ Việt Nam):",
        "  2. 10.20.0.1 — POP Đà Lạt — 4,20 ms (3/3 phản hồi)",
        "  3. * — không phản hồi (0/3)",
        "https://netwatch.example.vn/t/NW-2026-000042?exp=1795&sig=ab12",
        "Liên kết hết hạn lúc 07:15 29/11/2026 (giờ Việt Nam).",
    ):
        assert expected in vi, expected
    for expected in (
        "Ticket NW-2026-000042 — Ticket opened",
        "Since: 07:15 22/11/2026 (Vietnam time, UTC+7)",
        "Downtime so far: 1 hour 5 minutes",
        "Packet loss: 100%",
        "Utilization: 3.1% of contracted bandwidth",
        "The path stops after: POP Đà Lạt (10.20.0.1)",
        "Path from NetWatch, traced at 07:16 22/11/2026 (Vietnam time, UTC+7):",
        "  2. 10.20.0.1 — POP Đà Lạt — 4.20 ms (3/3 answered)",
        "  3. * — no answer (0/3)",
    ):
        assert expected in en, expected
    assert "giờ" not in en.replace("Xã", "")  # no Vietnamese words leak into the English part


def test_subject_is_stable_across_a_tickets_events() -> None:
    subjects = {
        render_email(make_notice(event, event_id=i)).subject
        for i, event in enumerate(NoticeEvent, start=1)
    }
    assert subjects == {
        "[NetWatch NW-2026-000042] Sự cố đường truyền: Xã Lạc Dương, Lâm Đồng — VNPT | Link fault"
    }


@pytest.mark.parametrize("event", list(NoticeEvent))
@pytest.mark.parametrize("kind", list(IncidentKind))
def test_every_event_and_kind_renders(event: NoticeEvent, kind: IncidentKind) -> None:
    notice = make_notice(
        event, kind=kind, note="Đã cử kỹ thuật viên.", actor="Nguyễn Văn An (VNPT)"
    )
    content = render_email(notice)
    assert "--- English ---" in content.text
    assert render_chat(notice)
    json.dumps(render_webhook(notice))


def test_closed_tickets_say_total_downtime() -> None:
    text = render_email(make_notice(NoticeEvent.AUTO_RESOLVED, event_id=9, downtime_s=5400)).text
    assert "Tổng thời gian sự cố: 1 giờ 30 phút" in text
    assert "Total downtime: 1 hour 30 minutes" in text
    assert "tự động đóng phiếu" in text


def test_portal_outage_without_commune() -> None:
    notice = make_notice(
        kind=IncidentKind.PORTAL_OUTAGE,
        state=ProblemState.FAILING,
        commune_code=None,
        commune_name=None,
        province_name=None,
        link_id=None,
        isp_name=None,
        circuit_id=None,
        path=None,
        evidence=Measurements(),
        subject_name="Cổng Dịch vụ công quốc gia",
    )
    assert email_subject(notice) == (
        "[NetWatch NW-2026-000042] Cổng dịch vụ công gián đoạn: Cổng Dịch vụ công quốc gia"
        " | Public service portal outage"
    )
    assert "Đối tượng: Cổng Dịch vụ công quốc gia" in render_email(notice).text


def test_threading_ids_are_deterministic() -> None:
    domain = sender_domain(FROM)
    assert domain == "lamdong.gov.vn"
    root = thread_root_id("NW-2026-000042", domain)
    assert root == "<ticket.NW-2026-000042@lamdong.gov.vn>"
    assert message_id("NW-2026-000042", 1, NoticeEvent.OPENED, domain) == root
    ack = message_id("NW-2026-000042", 4, NoticeEvent.ACKNOWLEDGED, domain)
    assert ack == "<ticket.NW-2026-000042.4.acknowledged@lamdong.gov.vn>"
    # Odd characters in a ticket id cannot break the header.
    assert thread_root_id("NW 7/<x>", "a.vn") == "<ticket.NW-7/-x@a.vn>"
    assert sender_domain("no-domain") == "netwatch.invalid"

    opened = build_email(render_email(make_notice()), FROM, "noc@vnpt.vn")
    note = build_email(render_email(make_notice(NoticeEvent.NOTE, 5)), FROM, "noc@vnpt.vn")
    again = build_email(render_email(make_notice(NoticeEvent.NOTE, 5)), FROM, "noc@vnpt.vn")
    assert opened["Message-ID"] == root
    assert opened["In-Reply-To"] is None
    assert note["In-Reply-To"] == root
    assert note["References"] == root
    assert note["Message-ID"] == again["Message-ID"] != root
    assert note.as_bytes() == again.as_bytes()  # a resend is byte-for-byte the same message


def test_webhook_payload_schema_and_times() -> None:
    body = render_webhook(make_notice())
    assert body["schema"] == "netwatch.ticket-notice/v1"
    assert body["event"] == "opened"
    ticket = body["ticket"]
    assert isinstance(ticket, dict)
    assert ticket["first_bad_at"] == {
        "utc": "2026-11-22T00:15:00Z",
        "local": "2026-11-22T07:15:00+07:00",
    }
    assert ticket["kind"] == "link_fault"
    assert ticket["state"] == "down"
    assert ticket["downtime_s"] == 3900.0
    assert body["commune"] == {"code": "24848", "name": "Xã Lạc Dương", "province": "Lâm Đồng"}
    evidence = body["evidence"]
    assert isinstance(evidence, dict)
    assert evidence["loss_ratio"] == 1.0
    assert evidence["interface_up"] is False
    assert set(body) == {
        "schema",
        "event",
        "event_id",
        "at",
        "ticket",
        "commune",
        "subject_name",
        "link",
        "evidence",
        "trace",
        "note",
        "actor",
        "summary",
    }


def test_chat_text_is_short_and_cuts_long_notes() -> None:
    text = render_chat(make_notice(NoticeEvent.NOTE, 3, note="x" * 5000, actor="Trần Thị Bình"))
    assert text.startswith("[NW-2026-000042] Ghi chú mới: Sự cố đường truyền")
    assert "Từ 07:15 22/11/2026 (giờ VN), đã 1 giờ 5 phút" in text
    assert "Trần Thị Bình đã thêm ghi chú." in text
    assert len(text) < CHAT_NOTE_MAX_CHARS + 600


def test_outbox_payloads_round_trip_through_json() -> None:
    notice = make_notice()
    for kind in ChannelKind:
        payload = outbox_payload(kind, notice, zns_template="401234")
        assert json.loads(json.dumps(payload)) == payload
    with pytest.raises(ValueError, match="template id"):
        outbox_payload(ChannelKind.ZALO, notice)
    email = json.loads(json.dumps(outbox_payload(ChannelKind.EMAIL, notice)))
    assert EmailContent.from_payload(email) == render_email(notice)
    assert EmailContent.from_payload({**email, "event": "exploded"}) is None
    assert EmailContent.from_payload({**email, "date": "2026-11-22T07:15:00"}) is None
    assert EmailContent.from_payload({"format": "chat/v1", "text": "x"}) is None
    assert (
        dedup_key(notice, "email-vnpt", "noc@vnpt.vn") == "NW-2026-000042/1/email-vnpt/noc@vnpt.vn"
    )


def test_naive_times_are_refused() -> None:
    with pytest.raises(ValueError, match="timezone-aware"):
        make_notice(at=datetime(2026, 11, 22, 7, 15))  # noqa: DTZ001
    with pytest.raises(ValueError, match="timezone-aware"):
        make_notice(ticket_url_expires_at=datetime(2026, 11, 22) + timedelta(days=1))  # noqa: DTZ001


def test_notice_is_frozen() -> None:
    notice: TicketNotice = make_notice()
    with pytest.raises(AttributeError):
        notice.ticket_id = "other"  # type: ignore[misc]


def test_line_back_says_since_when_and_how_long_it_is_watched() -> None:
    notice = make_notice(
        NoticeEvent.LINE_BACK,
        event_id=5,
        back_since=T0 + timedelta(hours=1, minutes=4, seconds=30),
        closes_after_s=590.0,
    )
    content = render_email(notice)
    assert content.subject == render_email(make_notice(NoticeEvent.OPENED)).subject  # threaded
    assert "Đường truyền đã hoạt động trở lại" in content.text
    assert (
        "Kết nối của Xã Lạc Dương, Lâm Đồng đã hoạt động bình thường trở lại từ "
        f"{format_time_vi(T0 + timedelta(hours=1, minutes=4, seconds=30))}; NetWatch tiếp tục "
        "theo dõi 10 phút trước khi tự động đóng phiếu."
    ) in content.text
    assert "NetWatch watches it 10 min more before closing the ticket." in content.text
    assert render_webhook(notice)["event"] == "line_back"


def test_bad_again_says_the_ticket_stays_open() -> None:
    text = render_email(make_notice(NoticeEvent.BAD_AGAIN, event_id=6)).text
    assert "Sự cố xuất hiện lại (mất kết nối) trong thời gian theo dõi; phiếu vẫn mở." in text
    assert "The problem is back (down) while being watched; the ticket stays open." in text


def test_a_ticket_closed_by_a_reload_says_removed_not_back_to_normal() -> None:
    """Issue 15: a commune taken out of the configuration closes its ticket; the message says
    monitoring stopped, never that the line came back."""
    notice = make_notice(NoticeEvent.UNMONITORED, event_id=9, downtime_s=600)
    text = render_email(notice).text
    assert "đã được gỡ khỏi cấu hình giám sát" in text
    assert "without seeing the problem fixed" in text
    assert "Tổng thời gian sự cố: 10 phút" in text
    assert "ổn định trở lại" not in text
    assert "back to normal" not in text
    chat = render_chat(notice)
    assert "Đã ngừng giám sát" in chat
    assert render_webhook(notice)["event"] == "unmonitored"
