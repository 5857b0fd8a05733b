"""The provincial IT view in Chromium: log in with an API token, see the ticket a lab fault
opened, acknowledge it, plan and end a maintenance window over it (the ticket's log shows both),
read NetWatch's health, log out. Lab index 12 (10.100.0.0/16, namespaces nwl12-*); this module
builds its own lab after test_isp_pages has removed its one."""

from __future__ import annotations

import re
from collections.abc import Iterator
from datetime import datetime, timedelta

import pytest
from playwright.sync_api import Page

from netwatch.inventory.models import LOCAL_TZ
from tests.browser.harness import (
    DESKTOP,
    PHONE,
    CheckHtml,
    PageFactory,
    check_accessibility,
    check_page,
    save_screenshot,
)
from tests.browser.lab_app import NetWatchOnLab, submit, wait_for

pytestmark = [pytest.mark.privileged, pytest.mark.lab]

LAB_INDEX = 12
LAB_COMMUNES = 2  # the `lab` and `netwatch` fixtures: tests/browser/conftest.py


@pytest.fixture(scope="module")
def ticket_id(netwatch: NetWatchOnLab) -> Iterator[str]:
    """The ticket NetWatch opens when the lab takes the second commune's link down."""
    with netwatch.link_down(1) as (commune, link):
        key = f"link:{commune.code}/{link.id}"
        wait_for(
            lambda: any(t["incident_key"] == key for t in netwatch.open_tickets()),
            "the ticket of the link taken down",
            90,
        )
        yield next(t["id"] for t in netwatch.open_tickets() if t["incident_key"] == key)


def _log_in(tab: Page, netwatch: NetWatchOnLab, token: str) -> None:
    tab.goto(f"{netwatch.base}/admin")
    assert tab.url.startswith(f"{netwatch.base}/admin/login?next=")
    tab.fill("#token", token)
    tab.get_by_role("button", name="Đăng nhập bằng mã").click()
    tab.wait_for_url(f"{netwatch.base}/admin")


def test_it_staff_log_in_and_see_the_open_ticket(
    netwatch: NetWatchOnLab, ticket_id: str, page: PageFactory, check_html: CheckHtml
) -> None:
    tab = page(PHONE)
    tab.goto(f"{netwatch.base}/admin/login")
    check_page(tab, tab.content(), check_html, "admin-login-phone")
    tab.fill("#token", "nw_0000000000000000_not-a-real-token")
    tab.get_by_role("button", name="Đăng nhập bằng mã").click()
    assert "Mã truy cập không đúng" in tab.locator("[role=alert]").inner_text()

    _log_in(tab, netwatch, netwatch.create_token("cntt-lamdong"))
    cookie = next(c for c in tab.context.cookies() if c["name"] == "nw_admin")
    assert cookie["httpOnly"] is True
    assert cookie["sameSite"] == "Strict"
    assert cookie["path"] == "/admin"
    row = tab.locator("table.tickets tbody tr").filter(has_text=ticket_id)
    assert row.count() == 1
    commune = netwatch.inventory.communes[1]
    text = row.inner_text()
    assert commune.name in text
    assert "Mất kết nối" in text
    assert "Chưa" in text  # not acknowledged
    check_page(tab, tab.content(), check_html, "admin-tickets-phone")

    wide = page(DESKTOP)
    wide.context.add_cookies(tab.context.cookies())
    wide.goto(f"{netwatch.base}/admin")
    wide.get_by_role("link", name=re.compile("Tuổi phiếu")).click()
    wide.wait_for_url(re.compile(r"sort=-age"))
    check_accessibility(wide)
    save_screenshot(wide, "admin-tickets-desktop")

    # Acknowledge as provincial IT from the ticket's own page.
    wide.get_by_role("link", name=ticket_id).click()
    wide.wait_for_url(f"{netwatch.base}/admin/tickets/{ticket_id}")
    assert "Mất kết nối" in wide.locator("dl.facts").first.inner_text()
    submit(wide, {"#ack-text": "Đã gọi trực ca VNPT"}, "Tiếp nhận", "acknowledge")
    assert "Tiếp nhận — cntt-lamdong (CNTT tỉnh)" in wide.locator("ol.timeline").inner_text()
    check_page(wide, wide.content(), check_html, "admin-ticket-desktop")
    tab.reload()
    row = tab.locator("table.tickets tbody tr").filter(has_text=ticket_id)
    assert "Đã tiếp nhận" in row.inner_text()


# Every word (a Vietnamese syllable, a name, a number) of the tickets table, with the rectangles
# it is drawn in: a word laid out on more than one line was broken inside itself. Hyphens and
# slashes are places a line may break ("NW-20261204-…", "Xã / đường truyền"), so they end words.
_WORDS_BROKEN_ACROSS_LINES = """
(selector) => {
  const broken = [];
  for (const cell of document.querySelectorAll(selector)) {
    const walker = document.createTreeWalker(cell, NodeFilter.SHOW_TEXT);
    for (let node = walker.nextNode(); node; node = walker.nextNode()) {
      for (const m of node.data.matchAll(/[^\\s\\-\\/–—]+/gu)) {
        const range = document.createRange();
        range.setStart(node, m.index);
        range.setEnd(node, m.index + m[0].length);
        const lines = new Set(
          [...range.getClientRects()].filter((r) => r.width > 0).map((r) => Math.round(r.top))
        );
        if (lines.size > 1) broken.push(m[0]);
      }
    }
  }
  return broken;
}
"""


def test_the_tickets_table_breaks_lines_between_words_only(
    netwatch: NetWatchOnLab, ticket_id: str, page: PageFactory
) -> None:
    """At 1280 px no cell splits a word: "Tiếp nhận", never "Tiế p nhậ n" (issue 14)."""
    wide = page(DESKTOP)
    _log_in(wide, netwatch, netwatch.create_token("bang-phieu"))
    assert wide.locator("table.tickets tbody tr").filter(has_text=ticket_id).count() == 1
    for sort in ("age", "-age"):
        wide.goto(f"{netwatch.base}/admin?sort={sort}")
        cells = "table.tickets th, table.tickets td"
        assert wide.locator(cells).count() >= 16
        broken = wide.evaluate(_WORDS_BROKEN_ACROSS_LINES, cells)
        assert broken == [], f"words split across lines at 1280 px: {broken}"


def test_a_maintenance_window_is_planned_and_ended_over_the_ticket(
    netwatch: NetWatchOnLab, ticket_id: str, page: PageFactory, check_html: CheckHtml
) -> None:
    commune = netwatch.inventory.communes[1]
    tab = page(PHONE)
    _log_in(tab, netwatch, netwatch.create_token("bao-tri"))
    tab.get_by_role("link", name="Bảo trì").click()
    tab.wait_for_url(f"{netwatch.base}/admin/maintenance")
    assert "Không có đợt bảo trì nào" in tab.locator("main").inner_text()
    check_page(tab, tab.content(), check_html, "admin-maintenance-empty-phone")

    now = datetime.now(LOCAL_TZ)
    tab.select_option("#target", f"commune:{commune.code}")
    window = {
        "#start": f"{now - timedelta(minutes=1):%Y-%m-%dT%H:%M}",
        "#end": f"{now + timedelta(hours=2):%Y-%m-%dT%H:%M}",
        "#reason": "Thay bộ định tuyến tại trung tâm",
    }
    submit(tab, window, "Tạo", "created")
    listed = tab.locator("main").inner_text()
    assert "Đã tạo đợt bảo trì." in listed
    assert "Thay bộ định tuyến tại trung tâm" in listed
    assert "Đang bảo trì" in listed
    check_page(tab, tab.content(), check_html, "admin-maintenance-active-phone")

    def logged(kind: str) -> bool:
        events = netwatch.get_json(f"/api/v1/tickets/{ticket_id}")["events"]
        return any(e["kind"] == kind for e in events)

    # The alerting loop applies the window to the open ticket on its next tick.
    wait_for(lambda: logged("maintenance_started"), "the ticket to enter maintenance", 30)

    tab.get_by_role("button", name=re.compile("Kết thúc ngay")).click()
    tab.wait_for_url(re.compile(r"done=ended"))
    assert "Đã kết thúc đợt bảo trì." in tab.locator("main").inner_text()
    assert "Không có đợt bảo trì nào" in tab.locator("main").inner_text()
    wait_for(lambda: logged("maintenance_ended"), "the ticket to leave maintenance", 30)
    tab.goto(f"{netwatch.base}/admin/tickets/{ticket_id}")
    timeline = tab.locator("ol.timeline").inner_text()
    assert "Bắt đầu bảo trì" in timeline
    assert "Kết thúc bảo trì" in timeline

    # A bad form comes back with its message and a 4xx, nothing stored.
    tab.goto(f"{netwatch.base}/admin/maintenance")
    tab.select_option("#target", f"commune:{commune.code}")
    tab.fill("#start", f"{now + timedelta(hours=3):%Y-%m-%dT%H:%M}")
    tab.fill("#end", f"{now + timedelta(hours=1):%Y-%m-%dT%H:%M}")
    tab.fill("#reason", "Sai giờ")
    with tab.expect_response(f"{netwatch.base}/admin/maintenance") as answer:
        tab.get_by_role("button", name="Tạo").click()
    assert answer.value.status == 422
    assert "phải sau thời điểm bắt đầu" in tab.locator("[role=alert]").inner_text()
    assert tab.locator("#reason").input_value() == "Sai giờ"
    assert netwatch.get_json("/api/v1/maintenance") == []


def test_the_health_page_and_logout(
    netwatch: NetWatchOnLab, ticket_id: str, page: PageFactory, check_html: CheckHtml
) -> None:
    tab = page(PHONE)
    _log_in(tab, netwatch, netwatch.create_token("giam-sat"))
    tab.get_by_role("link", name="Tình trạng NetWatch").click()
    tab.wait_for_url(f"{netwatch.base}/admin/health")
    main = tab.locator("main").inner_text()
    assert "Hoạt động" in main  # the database answers
    rounds = tab.locator("table").first.inner_text()
    # Every probe kind has run and says whether it keeps its schedule. ICMP and HTTPS do; the
    # SNMP round may be late here, truthfully: the cut-off commune's router times out (longer
    # than the 2 s interval) and the machine is busy with the other test workers.
    assert rounds.count("Đúng lịch") + rounds.count("Chậm lịch") == 3, rounds
    for kind in ("Ping (ICMP)", "Cổng dịch vụ công (HTTPS)"):
        [row] = [line for line in rounds.splitlines() if line.startswith(kind)]
        assert "Đúng lịch" in row, row
    assert "Hàng đợi thông báo" in main
    # The alerting loop runs: its last evaluation is a time, seconds ago, not "unknown".
    assert re.search(r"Lần đánh giá gần nhất: \d\d:\d\d", main), main
    check_page(tab, tab.content(), check_html, "admin-health-phone")

    english = page(DESKTOP)
    english.context.add_cookies(tab.context.cookies())
    english.goto(f"{netwatch.base}/admin/health?lang=en")
    assert english.locator("h1").inner_text() == "NetWatch health"
    check_accessibility(english)
    save_screenshot(english, "admin-health-desktop-en")

    tab.get_by_role("button", name="Đăng xuất").click()
    tab.wait_for_url(re.compile(r"/admin/login\?bye=1"))
    assert "Bạn đã đăng xuất." in tab.locator("main").inner_text()
    tab.goto(f"{netwatch.base}/admin/health")
    assert tab.url.startswith(f"{netwatch.base}/admin/login")
