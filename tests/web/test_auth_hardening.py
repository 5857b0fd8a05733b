"""Issue 15's authentication findings against a real NetWatch and its real SQLite store: logout
really ends a session, the login form's CSRF, CSRF never from the URL, Secure cookies from the
configured public URL, failed logins and bearer tokens logged and rate-limited (a fake clock),
ISP links revocable one by one and kept out of the access log, public notes said so."""

from __future__ import annotations

import logging
import re
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path

import httpx
import pytest

from netwatch.inventory import Inventory
from netwatch.web.auth import AuthGuard
from netwatch.web.session import LOGIN_CSRF_COOKIE, SESSION_COOKIE, SessionSigner
from tests.servers import in_process, uvicorn_thread
from tests.waiting import wait_until
from tests.web.conftest import (
    COMMUNE,
    LINK_SECRET,
    Server,
    admin_login,
    login_csrf,
    netwatch_app,
    page_csrf,
)


def _token(server: Server, scopes: tuple[str, ...] = ("write",), name: str = "ops") -> str:
    issued = server.with_store(lambda s: s.create_token(name, list(scopes), datetime.now(UTC)))
    return issued.token


@pytest.fixture
def browser(server: Server) -> Iterator[httpx.Client]:
    """A cookie-keeping client that does not follow redirects."""
    with server.browser(follow_redirects=False) as client:
        yield client


def _login(browser: httpx.Client, token: str) -> httpx.Response:
    return admin_login(browser, token)


# --- finding 3: logout ends the session on the server -----------------------------------------


def test_a_session_cookie_replayed_after_logout_is_refused(
    server: Server, browser: httpx.Client
) -> None:
    assert _login(browser, _token(server)).status_code == 303
    page = browser.get("/admin")
    assert page.status_code == 200
    copied = browser.cookies.get(SESSION_COOKIE, path="/admin")
    assert copied
    out = browser.post("/admin/logout", data={"csrf": page_csrf(page.text)})
    assert out.status_code == 303
    # An attacker (or the same browser) presents the copied cookie again.
    with server.browser(follow_redirects=False) as replay:
        replay.cookies.set(SESSION_COOKIE, copied, path="/admin")
        again = replay.get("/admin")
        assert again.status_code == 303
        assert again.headers["location"].startswith("/admin/login")
        assert (
            replay.post("/admin/maintenance", data={"csrf": page_csrf(page.text)}).status_code
            == 401
        )


# --- finding 4: the admin session is not made of the link secret ------------------------------


def test_knowing_the_link_secret_forges_no_session(server: Server, browser: httpx.Client) -> None:
    # Before: the session cookie was HMAC(key derived from the link secret): whoever knew (or
    # guessed) the secret could make one. Now a session is a random id the store must know.
    import hashlib
    import hmac

    token_id = _token(server)[3:19]
    key = hmac.new(LINK_SECRET.encode(), b"netwatch-admin-session-key", hashlib.sha256).digest()
    exp, nonce = int((datetime.now(UTC) + timedelta(hours=1)).timestamp()), "n" * 24
    message = f"netwatch-admin-session|v1|{token_id}|{exp}|{nonce}".encode()
    mac = hmac.new(key, message, hashlib.sha256).hexdigest()
    browser.cookies.set(SESSION_COOKIE, f"v1.{token_id}.{exp}.{nonce}.{mac}", path="/admin")
    assert browser.get("/admin").status_code == 303
    # The login form's key is derived with its own label: it is not the link key.
    assert (
        SessionSigner.from_link_secret(LINK_SECRET).login_csrf("x" * 20)
        != hmac.new(
            LINK_SECRET.encode(), b"netwatch-admin-login-csrf|" + b"x" * 20, hashlib.sha256
        ).hexdigest()[:32]
    )


# --- finding 16: CSRF only from the body, and on the login form -------------------------------


def test_a_csrf_token_in_the_query_string_is_refused(server: Server, browser: httpx.Client) -> None:
    assert _login(browser, _token(server)).status_code == 303
    csrf = page_csrf(browser.get("/admin/maintenance").text)
    form = {"target": "province", "start": "", "end": "", "reason": "x"}
    in_url = browser.post(f"/admin/maintenance?csrf={csrf}", data=form)
    assert in_url.status_code == 403
    assert "Biểu mẫu đã cũ" in in_url.text
    # The same token in the body is accepted (the form is then judged on its fields: 422).
    assert browser.post("/admin/maintenance", data={**form, "csrf": csrf}).status_code == 422


def test_the_login_form_needs_its_csrf_field_and_cookie(
    server: Server, browser: httpx.Client
) -> None:
    token = _token(server)
    # A cross-site form (no pre-session cookie, no field) opens no session.
    bare = browser.post("/admin/login", data={"token": token, "next": "/admin"})
    assert bare.status_code == 403
    assert "Trang đăng nhập đã cũ" in bare.text
    assert SESSION_COOKIE not in bare.headers.get("set-cookie", "")
    # A field from another browser's form does not match this browser's cookie.
    with server.browser(follow_redirects=False) as other:
        foreign = login_csrf(other)
    browser.get("/admin/login")
    assert browser.cookies.get(LOGIN_CSRF_COOKIE, path="/admin")
    crossed = browser.post("/admin/login", data={"token": token, "login_csrf": foreign})
    assert crossed.status_code == 403
    assert _login(browser, token).status_code == 303


# --- finding 6: Secure from the configuration, not from what uvicorn sees ---------------------


def _set_cookie_on_login(tmp_path: Path, inventory: Inventory, public_url: str) -> str:
    assert inventory.notifications is not None
    notifications = inventory.notifications.model_copy(update={"public_url": public_url})
    configured = inventory.model_copy(update={"notifications": notifications})
    data_dir = tmp_path / f"data-{len(public_url)}"
    data_dir.mkdir()
    app = netwatch_app(tmp_path, configured, data_dir)
    with in_process(app) as process:
        token = process.call(
            lambda: app.state.runtime.store.create_token("ops", ["write"], datetime.now(UTC))
        ).token
        # Plain http, as NetWatch sees it behind a TLS-terminating proxy.
        with process.client(base_url="http://netwatch.internal", follow_redirects=False) as b:
            form = b.get("/admin/login")
            assert form.status_code == 200
            csrf = page_csrf(form.text.replace("login_csrf", "csrf"))
            # The browser speaks https to the proxy: it sends its (Secure) cookie back.
            nonce = form.headers["set-cookie"].split(";")[0].split("=", 1)[1]
            reply = b.post(
                "/admin/login",
                data={"token": token, "login_csrf": csrf},
                headers={"Cookie": f"{LOGIN_CSRF_COOKIE}={nonce}"},
            )
            assert reply.status_code == 303
            return str(reply.headers["set-cookie"]) + "|" + str(form.headers["set-cookie"])


def test_cookies_are_secure_unless_the_public_url_is_plain_http_on_loopback(
    tmp_path: Path, inventory: Inventory
) -> None:
    behind_proxy = _set_cookie_on_login(tmp_path, inventory, "https://netwatch.lamdong.example")
    assert behind_proxy.count("; Secure") == 3  # session, login cookie (set, then deleted)
    local = _set_cookie_on_login(tmp_path, inventory, "http://127.0.0.1:8080")
    assert "Secure" not in local


# --- finding 8: failed logins and bearer tokens: logged, counted, rate-limited ---------------


class FakeClock:
    """Seconds that move only when the test says so."""

    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now


def test_failed_logins_are_logged_and_limited_per_address(
    server: Server, browser: httpx.Client, caplog: pytest.LogCaptureFixture
) -> None:
    clock = FakeClock()
    server.app.state.auth_guard = AuthGuard(clock=clock)
    wrong = "nw_0123456789abcdef_not-the-real-secret-part"
    caplog.set_level(logging.WARNING, logger="netwatch.web.auth")
    for _ in range(10):
        assert _login(browser, wrong).status_code == 401
    limited = _login(browser, wrong)
    assert limited.status_code == 429
    assert int(limited.headers["retry-after"]) >= 1
    assert "Quá nhiều lần đăng nhập sai" in limited.text
    # Even the right token waits: the limit is judged before the token is looked at.
    right = _token(server)
    assert _login(browser, right).status_code == 429
    failures = [r for r in caplog.records if r.name == "netwatch.web.auth"]
    assert len(failures) == 10
    line = failures[0].getMessage()
    assert failures[0].levelno == logging.WARNING
    assert "kind=login" in line
    assert "token_id=0123456789abcdef" in line
    assert "address=" in line
    assert "not-the-real-secret-part" not in caplog.text  # never the token itself
    metrics = server.client.get("/metrics").text
    assert 'netwatch_auth_failures_total{kind="login"} 10.0' in metrics
    clock.now += 60  # a minute later the bucket has refilled
    assert _login(browser, right).status_code == 303


def test_wrong_bearer_tokens_are_logged_and_limited(
    server: Server, caplog: pytest.LogCaptureFixture
) -> None:
    clock = FakeClock()
    server.app.state.auth_guard = AuthGuard(clock=clock)
    caplog.set_level(logging.WARNING, logger="netwatch.web.auth")
    statuses = [
        server.client.post("/api/v1/maintenance", json_body={}, token=f"nw_{i:016x}_guess").status
        for i in range(12)
    ]
    assert statuses == [401] * 10 + [429] * 2
    reply = server.client.post("/api/v1/maintenance", json_body={}, token="nw_x")
    assert reply.status == 429
    assert int(reply.headers["retry-after"]) >= 1
    lines = [r.getMessage() for r in caplog.records if r.name == "netwatch.web.auth"]
    assert len(lines) == 10
    assert all("kind=bearer" in line for line in lines)
    assert "_guess" not in caplog.text
    assert 'netwatch_auth_failures_total{kind="bearer"} 10.0' in server.client.get("/metrics").text
    clock.now += 30  # half the burst back: five more tries
    statuses = [
        server.client.post("/api/v1/maintenance", json_body={}, token="nw_bad").status
        for _ in range(6)
    ]
    assert statuses == [401] * 5 + [429]


def test_the_failure_limit_and_count_are_shared_by_every_web_worker(
    tmp_path: Path, inventory: Inventory
) -> None:
    # Two web workers (two apps, one database): failures on either spend the same buckets, so
    # an address gets FAILURE_BURST tries in all, not per worker; each worker's /metrics (the
    # core's, in process mode) counts both workers' failures.
    data_dir = tmp_path / "data"
    data_dir.mkdir()
    first, second = (netwatch_app(tmp_path, inventory, data_dir) for _ in range(2))
    clock = FakeClock()
    first.state.auth_guard = AuthGuard(clock=clock)
    second.state.auth_guard = AuthGuard(clock=clock)
    with (
        in_process(first) as one,
        in_process(second) as two,
        one.client() as a,
        two.client() as b,
    ):

        def guess(client: httpx.Client, i: int) -> int:
            wrong = {"Authorization": f"Bearer nw_{i:016x}_guess"}
            return client.post("/api/v1/maintenance", json={}, headers=wrong).status_code

        statuses = [guess(a if i % 2 else b, i) for i in range(12)]
        assert statuses == [401] * 10 + [429] * 2
        assert guess(a, 99) == 429
        assert guess(b, 98) == 429
        for client in (a, b):
            metrics = client.get("/metrics").text
            assert 'netwatch_auth_failures_total{kind="bearer"} 10.0' in metrics
        clock.now += 60  # refilled for both
        assert guess(b, 100) == 401


# --- finding 9: links out of the access log, revocable alone ----------------------------------


def test_the_access_log_never_carries_a_link_signature(
    tmp_path: Path, inventory: Inventory
) -> None:
    data_dir = tmp_path / "data"
    data_dir.mkdir()
    app = netwatch_app(tmp_path, inventory, data_dir)
    assert inventory.notifications is not None
    from netwatch.signing import LinkSigner

    link = LinkSigner.from_notifications(inventory.notifications).sign("NW-x", datetime.now(UTC))
    access = logging.getLogger("uvicorn.access")
    seen: list[str] = []

    class Keep(logging.Handler):
        def emit(self, record: logging.LogRecord) -> None:
            seen.append(record.getMessage())

    keep = Keep()
    with uvicorn_thread(app) as base:
        level = access.level
        access.setLevel(logging.INFO)
        access.addHandler(keep)
        try:
            with httpx.Client(base_url=base) as client:
                client.get(f"/t/NW-x?exp={link.exp}&sig={link.sig}")
                client.post(f"/t/NW-x/note?exp={link.exp}&sig={link.sig}", data={"text": "x"})
            wait_until(lambda: len(seen) >= 2, 10, 0.05, "access log lines")
        finally:
            access.removeHandler(keep)
            access.setLevel(level)
    assert all("/t/NW-x" in line for line in seen)
    assert all(link.sig not in line for line in seen), seen
    assert all("sig=[redacted]" in line for line in seen)


def test_one_link_is_revoked_alone_and_answers_403_in_vietnamese(
    server: Server, browser: httpx.Client
) -> None:
    ticket_id = server.open_ticket()
    now = datetime.now(UTC)
    leaked = server.signer.sign(ticket_id, now - timedelta(minutes=5))
    other = server.signer.sign(ticket_id, now - timedelta(minutes=1))
    html = {"Accept": "text/html"}
    leaked_url = f"/t/{ticket_id}?exp={leaked.exp}&sig={leaked.sig}"
    other_url = f"/t/{ticket_id}?exp={other.exp}&sig={other.sig}"
    assert server.client.get(leaked_url, headers=html).status == 200
    assert server.client.get(other_url, headers=html).status == 200
    assert _login(browser, _token(server)).status_code == 303
    page = browser.get(f"/admin/tickets/{ticket_id}").text
    revokes = re.findall(r'action="(/admin/tickets/[^"]+/links/([0-9a-f]+)/revoke)"', page)
    assert len(revokes) == 2  # both links were opened, each revocable
    from netwatch.signing import link_id

    target = next(a for a, i in revokes if i == link_id(ticket_id, leaked.exp, leaked.sig))
    assert browser.post(target, data={"csrf": page_csrf(page)}).status_code == 303
    refused = server.client.get(leaked_url, headers=html)
    assert refused.status == 403
    assert "Liên kết này đã bị bộ phận CNTT của tỉnh thu hồi" in refused.text
    acting = server.client.post(
        f"/t/{ticket_id}/acknowledge", json_body={"exp": str(leaked.exp), "sig": leaked.sig}
    )
    assert acting.status == 403
    assert acting.json()["reason"] == "revoked"
    assert server.client.get(other_url, headers=html).status == 200  # the other still works
    after = browser.get(f"/admin/tickets/{ticket_id}").text
    assert "Đã thu hồi" in after
    assert "token:ops" in after
    twice = browser.post(target, data={"csrf": page_csrf(page)})
    assert twice.status_code == 409


# --- finding 10: a note's form says it is public ----------------------------------------------


def test_the_note_form_says_the_note_is_public_and_it_is(server: Server) -> None:
    ticket_id = server.open_ticket()
    query = server.link_query(ticket_id)
    page = server.client.get(f"/t/{ticket_id}?{query}", headers={"Accept": "text/html"}).text
    notice = "Ghi chú này sẽ hiển thị công khai trên trang trạng thái của xã"
    form = page[page.index("/note") : page.index("</form>", page.index("/note"))]
    assert notice in form
    exp, sig = (part.split("=")[1] for part in query.split("&"))
    text = "Đã cử kỹ thuật đến trạm, dự kiến 15:00."
    noted = server.client.post(
        f"/t/{ticket_id}/note", json_body={"exp": exp, "sig": sig, "text": text}
    )
    assert noted.status == 200
    status = wait_until(
        lambda: (lambda t: t if text in t else None)(
            server.client.get(f"/status/xa/{COMMUNE}").text
        ),
        10,
        0.2,
        "the note on the status page",
    )
    assert text in status  # what the form said: the public sees it


def test_internal_notes_are_never_on_the_status_page(server: Server, browser: httpx.Client) -> None:
    ticket_id = server.open_ticket()
    query = server.link_query(ticket_id)
    exp, sig = (part.split("=")[1] for part in query.split("&"))
    page_url = f"/t/{ticket_id}?{query}"
    html = {"Accept": "text/html"}
    form = server.client.get(page_url, headers=html).text
    assert 'name="visibility" value="internal"' in form
    assert "Nội bộ: chỉ nhà mạng và CNTT tỉnh xem" in form
    isp_secret = "Nội bộ: mật khẩu tạm của router là ở phiếu giấy, gọi anh Bình."
    with server.browser(follow_redirects=False) as isp:
        kept = isp.post(
            f"/t/{ticket_id}/note",
            data={"exp": exp, "sig": sig, "text": isp_secret, "visibility": "internal"},
            headers=html,
        )
        assert kept.status_code == 303
        assert "done=internal_note" in kept.headers["location"]
        bad = isp.post(
            f"/t/{ticket_id}/note",
            data={"exp": exp, "sig": sig, "text": "x", "visibility": "everyone"},
            headers=html,
        )
        assert bad.status_code == 422
    assert _login(browser, _token(server)).status_code == 303
    admin_page = browser.get(f"/admin/tickets/{ticket_id}").text
    it_secret = "CNTT tỉnh: chờ hợp đồng bảo trì mới, chưa báo xã."
    noted = browser.post(
        f"/admin/tickets/{ticket_id}/note",
        data={"csrf": page_csrf(admin_page), "text": it_secret, "visibility": "internal"},
    )
    assert noted.status_code == 303
    # Both sides see both internal notes in the ticket.
    for seen in (
        server.client.get(page_url, headers=html).text,
        browser.get(noted.headers["location"]).text,
    ):
        assert "Ghi chú nội bộ (không công khai)" in seen
        assert isp_secret in seen
        assert it_secret in seen
    # A public note afterwards reaches the status page; the internal ones never do.
    public = "Đã cử kỹ thuật, dự kiến có mạng lại lúc 15:00."
    reply = server.client.post(
        f"/t/{ticket_id}/note", json_body={"exp": exp, "sig": sig, "text": public}
    )
    assert reply.status == 200
    status = wait_until(
        lambda: (lambda t: t if public in t else None)(
            server.client.get(f"/status/xa/{COMMUNE}").text
        ),
        10,
        0.2,
        "the public note on the status page",
    )
    assert isp_secret not in status
    assert it_secret not in status


def test_without_a_link_secret_a_login_form_from_one_worker_logs_in_on_another(
    tmp_path: Path, inventory: Inventory
) -> None:
    # Two web workers (two apps) on one store, no notifications section: the login form
    # served by one is accepted by the other, and the session is the store's, valid on both.
    bare = inventory.model_copy(update={"notifications": None})
    data_dir = tmp_path / "data"
    data_dir.mkdir()
    first, second = (netwatch_app(tmp_path, bare, data_dir) for _ in range(2))
    with in_process(first) as one, in_process(second) as two:
        token = one.call(
            lambda: first.state.runtime.store.create_token("ops", ["write"], datetime.now(UTC))
        ).token
        with (
            one.client(base_url="http://127.0.0.1", follow_redirects=False) as a,
            two.client(base_url="http://127.0.0.1", follow_redirects=False) as b,
        ):
            form = a.get("/admin/login")
            assert "Secure" not in form.headers["set-cookie"]  # http on loopback
            b.cookies = a.cookies
            csrf = page_csrf(form.text.replace("login_csrf", "csrf"))
            logged = b.post("/admin/login", data={"token": token, "login_csrf": csrf})
            assert logged.status_code == 303
            a.cookies = b.cookies
            assert a.get("/admin").status_code == 200
