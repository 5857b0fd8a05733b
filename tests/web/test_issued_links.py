"""Signed ISP links recorded when a notice carries them (revision 0005), not on first use, and
bounded in how long they may act (`notifications.link_act_hours`): issue 15, finding 9.

A link nobody opened yet is listed on the ticket's admin page and can be revoked there; a link
past its time to act still shows the ticket but every action through it gets 403 "view_only".
Links issued before 0005 (not recorded) act until they expire, as before: the other web tests
sign their links that way (`Server.link_query`).
"""

from __future__ import annotations

import json
import re
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path

import httpx
import pytest

from netwatch.inventory import Inventory, load_inventory
from netwatch.signing import link_id
from netwatch.store import IssuedLink
from tests.waiting import wait_until
from tests.web.conftest import CONFIG, LINK_SECRET, Server, admin_login, page_csrf

ACT_HOURS = 24
# The ISP has a contact (a webhook on loopback nobody answers: the notice waits in the outbox,
# its link is issued all the same), and links act for ACT_HOURS.
NOTIFIED_CONFIG = CONFIG.replace(
    "    name: VNPT Lâm Đồng\n",
    "    name: VNPT Lâm Đồng\n"
    "    contacts:\n"
    "      - {level: 1, name: NOC VNPT, webhook: 'http://127.0.0.1:9/hook', "
    "escalate_after_min: 0}\n",
    1,
).replace(
    "  link_valid_days: 7\n",
    f"  link_valid_days: 7\n  link_act_hours: {ACT_HOURS}\n"
    "  webhook_secret: {env: NETWATCH_WEBHOOK_SECRET}\n",
    1,
)
HTML = {"Accept": "text/html"}
SIGNED = re.compile(r"/t/([^?\"]+)\?exp=([0-9]+)&sig=([0-9a-f]+)")


@pytest.fixture
def inventory(tmp_path: Path) -> Inventory:
    """The web tests' configuration with an ISP contact and a time to act."""
    path = tmp_path / "netwatch.yaml"
    path.write_text(NOTIFIED_CONFIG, encoding="utf-8")
    return load_inventory(
        path,
        environ={
            "NETWATCH_LINK_SECRET": LINK_SECRET,
            "NETWATCH_WEBHOOK_SECRET": "webhook-secret-8c1f0e5a77d94b2f9a3e6d41c0b8",
        },
    )


@pytest.fixture
def browser(server: Server) -> Iterator[httpx.Client]:
    """A cookie-keeping client that does not follow redirects."""
    with server.browser(follow_redirects=False) as client:
        yield client


def _admin(server: Server, browser: httpx.Client) -> None:
    token = server.with_store(lambda s: s.create_token("ops", ["write"], datetime.now(UTC))).token
    assert admin_login(browser, token).status_code == 303


def _opening_link(server: Server, ticket_id: str) -> tuple[int, str]:
    """The (exp, sig) of the link the ticket's opening notice carries, from the outbox."""

    def read() -> tuple[int, str] | None:
        items = server.with_store(lambda s: s.outbox_items(ticket_id))
        for item in items:
            found = SIGNED.search(json.dumps(item.payload))
            if found:
                return int(found.group(2)), found.group(3)
        return None

    found: tuple[int, str] = wait_until(read, 10, 0.1, "the opening notice in the outbox")
    return found


def test_a_link_in_a_notice_is_listed_before_use_and_revoked_unopened(
    server: Server, browser: httpx.Client
) -> None:
    ticket_id = server.open_ticket()
    exp, sig = _opening_link(server, ticket_id)
    issued = link_id(ticket_id, exp, sig)
    _admin(server, browser)
    page = browser.get(f"/admin/tickets/{ticket_id}").text
    links = page[page.index('id="links"') :]
    assert issued in links  # listed although nobody opened it
    assert "Chưa mở" in links
    assert "Hạn thao tác" in links
    revokes = re.findall(r'action="(/admin/tickets/[^"]+/links/([0-9a-f]+)/revoke)"', links)
    assert [i for _, i in revokes] == [issued]
    assert browser.post(revokes[0][0], data={"csrf": page_csrf(page)}).status_code == 303
    # The ISP opens it for the first time: refused, and nothing of the ticket is shown.
    refused = server.client.get(f"/t/{ticket_id}?exp={exp}&sig={sig}", headers=HTML)
    assert refused.status == 403
    assert "Liên kết này đã bị bộ phận CNTT của tỉnh thu hồi" in refused.text
    assert "LDG-TSLCD-0001" not in refused.text
    after = browser.get(f"/admin/tickets/{ticket_id}").text
    assert "Đã thu hồi" in after[after.index('id="links"') :]


def _issue(server: Server, ticket_id: str, issued_at: datetime) -> tuple[int, str]:
    """Record a link as a notice at `issued_at` would have carried it; its (exp, sig)."""
    signed = server.signer.sign(ticket_id, issued_at)
    link = IssuedLink(
        link_id(ticket_id, signed.exp, signed.sig), ticket_id, signed.expires_at, issued_at
    )
    server.with_store(lambda s: s.apply_ticket_changes([], [], [], issued_at, [link]))
    return signed.exp, signed.sig


def test_a_link_past_its_time_to_act_shows_the_ticket_and_refuses_actions(
    server: Server,
) -> None:
    ticket_id = server.open_ticket()
    now = datetime.now(UTC)
    exp, sig = _issue(server, ticket_id, now - timedelta(hours=ACT_HOURS, minutes=1))
    page = server.client.get(f"/t/{ticket_id}?exp={exp}&sig={sig}", headers=HTML)
    assert page.status == 200
    assert "LDG-TSLCD-0001" in page.text  # the evidence is still there
    assert "đã hết thời hạn thao tác" in page.text
    assert "/acknowledge" not in page.text
    assert "/resolve" not in page.text
    shown = server.client.get(f"/t/{ticket_id}?exp={exp}&sig={sig}").json()
    assert shown["link_may_act"] is False
    acting = server.client.post(
        f"/t/{ticket_id}/acknowledge", json_body={"exp": str(exp), "sig": sig}
    )
    assert acting.status == 403
    assert acting.json()["reason"] == "view_only"
    assert "Hết thời hạn thao tác lúc" in acting.json()["detail_vi"]
    for action in ("note", "resolve"):
        form = {"exp": str(exp), "sig": sig, "text": "Đã cử kỹ thuật."}
        assert server.client.post(f"/t/{ticket_id}/{action}", json_body=form).status == 403
    ticket = server.with_store(lambda s: s.get_ticket(ticket_id))
    assert ticket is not None
    assert ticket.ticket.acknowledged_at is None  # nothing was done through it


def test_a_link_within_its_time_to_act_acts_and_says_until_when(server: Server) -> None:
    ticket_id = server.open_ticket()
    now = datetime.now(UTC)
    exp, sig = _issue(server, ticket_id, now - timedelta(hours=ACT_HOURS - 1))
    page = server.client.get(f"/t/{ticket_id}?exp={exp}&sig={sig}", headers=HTML)
    assert "Liên kết dùng để thao tác (xác nhận, ghi chú, báo đã khắc phục) đến" in page.text
    assert "/acknowledge" in page.text
    shown = server.client.get(f"/t/{ticket_id}?exp={exp}&sig={sig}").json()
    assert shown["link_may_act"] is True
    until = datetime.fromisoformat(shown["link_acts_until"])
    assert abs(until - (now + timedelta(hours=1))) < timedelta(seconds=1)  # issued + ACT_HOURS
    acting = server.client.post(
        f"/t/{ticket_id}/acknowledge", json_body={"exp": str(exp), "sig": sig}
    )
    assert acting.status == 200
    assert acting.json()["acknowledged_at"] is not None
