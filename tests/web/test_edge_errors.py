"""Bad input and a broken database answer 4xx/503 with a reason, never a 500 (issue 15: 7, 11)."""

from __future__ import annotations

import contextlib
import logging
import re
import sqlite3
from collections.abc import Iterator
from contextlib import contextmanager
from datetime import UTC, datetime
from pathlib import Path

import pytest
from sqlalchemy.exc import StatementError

from netwatch.store import MomentOutOfRangeError, NewMaintenance, Store
from netwatch.store import engine as store_engine
from netwatch.store.engine import SQLITE_FILE_NAME
from tests.waiting import wait_until
from tests.web.conftest import COMMUNE, LINK, Server, admin_login


def _token(server: Server) -> str:
    issued = server.with_store(lambda s: s.create_token("ops", ["write"], datetime.now(UTC)))
    return issued.token


# --- finding 7: moments and ids out of range ----------------------------------------------------


def test_ids_and_moments_out_of_range_get_4xx_with_a_message(server: Server) -> None:
    token = _token(server)
    huge = server.client.request("DELETE", "/api/v1/maintenance/" + "9" * 28, token=token)
    assert huge.status == 422, huge.text
    assert "less than or equal to 9223372036854775807" in huge.text
    since = server.client.get("/api/v1/tickets?since=0001-01-01T00:00%2B14:00")
    assert since.status == 422, since.text
    assert "since: 0001-01-01T00:00:00+14:00 is out of range" in since.json()["detail"]
    base = f"/api/v1/links/{COMMUNE}/{LINK}/availability"
    for query in ("start=0001-01-01", "start=2026-11&end=9999-12-31", "start=9999-12"):
        answer = server.client.get(f"{base}?{query}")
        assert answer.status == 422, (query, answer.text)
        assert "out of range" in answer.text or "is not a month" in answer.text
    for start, end in (
        ("0001-01-01T00:00+14:00", "2026-12-01T00:00"),
        ("2026-12-01T00:00", "9999-12-31T23:59-12:00"),
    ):
        body = {"scope": {"province": 68}, "start": start, "end": end, "reason": "x"}
        answer = server.client.post("/api/v1/maintenance", json_body=body, token=token)
        assert answer.status == 422, answer.text
        assert "is out of range: NetWatch keeps moments from 1970 to 8999" in answer.text


def test_the_store_refuses_such_moments_with_its_own_error(server: Server) -> None:
    """What reaches the store by another way (the admin form) is refused there, clearly; the
    app answers it 422 (netwatch.web.app)."""
    early = datetime.fromisoformat("0001-01-01T00:00+14:00")
    window = NewMaintenance("province", "68", early, datetime.now(UTC), "x", "test")

    async def add(store: Store) -> object:
        return await store.add_maintenance(window, datetime.now(UTC))

    with pytest.raises(StatementError, match="NetWatch keeps moments from 1970 to 8999") as raised:
        server.with_store(add)
    assert isinstance(raised.value.orig, MomentOutOfRangeError)  # not an OverflowError


# --- finding 11: /healthz and a database that cannot be written ---------------------------------


@pytest.fixture
def short_busy_wait(monkeypatch: pytest.MonkeyPatch) -> None:
    """NetWatch's SQLite connections wait 0.3 s for a lock instead of 10 s (asked before the
    `server` fixture opens them): a locked database fails the test's writes quickly."""
    monkeypatch.setattr(store_engine, "SQLITE_BUSY_TIMEOUT_MS", 300)


@contextmanager
def locked(database: Path) -> Iterator[None]:
    """Hold SQLite's write lock from another connection: every write of NetWatch fails (busy)
    until released. Root ignores file permissions; a lock it cannot ignore."""
    other = sqlite3.connect(database, isolation_level=None, timeout=30)
    try:
        other.execute("BEGIN EXCLUSIVE")
        yield
    finally:
        other.execute("ROLLBACK")
        other.close()


def test_healthz_is_503_while_the_database_cannot_be_written(
    short_busy_wait: None, server: Server, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.INFO, logger="netwatch.alerting")
    assert server.client.get("/healthz").json() == {"status": "ok"}
    alerting = server.runtime.alerting
    with locked(server.data_dir / SQLITE_FILE_NAME):
        _make_incident(server)

        def failing_a_while() -> bool:
            return alerting.failing is not None and alerting._failures >= 3

        wait_until(failing_a_while, 60, 0.1, "three failed ticks")
        answer = server.client.get("/healthz")
        assert answer.status == 503
        assert "is the database reachable and writable?" in answer.json()["reason"]
    wait_until(lambda: alerting.failing is None, 60, 0.1, "a tick that succeeds again")
    assert server.client.get("/healthz").status == 200
    tracebacks = [r for r in caplog.records if r.exc_info and r.name == "netwatch.alerting"]
    assert len(tracebacks) == 1, "a traceback on every failed tick"
    assert any("ticket evaluation recovered" in r.getMessage() for r in caplog.records)


def _make_incident(server: Server) -> None:
    """A link fault for the alerting loop to write a ticket for (its write then fails)."""
    with contextlib.suppress(AssertionError):  # no ticket: the database is locked, as intended
        server.open_ticket(timeout_s=0.5)


# --- a database that refuses for now: 503 with Retry-After, not a 500 ---------------------------


def test_a_write_while_the_database_is_locked_gets_503_with_retry_after(
    short_busy_wait: None, server: Server
) -> None:
    token = _token(server)
    body = {
        "scope": {"commune": COMMUNE},
        "start": "2026-12-01T08:00",
        "end": "2026-12-01T10:00",
        "reason": "Nâng cấp",
    }
    with locked(server.data_dir / SQLITE_FILE_NAME):
        answer = server.client.post("/api/v1/maintenance", json_body=body, token=token)
    assert answer.status == 503, answer.text
    assert answer.headers["retry-after"] == "60"
    assert "the database is slow or unreachable" in answer.json()["detail"]
    assert server.client.post("/api/v1/maintenance", json_body=body, token=token).status == 201


def test_the_admin_maintenance_form_with_such_dates_gets_422(server: Server) -> None:
    """The admin form (netwatch.web.admin, checked by its own code) reaches the store with
    what it parsed; the store refuses a moment out of range and the app answers 422."""
    token = _token(server)
    with server.browser(follow_redirects=False) as browser:
        admin_login(browser, token)
        page = browser.get("/admin/maintenance").text
        found = re.search(r'name="csrf" value="([0-9a-f]+)"', page)
        assert found, "the form has no CSRF field"
        for start, end in (
            ("0001-01-01T00:00", "2026-12-01T00:00"),
            ("2026-12-01T00:00", "9999-12-31T23:59"),
        ):
            fields = {
                "csrf": found.group(1),
                "target": "province:68",
                "start": start,
                "end": end,
                "reason": "Nâng cấp",
            }
            reply = browser.post("/admin/maintenance", data=fields)
            assert reply.status_code == 422, reply.text
