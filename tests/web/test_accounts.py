"""People's logins on /admin against a real NetWatch and store: a password (argon2id in the
store) opens a server-side session; wrong passwords go through the shared failure limiter and
are logged like wrong tokens; disabling an account ends its sessions; accounts and passwords are
made with `netwatch user` (password from stdin), never on the command line."""

from __future__ import annotations

import io
import logging
from collections.abc import Iterator
from datetime import UTC, datetime

import httpx
import pytest

from netwatch.cli import main
from netwatch.web.auth import AuthGuard
from netwatch.web.session import SESSION_COOKIE
from tests.web.conftest import Server, password_login

PASSWORD = "mật-khẩu-đủ-dài-2026"


class FakeClock:
    """The limiter's wall clock, moved by the test."""

    def __init__(self) -> None:
        self.now = 1_000_000.0

    def __call__(self) -> float:
        return self.now


@pytest.fixture
def browser(server: Server) -> Iterator[httpx.Client]:
    """A cookie-keeping client that does not follow redirects."""
    with server.browser(follow_redirects=False) as client:
        yield client


def _cli(server: Server, monkeypatch: pytest.MonkeyPatch, stdin: str, *args: str) -> int:
    monkeypatch.setattr("sys.stdin", io.StringIO(stdin))
    return main(["user", *args, "--data-dir", str(server.data_dir)])


def test_an_account_made_on_the_command_line_logs_in_with_its_password(
    server: Server,
    browser: httpx.Client,
    monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
) -> None:
    assert _cli(server, monkeypatch, "ngắn\n", "create", "cntt-ld", "--role", "national") == 1
    assert "at least 12 characters" in capsys.readouterr().err
    assert _cli(server, monkeypatch, "", "create", "x", "--role", "isp") == 2  # no --isp
    assert _cli(server, monkeypatch, PASSWORD + "\n", "create", "cntt-ld", "--role", "province",
                "--province", "68") == 0  # fmt: skip
    assert "role=province  provinces=68" in capsys.readouterr().out
    assert password_login(browser, "cntt-ld", PASSWORD + "x").status_code == 401
    logged = password_login(browser, "cntt-ld", PASSWORD)
    assert logged.status_code == 303
    assert logged.headers["set-cookie"].startswith(f"{SESSION_COOKIE}=v2.")
    assert PASSWORD not in logged.headers["set-cookie"]
    page = browser.get("/admin")
    assert page.status_code == 200
    assert "Đăng nhập với tài khoản <strong>cntt-ld</strong>" in page.text
    # A new password from stdin: the old one no longer opens a session.
    new = "một-mật-khẩu-mới-2026"
    assert _cli(server, monkeypatch, new + "\n", "passwd", "cntt-ld") == 0
    with server.browser(follow_redirects=False) as other:
        assert password_login(other, "cntt-ld", PASSWORD).status_code == 401
        assert password_login(other, "cntt-ld", new).status_code == 303
    assert _cli(server, monkeypatch, "", "list") == 0
    assert "cntt-ld  role=province  provinces=68" in capsys.readouterr().out


def test_disabling_an_account_ends_its_sessions(
    server: Server, browser: httpx.Client, monkeypatch: pytest.MonkeyPatch
) -> None:
    server.with_store(
        lambda s: s.create_user("kt-vnpt", "isp", PASSWORD, datetime.now(UTC), isp="vnpt")
    )
    assert password_login(browser, "kt-vnpt", PASSWORD).status_code == 303
    assert browser.get("/admin").status_code == 200
    assert _cli(server, monkeypatch, "", "disable", "kt-vnpt") == 0
    gone = browser.get("/admin")
    assert gone.status_code == 303
    assert gone.headers["location"].startswith("/admin/login")
    with server.browser(follow_redirects=False) as other:
        assert password_login(other, "kt-vnpt", PASSWORD).status_code == 401


def test_wrong_passwords_are_logged_and_limited_like_wrong_tokens(
    server: Server, browser: httpx.Client, caplog: pytest.LogCaptureFixture
) -> None:
    clock = FakeClock()
    server.app.state.auth_guard = AuthGuard(clock=clock)
    server.with_store(lambda s: s.create_user("cntt", "national", PASSWORD, datetime.now(UTC)))
    caplog.set_level(logging.WARNING, logger="netwatch.web.auth")
    for _ in range(10):
        assert password_login(browser, "cntt", "không-phải-mật-khẩu").status_code == 401
    limited = password_login(browser, "cntt", PASSWORD)  # even the right one waits
    assert limited.status_code == 429
    assert int(limited.headers["retry-after"]) >= 1
    lines = [r.getMessage() for r in caplog.records if r.name == "netwatch.web.auth"]
    assert len(lines) == 10
    assert all("kind=login" in line and "user=cntt" in line for line in lines)
    assert "reason=mismatch" in lines[0]
    assert "không-phải-mật-khẩu" not in caplog.text  # never the password
    assert 'netwatch_auth_failures_total{kind="login"} 10.0' in server.client.get("/metrics").text
    clock.now += 60
    assert password_login(browser, "cntt", PASSWORD).status_code == 303
