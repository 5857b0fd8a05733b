"""ISP ticket pages through signed links, against a real NetWatch and its real store."""

from __future__ import annotations

import re
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest

from netwatch.store import Store
from netwatch.store.codec import actor_text
from tests.web.conftest import COMMUNE, LINK_SECRET, Server

HTML = {"Accept": "text/html,application/xhtml+xml,application/xml;q=0.9,*/*;q=0.8"}


def _stored(server: Server, ticket_id: str) -> tuple[Any, list[Any]]:
    async def read(store: Store) -> tuple[Any, list[Any]]:
        return await store.get_ticket(ticket_id), await store.ticket_events(ticket_id)

    return server.with_store(read)


def test_a_valid_link_shows_the_evidence_as_json(server: Server) -> None:
    ticket_id = server.open_ticket(state="lossy", loss_ratio=0.2, rtt_median_s=0.08)
    reply = server.client.get(f"/t/{ticket_id}?{server.link_query(ticket_id)}")
    assert reply.status == 200
    assert reply.headers["content-type"] == "application/json"
    view = reply.json()
    assert view["id"] == ticket_id
    assert view["state"] == "open"
    assert view["kind"] == "link_fault"
    assert view["problem_state"] == "lossy"
    assert view["subject"] == {
        "name": "Xã Lạc Dương — vnpt-tslcd",
        "commune": COMMUNE,
        "commune_name": "Xã Lạc Dương",
        "link": "vnpt-tslcd",
        "circuit": "LDG-TSLCD-0001",
        "isp": "vnpt",
        "isp_name": "VNPT Lâm Đồng",
    }
    assert view["evidence"]["worst_loss_ratio"] == pytest.approx(0.2)
    assert view["evidence"]["worst_rtt_median_s"] == pytest.approx(0.08)
    assert view["downtime_s"] >= 170  # the incident began three minutes ago
    assert view["first_bad_at_local"].endswith("+07:00")
    assert [e["kind"] for e in view["events"]] == ["opened"]
    assert view["events"][0]["at_local"].endswith("+07:00")
    assert view["link_expires_at_local"].endswith("+07:00")


def test_a_browser_gets_a_vietnamese_page_with_three_forms(server: Server) -> None:
    ticket_id = server.open_ticket()
    query = server.link_query(ticket_id)
    reply = server.client.get(f"/t/{ticket_id}?{query}", headers=HTML)
    assert reply.status == 200
    assert reply.headers["content-type"].startswith("text/html")
    assert reply.headers["cache-control"] == "no-store"
    assert reply.headers["referrer-policy"] == "no-referrer"
    page = reply.text
    assert '<html lang="vi">' in page
    for text in (
        f"Phiếu sự cố {ticket_id}",
        "Xã Lạc Dương (mã 24848)",
        "LDG-TSLCD-0001",
        "VNPT Lâm Đồng",
        "Mất kết nối — thiết bị mạng (router) của xã báo cổng WAN ngừng hoạt động",  # the catalogue's down cause
        "Thời gian gián đoạn đến nay",
        "Giờ Việt Nam (UTC+7)",
        "Mở phiếu",
        "Diễn biến phiếu",
        "Mất gói và độ trễ 24 giờ qua",  # the chart of the link's history
        "<svg",
    ):
        assert text in page, text
    for action in ("acknowledge", "note", "resolve"):
        assert f'action="/t/{ticket_id}/{action}"' in page
    exp, sig = (part.split("=")[1] for part in query.split("&"))
    assert f'name="sig" value="{sig}"' in page
    assert f'name="exp" value="{exp}"' in page
    # The language switch keeps the signed link.
    assert f'href="/t/{ticket_id}?exp={exp}&amp;sig={sig}&amp;lang=en"' in page


def test_the_page_shows_nothing_the_isp_must_not_see(server: Server) -> None:
    ticket_id = server.open_ticket(state="lossy", loss_ratio=0.5, rtt_median_s=0.2)
    page = server.client.get(f"/t/{ticket_id}?{server.link_query(ticket_id)}", headers=HTML).text
    # Monitored addresses, the link secret, contacts and the provincial IT's name stay private.
    for secret in ("127.0.0.1", "127.0.0.2", LINK_SECRET, "Trung tâm Chuyển đổi số"):
        assert secret not in page, secret
    assert not re.search(r"[\w.+-]+@[\w-]+\.[\w.]+", page)  # no e-mail address


def test_the_english_page_and_the_notice_after_an_action(server: Server) -> None:
    ticket_id = server.open_ticket(state="lossy", loss_ratio=0.25, rtt_median_s=0.08)
    query = server.link_query(ticket_id)
    english = server.client.get(f"/t/{ticket_id}?{query}&lang=en", headers=HTML).text
    assert '<html lang="en">' in english
    for text in (
        "Trouble ticket",
        "Packet loss",
        "Open — not yet acknowledged",
        "25.0\u00a0%",
        "80\u00a0ms",
    ):
        assert text in english, text
    exp, sig = (part.split("=")[1] for part in query.split("&"))
    acked = server.client.post(
        f"/t/{ticket_id}/acknowledge",
        form={"exp": exp, "sig": sig, "lang": "en", "name": "Lê Thị Hoa"},
        headers=HTML,
    )
    assert acked.status == 200  # after the 303 back to the page
    assert '<html lang="en">' in acked.text
    assert "Done: the ticket is acknowledged." in acked.text
    assert "Lê Thị Hoa (ISP)" in acked.text
    assert f'action="/t/{ticket_id}/acknowledge"' not in acked.text
    vietnamese = server.client.get(f"/t/{ticket_id}?{query}&done=acknowledge", headers=HTML)
    assert "Đã ghi nhận: phiếu đã được tiếp nhận." in vietnamese.text
    assert "25,0\u00a0%" in vietnamese.text


@pytest.mark.parametrize(
    ("variant", "message"),
    [
        (
            "forged",
            "this ticket link is not valid: it was not issued by NetWatch, or it was altered",
        ),
        (
            "other_id",
            "this ticket link is not valid: it was not issued by NetWatch, or it was altered",
        ),
        (
            "later_exp",
            "this ticket link is not valid: it was not issued by NetWatch, or it was altered",
        ),
        (
            "expired",
            "this ticket link has expired; the next notice about the ticket carries a new one",
        ),
        ("missing", "this ticket link is incomplete or damaged (exp and sig are required)"),
    ],
)
def test_a_bad_link_gets_403_and_changes_nothing(
    server: Server, variant: str, message: str
) -> None:
    ticket_id = server.open_ticket()
    link = server.signer.sign(ticket_id, datetime.now(UTC))
    old = server.signer.sign(ticket_id, datetime.now(UTC) - timedelta(days=8))
    path_id, query = ticket_id, f"exp={link.exp}&sig={link.sig}"
    if variant == "forged":
        query = f"exp={link.exp}&sig={'ab' * 16}"
    elif variant == "other_id":
        path_id = ticket_id[:-1] + ("0" if ticket_id[-1] != "0" else "1")
    elif variant == "later_exp":
        query = f"exp={link.exp + 86400}&sig={link.sig}"
    elif variant == "expired":
        query = f"exp={old.exp}&sig={old.sig}"
    elif variant == "missing":
        query = ""
    before = _stored(server, ticket_id)

    shown = server.client.get(f"/t/{path_id}?{query}")
    assert shown.status == 403
    assert shown.json()["detail"] == message
    page = server.client.get(f"/t/{path_id}?{query}", headers=HTML)
    assert page.status == 403
    assert "Không mở được phiếu" in page.text
    assert "Liên kết" in page.text
    assert message in page.text  # English below the Vietnamese
    assert "VNPT" not in page.text
    assert "LDG-TSLCD" not in page.text
    english = server.client.get(f"/t/{path_id}?{query}&lang=en", headers=HTML)
    assert english.status == 403
    assert "The ticket cannot be opened" in english.text
    for action, body in (("acknowledge", {}), ("note", {"text": "x"}), ("resolve", {})):
        reply = server.client.post(f"/t/{path_id}/{action}?{query}", json_body=body)
        assert reply.status == 403, action
        assert reply.json()["detail"] == message
        form = server.client.post(f"/t/{path_id}/{action}?{query}", form=body, headers=HTML)
        assert form.status == 403
    assert _stored(server, ticket_id) == before


def test_acknowledge_by_link_then_the_api_gets_409(server: Server) -> None:
    ticket_id = server.open_ticket()
    link = server.signer.sign(ticket_id, datetime.now(UTC))
    reply = server.client.post(
        f"/t/{ticket_id}/acknowledge",
        json_body={"exp": link.exp, "sig": link.sig, "text": "Đã cử kỹ thuật viên"},
    )
    assert reply.status == 200
    assert reply.json()["state"] == "acknowledged"
    ticket, events = _stored(server, ticket_id)
    assert ticket.ticket.status.value == "acknowledged"
    last = events[-1].event
    assert (last.kind.value, actor_text(last.actor), last.text) == (
        "acknowledged",
        "isp:VNPT Lâm Đồng",
        "Đã cử kỹ thuật viên",
    )
    again = server.client.post(
        f"/t/{ticket_id}/acknowledge?exp={link.exp}&sig={link.sig}", json_body={}
    )
    assert again.status == 409
    assert again.json()["detail"] == f"ticket {ticket_id} is already acknowledged"
    assert again.json()["detail_vi"] == f"Phiếu {ticket_id} đã được tiếp nhận trước đó."

    token = server.with_store(lambda s: s.create_token("ops", ["write"], datetime.now(UTC)))
    api = server.client.post(f"/api/v1/tickets/{ticket_id}/acknowledge", token=token.token)
    assert api.status == 409
    assert api.json() == {"detail": f"ticket {ticket_id} is already acknowledged"}


def test_forms_from_a_browser_note_and_resolve_and_come_back_to_the_page(server: Server) -> None:
    ticket_id = server.open_ticket()
    link = server.signer.sign(ticket_id, datetime.now(UTC))
    fields = {"exp": str(link.exp), "sig": link.sig}
    noted = server.client.post(
        f"/t/{ticket_id}/note",
        form={**fields, "name": "Nguyễn Văn An", "text": "Cáp quang bị đứt tại km 12"},
        headers=HTML,
    )
    assert noted.status == 200  # after the 303 back to the signed page
    assert "Cáp quang bị đứt tại km 12" in noted.text
    assert "Nguyễn Văn An (nhà mạng)" in noted.text
    resolved = server.client.post(
        f"/t/{ticket_id}/resolve", form={**fields, "text": "Đã hàn nối cáp"}, headers=HTML
    )
    assert resolved.status == 200
    assert "Đã đóng" in resolved.text
    assert f'action="/t/{ticket_id}/resolve"' not in resolved.text
    ticket, events = _stored(server, ticket_id)
    assert ticket.ticket.status.value == "resolved"
    assert [(e.event.kind.value, actor_text(e.event.actor)) for e in events[-2:]] == [
        ("note", "isp:Nguyễn Văn An"),
        ("resolved", "isp:VNPT Lâm Đồng"),
    ]
    twice = server.client.post(f"/t/{ticket_id}/resolve", form=fields, headers=HTML)
    assert twice.status == 409
    assert f"Phiếu {ticket_id} đã được đóng." in twice.text


def test_bad_actions_get_clear_4xx(server: Server) -> None:
    ticket_id = server.open_ticket()
    link = server.signer.sign(ticket_id, datetime.now(UTC))
    q = f"exp={link.exp}&sig={link.sig}"
    empty = server.client.post(f"/t/{ticket_id}/note?{q}", json_body={"text": "  "})
    assert (empty.status, empty.json()["detail"]) == (422, "a note needs text")
    long = server.client.post(f"/t/{ticket_id}/note?{q}", json_body={"text": "x" * 2001})
    assert (long.status, long.json()["detail"]) == (422, "text is longer than 2000 characters")
    name = server.client.post(f"/t/{ticket_id}/acknowledge?{q}", json_body={"name": "n" * 101})
    assert (name.status, name.json()["detail"]) == (422, "name is longer than 100 characters")
    no_text = server.client.post(f"/t/{ticket_id}/note?{q}")
    assert (no_text.status, no_text.json()["detail"]) == (422, "a note needs text")
    bad_json = server.client.request(
        "POST",
        f"/t/{ticket_id}/note?{q}",
        raw=b"{nope",
        headers={"Content-Type": "application/json"},
    )
    assert (bad_json.status, bad_json.json()["detail"]) == (
        400,
        "the request body is not valid JSON",
    )
    xml = server.client.request(
        "POST", f"/t/{ticket_id}/note?{q}", raw=b"<a/>", headers={"Content-Type": "text/xml"}
    )
    assert (xml.status, xml.json()["detail"]) == (400, "send the fields as a form or as JSON")
    not_json = server.client.post(f"/t/{ticket_id}/note?{q}", json_body=["not", "an", "object"])
    assert (not_json.status, not_json.json()["detail"]) == (
        400,
        "the JSON body must be an object of strings (exp, sig, name, text)",
    )
    unknown = "NW-20261122-0000000000"
    other = server.signer.sign(unknown, datetime.now(UTC))
    missing = server.client.get(f"/t/{unknown}?exp={other.exp}&sig={other.sig}")
    assert (missing.status, missing.json()["detail"]) == (404, f"ticket {unknown!r} not found")
    ticket, _ = _stored(server, ticket_id)
    assert ticket.ticket.status.value == "open"


def test_every_ticket_event_kind_has_words_on_the_isp_page() -> None:
    from alerts.tickets import EventKind
    from netwatch.web.ticket.words import EVENT

    missing = [k.value for k in EventKind if k.value not in EVENT]
    assert missing == []
    for words in EVENT.values():
        assert words["vi"]
        assert words["en"]


def test_the_ticket_page_escapes_what_it_shows() -> None:
    from netwatch.web.api import EvidenceView, SubjectView, TicketDetail
    from netwatch.web.templating import templates
    from netwatch.web.ticket.pages import CONTEXT, TicketBody, TicketForms

    now = datetime.now(UTC)
    view = TicketDetail(
        id="T-1",
        incident_key="link:28696/x",
        kind="link_fault",
        route="isp",
        state="open",
        problem_state="down",
        worst_state="down",
        detail=None,
        subject=SubjectView(
            name="x",
            commune="28696",
            commune_name="<script>x</script>",
            link="x",
            circuit="<b>C</b>",
            isp="vnpt",
            isp_name="VNPT",
        ),
        opened_at=now,
        opened_at_local="",
        age_s=0,
        acknowledged=False,
        acknowledged_at=None,
        acknowledged_at_local=None,
        resolved_at=None,
        resolved_at_local=None,
        first_bad_at=None,
        first_bad_at_local=None,
        downtime_s=0,
        escalation_level=0,
        evidence=EvidenceView(
            links=[],
            worst_loss_ratio=None,
            worst_rtt_median_s=None,
            interface_up=None,
            worst_utilization_ratio=None,
            first_loss_ratio=None,
            first_rtt_median_s=None,
        ),
        events=[],
    )
    body = TicketBody(view, "vi", TicketForms("/t/T-1", {"sig": '"><script>'}, ask_name=True))

    def render(macro: str) -> str:
        # As a page renders the ticket body: its macros imported with the page's context.
        source = f'{{% import "ticket/ticket.html" as ticket with context %}}{{{{ {macro} }}}}'
        return templates().env.from_string(source).render({**CONTEXT, "lang": "vi", "t": body})

    forms = render("ticket.forms(t)")
    assert '<input type="hidden" name="sig" value="&#34;&gt;&lt;script&gt;">' in forms
    page = render("ticket.body(t)")
    assert "<script>" not in page
    assert "&lt;script&gt;x&lt;/script&gt; (mã 28696)" in page
    assert "<strong>&lt;b&gt;C&lt;/b&gt;</strong>" in page
    assert page.count("<form") == 3  # the forms, rendered with the body
