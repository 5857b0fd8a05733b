"""The ticket, availability and maintenance API, with tokens, against a real NetWatch."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from zoneinfo import ZoneInfo

import pytest

from netwatch.cli import main
from netwatch.store import StateChange, Store
from tests.web.conftest import LINK_ID, Server

LOCAL = ZoneInfo("Asia/Ho_Chi_Minh")
UNAUTHORIZED = "missing API token: send 'Authorization: Bearer <token>'"


def _token(server: Server, scopes: tuple[str, ...] = ("write",), name: str = "ops") -> str:
    issued = server.with_store(lambda s: s.create_token(name, scopes, datetime.now(UTC)))
    return issued.token


def test_tickets_are_listed_with_age_and_acknowledgement(server: Server) -> None:
    first = server.open_ticket()
    second = server.open_ticket("viettel-inet", "lossy", loss_ratio=0.3)
    token = _token(server)
    assert server.client.post(f"/api/v1/tickets/{first}/acknowledge", token=token).status == 200

    listed = server.client.get("/api/v1/tickets").json()
    assert {t["id"] for t in listed} == {first, second}
    by_id = {t["id"]: t for t in listed}
    assert by_id[first]["acknowledged"] is True
    assert by_id[first]["acknowledged_at_local"].endswith("+07:00")
    assert by_id[second]["acknowledged"] is False
    assert all(t["age_s"] >= 0 for t in listed)
    assert by_id[second]["subject"]["isp_name"] == "Viettel Lâm Đồng"

    open_only = server.client.get("/api/v1/tickets?state=open").json()
    assert [t["id"] for t in open_only] == [second]
    both = server.client.get("/api/v1/tickets?state=open&state=acknowledged&limit=1").json()
    assert len(both) == 1
    today = datetime.now(LOCAL).date().isoformat()
    assert len(server.client.get(f"/api/v1/tickets?since={today}").json()) == 2
    tomorrow = (datetime.now(LOCAL) + timedelta(days=1)).date().isoformat()
    assert server.client.get(f"/api/v1/tickets?since={tomorrow}").json() == []

    detail = server.client.get(f"/api/v1/tickets/{first}").json()
    assert [(e["kind"], e["actor"]) for e in detail["events"]] == [
        ("opened", "netwatch"),
        ("acknowledged", "provincial_it:ops"),
    ]


def test_bad_ticket_queries_get_clear_4xx(server: Server) -> None:
    bad_since = server.client.get("/api/v1/tickets?since=yesterday")
    assert bad_since.status == 422
    assert bad_since.json()["detail"].startswith("since: 'yesterday' is not a month (2026-11)")
    bad_state = server.client.get("/api/v1/tickets?state=closed")
    assert bad_state.status == 422
    assert "'open', 'acknowledged' or 'resolved'" in bad_state.json()["detail"][0]["msg"]
    assert server.client.get("/api/v1/tickets?limit=0").status == 422
    missing = server.client.get("/api/v1/tickets/NW-nope")
    assert missing.status == 404
    assert missing.json() == {"detail": "ticket 'NW-nope' not found"}


def test_write_endpoints_need_a_valid_write_token(server: Server) -> None:
    ticket_id = server.open_ticket()
    path = f"/api/v1/tickets/{ticket_id}/notes"
    body = {"text": "Đã gọi VNPT"}

    missing = server.client.post(path, json_body=body, anonymous=True)
    assert (missing.status, missing.json()["detail"]) == (401, UNAUTHORIZED)
    assert missing.headers["www-authenticate"].startswith("Bearer")
    malformed = server.client.post(path, json_body=body, token="abc")
    assert (malformed.status, malformed.json()["detail"]) == (
        401,
        "invalid API token: not a NetWatch token (nw_…)",
    )
    good = _token(server)
    forged = good[:-4] + ("AAAA" if not good.endswith("AAAA") else "BBBB")
    wrong = server.client.post(path, json_body=body, token=forged)
    assert (wrong.status, wrong.json()["detail"]) == (401, "invalid API token: no such token")
    reader = _token(server, ("read",), "dashboard")
    scope = server.client.post(path, json_body=body, token=reader)
    assert (scope.status, scope.json()["detail"]) == (403, "API token lacks the 'write' scope")

    info = server.with_store(Store.list_tokens)
    ops = next(t for t in info if t.name == "ops")
    server.with_store(lambda s: s.revoke_token(ops.id, datetime.now(UTC)))
    revoked = server.client.post(path, json_body=body, token=good)
    assert (revoked.status, revoked.json()["detail"]) == (401, "API token revoked")

    events = server.with_store(lambda s: s.ticket_events(ticket_id))
    assert [e.event.kind.value for e in events] == ["opened"]  # nothing refused was written


def test_notes_and_resolve_through_the_api(server: Server) -> None:
    ticket_id = server.open_ticket()
    token = _token(server, name="truc-ca")
    noted = server.client.post(
        f"/api/v1/tickets/{ticket_id}/notes", json_body={"text": "Đã gọi VNPT"}, token=token
    )
    assert noted.status == 200
    assert noted.json()["events"][-1] == {
        **noted.json()["events"][-1],
        "kind": "note",
        "actor": "provincial_it:truc-ca",
        "text": "Đã gọi VNPT",
    }
    empty = server.client.post(
        f"/api/v1/tickets/{ticket_id}/notes", json_body={"text": ""}, token=token
    )
    assert empty.status == 422
    assert empty.json()["detail"][0]["msg"] == "String should have at least 1 character"
    blank = server.client.post(
        f"/api/v1/tickets/{ticket_id}/notes", json_body={"text": "   "}, token=token
    )
    assert (blank.status, blank.json()["detail"]) == (422, "a note needs text")
    resolved = server.client.post(
        f"/api/v1/tickets/{ticket_id}/resolve", json_body={"text": "VNPT đã xử lý"}, token=token
    )
    assert (resolved.status, resolved.json()["state"]) == (200, "resolved")
    again = server.client.post(f"/api/v1/tickets/{ticket_id}/resolve", token=token)
    assert (again.status, again.json()["detail"]) == (
        409,
        f"ticket {ticket_id} is already resolved",
    )
    ack = server.client.post(f"/api/v1/tickets/{ticket_id}/acknowledge", token=token)
    assert (ack.status, ack.json()["detail"]) == (409, f"ticket {ticket_id} is already resolved")
    unknown = server.client.post("/api/v1/tickets/NW-x/resolve", token=token)
    assert (unknown.status, unknown.json()["detail"]) == (404, "ticket 'NW-x' not found")
    stored = server.with_store(lambda s: s.get_ticket(ticket_id))
    assert stored is not None
    assert stored.ticket.status.value == "resolved"


def _history(server: Server) -> None:
    def at(day: int, hour: int) -> datetime:
        return datetime(2025, 10, day, hour, tzinfo=LOCAL)

    changes = [
        StateChange(LINK_ID, "ok", at(1, 0)),
        StateChange(LINK_ID, "down", at(10, 0), "interface_down"),
        StateChange(LINK_ID, "slow", at(10, 2)),
        StateChange(LINK_ID, "ok", at(10, 3)),
    ]
    server.with_store(lambda s: s.record_transitions(changes))


def test_availability_of_a_link_for_a_month_and_for_dates(server: Server) -> None:
    _history(server)
    month_s = 31 * 86400
    reply = server.client.get("/api/v1/links/24848/vnpt-tslcd/availability?start=2025-10")
    assert reply.status == 200
    a = reply.json()
    assert a["subject"] == LINK_ID
    assert a["commune_name"] == "Xã Lạc Dương"
    assert a["start_local"] == "2025-10-01T00:00:00+07:00"
    assert a["end_local"] == "2025-11-01T00:00:00+07:00"
    assert a["down_s"] == pytest.approx(7200)
    assert a["degraded_s"] == pytest.approx(3600)
    assert a["ok_s"] == pytest.approx(month_s - 10800)
    assert a["unknown_s"] == pytest.approx(0)
    assert a["availability_ratio"] == pytest.approx(1 - 7200 / month_s)

    days = server.client.get(
        "/api/v1/links/24848/vnpt-tslcd/availability?start=2025-09-30&end=2025-10-10"
    ).json()
    assert days["unknown_s"] == pytest.approx(86400)  # 30 September: nothing known
    assert days["down_s"] == pytest.approx(7200)  # the end date counts through its last hour
    assert days["ok_s"] == pytest.approx(10 * 86400 - 10800)

    exact = server.client.get(
        "/api/v1/links/24848/vnpt-tslcd/availability"
        "?start=2025-10-10T01:00:00%2B07:00&end=2025-10-10T02:30"
    ).json()
    assert (exact["down_s"], exact["degraded_s"]) == (pytest.approx(3600), pytest.approx(1800))
    quiet = server.client.get("/api/v1/links/24848/viettel-inet/availability?start=2025-10").json()
    assert quiet["availability_ratio"] is None
    assert quiet["unknown_s"] == pytest.approx(month_s)


@pytest.mark.parametrize(
    ("query", "status", "detail"),
    [
        (
            "start=2025-13",
            422,
            "start: '2025-13' is not a month (2026-11), a date (2026-11-01) "
            "or a date and time (2026-11-01T08:00, local time unless an offset is given)",
        ),
        (
            "start=2025-10&end=soon",
            422,
            "end: 'soon' is not a month (2026-11), a date "
            "(2026-11-01) or a date and time (2026-11-01T08:00, local time unless an offset is given)",
        ),
        ("start=2025-10-05&end=2025-10-01", 422, "end must be after start"),
    ],
)
def test_bad_availability_periods_get_422(
    server: Server, query: str, status: int, detail: str
) -> None:
    reply = server.client.get(f"/api/v1/links/24848/vnpt-tslcd/availability?{query}")
    assert (reply.status, reply.json()["detail"]) == (status, detail)


def test_availability_of_unknown_links_gets_404(server: Server) -> None:
    commune = server.client.get("/api/v1/links/99999/vnpt/availability")
    assert (commune.status, commune.json()["detail"]) == (
        404,
        "commune '99999' is not monitored by this NetWatch",
    )
    link = server.client.get("/api/v1/links/24848/fpt/availability")
    assert (link.status, link.json()["detail"]) == (404, "commune 24848 has no link 'fpt'")
    default = server.client.get("/api/v1/links/24848/vnpt-tslcd/availability")
    assert default.status == 200  # this month so far


def test_maintenance_windows_are_created_listed_and_cancelled(server: Server) -> None:
    token = _token(server)
    body = {
        "scope": {"commune": "24848"},
        "start": "2030-11-22T22:00",
        "end": "2030-11-23T02:00",
        "reason": "Nâng cấp thiết bị",
    }
    assert server.client.post("/api/v1/maintenance", json_body=body, anonymous=True).status == 401
    created = server.client.post("/api/v1/maintenance", json_body=body, token=token)
    assert created.status == 201
    window = created.json()
    assert (window["scope"], window["target"]) == ("commune", "24848")
    assert window["start_local"] == "2030-11-22T22:00:00+07:00"
    assert window["created_by"] == "token:ops"
    assert [w["id"] for w in server.client.get("/api/v1/maintenance").json()] == [window["id"]]
    stored = server.with_store(Store.maintenance_windows)
    assert [(w.id, w.reason) for w in stored] == [(window["id"], "Nâng cấp thiết bị")]

    path = f"/api/v1/maintenance/{window['id']}"
    assert server.client.request("DELETE", path, anonymous=True).status == 401
    assert server.client.request("DELETE", path, token=token).status == 204
    again = server.client.request("DELETE", path, token=token)
    assert (again.status, again.json()["detail"]) == (
        409,
        f"maintenance window {window['id']} is already cancelled",
    )
    missing = server.client.request("DELETE", "/api/v1/maintenance/999", token=token)
    assert (missing.status, missing.json()["detail"]) == (404, "maintenance window 999 not found")
    assert server.client.get("/api/v1/maintenance").json() == []


@pytest.mark.parametrize(
    ("change", "detail"),
    [
        ({"scope": {"commune": "99999"}}, "scope: commune '99999' is not monitored"),
        (
            {"scope": {"link": "24848/fpt"}},
            "scope: link '24848/fpt' is not monitored (write CODE/LINK-ID)",
        ),
        ({"scope": {"isp": "fpt"}}, "scope: isp 'fpt' is not in the configuration"),
        ({"scope": {"province": 1}}, "scope: province 1 has no monitored commune"),
        ({"scope": {}}, "scope: name exactly one of province, commune, link, isp, upstream"),
        (
            {"scope": {"isp": "vnpt", "commune": "24848"}},
            "scope: name exactly one of province, commune, link, isp, upstream",
        ),
        ({"end": "2030-11-22T21:00"}, "end must be after start"),
    ],
)
def test_bad_maintenance_windows_get_422(
    server: Server, change: dict[str, object], detail: str
) -> None:
    body = {
        "scope": {"link": LINK_ID},
        "start": "2030-11-22T22:00",
        "end": "2030-11-23T02:00",
        "reason": "Bảo trì",
        **change,
    }
    reply = server.client.post("/api/v1/maintenance", json_body=body, token=_token(server))
    assert (reply.status, reply.json()["detail"]) == (422, detail)
    assert server.with_store(Store.maintenance_windows) == []


def test_maintenance_with_a_bad_date_gets_a_readable_422(server: Server) -> None:
    body = {"scope": {"isp": "vnpt"}, "start": "tomorrow", "end": "2030-11-23", "reason": "x"}
    reply = server.client.post("/api/v1/maintenance", json_body=body, token=_token(server))
    assert reply.status == 422
    error = reply.json()["detail"][0]
    assert error["loc"] == ["body", "start"]
    assert "valid datetime" in error["msg"]


def test_the_openapi_document_lists_every_endpoint_with_tags(server: Server) -> None:
    doc = server.client.get("/openapi.json").json()
    tags = {
        (path, method): op["tags"]
        for path, ops in doc["paths"].items()
        for method, op in ops.items()
    }
    assert tags[("/api/v1/tickets", "get")] == ["tickets"]
    assert tags[("/api/v1/tickets/{ticket_id}/notes", "post")] == ["tickets"]
    assert tags[("/api/v1/links/{commune}/{link}/availability", "get")] == ["links"]
    assert tags[("/api/v1/maintenance", "post")] == ["maintenance"]
    assert tags[("/api/v1/maintenance/{window_id}", "delete")] == ["maintenance"]
    assert tags[("/t/{ticket_id}/acknowledge", "post")] == ["isp"]
    assert doc["components"]["securitySchemes"]["token"]["scheme"] == "bearer"
    assert doc["paths"]["/api/v1/maintenance"]["post"]["security"] == [{"token": []}]


def test_token_cli_creates_lists_and_revokes(
    server: Server, capsys: pytest.CaptureFixture[str]
) -> None:
    data = ["--data-dir", str(server.data_dir)]
    assert main(["token", "create", "ops", *data]) == 0
    token = capsys.readouterr().out.strip()
    assert token.startswith("nw_")
    ticket_id = server.open_ticket()
    ok = server.client.post(f"/api/v1/tickets/{ticket_id}/acknowledge", token=token)
    assert ok.status == 200

    assert main(["token", "list", *data]) == 0
    listed = capsys.readouterr().out
    token_id = token.split("_")[1]
    assert f"{token_id}  ops  scopes=write" in listed
    assert "active" in listed
    assert token not in listed

    assert main(["token", "revoke", token_id, *data]) == 0
    assert capsys.readouterr().out == f"token {token_id} revoked\n"
    assert main(["token", "revoke", "nope", *data]) == 1
    assert "no token with id nope" in capsys.readouterr().err
    refused = server.client.post(
        f"/api/v1/tickets/{ticket_id}/notes", json_body={"text": "x"}, token=token
    )
    assert (refused.status, refused.json()["detail"]) == (401, "API token revoked")


def test_a_window_made_through_the_api_suppresses_tickets_until_cancelled(server: Server) -> None:
    token = _token(server)
    now = datetime.now(UTC)
    body = {
        "scope": {"commune": "24848"},
        "start": (now - timedelta(minutes=5)).isoformat(),
        "end": (now + timedelta(hours=1)).isoformat(),
        "reason": "Thay bộ định tuyến",
    }
    window = server.client.post("/api/v1/maintenance", json_body=body, token=token).json()
    with pytest.raises(AssertionError, match="opened no ticket"):
        server.open_ticket(timeout_s=3)  # the alerting loop evaluates every 0.2 s meanwhile
    assert server.client.get("/api/v1/tickets").json() == []
    deleted = server.client.request("DELETE", f"/api/v1/maintenance/{window['id']}", token=token)
    assert deleted.status == 204
    assert server.wait_for_ticket(f"link:{LINK_ID}")
