"""The Content-Security-Policy in a real browser: Chromium loads the pages behind the HTTP edge
and reports no violation (issue 15, finding 15). The browser harness is tests/browser's; no lab
is needed, NetWatch runs with probing off under uvicorn on loopback.
"""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest
from playwright.sync_api import Browser, Page, sync_playwright

from netwatch.inventory import Inventory
from netwatch.web.edge import EdgeOptions
from tests.browser import harness
from tests.web.edge_server import Edge, serving

# Every violation the page meets, as the browser reports it to the page itself.
RECORD_VIOLATIONS = """
window.__csp = [];
document.addEventListener("securitypolicyviolation", function (e) {
  window.__csp.push(e.violatedDirective + " " + (e.blockedURI || "inline"));
});
"""


@pytest.fixture
def chromium() -> Iterator[Browser]:
    """Debian's Chromium, headless (tests/browser/harness.py)."""
    if not harness.CHROMIUM.exists():
        pytest.skip(f"{harness.CHROMIUM} not installed (scripts/bootstrap.sh installs it)")
    with sync_playwright() as driver:
        browser = harness.launch_chromium(driver)
        try:
            yield browser
        finally:
            browser.close()


def _violations(page: Page) -> list[str]:
    found: list[str] = page.evaluate("window.__csp")
    return found


def test_the_pages_run_under_the_csp_without_a_violation(
    tmp_path: Path, inventory: Inventory, chromium: Browser
) -> None:
    with serving(tmp_path, inventory, EdgeOptions()) as edge:
        context, guard = harness.new_context(chromium)
        try:
            context.add_init_script(RECORD_VIOLATIONS)
            console: list[str] = []
            page = context.new_page()
            page.on("console", lambda m: console.append(m.text))
            _visit_all(page, edge)
            # The recorder works: an inline script of our own is refused and reported.
            page.goto(edge.base + "/status")
            page.evaluate(
                "var s = document.createElement('script'); s.textContent = 'window.__injected = 1';"
                "document.body.appendChild(s)"
            )
            page.wait_for_function("window.__csp.length > 0")
            assert page.evaluate("window.__injected") is None
            assert any("script-src" in v for v in _violations(page))
        finally:
            context.close()
        assert not guard.external, f"pages loaded resources from elsewhere: {guard.external}"
        refused = [m for m in console if "Content Security Policy" in m]
        assert len(refused) == 1, refused  # only the script injected above


def _visit_all(page: Page, edge: Edge) -> None:
    for path in ("/status", "/status/xa/24848", "/status?q=lac", "/admin/login"):
        page.goto(edge.base + path)
        page.wait_for_load_state("load")
        assert _violations(page) == [], (path, _violations(page))
    # The live pages carry the reload script, allowed by its hash: it ran without a violation.
    page.goto(edge.base + "/status/xa/24848")
    assert page.locator("script[data-refresh-ms]").count() == 1
    # The admin view after a login (its forms post to NetWatch: form-action 'self').
    page.goto(edge.base + "/admin/login")
    page.fill("input[name=token]", edge.token())
    page.locator("form button[type=submit]").first.click()
    page.wait_for_url(edge.base + "/admin**")
    for path in ("/admin", "/admin/maintenance", "/admin/tickets"):
        page.goto(edge.base + path)
        assert _violations(page) == [], (path, _violations(page))
