"""The path trace in the notices: where it stops, in Vietnamese and English, and every hop."""

from __future__ import annotations

import json
import unicodedata
from dataclasses import replace
from datetime import timedelta

from alerts.model import PathHop, PathTrace
from netwatch.notify.messages import render_chat, render_email, render_webhook
from netwatch.notify.pathtext import hide_target, path_summary

from .conftest import T0, make_notice

STOPPED = PathTrace(
    target="10.103.10.1",
    at=T0 + timedelta(seconds=40),
    hops=(
        PathHop(1, "10.103.0.2", "Điểm tham chiếu của NetWatch", 0.00005, 3, 3),
        PathHop(2, "10.103.1.1", "POP VNPT số 1", 0.00021, 3, 3),
        PathHop(3, None, "", None, 3, 0),
    ),
    reached=False,
)


def test_the_mail_says_where_the_path_stops_in_both_languages() -> None:
    text = render_email(make_notice(path=STOPPED)).text
    vi, _sep, en = text.partition("\n--- English ---\n")
    assert unicodedata.is_normalized("NFC", text)
    assert "Đường đi dừng sau: POP VNPT số 1 (10.103.1.1)" in vi
    assert "Đường đi từ NetWatch, đo lúc 07:15 22/11/2026 (giờ Việt Nam):" in vi
    assert "  1. 10.103.0.2 — Điểm tham chiếu của NetWatch — 0,05 ms (3/3 phản hồi)" in vi
    assert "  2. 10.103.1.1 — POP VNPT số 1 — 0,21 ms (3/3 phản hồi)" in vi
    assert "  3. * — không phản hồi (0/3)" in vi
    assert "The path stops after: POP VNPT số 1 (10.103.1.1)" in en
    assert "Path from NetWatch, traced at 07:15 22/11/2026 (Vietnam time, UTC+7):" in en
    assert "  2. 10.103.1.1 — POP VNPT số 1 — 0.21 ms (3/3 answered)" in en
    assert "  3. * — no answer (0/3)" in en
    # The stop sentence comes after the evidence, where the ISP reads what was measured.
    assert vi.index("Bằng chứng đo được:") < vi.index("Đường đi dừng sau")


def test_a_path_that_got_through_says_so_without_the_monitored_address() -> None:
    target = PathHop(3, "10.103.10.1", "Xã Lạc Dương — vnpt-tslcd", 0.0003, 3, 3)
    reached = replace(STOPPED, hops=(*STOPPED.hops[:2], target), reached=True)
    assert path_summary(reached, vi=True) == (
        "Đường đi thông suốt đến Xã Lạc Dương — vnpt-tslcd (10.103.10.1): đích đã phản hồi."
    )
    # What the ISP reads names the commune's line but never prints its monitored address.
    shown = hide_target(reached)
    assert path_summary(shown, vi=True) == (
        "Đường đi thông suốt đến Xã Lạc Dương — vnpt-tslcd: đích đã phản hồi."
    )
    assert path_summary(shown, vi=False) == (
        "The path gets through to Xã Lạc Dương — vnpt-tslcd: the target answered."
    )
    notice = make_notice(path=reached)
    text = render_email(notice).text
    assert "Đường đi dừng sau" not in text
    assert "  3. Xã Lạc Dương — vnpt-tslcd — 0,30 ms (3/3 phản hồi)" in text
    assert "  3. Xã Lạc Dương — vnpt-tslcd — 0.30 ms (3/3 answered)" in text
    for rendered in (text, json.dumps(render_webhook(notice)), render_chat(notice)):
        assert "10.103.10.1" not in rendered
        assert "10.103.1.1" in rendered  # the routers on the way keep their addresses


def test_no_hop_answering_stops_right_after_netwatch() -> None:
    silent = replace(STOPPED, hops=(PathHop(1, None, "", None, 3, 0),))
    assert path_summary(silent, vi=True) == (
        "Đường đi dừng ngay sau NetWatch: không chặng nào phản hồi."
    )
    assert path_summary(silent, vi=False) == (
        "The path stops right after NetWatch: no hop answered."
    )


def test_a_hop_without_a_name_is_its_address() -> None:
    unnamed = replace(STOPPED, hops=(PathHop(1, "10.103.0.2", "", 0.0001, 3, 3),))
    assert path_summary(unnamed, vi=True) == "Đường đi dừng sau: 10.103.0.2"


def test_webhook_and_chat_carry_the_path() -> None:
    notice = make_notice(path=STOPPED)
    body = render_webhook(notice)
    json.dumps(body)
    trace = body["trace"]
    assert isinstance(trace, dict)
    assert "target" not in trace
    assert trace["reached"] is False
    assert trace["at"] == {"utc": "2026-11-22T00:15:40Z", "local": "2026-11-22T07:15:40+07:00"}
    assert trace["stops_after"] == {"ttl": 2, "address": "10.103.1.1", "name": "POP VNPT số 1"}
    assert trace["summary"] == {
        "vi": "Đường đi dừng sau: POP VNPT số 1 (10.103.1.1)",
        "en": "The path stops after: POP VNPT số 1 (10.103.1.1)",
    }
    assert [h["address"] for h in trace["hops"]] == ["10.103.0.2", "10.103.1.1", None]
    link = body["link"]
    assert isinstance(link, dict)
    assert link["path"] == [
        "Điểm tham chiếu của NetWatch (10.103.0.2)",
        "POP VNPT số 1 (10.103.1.1)",
        "*",
    ]
    chat = render_chat(notice)
    assert "Đường đi dừng sau: POP VNPT số 1 (10.103.1.1)" in chat
    assert (
        "Tuyến: Điểm tham chiếu của NetWatch (10.103.0.2) → POP VNPT số 1 (10.103.1.1) → *" in chat
    )


def test_without_a_path_nothing_is_said_about_it() -> None:
    notice = make_notice(path=None)
    text = render_email(notice).text
    assert "Đường đi" not in text
    assert "Path from NetWatch" not in text
    body = render_webhook(notice)
    assert body["trace"] is None
    assert "Tuyến" not in render_chat(notice)
