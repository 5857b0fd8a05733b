"""Signed ticket links: valid, forged, altered, expired; and the link in ticket notices."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from urllib.parse import parse_qs, urlsplit

import pytest

from alerts.model import Route
from alerts.subject import SubjectKey
from alerts.tickets import (
    SYSTEM,
    EventKind,
    OpenTicket,
    Ticket,
    TicketEvent,
    TicketStatus,
)
from netwatch.alerting import Notices
from netwatch.health import HealthMonitor
from netwatch.inventory import Inventory
from netwatch.signing import LinkReason, LinkSigner, ticket_path
from tests.lam_dong import lac_duong_down

T0 = datetime(2026, 11, 22, 1, 0, tzinfo=UTC)
SIGNER = LinkSigner("https://netwatch.example.vn/", "s3cret", valid_s=7 * 86400)


def test_a_link_names_the_ticket_and_verifies_until_it_expires() -> None:
    link = SIGNER.sign("NW-20261122-abc", T0)
    parts = urlsplit(link.url)
    query = parse_qs(parts.query)
    assert f"{parts.scheme}://{parts.netloc}" == "https://netwatch.example.vn"
    assert parts.path == "/t/NW-20261122-abc"
    assert query == {"exp": [str(link.exp)], "sig": [link.sig]}
    assert link.expires_at == T0 + timedelta(days=7)
    assert len(link.sig) == 32
    check = SIGNER.verify("NW-20261122-abc", str(link.exp), link.sig, T0 + timedelta(days=6))
    assert check.ok
    assert check.expires_at == link.expires_at


@pytest.mark.parametrize(
    ("ticket_id", "exp_delta", "sig", "reason"),
    [
        ("NW-20261122-abd", 0, None, LinkReason.BAD_SIGNATURE),  # another ticket
        ("NW-20261122-abc", 86400, None, LinkReason.BAD_SIGNATURE),  # lengthened
        ("NW-20261122-abc", 0, "0" * 32, LinkReason.BAD_SIGNATURE),  # forged
        ("NW-20261122-abc", 0, "xyz", LinkReason.MALFORMED),
        ("NW-20261122-abc", 0, "", LinkReason.MALFORMED),
    ],
)
def test_an_altered_or_forged_link_is_refused(
    ticket_id: str, exp_delta: int, sig: str | None, reason: LinkReason
) -> None:
    link = SIGNER.sign("NW-20261122-abc", T0)
    check = SIGNER.verify(
        ticket_id, str(link.exp + exp_delta), link.sig if sig is None else sig, T0
    )
    assert check.reason is reason
    assert not check.ok


def test_an_expired_link_is_refused_as_expired() -> None:
    link = SIGNER.sign("NW-1", T0)
    assert SIGNER.verify("NW-1", link.exp, link.sig, link.expires_at).reason is LinkReason.EXPIRED
    assert SIGNER.verify("NW-1", None, link.sig, T0).reason is LinkReason.MALFORMED


def test_another_secret_does_not_verify() -> None:
    link = SIGNER.sign("NW-1", T0)
    other = LinkSigner("https://netwatch.example.vn", "other", valid_s=60)
    assert other.verify("NW-1", link.exp, link.sig, T0).reason is LinkReason.BAD_SIGNATURE


def test_ticket_ids_are_quoted_in_paths() -> None:
    assert ticket_path("a/b c") == "/t/a%2Fb%20c"


def test_notices_carry_a_signed_link_valid_for_the_configured_days(inventory: Inventory) -> None:
    assert inventory.notifications is not None
    evidence = lac_duong_down(T0)
    event = TicketEvent(0, T0, SYSTEM, EventKind.OPENED, "down")
    ticket = Ticket(
        id="NW-20261122-0123456789",
        key=SubjectKey.parse("link:24848/vnpt-tslcd"),
        episode_start=T0,
        route=Route.ISP,
        isp="vnpt",
        status=TicketStatus.OPEN,
        evidence=evidence,
        opened_at=T0,
        escalation_from=T0,
        last_notified_at=T0,
        log=(event,),
    )
    notices = Notices(inventory, HealthMonitor(inventory))
    notice = notices.notice(OpenTicket(ticket, event, ()))
    assert notice.ticket_url is not None
    assert notice.ticket_url.startswith(
        "https://netwatch.lamdong.example/t/NW-20261122-0123456789?"
    )
    assert notice.ticket_url_expires_at == T0 + timedelta(days=7)
    query = parse_qs(urlsplit(notice.ticket_url).query)
    signer = LinkSigner.from_notifications(inventory.notifications)
    check = signer.verify(ticket.id, query["exp"][0], query["sig"][0], T0 + timedelta(days=1))
    assert check.ok
