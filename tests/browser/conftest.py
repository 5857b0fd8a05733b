"""Fixtures of the browser harness: one Chromium per test module, one HTML checker per session,
and each page module's own lab with NetWatch on it.

- ``lab``: the test module's lab, built from its ``LAB_INDEX`` and ``LAB_COMMUNES`` (each page
  module has its own index, so modules run in parallel), removed after the module.
- ``netwatch``: NetWatch (tests/browser/lab_app.py) probing that lab, for the module; the lab's
  faults are undone and NetWatch stopped after it. A module may override it to adjust it.

- ``browser``: the module's Chromium (Debian's /usr/bin/chromium under Playwright). Module-scoped
  on purpose, not session-scoped: while Playwright's sync API is started it keeps an asyncio
  loop marked as running in the main thread, so every later test that calls asyncio.run() or
  uses pytest-asyncio would fail. Stopping it at the end of each browser module keeps the rest
  of the suite unaffected (launching Chromium takes about a second). Inside a browser module,
  run coroutines with ``harness.run_async``.
- ``page(viewport=PHONE, *, javascript=True, locale="vi-VN")``: a new page in its own context
  (own cookies, Asia/Ho_Chi_Minh). Requests to anything but loopback are refused; a page that
  tried one fails its test at teardown.
- ``save_screenshot(page, name)``, ``check_accessibility(page)``, ``check_html(html_text)``.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from pathlib import Path

import pytest
from playwright.sync_api import Browser, BrowserContext, Page, Playwright, sync_playwright

from netwatch.lab import Lab
from tests.browser import harness
from tests.browser.harness import PHONE, HtmlMessage, PageFactory, PageGuard, Viewport
from tests.browser.lab_app import NetWatchOnLab
from tests.lab.fixtures import built_lab


def _module_name(request: pytest.FixtureRequest) -> str:
    return str(request.module.__name__).rsplit(".", 1)[-1].removeprefix("test_")


@pytest.fixture(scope="module")
def lab(request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory) -> Iterator[Lab]:
    """The module's lab (its LAB_INDEX, LAB_COMMUNES communes)."""
    index: int = request.module.LAB_INDEX
    communes: int = request.module.LAB_COMMUNES
    yield from built_lab(index, communes, tmp_path_factory.mktemp(f"{_module_name(request)}-lab"))


@pytest.fixture(scope="module")
def netwatch(
    lab: Lab, request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[NetWatchOnLab]:
    """NetWatch against the module's lab; faults undone and NetWatch stopped after the module."""
    running = NetWatchOnLab.start(lab, tmp_path_factory.mktemp(_module_name(request)))
    try:
        yield running
    finally:
        lab.restore()
        running.stop()


@pytest.fixture(scope="module")
def playwright_driver() -> Iterator[Playwright]:
    """Playwright's driver process for one test module (see the module docstring)."""
    driver = sync_playwright().start()
    try:
        yield driver
    finally:
        driver.stop()


@pytest.fixture(scope="module")
def browser(playwright_driver: Playwright) -> Iterator[Browser]:
    """One headless Chromium for a test module (contexts keep its tests apart)."""
    chromium = harness.launch_chromium(playwright_driver)
    try:
        yield chromium
    finally:
        chromium.close()


@pytest.fixture
def page(browser: Browser) -> Iterator[PageFactory]:
    """A factory of fresh pages: ``page(viewport=PHONE, javascript=True, locale="vi-VN")``."""
    opened: list[tuple[BrowserContext, PageGuard]] = []

    def factory(
        viewport: Viewport = PHONE, *, javascript: bool = True, locale: str = "vi-VN"
    ) -> Page:
        context, guard = harness.new_context(
            browser, viewport, javascript=javascript, locale=locale
        )
        opened.append((context, guard))
        return context.new_page()

    yield factory
    external = [url for _, guard in opened for url in guard.external]
    for context, _ in opened:
        context.close()
    assert not external, f"pages tried to load resources from outside the machine: {external}"


@pytest.fixture(scope="session")
def html_validator(tmp_path_factory: pytest.TempPathFactory) -> Iterator[harness.HtmlValidator]:
    """The Nu HTML Checker on a loopback port, started once per session."""
    validator = harness.HtmlValidator(tmp_path_factory.mktemp("vnu") / "vnu.log")
    try:
        validator.wait_ready()
        yield validator
    finally:
        validator.close()


@pytest.fixture
def check_html(html_validator: harness.HtmlValidator) -> Callable[[str], list[HtmlMessage]]:
    """``check_html(html_text)``: fails listing validation errors; returns all messages."""
    return html_validator.check


@pytest.fixture
def check_accessibility() -> Callable[..., list[harness.AxeViolation]]:
    """``check_accessibility(page, min_impact="serious")``: axe-core in the page."""
    return harness.check_accessibility


@pytest.fixture
def save_screenshot() -> Callable[[Page, str], Path]:
    """``save_screenshot(page, name)``: test-artifacts/screenshots/NAME.png."""
    return harness.save_screenshot
