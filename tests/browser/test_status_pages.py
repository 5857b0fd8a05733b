"""The public status pages in Chromium, against a real NetWatch probing a real lab.

One lab (index 10: 10.98.0.0/16, namespaces nwl10-*) with three communes in two provinces, one
NetWatch with 2 s rounds and the real hysteresis, one browser for the module. Faults are set in
the lab (a link taken down, the portal failing) and must show on the commune page, with the right
explanation, within two rounds of NetWatch judging them. Every page is checked with axe-core and
the Nu HTML Checker, must fit a 360 px phone without sideways scrolling, and is screenshotted
into test-artifacts/screenshots/.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Iterator
from typing import Any

import pytest
from playwright.sync_api import Error as PlaywrightError
from playwright.sync_api import Page

from netwatch.inventory.models import Commune
from netwatch.web.status import StatusPages
from tests.browser.harness import (
    DESKTOP,
    PHONE,
    CheckHtml,
    PageFactory,
    check_accessibility,
    check_page,
    save_screenshot,
)
from tests.browser.lab_app import NetWatchOnLab, lab_env, wait_for
from tests.waiting import WaitTimeoutError, wait_until

pytestmark = [pytest.mark.privileged, pytest.mark.lab]

LAB_INDEX = 10
LAB_COMMUNES = 3  # the `lab` and `netwatch` fixtures: tests/browser/conftest.py
ROUND_S = 2.0  # NetWatchOnLab's ICMP interval


@pytest.fixture(scope="module")
def netwatch(netwatch: NetWatchOnLab) -> NetWatchOnLab:
    """conftest's NetWatch on this module's lab, with a faster status cache, once healthy."""
    # Tickets and availability re-read every second (production: every 10 s), so the test
    # does not wait on the cache to see the ISP told.
    runtime = netwatch.app.state.runtime
    netwatch.app.state.status_pages = StatusPages(runtime, store_ttl_s=1.0)
    # A healthy baseline: every link judged, the portal answering.
    wait_for(lambda: _all_links(netwatch, "ok"), "every link judged ok", 60)
    return netwatch


@pytest.fixture
def clean(netwatch: NetWatchOnLab) -> Iterator[NetWatchOnLab]:
    """The module's NetWatch, healthy (no incident) before the test; faults undone after it."""
    wait_for(lambda: _all_links(netwatch, "ok"), "the lab healthy", 60)
    wait_for(lambda: not _incidents(netwatch), "no incident left", 60)
    try:
        yield netwatch
    finally:
        netwatch.lab.restore()


def _all_links(netwatch: NetWatchOnLab, state: str) -> bool:
    links = netwatch.get_json("/api/v1/links")
    return bool(links) and all(x["state"] == state for x in links)


def _incidents(netwatch: NetWatchOnLab) -> list[dict[str, Any]]:
    incidents: list[dict[str, Any]] = netwatch.get_json("/api/v1/incidents")
    return incidents


def _commune(netwatch: NetWatchOnLab, code: str) -> Commune:
    found = netwatch.inventory.commune(code)
    assert found is not None
    return found


def _private_things(netwatch: NetWatchOnLab) -> list[str]:
    """Never on a public page: addresses, circuits, SNMP secrets, contacts."""
    inv = netwatch.inventory
    things = list(lab_env(netwatch.lab.paths.env_file).values())
    for commune in inv.communes:
        things += [str(link.address) for link in commune.links]
        things += [link.circuit for link in commune.links]
        if commune.router is not None:
            things.append(str(commune.router.address))
    for isp in inv.isps.values():
        for contact in isp.contacts:
            things += [c for c in (contact.email, contact.name) if c]
    things += [str(u.address) for u in inv.upstreams.values() if u.address is not None]
    return [t for t in things if t]


def _check_page(tab: Page, netwatch: NetWatchOnLab, check_html: CheckHtml, screenshot: str) -> str:
    """The checks every status page passes; returns its HTML."""
    html = _served(tab)
    for private in _private_things(netwatch):
        assert private not in html, f"{tab.url} shows {private!r}"
    if tab.viewport_size is not None and tab.viewport_size["width"] == PHONE.width:
        assert tab.evaluate("document.documentElement.scrollWidth") <= PHONE.width
    check_page(tab, html, check_html, screenshot)
    return html


def _served(tab: Page) -> str:
    """The document exactly as the server sent it (not as the browser re-serialises it)."""
    response = tab.request.get(tab.url)
    assert response.ok
    return response.text()


def _reload_until(tab: Page, url: str, predicate: Callable[[Page], bool], deadline: float) -> bool:
    """Open url again and again until predicate(tab) holds or the monotonic deadline passes."""

    def shown() -> bool:
        try:
            tab.goto(url)
        except PlaywrightError as exc:
            # The page reloads itself once per round (JavaScript): a reload starting as this
            # navigation does aborts it (net::ERR_ABORTED; seen once on a loaded machine).
            if "ERR_ABORTED" not in str(exc):
                raise
            return False
        return predicate(tab)

    try:
        return wait_until(shown, deadline - time.monotonic(), 0.2, url)
    except WaitTimeoutError:
        return False


def test_pages_render_search_without_diacritics_and_fit_a_phone(
    netwatch: NetWatchOnLab, page: PageFactory, check_html: CheckHtml
) -> None:
    tab = page(PHONE)
    response = tab.goto(netwatch.base + "/status")
    assert response is not None
    assert response.status == 200
    # Two provinces in this lab: the home page lists them, with a search over every commune.
    assert tab.locator("html").get_attribute("lang") == "vi"
    assert tab.locator("h1").inner_text() == "Tình trạng đường truyền các xã, phường"
    provinces = tab.locator("#provinces-h + ul").inner_text()
    assert "Lâm Đồng" in provinces
    assert "Đồng Tháp" in provinces
    assert "Cổng Dịch vụ công quốc gia: Hoạt động bình thường" in tab.locator("main").inner_text()
    _check_page(tab, netwatch, check_html, "status-home-phone")

    # Search without diacritics, as typed on a phone keyboard, submitted by the form itself.
    tab.fill("#q", "tan phu dong")
    tab.locator("form.search button").click()
    tab.wait_for_load_state()
    assert "q=tan+phu+dong" in tab.url
    results = tab.locator("[role=status]").inner_text()
    assert results == "1 kết quả cho “tan phu dong”."
    tab.get_by_role("link", name="Xã Tân Phú Đông").click()
    tab.wait_for_load_state()
    assert tab.url.endswith("/status/xa/28696")
    assert tab.locator("h1").inner_text() == "Xã Tân Phú Đông"
    _check_page(tab, netwatch, check_html, "status-commune-ok-phone")
    assert "Bình thường" in tab.locator("#answer-h + p").inner_text()
    assert "Đường truyền của xã hoạt động bình thường." in tab.locator("main").inner_text()
    # Each link's 24 h chart is drawn on the server, and titled for screen readers.
    charts = tab.locator("figure.chart svg[role=img]")
    assert charts.count() == len(_commune(netwatch, "28696").links)
    assert "độ trễ và mất gói 24 giờ qua" in (charts.first.locator("title").text_content() or "")

    # The province page: every commune with its state, counts per state.
    tab.goto(netwatch.base + "/status/82")
    main = tab.locator("main").inner_text()
    assert "Tình trạng đường truyền — Đồng Tháp" in main
    for commune in netwatch.inventory.communes:
        if commune.province_code == 82:
            assert commune.name in main
    assert tab.locator(".communes .st-ok").count() == sum(
        1 for c in netwatch.inventory.communes if c.province_code == 82
    )
    _check_page(tab, netwatch, check_html, "status-province-phone")

    # Wide screens too.
    wide = page(DESKTOP)
    wide.goto(netwatch.base + "/status/82")
    save_screenshot(wide, "status-province-desktop")
    check_accessibility(wide)


def test_english_switch_is_remembered_across_pages(
    netwatch: NetWatchOnLab, page: PageFactory, check_html: CheckHtml
) -> None:
    tab = page(PHONE)
    tab.goto(netwatch.base + "/status/xa/24848")
    assert tab.locator("html").get_attribute("lang") == "vi"
    tab.get_by_role("link", name="English").click()
    tab.wait_for_load_state()
    assert tab.locator("html").get_attribute("lang") == "en"
    assert "The commune's connection now" in tab.locator("main").inner_text()
    assert "Commune code 24848" in tab.locator("main").inner_text()
    _check_page(tab, netwatch, check_html, "status-commune-english-phone")
    # The choice is remembered: the next page, opened without ?lang, is English too.
    tab.goto(netwatch.base + "/status")
    assert tab.locator("html").get_attribute("lang") == "en"
    assert tab.locator("h1").inner_text() == "Connection status of communes and wards"
    tab.get_by_role("link", name="Tiếng Việt").click()
    tab.wait_for_load_state()
    assert tab.locator("html").get_attribute("lang") == "vi"


def test_pages_work_without_javascript_and_refresh_themselves_with_it(
    netwatch: NetWatchOnLab, page: PageFactory
) -> None:
    plain = page(PHONE, javascript=False)
    plain.goto(netwatch.base + "/status")
    plain.fill("#q", "lac duong")
    plain.locator("form.search button").click()
    plain.wait_for_load_state()
    plain.get_by_role("link", name="Xã Lạc Dương").click()
    plain.wait_for_load_state()
    assert plain.locator("h1").inner_text() == "Xã Lạc Dương"
    assert plain.locator("figure.chart svg").count() >= 1
    save_screenshot(plain, "status-commune-no-javascript-phone")

    # With JavaScript the page reloads itself once per round (5 s at least): mark the loaded
    # document and wait for a new one.
    live = page(PHONE)
    live.goto(netwatch.base + "/status/xa/24848")
    live.evaluate("window.__nwMarker = 1")
    live.wait_for_event("load", timeout=15_000)
    assert live.evaluate("window.__nwMarker") is None  # a new document: the page reloaded
    assert live.locator("h1").inner_text() == "Xã Lạc Dương"


def test_a_link_down_in_the_lab_shows_within_two_rounds_with_the_isp_explanation(
    clean: NetWatchOnLab, page: PageFactory, check_html: CheckHtml
) -> None:
    netwatch = clean
    # A dual-homed commune loses its second link: its router stays reachable over the first.
    commune = next(c for c in netwatch.inventory.communes if len(c.links) > 1)
    link, other = commune.links[1], commune.links[0]
    isp = netwatch.inventory.isps[link.isp].name
    other_isp = netwatch.inventory.isps[other.isp].name
    url = f"{netwatch.base}/status/xa/{commune.code}"
    tab = page(PHONE)
    tab.goto(url)
    assert "Bình thường" in tab.locator("#answer-h + p").inner_text()

    result = netwatch.lab.commune_down(int(commune.code), link.id)
    assert result.problem is None, result
    wait_for(lambda: netwatch.link_state(commune.code, link.id) == "down", "judged down", 60)
    judged_at = time.monotonic()

    def shows_down(p: Page) -> bool:
        return "Mất kết nối" in p.locator("#answer-h + p").inner_text()

    assert _reload_until(tab, url, shows_down, judged_at + 2 * ROUND_S), (
        "the commune page did not show the link down within two rounds of NetWatch judging it"
    )
    main = tab.locator("main").inner_text()
    # Whose problem: this link and its ISP, not the portal, not an ISP node; the other link
    # still carries the commune.
    assert "mất kết nối" in main
    assert f"Đường truyền {isp}" in main
    assert "không phải lỗi đường truyền của xã" not in main
    assert "nhiều xã trong khu vực" not in main
    assert f"Xã vẫn còn kết nối qua: Đường truyền {other_isp}" in main, main
    cards = tab.locator("#links-h ~ .card")
    assert "Mất kết nối" in cards.nth(1).inner_text()
    assert "Bình thường" in cards.nth(0).inner_text()

    # Someone is on it: the ticket, and when the ISP was told (NetWatch mailed it).
    def told(p: Page) -> bool:
        return "Nhà mạng được thông báo lúc" in p.locator("main").inner_text() and (
            "Đang gửi thông báo" not in p.locator("#tickets-h ~ .card").first.inner_text()
        )

    assert _reload_until(tab, url, told, time.monotonic() + 40), "no ticket told on the page"
    ticket = tab.locator("#tickets-h ~ .card").first.inner_text()
    assert "Sự cố đường truyền" in ticket
    assert "Chưa tiếp nhận" in ticket
    _check_page(tab, netwatch, check_html, "status-commune-link-down-phone")
    # The province page counts it and names the commune's state.
    tab.goto(f"{netwatch.base}/status/{commune.province_code:02d}")
    assert "Mất kết nối" in tab.locator(".communes li", has_text=commune.name).inner_text()
    _check_page(tab, netwatch, check_html, "status-province-link-down-phone")


def test_a_failing_portal_is_explained_as_not_the_communes_line(
    clean: NetWatchOnLab, page: PageFactory, check_html: CheckHtml
) -> None:
    netwatch = clean
    url = f"{netwatch.base}/status/xa/24848"
    tab = page(PHONE)
    result = netwatch.lab.portal_down()
    assert result.problem is None, result
    wait_for(
        lambda: any(i["kind"] == "portal_outage" for i in _incidents(netwatch)),
        "the portal outage decided",
        90,
    )
    judged_at = time.monotonic()
    expected = "Cổng Dịch vụ công quốc gia đang gián đoạn — không phải lỗi đường truyền của xã."

    def explains(p: Page) -> bool:
        return expected in p.locator("main").inner_text()

    assert _reload_until(tab, url, explains, judged_at + 2 * ROUND_S), (
        "the commune page did not explain the portal outage within two rounds"
    )
    # The commune's own line is fine, and the page says so by its state.
    assert "Bình thường" in tab.locator("#answer-h + p").inner_text()
    assert "Đường truyền của xã hoạt động bình thường" not in tab.locator("main").inner_text()
    _check_page(tab, netwatch, check_html, "status-commune-portal-down-phone")
    tab.goto(f"{netwatch.base}/status")
    assert expected in tab.locator("main").inner_text()
    assert "Cổng Dịch vụ công quốc gia: Đang gián đoạn" in tab.locator("main").inner_text()
    _check_page(tab, netwatch, check_html, "status-home-portal-down-phone")
