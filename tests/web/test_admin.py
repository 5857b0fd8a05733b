"""The provincial IT view (/admin) against a real NetWatch and its real store: login, sessions,
CSRF, open tickets, maintenance windows, health. httpx keeps cookies like a browser does."""

from __future__ import annotations

import re
import secrets
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta

import httpx
import pytest

from netwatch.inventory.models import LOCAL_TZ
from netwatch.store import Store
from netwatch.store.codec import actor_text
from netwatch.web.session import SESSION_COOKIE, cookie_value
from tests.web.conftest import COMMUNE, Server, admin_login, page_csrf


def _token(server: Server, scopes: tuple[str, ...] = ("write",), name: str = "ops") -> str:
    issued = server.with_store(lambda s: s.create_token(name, list(scopes), datetime.now(UTC)))
    return issued.token


@pytest.fixture
def browser(server: Server) -> Iterator[httpx.Client]:
    """A cookie-keeping client that does not follow redirects (the tests look at them)."""
    with server.browser(follow_redirects=False) as client:
        yield client


def test_pages_need_a_login_and_the_login_sets_a_strict_session_cookie(
    server: Server, browser: httpx.Client
) -> None:
    for path in ("/admin", "/admin/maintenance", "/admin/health", "/admin/tickets/x"):
        reply = browser.get(path)
        assert reply.status_code == 303, path
        assert reply.headers["location"].startswith("/admin/login?next=")
    form = browser.get("/admin/login")
    assert form.status_code == 200
    assert '<html lang="vi">' in form.text
    assert 'type="password"' in form.text
    assert "netwatch token create" in form.text

    token = _token(server)
    logged = admin_login(browser, token, "/admin/health")
    assert logged.status_code == 303
    assert logged.headers["location"] == "/admin/health"
    cookie = logged.headers["set-cookie"]
    assert cookie.startswith(f"{SESSION_COOKIE}=v2.")
    for attribute in ("HttpOnly", "SameSite=strict", "Path=/admin", "Max-Age=28800"):
        assert attribute.lower() in cookie.lower(), attribute
    assert token[20:] not in cookie  # the token's secret part is never in the cookie
    health = browser.get("/admin/health")
    assert health.status_code == 200
    assert health.headers["cache-control"] == "no-store"
    assert "Tình trạng NetWatch" in health.text
    assert "Đăng nhập với mã <strong>ops</strong>" in health.text
    # Logged in, the login page goes straight on.
    assert browser.get("/admin/login").headers["location"] == "/admin"


@pytest.mark.parametrize(
    ("scopes", "token", "status", "message"),
    [
        (("write",), "nw_0123456789abcdef_wrong", 401, "Mã truy cập không đúng"),
        (("write",), "not a token", 401, "Mã truy cập không đúng"),
        (("write",), "", 401, "Mã truy cập không đúng"),
        (("read",), None, 403, "không có quyền ghi"),
    ],
)
def test_a_bad_token_gets_a_clear_page_and_no_cookie(
    server: Server,
    browser: httpx.Client,
    scopes: tuple[str, ...],
    token: str | None,
    status: int,
    message: str,
) -> None:
    presented = token if token is not None else _token(server, scopes)
    reply = admin_login(browser, presented)
    assert reply.status_code == status
    assert message in reply.text
    assert "set-cookie" not in reply.headers
    assert browser.get("/admin").status_code == 303


def test_revoking_the_token_ends_its_sessions(server: Server, browser: httpx.Client) -> None:
    token = _token(server)
    assert admin_login(browser, token).status_code == 303
    assert browser.get("/admin").status_code == 200
    token_id = token[3:19]
    server.with_store(lambda s: s.revoke_token(token_id, datetime.now(UTC)))
    assert browser.get("/admin").status_code == 303
    gone = browser.post("/admin/maintenance", data={"csrf": "x"})
    assert gone.status_code == 401
    assert "Phiên đăng nhập không còn hiệu lực" in gone.text


def test_forged_altered_and_expired_cookies_are_refused(
    server: Server, browser: httpx.Client
) -> None:
    token = _token(server)
    token_id = token[3:19]
    session_id, _ = server.with_store(
        lambda s: s.open_session(token_id, datetime.now(UTC), timedelta(hours=8))
    )
    expired_id, _ = server.with_store(
        lambda s: s.open_session(
            token_id, datetime.now(UTC) - timedelta(hours=9), timedelta(hours=8)
        )
    )
    cookie = cookie_value(session_id)
    browser.cookies.set(SESSION_COOKIE, cookie, path="/admin")
    assert browser.get("/admin").status_code == 200  # a session the store knows
    forged = cookie_value(secrets.token_urlsafe(32))  # well formed, unknown to the store
    # The last character changed (to "A" it was a no-op one time in 64).
    altered = cookie[:-1] + ("B" if cookie.endswith("A") else "A")
    for bad in (forged, cookie_value(expired_id), "v1.garbage", altered):
        browser.cookies.clear()
        browser.cookies.set(SESSION_COOKIE, bad, path="/admin")
        assert browser.get("/admin").status_code == 303, bad


def test_open_redirects_after_login_are_refused(server: Server, browser: httpx.Client) -> None:
    token = _token(server)
    for target in ("//evil.example/admin", "https://evil.example/", "/status", "/admin\\@x"):
        browser.cookies.clear()
        assert admin_login(browser, token, target).headers["location"] == "/admin", target


def test_open_tickets_are_listed_with_age_and_acknowledgement(
    server: Server, browser: httpx.Client
) -> None:
    first = server.open_ticket()
    second = server.open_ticket(link="viettel-inet", state="lossy", loss_ratio=0.3)
    admin_login(browser, _token(server))
    page = browser.get("/admin")
    assert page.status_code == 200
    text = page.text
    assert "2 phiếu đang mở, 2 phiếu chưa được tiếp nhận." in text
    assert text.index(first) < text.index(second)  # oldest first
    assert "Xã Lạc Dương" in text
    assert "VNPT Lâm Đồng" in text
    assert "Viettel Lâm Đồng" in text
    assert 'aria-sort="ascending"' in text
    newest = browser.get("/admin?sort=-age").text
    assert newest.index(second) < newest.index(first)
    assert 'aria-sort="descending"' in newest
    bad = browser.get("/admin?sort=commune")
    assert bad.status_code == 422
    assert "Cách sắp xếp" in bad.text
    english = browser.get("/admin?lang=en").text
    assert "2 open tickets, 2 not acknowledged." in english


def test_a_ticket_is_acknowledged_noted_and_resolved_as_provincial_it(
    server: Server, browser: httpx.Client
) -> None:
    ticket_id = server.open_ticket()
    admin_login(browser, _token(server, name="ops-lamdong"))
    page = browser.get(f"/admin/tickets/{ticket_id}")
    assert page.status_code == 200
    assert "LDG-TSLCD-0001" in page.text
    csrf = page_csrf(page.text)
    assert 'name="name"' not in page.text  # the token names the actor

    no_csrf = browser.post(f"/admin/tickets/{ticket_id}/acknowledge", data={"text": "x"})
    assert no_csrf.status_code == 403
    assert "Biểu mẫu" in no_csrf.text
    ticket = server.with_store(lambda s: s.get_ticket(ticket_id))
    assert ticket is not None
    assert ticket.ticket.status.value == "open"

    acked = browser.post(
        f"/admin/tickets/{ticket_id}/acknowledge", data={"csrf": csrf, "text": "Đã gọi VNPT"}
    )
    assert acked.status_code == 303
    assert acked.headers["location"] == f"/admin/tickets/{ticket_id}?done=acknowledge"
    again = browser.post(f"/admin/tickets/{ticket_id}/acknowledge", data={"csrf": csrf})
    assert again.status_code == 409
    assert "đã được tiếp nhận" in again.text
    empty = browser.post(f"/admin/tickets/{ticket_id}/note", data={"csrf": csrf, "text": " "})
    assert empty.status_code == 422
    noted = browser.post(
        f"/admin/tickets/{ticket_id}/note", data={"csrf": csrf, "text": "Chờ kỹ thuật"}
    )
    assert noted.status_code == 303
    resolved = browser.post(f"/admin/tickets/{ticket_id}/resolve", data={"csrf": csrf})
    assert resolved.status_code == 303
    shown = browser.get(resolved.headers["location"]).text
    assert "Đã đóng phiếu" in shown
    assert "ops-lamdong (CNTT tỉnh)" in shown

    events = server.with_store(lambda s: s.ticket_events(ticket_id))
    assert [(e.event.kind.value, actor_text(e.event.actor)) for e in events[1:]] == [
        ("acknowledged", "provincial_it:ops-lamdong"),
        ("note", "provincial_it:ops-lamdong"),
        ("resolved", "provincial_it:ops-lamdong"),
    ]
    missing = browser.get("/admin/tickets/NW-20260101-0000000000")
    assert missing.status_code == 404


def _ticket_body(page: str, ticket_id: str) -> str:
    """The ticket body of a page, without what differs by design between the two pages that
    show it: where the forms post, their hidden fields, the ISP's name field, the footnote."""
    # The admin page adds the ticket's ISP links after the body (id="links").
    end = page.find('<h2 id="links">')
    main = page[page.index('<main id="main">') : end if end >= 0 else page.index("</main>")]
    main = re.sub(r'<input type="hidden"[^>]*>', "", main)
    main = re.sub(
        r'<label for="\w+-name">[^<]*</label><input type="text" id="\w+-name"[^>]*>', "", main
    )
    main = re.sub(rf'action="(/admin/tickets|/t)/{ticket_id}/', 'action="/', main)
    main = re.sub(r"\(UTC\+7\)\. [^<]*</small>", "(UTC+7).</small>", main)
    # The downtime so far, read a moment apart by the two requests.
    return re.sub(r"<strong>[^<]*\d[^<]*</strong></dd></dl>", "<strong>…</strong></dd></dl>", main)


def test_the_admin_ticket_page_shows_the_body_the_isp_sees(
    server: Server, browser: httpx.Client
) -> None:
    # One component (netwatch.web.ticket), rendered with each page: the same summary, evidence,
    # chart, forms and log, with the same stylesheet rules, whichever door the reader came by.
    ticket_id = server.open_ticket()
    admin_login(browser, _token(server))
    for lang in ("vi", "en"):
        admin = browser.get(f"/admin/tickets/{ticket_id}?lang={lang}").text
        isp = server.client.get(
            f"/t/{ticket_id}?{server.link_query(ticket_id)}&lang={lang}",
            headers={"Accept": "text/html"},
        ).text
        assert _ticket_body(admin, ticket_id) == _ticket_body(isp, ticket_id)
        assert "LDG-TSLCD-0001" in _ticket_body(admin, ticket_id)
        for page in (admin, isp):
            head = page[: page.index("</head>")]
            assert head.count("ol.timeline{") == 1  # the body's rules, once, in the head
            # + the admin's logout form (and a revoke form per ISP link opened meanwhile)
            assert page.count("<form") - page.count('/revoke"') == 3 + (page is admin)


def test_maintenance_windows_are_created_and_ended(server: Server, browser: httpx.Client) -> None:
    admin_login(browser, _token(server))
    page = browser.get("/admin/maintenance")
    assert page.status_code == 200
    assert f'<option value="commune:{COMMUNE}">Xã Lạc Dương ({COMMUNE})</option>' in page.text
    assert f'value="link:{COMMUNE}/vnpt-tslcd"' in page.text
    assert 'value="upstream:pop-lac-duong"' in page.text
    csrf = page_csrf(page.text)
    now = datetime.now(LOCAL_TZ)
    fields = {
        "csrf": csrf,
        "target": f"link:{COMMUNE}/vnpt-tslcd",
        "start": f"{now - timedelta(minutes=5):%Y-%m-%dT%H:%M}",
        "end": f"{now + timedelta(hours=2):%Y-%m-%dT%H:%M}",
        "reason": "Thay thiết bị đầu cuối",
    }
    created = browser.post("/admin/maintenance", data=fields)
    assert created.status_code == 303
    windows = server.with_store(Store.maintenance_windows)
    assert len(windows) == 1
    window = windows[0]
    assert (window.scope, window.target, window.reason, window.created_by) == (
        "link",
        f"{COMMUNE}/vnpt-tslcd",
        "Thay thiết bị đầu cuối",
        "token:ops",
    )
    # The form's local time is Vietnam time.
    assert window.starts_at.astimezone(LOCAL_TZ).strftime("%Y-%m-%dT%H:%M") == fields["start"]
    # The API sees the same window.
    assert [w["id"] for w in server.client.get("/api/v1/maintenance").json()] == [window.id]
    listed = browser.get(created.headers["location"]).text
    assert "Đã tạo đợt bảo trì." in listed
    assert "Đang bảo trì" in listed
    assert "Kết thúc ngay" in listed

    ended = browser.post(f"/admin/maintenance/{window.id}/end", data={"csrf": csrf})
    assert ended.status_code == 303
    assert server.with_store(Store.maintenance_windows) == []
    twice = browser.post(f"/admin/maintenance/{window.id}/end", data={"csrf": csrf})
    assert twice.status_code == 409
    for missing in ("999", "abc", "9" * 30):
        reply = browser.post(f"/admin/maintenance/{missing}/end", data={"csrf": csrf})
        assert reply.status_code == 404, missing
    forged = browser.post(f"/admin/maintenance/{window.id}/end", data={"csrf": "0" * 32})
    assert forged.status_code == 403


@pytest.mark.parametrize(
    ("change", "message"),
    [
        ({"target": ""}, "Hãy chọn phạm vi bảo trì."),
        ({"target": "commune:99999"}, "Phạm vi không hợp lệ"),
        ({"target": "isp:fpt"}, "Phạm vi không hợp lệ"),
        ({"target": "province:abc"}, "Phạm vi không hợp lệ"),
        ({"target": "planet:earth"}, "Hãy chọn phạm vi bảo trì."),
        ({"start": "tomorrow"}, "không phải ngày giờ"),
        ({"end": "2026-13-45T99:00"}, "không phải ngày giờ"),
        ({"end": "2020-01-01T00:00", "start": "2019-01-01T00:00"}, "trong quá khứ"),
        ({"end": "2020-01-01T00:00"}, "phải sau thời điểm bắt đầu"),
        ({"reason": "   "}, "Hãy ghi lý do bảo trì."),
        ({"reason": "x" * 501}, "dài quá 500 ký tự"),
    ],
)
def test_a_bad_maintenance_form_is_shown_again_with_a_message(
    server: Server, browser: httpx.Client, change: dict[str, str], message: str
) -> None:
    admin_login(browser, _token(server))
    csrf = page_csrf(browser.get("/admin/maintenance").text)
    now = datetime.now(LOCAL_TZ)
    fields = {
        "csrf": csrf,
        "target": "province:68",
        "start": f"{now:%Y-%m-%dT%H:%M}",
        "end": f"{now + timedelta(hours=1):%Y-%m-%dT%H:%M}",
        "reason": "Nâng cấp",
        **change,
    }
    reply = browser.post("/admin/maintenance", data=fields)
    assert reply.status_code == 422
    assert message in reply.text
    assert 'role="alert"' in reply.text
    if change.get("reason", "").strip():
        assert 'value="xxxx' in reply.text  # the form keeps what was typed
    assert server.with_store(Store.maintenance_windows) == []


def test_the_health_page_tells_rounds_outbox_and_database(
    server: Server, browser: httpx.Client
) -> None:
    server.open_ticket()
    admin_login(browser, _token(server))
    text = browser.get("/admin/health").text
    assert "Cơ sở dữ liệu" in text
    assert "Hoạt động" in text
    assert "Ping (ICMP)" in text
    assert "Chưa chạy" in text
    assert "Hàng đợi thông báo" in text
    assert re.search(r"<dt>Phiếu đang mở</dt><dd>1</dd>", text)
    english = browser.get("/admin/health?lang=en").text
    assert '<html lang="en">' in english
    assert "Notification outbox" in english


def test_logout_needs_the_form_token_and_ends_the_session(
    server: Server, browser: httpx.Client
) -> None:
    admin_login(browser, _token(server))
    page = browser.get("/admin").text
    assert browser.post("/admin/logout", data={"csrf": "bad"}).status_code == 403
    assert browser.get("/admin").status_code == 200
    out = browser.post("/admin/logout", data={"csrf": page_csrf(page)})
    assert out.status_code == 303
    assert out.headers["location"] == "/admin/login?bye=1"
    assert f'{SESSION_COOKIE}=""' in out.headers["set-cookie"]
    assert browser.get("/admin").status_code == 303
    assert "Bạn đã đăng xuất." in browser.get("/admin/login?bye=1").text
