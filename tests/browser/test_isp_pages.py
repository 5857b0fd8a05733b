"""The ISP's ticket page in Chromium: a link goes down in the lab, NetWatch mails the signed link,
the ISP engineer opens it, sees the evidence, acknowledges, notes and resolves; an altered link
gets the 403 page. Lab index 13 (10.101.0.0/16, namespaces nwl13-*)."""

from __future__ import annotations

from collections.abc import Iterator
from urllib.parse import parse_qs, urlsplit

import pytest

from tests.browser.harness import (
    DESKTOP,
    PHONE,
    CheckHtml,
    PageFactory,
    assert_no_horizontal_scroll,
    check_accessibility,
    check_page,
    save_screenshot,
)
from tests.browser.lab_app import LINK_SECRET, NetWatchOnLab, lab_env, submit, wait_for

pytestmark = [pytest.mark.privileged, pytest.mark.lab]

LAB_INDEX = 13
LAB_COMMUNES = 2  # the `lab` and `netwatch` fixtures: tests/browser/conftest.py


@pytest.fixture(scope="module")
def ticket_link(netwatch: NetWatchOnLab) -> Iterator[str]:
    """A link of a commune taken down in the lab, and the signed link NetWatch mailed for it."""
    with netwatch.link_down(0):
        wait_for(lambda: bool(netwatch.ticket_links()), "the ticket's e-mail with its link", 90)
        yield netwatch.ticket_links()[0]


def _private_things(netwatch: NetWatchOnLab) -> list[str]:
    """What the ISP page must never show: addresses, SNMP secrets, contacts, the link secret."""
    inv = netwatch.inventory
    things = [LINK_SECRET, *lab_env(netwatch.lab.paths.env_file).values()]
    for commune in inv.communes:
        things += [str(link.address) for link in commune.links]
        if commune.router is not None:
            things.append(str(commune.router.address))
    for isp in inv.isps.values():
        for contact in isp.contacts:
            things += [c for c in (contact.email, contact.name) if c]
    return [t for t in things if t]


def test_the_isp_opens_the_mailed_link_and_works_the_ticket(
    netwatch: NetWatchOnLab,
    ticket_link: str,
    page: PageFactory,
    check_html: CheckHtml,
) -> None:
    commune = netwatch.inventory.communes[0]
    link = commune.links[0]
    isp_name = netwatch.inventory.isps[link.isp].name
    ticket_id = urlsplit(ticket_link).path.rsplit("/", 1)[-1]

    tab = page(PHONE)
    response = tab.goto(ticket_link)
    assert response is not None
    assert response.status == 200
    html = response.text()
    assert tab.locator("h1").inner_text() == f"Phiếu sự cố {ticket_id}"
    summary = tab.locator("dl.facts").first.inner_text()
    for text in (
        "Đang mở — chưa tiếp nhận",
        "Sự cố đường truyền",
        "Mất kết nối",
        f"{commune.name} (mã {commune.code})",
        link.circuit,
        isp_name,
        "Thời gian gián đoạn đến nay",
    ):
        assert text in summary, text
    evidence = tab.locator("table.measures").inner_text()
    assert "100,0\u00a0%" in evidence  # the line is down: every echo lost
    assert tab.locator("figure.chart svg[role=img]").count() == 1
    assert "Mở phiếu" in tab.locator("ol.timeline").inner_text()
    for private in _private_things(netwatch):
        assert private not in html, private
    check_page(tab, html, check_html, "isp-ticket-open-phone")

    # Acknowledge with a name and a note: the form posts, the page comes back (PRG).
    fields = {"#ack-name": "Nguyễn Văn An", "#ack-text": "Đã cử kỹ thuật viên"}
    submit(tab, fields, "Tiếp nhận", "acknowledge")
    assert "Đã ghi nhận: phiếu đã được tiếp nhận." in tab.locator("main").inner_text()
    assert "Đã tiếp nhận — đang xử lý" in tab.locator("dl.facts").first.inner_text()
    timeline = tab.locator("ol.timeline").inner_text()
    assert "Tiếp nhận — Nguyễn Văn An (nhà mạng)" in timeline
    assert "Đã cử kỹ thuật viên" in timeline
    assert tab.locator("#ack-name").count() == 0  # no second acknowledgement
    # A reload shows the page again and sends nothing twice.
    tab.reload()
    assert tab.locator("ol.timeline li").filter(has_text="Nguyễn Văn An").count() == 1

    submit(tab, {"#note-text": "Cáp quang bị đứt tại km 12, đang hàn nối"}, "Gửi ghi chú", "note")
    assert "Cáp quang bị đứt tại km 12" in tab.locator("ol.timeline").inner_text()
    check_html(tab.content())
    save_screenshot(tab, "isp-ticket-acknowledged-phone")

    # The English switch keeps the signed link.
    tab.get_by_role("link", name="English").click()
    tab.wait_for_load_state()
    assert tab.locator("html").get_attribute("lang") == "en"
    assert tab.locator("h1").inner_text() == f"Trouble ticket {ticket_id}"
    assert "Acknowledged — being worked on" in tab.locator("dl.facts").first.inner_text()
    assert parse_qs(urlsplit(tab.url).query)["lang"] == ["en"]
    check_accessibility(tab)
    save_screenshot(tab, "isp-ticket-english-phone")

    # The line is repaired: NetWatch sees it recover, and the ISP resolves the ticket.
    netwatch.lab.restore()

    def recovering() -> bool:
        events = netwatch.get_json(f"/api/v1/tickets/{ticket_id}")["events"]
        return any(e["kind"] == "recovering" for e in events)

    wait_for(recovering, "NetWatch to see the link recover", 90)
    tab.reload()
    submit(tab, {"#resolve-text": "Đã hàn nối cáp, đường truyền ổn định"}, "Resolve", "resolve")
    assert "The ticket is resolved." in tab.locator("main").inner_text()
    assert "Resolved" in tab.locator("dl.facts").first.inner_text()
    after = tab.locator("ol.timeline").inner_text()
    assert "Link recovering" in after  # what happened after: NetWatch saw the recovery
    assert "Đã hàn nối cáp" in after
    assert tab.get_by_role("button", name="Resolve", exact=True).count() == 0
    assert not [t for t in netwatch.open_tickets() if t["id"] == ticket_id]

    wide = page(DESKTOP)
    wide.goto(ticket_link)
    check_accessibility(wide)
    save_screenshot(wide, "isp-ticket-resolved-desktop")


def test_an_altered_or_incomplete_link_gets_the_403_page(
    netwatch: NetWatchOnLab, ticket_link: str, page: PageFactory, check_html: CheckHtml
) -> None:
    url = urlsplit(ticket_link)
    query = parse_qs(url.query)
    exp, sig = query["exp"][0], query["sig"][0]
    base = f"{url.scheme}://{url.netloc}{url.path}"
    altered = {
        "signature": f"{base}?exp={exp}&sig={'0' * len(sig)}",
        "expiry": f"{base}?exp={int(exp) + 86400}&sig={sig}",
        "ticket": f"{base[:-1]}{'0' if base[-1] != '0' else '1'}?exp={exp}&sig={sig}",
        "incomplete": base,
    }
    ticket_id = url.path.rsplit("/", 1)[-1]

    def stored() -> tuple[str, int]:
        ticket = netwatch.get_json(f"/api/v1/tickets/{ticket_id}")
        return ticket["state"], len(ticket["events"])

    before = stored()
    tab = page(PHONE)
    for name, bad in altered.items():
        response = tab.goto(bad)
        assert response is not None
        assert response.status == 403, name
        main = tab.locator("main").inner_text()
        assert "Không mở được phiếu" in main
        assert "Liên kết" in main
        assert "NetWatch" in main or "liên kết" in main
        assert netwatch.inventory.communes[0].name not in main  # nothing of the ticket
        check_html(response.text())
    check_accessibility(tab)
    assert_no_horizontal_scroll(tab)
    save_screenshot(tab, "isp-ticket-refused-phone")
    # A form posted with an altered link changes nothing either.
    refused = tab.request.post(
        f"{base}/note", form={"exp": exp, "sig": "0" * len(sig), "text": "x"}
    )
    assert refused.status == 403
    assert stored() == before
    tab.goto(altered["signature"] + "&lang=en")
    assert tab.locator("h1").inner_text() == "The ticket cannot be opened"
