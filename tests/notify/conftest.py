"""Real peers on loopback for the notifier tests (ports 18600-18699 only, or one the kernel
picks: `http_peer.serving_anywhere`), plus our own ports.

- `smtp_factory`: aiosmtpd with STARTTLS (a trustme CA) and AUTH LOGIN/PLAIN required.
- `MemoryOutbox`: an in-memory `OutboxStore` with claim leases, like the database one.
- `ManualClock`: time that moves only when a test says so.
"""

from __future__ import annotations

import asyncio
import json
import ssl
from collections.abc import AsyncIterator, Awaitable, Callable, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import aiohttp
import pytest
import trustme
from aiosmtpd.controller import Controller
from aiosmtpd.smtp import SMTP, AuthResult, Envelope, LoginPassword, Session

from alerts.model import DownCause, IncidentKind, Measurements, PathHop, PathTrace
from netwatch.notify.messages import NoticeEvent, ProblemState, TicketNotice
from netwatch.store import OutboxItem

SMTP_USER = "netwatch"
SMTP_PASSWORD = "mật-khẩu-thử"  # non-ASCII on purpose: AUTH must carry UTF-8 (RFC 4954)
T0 = datetime(2026, 11, 22, 0, 15, tzinfo=UTC)  # 07:15 in Vietnam


class ManualClock:
    """A clock tests move by hand."""

    def __init__(self, start: datetime) -> None:
        self.at = start

    def now(self) -> datetime:
        return self.at

    def advance(self, seconds: float) -> None:
        self.at += timedelta(seconds=seconds)

    def set(self, at: datetime) -> None:
        self.at = at


@dataclass
class Row:
    id: int
    channel: str
    recipient: str
    payload_json: str
    dedup_key: str
    next_attempt_at: datetime
    attempts: int = 0
    lease_until: datetime | None = None
    sent_at: datetime | None = None
    gave_up: bool = False
    errors: list[str] = field(default_factory=list)
    schedule: list[tuple[datetime, datetime | None]] = field(default_factory=list)


class MemoryOutbox:
    """OutboxStore in memory: claims lease items, so a crashed worker's claims come back."""

    def __init__(self, lease_s: float = 300.0) -> None:
        self.rows: dict[int, Row] = {}
        self.lease = timedelta(seconds=lease_s)

    def enqueue(
        self,
        channel: str,
        recipient: str,
        payload: Mapping[str, object],
        dedup_key: str,
        now: datetime,
    ) -> int:
        for row in self.rows.values():
            if row.dedup_key == dedup_key:
                return row.id
        item_id = len(self.rows) + 1
        # Stored as JSON text, as a database column would hold it.
        self.rows[item_id] = Row(item_id, channel, recipient, json.dumps(payload), dedup_key, now)
        return item_id

    async def claim_due(self, now: datetime, limit: int) -> list[OutboxItem]:
        due = [
            r
            for r in sorted(self.rows.values(), key=lambda r: (r.next_attempt_at, r.id))
            if r.sent_at is None
            and not r.gave_up
            and r.next_attempt_at <= now
            and (r.lease_until is None or r.lease_until <= now)
        ][:limit]
        for row in due:
            row.lease_until = now + self.lease
        return [
            OutboxItem(
                id=r.id,
                ticket_id=None,
                channel=r.channel,
                recipient=r.recipient,
                payload=json.loads(r.payload_json),
                dedup_key=r.dedup_key,
                created_at=now,
                next_attempt_at=r.lease_until,
                attempts=r.attempts + 1,  # as the store does: a claim counts an attempt
                last_error=r.errors[-1] if r.errors else None,
                sent_at=None,
            )
            for r in due
        ]

    async def mark_sent(self, item_id: int, at: datetime) -> None:
        row = self.rows[item_id]
        assert row.sent_at is None, "marked sent twice"
        row.sent_at, row.lease_until = at, None

    async def mark_failed(
        self, item_id: int, at: datetime, next_attempt_at: datetime | None, error: str
    ) -> None:
        row = self.rows[item_id]
        row.attempts += 1
        row.errors.append(error)
        row.schedule.append((at, next_attempt_at))
        row.lease_until = None
        if next_attempt_at is None:
            row.gave_up = True
        else:
            row.next_attempt_at = next_attempt_at


def make_notice(
    event: NoticeEvent = NoticeEvent.OPENED, event_id: int = 1, **changes: Any
) -> TicketNotice:
    """A realistic notice: Xã Lạc Dương (Lâm Đồng) down on VNPT since 07:15 local time."""
    values: dict[str, Any] = {
        "event": event,
        "ticket_id": "NW-2026-000042",
        "event_id": event_id,
        "kind": IncidentKind.LINK_FAULT,
        "state": ProblemState.DOWN,
        "at": T0 + timedelta(hours=1, minutes=5),
        "first_bad_at": T0,
        "downtime_s": 3900.0,
        "commune_code": "24848",
        "commune_name": "Xã Lạc Dương",
        "province_name": "Lâm Đồng",
        "link_id": "24848/vnpt-lacduong",
        "isp_name": "VNPT",
        "circuit_id": "LDG-FTTH-0012345",
        "path": PathTrace(
            target="10.20.4.1",
            at=T0 + timedelta(minutes=1),
            hops=(
                PathHop(1, "10.20.0.2", "Điểm tham chiếu của NetWatch", 0.0011, 3, 3),
                PathHop(2, "10.20.0.1", "POP Đà Lạt", 0.0042, 3, 3),
                PathHop(3, None, "", None, 3, 0),
            ),
            reached=False,
        ),
        "evidence": Measurements(
            loss_ratio=1.0,
            rtt_median_s=None,
            interface_up=False,
            utilization_ratio=0.031,
            down_cause=DownCause.INTERFACE_DOWN,
        ),
        "ticket_url": "https://netwatch.example.vn/t/NW-2026-000042?exp=1795&sig=ab12",
        "ticket_url_expires_at": T0 + timedelta(days=7),
    }
    values.update(changes)
    return TicketNotice(**values)


@pytest.fixture
async def session() -> AsyncIterator[aiohttp.ClientSession]:
    """An HTTP client session for the webhook and Telegram channels."""
    async with aiohttp.ClientSession() as s:
        yield s


@pytest.fixture(scope="session")
def ca() -> trustme.CA:
    return trustme.CA()


@pytest.fixture(scope="session")
def ca_file(ca: trustme.CA, tmp_path_factory: pytest.TempPathFactory) -> Path:
    path = tmp_path_factory.mktemp("ca") / "ca.pem"
    ca.cert_pem.write_to_path(str(path))
    return path


@pytest.fixture(scope="session")
def server_tls(ca: trustme.CA) -> ssl.SSLContext:
    ctx = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
    ca.issue_cert("127.0.0.1", "localhost").configure_cert(ctx)
    return ctx


@dataclass
class Received:
    """One message an SMTP server accepted, with how the session got there."""

    mail_from: str
    rcpt_tos: list[str]
    data: bytes
    tls: bool
    login: str | None
    mechanism: str | None


class RecordingHandler:
    def __init__(self) -> None:
        self.received: list[Received] = []
        self.mechanisms: list[str] = []
        self.replies: list[str] = []  # scripted answers to DATA before the normal 250

    async def handle_DATA(self, server: SMTP, session: Session, envelope: Envelope) -> str:
        if self.replies:
            return self.replies.pop(0)
        login = (
            session.auth_data.login.decode()
            if isinstance(session.auth_data, LoginPassword)
            else None
        )
        self.received.append(
            Received(
                str(envelope.mail_from),
                list(envelope.rcpt_tos),
                bytes(envelope.original_content or b""),
                session.ssl is not None,
                login,
                self.mechanisms[-1] if self.mechanisms else None,
            )
        )
        return "250 2.0.0 Đã nhận"


class SmtpServer:
    """aiosmtpd on 127.0.0.1 requiring STARTTLS, then AUTH, before it takes mail."""

    def __init__(self, port: int, tls: ssl.SSLContext, exclude: Sequence[str] = ()) -> None:
        self.port = port
        self.handler = RecordingHandler()
        self.controller = Controller(
            self.handler,
            hostname="127.0.0.1",
            port=port,
            tls_context=tls,
            require_starttls=True,
            auth_required=True,
            auth_require_tls=True,
            auth_exclude_mechanism=list(exclude),
            authenticator=self._authenticate,
        )
        self.running = False

    def _authenticate(
        self, server: SMTP, session: Session, envelope: Envelope, mechanism: str, auth_data: Any
    ) -> AuthResult:
        self.handler.mechanisms.append(mechanism)
        ok = (
            isinstance(auth_data, LoginPassword)
            and auth_data.login == SMTP_USER.encode()
            and auth_data.password == SMTP_PASSWORD.encode()
        )
        return AuthResult(success=ok, handled=False, auth_data=auth_data if ok else None)

    @property
    def received(self) -> list[Received]:
        return self.handler.received

    async def start(self) -> None:
        # Controller.start blocks until its own thread's loop serves: keep it off our loop.
        await asyncio.to_thread(self.controller.start)
        self.running = True

    async def stop(self) -> None:
        if self.running:
            await asyncio.to_thread(self.controller.stop)
            self.running = False


@pytest.fixture
async def smtp_factory(
    server_tls: ssl.SSLContext,
) -> AsyncIterator[Callable[..., Awaitable[SmtpServer]]]:
    servers: list[SmtpServer] = []

    async def make(port: int, *, start: bool = True, exclude: Sequence[str] = ()) -> SmtpServer:
        assert 18600 <= port <= 18699
        server = SmtpServer(port, server_tls, exclude)
        servers.append(server)
        if start:
            await server.start()
        return server

    try:
        yield make
    finally:
        for server in servers:
            await server.stop()


@pytest.fixture
def clock() -> ManualClock:
    return ManualClock(T0 + timedelta(hours=1, minutes=5))
