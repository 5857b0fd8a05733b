"""The monthly report page of the provincial IT view in Chromium, like the other admin pages:
valid HTML (the Nu checker), axe-core, no sideways scroll at 360 px, screenshots; its month
form, breach marks, downloads, and its print stylesheet as the browser applies it.

No lab is needed: NetWatch runs with probing off under uvicorn on loopback, its store holding
tests/reports/scenario.py's November (whose every figure tests/reports checks). This module
overrides the `netwatch` fixture of tests/browser/conftest.py accordingly.
"""

from __future__ import annotations

import re
from collections.abc import Iterator
from contextlib import ExitStack
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path

import pytest
from playwright.sync_api import Page

from netwatch.inventory import load_inventory
from netwatch.store import IssuedToken, open_store
from netwatch.web.app import create_app
from tests.browser.harness import (
    DESKTOP,
    PHONE,
    CheckHtml,
    PageFactory,
    check_accessibility,
    check_page,
    run_async,
    save_screenshot,
)
from tests.reports.scenario import CONFIG, ENV, write_month
from tests.servers import listening_socket, uvicorn_thread

PAGE = "/admin/reports/monthly"


@dataclass
class ReportServer:
    """NetWatch (probing off) with November 2026 in its store."""

    base: str
    data_dir: Path

    def create_token(self, name: str) -> str:
        """A write token in NetWatch's own store (as `netwatch token create` does)."""

        async def make() -> IssuedToken:
            store = await open_store(None, data_dir=self.data_dir, migrate=False)
            try:
                return await store.create_token(name, ["write"], datetime.now(UTC))
            finally:
                await store.close()

        return run_async(make).token


@pytest.fixture(scope="module")
def netwatch(tmp_path_factory: pytest.TempPathFactory) -> Iterator[ReportServer]:
    """NetWatch on a loopback port, its public URL that port (so its cookies suit plain
    HTTP), the scenario's month written into its store before it starts."""
    tmp = tmp_path_factory.mktemp("report-pages")
    with ExitStack() as running:
        sock = listening_socket()
        running.callback(sock.close)
        base = f"http://127.0.0.1:{sock.getsockname()[1]}"
        config = tmp / "netwatch.yaml"
        config.write_text(
            CONFIG.replace("https://netwatch.lamdong.example", base), encoding="utf-8"
        )
        inventory = load_inventory(config, environ=ENV)
        data_dir = tmp / "data"
        data_dir.mkdir()

        async def write() -> None:
            store = await open_store(None, data_dir=data_dir)
            try:
                await write_month(store)
            finally:
                await store.close()

        run_async(write)
        app = create_app(config, inventory=inventory, probing=False, data_dir=data_dir)
        running.enter_context(uvicorn_thread(app, sock))
        yield ReportServer(base, data_dir)


def _log_in(tab: Page, netwatch: ReportServer, token: str, path: str) -> None:
    tab.goto(f"{netwatch.base}{path}")
    assert tab.url.startswith(f"{netwatch.base}/admin/login?next=")
    tab.fill("#token", token)
    tab.get_by_role("button", name="Đăng nhập bằng mã").click()
    tab.wait_for_url(f"{netwatch.base}{path}")


def test_the_report_page_on_a_phone(
    netwatch: ReportServer, page: PageFactory, check_html: CheckHtml
) -> None:
    tab = page(PHONE)
    _log_in(tab, netwatch, netwatch.create_token("bao-cao"), "/admin")
    tab.get_by_role("link", name="Báo cáo tháng").click()
    tab.wait_for_url(re.compile(r"/admin/reports/monthly$"))
    # The default is the last month that has ended; the form picks November 2026.
    tab.fill("#month", "2026-11")
    tab.select_option("#isp", "vnpt")
    tab.get_by_role("button", name="Xem báo cáo").click()
    tab.wait_for_url(re.compile(r"month=2026-11&province=&isp=vnpt"))
    assert tab.locator("h1").inner_text() == "Báo cáo tháng 11/2026"
    row = tab.locator("table.circuits tbody tr").filter(has_text="LDG-TSLCD-0001")
    assert row.count() == 1
    # The breach is marked by text, not colour alone.
    assert "⚠ 99,328 %" in row.inner_text()
    assert "Độ khả dụng dưới 99,5 %" in row.inner_text()
    assert tab.locator("table.circuits tbody tr").filter(has_text="VTL-INET-0042").count() == 0
    check_page(tab, tab.content(), check_html, "admin-report-phone")

    # Every ISP on the desktop, in English.
    wide = page(DESKTOP)
    wide.context.add_cookies(tab.context.cookies())
    wide.goto(f"{netwatch.base}{PAGE}?month=2026-11&lang=en")
    assert wide.locator("h1").inner_text() == "Monthly report 11/2026"
    viettel = wide.locator("table.circuits tbody tr").filter(has_text="VTL-INET-0042")
    assert "⚠ 64.0 / 100.0" in viettel.inner_text()
    check_page(wide, wide.content(), check_html, "admin-report-desktop-en")

    # The downloads are real files.
    with wide.expect_download() as got:
        wide.get_by_role("link", name="Excel file (XLSX)").click()
    assert got.value.suggested_filename == "netwatch-2026-11.xlsx"
    with wide.expect_download() as got:
        wide.get_by_role("link", name="CSV spreadsheet").click()
    assert got.value.suggested_filename == "netwatch-2026-11.csv"


def test_the_printed_page(netwatch: ReportServer, page: PageFactory) -> None:
    """What the browser prints (and Chromium's PDF is): no navigation or form, headers repeated
    on every page, each ISP on a new page."""
    tab = page(DESKTOP)
    _log_in(tab, netwatch, netwatch.create_token("in-bao-cao"), f"{PAGE}?month=2026-11")
    assert tab.locator("header.site").is_visible()
    tab.emulate_media(media="print")
    for hidden in ("header.site", "form.picker", "nav.downloads", "footer.site form"):
        assert not tab.locator(hidden).is_visible(), hidden
    styles = tab.evaluate(
        """() => ({
            thead: getComputedStyle(document.querySelector('table.circuits thead')).display,
            isp: [...document.querySelectorAll('section.isp')]
                .map(s => getComputedStyle(s).breakBefore),
            row: getComputedStyle(document.querySelector('table.circuits tbody tr')).breakInside,
        })"""
    )
    assert styles == {"thead": "table-header-group", "isp": ["page", "page"], "row": "avoid"}
    assert "⚠ 99,328 %" in tab.locator("main").inner_text()
    check_accessibility(tab)
    save_screenshot(tab, "admin-report-print")
