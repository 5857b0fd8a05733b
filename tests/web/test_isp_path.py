"""The path trace stored with a ticket, on the ISP's page and in its JSON; never on the public
status page. Against a real NetWatch and its real SQLite store."""

from __future__ import annotations

from dataclasses import replace
from datetime import UTC, datetime, timedelta

from alerts.model import PathHop, PathTrace
from alerts.subject import SubjectKey
from netwatch.store import EventRecord, Store, TicketRecord, TicketStatus
from netwatch.store.codec import path_json
from netwatch.store.types import JsonValue
from tests.web.conftest import COMMUNE, Server

HTML = {"Accept": "text/html"}
TICKET = "NW-PATH-0001"
AT = datetime(2026, 12, 4, 1, 30, 5, tzinfo=UTC)  # 08:30 in Vietnam
PATH = PathTrace(
    target="10.68.10.5",
    at=AT,
    hops=(
        PathHop(1, "10.68.0.2", "Điểm tham chiếu của NetWatch", 0.00041, 3, 3),
        PathHop(2, "10.68.3.1", "POP Viettel Lạc Dương", 0.0123, 3, 2),
        PathHop(3, None, "", None, 3, 0),
    ),
    reached=False,
)


def _store_ticket(server: Server, path: PathTrace | None) -> str:
    """A Viettel link ticket as the alerting side stores it, with the path in "first"."""
    first: dict[str, JsonValue] = {
        "loss_ratio": 1.0,
        "rtt_median_s": None,
        "interface_up": None,
        "utilization_ratio": None,
    }
    if path is not None:
        first["path"] = path_json(path)
    evidence: dict[str, JsonValue] = {
        "kind": "link_fault",
        "state": "down",
        "worst_state": "down",
        "detail": "no_echo",
        "links": [f"{COMMUNE}/viettel-inet"],
        "first_bad_at": (AT - timedelta(minutes=2)).isoformat(),
        "bad_since": (AT - timedelta(minutes=2)).isoformat(),
        "downtime_closed_s": 0.0,
        "first": first,
        "worst": first,
    }
    ticket = TicketRecord(
        id=TICKET,
        incident_key=SubjectKey.parse(f"link:{COMMUNE}/viettel-inet"),
        kind="link_fault",
        route="isp",
        isp="viettel",
        state=TicketStatus.OPEN,
        opened_at=AT,
        acknowledged_at=None,
        resolved_at=None,
        evidence=evidence,
        escalation_level=1,
        last_notified_at=None,
        book={},
    )
    opened = EventRecord(TICKET, 0, AT, "netwatch", "opened", "down (no_echo)")

    async def create(store: Store) -> None:
        await store.apply_ticket_changes([ticket], [opened], [], AT)

    server.with_store(create)
    return TICKET


def test_the_isp_page_shows_where_the_path_stops(server: Server) -> None:
    ticket_id = _store_ticket(server, PATH)
    url = f"/t/{ticket_id}?{server.link_query(ticket_id)}"
    page = server.client.get(url, headers=HTML).text
    for text in (
        "<h2>Đường đi khi mở phiếu</h2>",
        "<strong>Đường đi dừng sau: POP Viettel Lạc Dương (10.68.3.1)</strong>",
        '<table class="hops">',
        '<tr><th scope="row">1</th><td>10.68.0.2</td><td>Điểm tham chiếu của NetWatch</td>'
        "<td>3/3</td><td>0,41\u00a0ms</td></tr>",
        '<tr class="stop"><th scope="row">2</th><td>10.68.3.1</td>'
        "<td>POP Viettel Lạc Dương</td><td>2/3</td><td>12,3\u00a0ms</td></tr>",
        '<tr><th scope="row">3</th><td>*</td><td>không phản hồi</td><td>0/3</td><td>—</td></tr>',
        "Đo từ NetWatch lúc 08:30 04/12/2026.",
    ):
        assert text in page, text
    english = server.client.get(url + "&lang=en", headers=HTML).text
    assert "<strong>The path stops after: POP Viettel Lạc Dương (10.68.3.1)</strong>" in english
    assert "<td>no answer</td>" in english
    # The JSON view carries the same typed path.
    view = server.client.get(url).json()
    assert view["evidence"]["path"]["target"] == ""  # the monitored address is left out
    assert view["evidence"]["path"]["reached"] is False
    assert [h["address"] for h in view["evidence"]["path"]["hops"]] == [
        "10.68.0.2",
        "10.68.3.1",
        None,
    ]


def test_a_path_that_got_through_names_the_line_without_its_address(server: Server) -> None:
    target = PathHop(3, "10.68.10.5", "Xã Lạc Dương — viettel-inet", 0.0151, 3, 3)
    ticket_id = _store_ticket(server, replace(PATH, hops=(*PATH.hops[:2], target), reached=True))
    url = f"/t/{ticket_id}?{server.link_query(ticket_id)}"
    page = server.client.get(url, headers=HTML).text
    assert "Đường đi thông suốt đến Xã Lạc Dương — viettel-inet: đích đã phản hồi." in page
    assert (
        '<tr><th scope="row">3</th><td>—</td><td>Xã Lạc Dương — viettel-inet</td>'
        "<td>3/3</td><td>15,1\u00a0ms</td></tr>"
    ) in page
    assert "10.68.3.1" in page  # the ISP's router on the way
    assert "10.68.10.5" not in page
    assert "10.68.10.5" not in server.client.get(url).text


def test_a_ticket_without_a_path_has_no_path_section(server: Server) -> None:
    ticket_id = _store_ticket(server, None)
    page = server.client.get(f"/t/{ticket_id}?{server.link_query(ticket_id)}", headers=HTML).text
    assert "Đường đi khi mở phiếu" not in page
    view = server.client.get(f"/t/{ticket_id}?{server.link_query(ticket_id)}").json()
    assert view["evidence"]["path"] is None


def test_the_public_status_page_never_shows_the_path(server: Server) -> None:
    _store_ticket(server, PATH)
    for url in ("/status", f"/status/xa/{COMMUNE}", f"/status/xa/{COMMUNE}?lang=en"):
        reply = server.client.get(url, headers=HTML)
        assert reply.status == 200, url
        for hidden in ("10.68.", "POP Viettel Lạc Dương", "Đường đi dừng sau"):
            assert hidden not in reply.text, (url, hidden)
